/* status.c - the library's version and the names of its status codes. */
#include "picolm.h"

const char *pl_version(void) { return PICOLM_VERSION; }

const char *pl_status_str(int status) {
    switch (status) {
    case PL_OK: return "ok";
    case PL_ERR_IO: return "cannot open or map the file";
    case PL_ERR_FORMAT: return "malformed or inconsistent file";
    case PL_ERR_UNSUPPORTED: return "unsupported feature";
    case PL_ERR_NOMEM: return "out of memory";
    case PL_ERR_ARG: return "bad argument";
    case PL_ERR_CTX_FULL: return "context full";
    case PL_ERR_ABORTED: return "aborted";
    case PL_GRAMMAR_ERR_SYNTAX: return "grammar syntax error";
    case PL_GRAMMAR_ERR_DEAD_END: return "no token can continue the grammar";
    case PL_GRAMMAR_ERR_LIMIT: return "grammar limit exceeded";
    case PL_GRAMMAR_ERR_REJECT: return "rejected by the grammar";
    }
    return "unknown status";
}
