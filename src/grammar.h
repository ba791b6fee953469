/* grammar.h - the grammar API is public: include/picolm.h, "Grammars".
 * Kept so that the modules and tests including it need no edit. */
#ifndef PICOLM_GRAMMAR_H
#define PICOLM_GRAMMAR_H

#include "picolm.h"

#endif
