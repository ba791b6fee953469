"""picolm.py - Python binding of libpicolm through ctypes (nothing to compile).

    import picolm
    m = picolm.Model("model.gguf", n_ctx=2048)
    print(m.generate("Once upon a time", n_predict=32, temperature=0))
    for piece in m.stream("The sky is", n_predict=16):
        print(piece, end="", flush=True)
    print(m.generate("A person as JSON:", json=True, n_predict=64))
    print(m.chat([{"role": "user", "content": "Hi!"}]))

The library is found through Model(lib=...) or load(path), else $PICOLM_LIB,
else build/libpicolm.so of the checkout this file is in, else the system's
libpicolm.so.0. A Model holds one context (its KV cache): use it from one
thread at a time; several Models may share nothing but the library.
"""

import ctypes
import ctypes.util
import json as _json
import os

__all__ = ["Model", "PicolmError", "load", "version", "status_str"]

# enum pl_status, enum pl_gen_status (picolm.h)
OK, ERR_IO, ERR_FORMAT, ERR_UNSUPPORTED, ERR_NOMEM, ERR_ARG, ERR_CTX_FULL, ERR_ABORTED = 0, -1, -2, -3, -4, -5, -6, -7
GEN_RUNNING, GEN_EOG, GEN_LENGTH, GEN_STOP, GEN_CTX_FULL, GEN_ERROR = range(6)
_GEN_REASON = {GEN_EOG: "eog", GEN_LENGTH: "length", GEN_STOP: "stop", GEN_CTX_FULL: "ctx_full", GEN_ERROR: "error"}


class PicolmError(Exception):
    """A library call failed; .status is its picolm.h status code."""

    def __init__(self, message, status=ERR_ARG):
        super().__init__(message)
        self.status = status


# ---- picolm.h's structs, field for field ----
c_int, c_float, c_char_p, c_size_t = ctypes.c_int, ctypes.c_float, ctypes.c_char_p, ctypes.c_size_t


class _ModelInfo(ctypes.Structure):
    _fields_ = [(n, c_int) for n in ("n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "n_ff", "n_rot",
                                     "n_ctx_train")] + [
        ("rms_eps", c_float), ("rope_base", c_float), ("has_weights", c_int), ("tied_output", c_int),
        ("weight_bytes", ctypes.c_uint64), ("ftype", c_char_p), ("arch", c_char_p), ("head_dim", c_int)]


class _ContextParams(ctypes.Structure):
    _fields_ = [(n, c_int) for n in ("n_ctx", "n_threads", "mem_budget_mb", "kv_q8", "n_seq", "n_batch")]


class _LogitBias(ctypes.Structure):
    _fields_ = [("token", ctypes.c_int32), ("bias", c_float)]


class _SamplerParams(ctypes.Structure):
    _fields_ = [("temperature", c_float), ("top_p", c_float), ("top_k", c_int), ("seed", ctypes.c_uint64),
                ("min_p", c_float), ("repeat_penalty", c_float), ("repeat_last_n", c_int),
                ("presence_penalty", c_float), ("frequency_penalty", c_float),
                ("logit_bias", ctypes.POINTER(_LogitBias)), ("n_logit_bias", c_int)]


class _GenParams(ctypes.Structure):
    _fields_ = [("n_predict", c_int), ("n_keep", c_int), ("no_context_shift", c_int),
                ("stop", ctypes.POINTER(c_char_p)), ("n_stop", c_int), ("logprobs", c_int),
                ("top_logprobs", c_int), ("lookup", c_int)]


class _ChatMsg(ctypes.Structure):
    _fields_ = [("role", c_char_p), ("content", c_char_p)]


_ABORT_CB = ctypes.CFUNCTYPE(c_int, ctypes.c_void_p)
_P = ctypes.c_void_p
_PP = ctypes.POINTER(ctypes.c_void_p)
_I32P = ctypes.POINTER(ctypes.c_int32)
_FP = ctypes.POINTER(c_float)
_ERR = (c_char_p, c_size_t)

# name: (restype, argtypes)
_API = {
    "pl_version": (c_char_p, ()),
    "pl_status_str": (c_char_p, (c_int,)),
    "pl_model_open": (c_int, (_PP, c_char_p) + _ERR),
    "pl_model_close": (None, (_P,)),
    "pl_model_get_info": (ctypes.POINTER(_ModelInfo), (_P,)),
    "pl_tokenize": (c_int, (_P, c_char_p, c_size_t, c_int, c_int, _I32P, c_int)),
    "pl_tokenize_spans": (c_int, (_P, c_char_p, c_size_t, c_int, ctypes.POINTER(c_size_t), c_int, _I32P, c_int)),
    "pl_add_bos": (c_int, (_P,)),
    "pl_token_bos": (ctypes.c_int32, (_P,)),
    "pl_token_eos": (ctypes.c_int32, (_P,)),
    "pl_token_is_eog": (c_int, (_P, ctypes.c_int32)),
    "pl_token_to_text": (c_int, (_P, ctypes.c_int32, ctypes.c_int32, c_char_p, c_size_t)),
    "pl_context_default_params": (_ContextParams, ()),
    "pl_context_new": (c_int, (_PP, _P, ctypes.POINTER(_ContextParams)) + _ERR),
    "pl_context_free": (None, (_P,)),
    "pl_context_n_ctx": (c_int, (_P,)),
    "pl_context_set_abort": (None, (_P, _ABORT_CB, _P)),
    "pl_seq_len": (c_int, (_P, c_int)),
    "pl_sampler_default_params": (_SamplerParams, ()),
    "pl_sampler_new": (c_int, (_PP, ctypes.POINTER(_SamplerParams), c_int)),
    "pl_sampler_free": (None, (_P,)),
    "pl_gen_default_params": (_GenParams, ()),
    "pl_gen_new": (c_int, (_PP, _P, c_int, _P, ctypes.POINTER(_GenParams)) + _ERR),
    "pl_gen_free": (None, (_P,)),
    "pl_gen_set_grammar": (None, (_P, _P)),
    "pl_gen_prompt": (c_int, (_P, _I32P, c_int, _FP, ctypes.POINTER(c_int))),
    "pl_gen_sample": (c_int, (_P, _FP, c_char_p, c_size_t, ctypes.POINTER(c_size_t))),
    "pl_gen_next": (c_int, (_P, _FP)),
    "pl_gen_flush": (c_size_t, (_P, c_char_p, c_size_t)),
    "pl_gen_status": (c_int, (_P,)),
    "pl_gen_error": (c_char_p, (_P,)),
    "pl_gen_n_generated": (c_int, (_P,)),
    "pl_grammar_vocab_from_model": (c_int, (_PP, _P) + _ERR),
    "pl_grammar_vocab_free": (None, (_P,)),
    "pl_grammar_new_gbnf": (c_int, (_PP, c_char_p, c_size_t) + _ERR),
    "pl_grammar_new_json": (c_int, (_PP, c_int) + _ERR),
    "pl_grammar_new_json_schema": (c_int, (_PP, c_char_p, c_size_t) + _ERR),
    "pl_grammar_bind": (c_int, (_P, _P)),
    "pl_grammar_free": (None, (_P,)),
    "pl_chat_format_msgs": (c_int, (c_char_p, ctypes.POINTER(_ChatMsg), c_int, c_int, c_char_p, c_size_t,
                                    ctypes.POINTER(c_size_t))),
    "pl_chat_template_detect": (c_char_p, (_P,)),
    "pl_chat_template_stop": (c_char_p, (c_char_p,)),
}

_lib = None


def _default_paths():
    env = os.environ.get("PICOLM_LIB")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [os.path.join(here, "..", "..", "build", "libpicolm.so")]
    found = ctypes.util.find_library("picolm")
    return paths + ([found] if found else []) + ["libpicolm.so.0"]


def load(path=None):
    """Loads libpicolm (path, or the search in the module's docstring) once;
    returns the ctypes handle. A later call with another path is an error."""
    global _lib
    if _lib is not None:
        if path and os.path.abspath(path) != _lib._picolm_path:
            raise PicolmError("libpicolm is already loaded from %s" % _lib._picolm_path)
        return _lib
    tried = []
    for p in [path] if path else _default_paths():
        if os.sep in p and not os.path.exists(p):
            tried.append(p)
            continue
        try:
            lib = ctypes.CDLL(p)
        except OSError as e:
            tried.append("%s (%s)" % (p, e))
            continue
        for name, (res, args) in _API.items():
            f = getattr(lib, name)
            f.restype, f.argtypes = res, list(args)
        lib._picolm_path = os.path.abspath(p) if os.sep in p else p
        _lib = lib
        return lib
    raise PicolmError("cannot load libpicolm: tried " + ", ".join(tried), ERR_IO)


def version():
    """The library's version string (PICOLM_VERSION it was built with)."""
    return load().pl_version().decode()


def status_str(status):
    return load().pl_status_str(status).decode()


def _check(rc, err=None, what="picolm"):
    if rc < 0:
        msg = err.value.decode("utf-8", "replace") if err is not None and err.value else status_str(rc)
        raise PicolmError("%s: %s" % (what, msg), rc)
    return rc


class Model:
    """A GGUF model with one context of n_ctx positions (0: the model's
    length capped at 2048) on n_threads threads (0: every core)."""

    def __init__(self, path, n_ctx=0, n_threads=0, kv_q8=False, lib=None):
        self._lib = L = load(lib)
        self._m = self._c = self._gvocab = None
        err = ctypes.create_string_buffer(256)
        m = ctypes.c_void_p()
        _check(L.pl_model_open(ctypes.byref(m), os.fsencode(path), err, len(err)), err, "open")
        self._m = m
        info = L.pl_model_get_info(m).contents
        self.info = {k: getattr(info, k) for k, _ in _ModelInfo._fields_}
        for k in ("ftype", "arch"):
            self.info[k] = self.info[k].decode() if self.info[k] else None
        self.n_vocab = info.n_vocab
        if not info.has_weights:
            self.close()
            raise PicolmError("open: %s is a vocabulary without weights" % path, ERR_UNSUPPORTED)
        cp = L.pl_context_default_params()
        cp.n_ctx, cp.n_threads, cp.kv_q8 = n_ctx, n_threads, int(bool(kv_q8))
        c = ctypes.c_void_p()
        rc = L.pl_context_new(ctypes.byref(c), m, ctypes.byref(cp), err, len(err))
        if rc:
            self.close()
            _check(rc, err, "context")
        self._c = c
        self.n_ctx = L.pl_context_n_ctx(c)
        self._logits = (c_float * self.n_vocab)()
        self.stop_reason = None  # why the last generation ended: "eog", "length", "stop", "ctx_full"

    def close(self):
        L = self._lib
        if self._gvocab:
            L.pl_grammar_vocab_free(self._gvocab)
        if self._c:
            L.pl_context_free(self._c)
        if self._m:
            L.pl_model_close(self._m)
        self._m = self._c = self._gvocab = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_lib", None) is not None:
            self.close()

    # ---- tokens ----
    def tokenize(self, text, add_bos=True, special=False):
        """Token ids of text; add_bos adds BOS when the model wants it;
        special parses special-token text such as <|im_end|>."""
        b = text.encode() if isinstance(text, str) else bytes(text)
        bos = int(bool(add_bos) and self._lib.pl_add_bos(self._m))
        cap = len(b) + 8
        while True:
            out = (ctypes.c_int32 * cap)()
            n = _check(self._lib.pl_tokenize(self._m, b, len(b), bos, int(bool(special)), out, cap), None, "tokenize")
            if n <= cap:
                return list(out[:n])
            cap = n

    def detokenize(self, ids):
        """The text of ids (as the generation prints it; invalid UTF-8 replaced)."""
        return self._detok_bytes(ids).decode("utf-8", "replace")

    def _detok_bytes(self, ids):
        out, prev, buf = [], -1, ctypes.create_string_buffer(256)
        for t in ids:
            n = self._lib.pl_token_to_text(self._m, prev, t, buf, len(buf))
            if n > len(buf):
                buf = ctypes.create_string_buffer(n)
                n = self._lib.pl_token_to_text(self._m, prev, t, buf, len(buf))
            out.append(buf.raw[:max(n, 0)])
            prev = t
        return b"".join(out)

    @property
    def n_past(self):
        """Positions the context holds (the last prompt and generation)."""
        return self._lib.pl_seq_len(self._c, 0)

    # ---- generation ----
    def _grammar(self, json, schema, grammar):
        L, err, g = self._lib, ctypes.create_string_buffer(512), ctypes.c_void_p()
        if sum(x is not None and x is not False for x in (schema, grammar)) + bool(json) > 1:
            raise PicolmError("generate: at most one of json, schema, grammar")
        if schema is not None:
            s = (schema if isinstance(schema, str) else _json.dumps(schema)).encode()
            _check(L.pl_grammar_new_json_schema(ctypes.byref(g), s, len(s), err, len(err)), err, "schema")
        elif grammar is not None:
            s = grammar.encode()
            _check(L.pl_grammar_new_gbnf(ctypes.byref(g), s, len(s), err, len(err)), err, "grammar")
        elif json:
            _check(L.pl_grammar_new_json(ctypes.byref(g), 0, err, len(err)), err, "json")
        else:
            return None
        if not self._gvocab:
            v = ctypes.c_void_p()
            rc = L.pl_grammar_vocab_from_model(ctypes.byref(v), self._m, err, len(err))
            if rc:
                L.pl_grammar_free(g)
                _check(rc, err, "grammar vocabulary")
            self._gvocab = v
        rc = L.pl_grammar_bind(g, self._gvocab)
        if rc:
            L.pl_grammar_free(g)
            _check(rc, None, "grammar bind")
        return g

    def stream(self, prompt, n_predict=128, temperature=0.8, top_p=0.9, top_k=0, min_p=0.0, seed=0,
               repeat_penalty=1.0, stop=None, json=False, schema=None, grammar=None, abort=None, add_bos=True,
               special=False):
        """Generates from prompt (text, or a list of token ids), yielding the
        text as it comes (never half a UTF-8 character, never a stop string).
        n_predict < 0: until an end-of-generation token or the context's end.
        temperature 0 is greedy; seed makes sampling repeatable. json=True
        constrains the output to one JSON value, schema (a dict or JSON text)
        to a JSON Schema, grammar to a GBNF grammar. abort: a function called
        between layers; returning True stops with PicolmError(ERR_ABORTED).
        The context keeps what it ran: a next prompt with the same start
        reuses it. stop_reason says why it ended."""
        L = self._lib
        ids = list(prompt) if not isinstance(prompt, (str, bytes)) else self.tokenize(prompt, add_bos, special)
        if not ids:
            raise PicolmError("generate: empty prompt")
        sp = L.pl_sampler_default_params()
        sp.temperature, sp.top_p, sp.top_k, sp.min_p = temperature, top_p, top_k, min_p
        sp.seed, sp.repeat_penalty = seed, repeat_penalty
        gp = L.pl_gen_default_params()
        gp.n_predict = n_predict
        stops = [s.encode() for s in ([stop] if isinstance(stop, str) else stop or [])]
        stop_arr = (c_char_p * max(len(stops), 1))(*stops)
        gp.stop, gp.n_stop = stop_arr, len(stops)
        err = ctypes.create_string_buffer(256)
        smp, gen, gram = ctypes.c_void_p(), ctypes.c_void_p(), None
        aborted = []

        def on_layer(_):
            if abort():
                aborted.append(1)
                return 1
            return 0
        cb = _ABORT_CB(on_layer) if abort else _ABORT_CB()  # referenced until the end: C holds it
        self.stop_reason = None
        try:
            _check(L.pl_sampler_new(ctypes.byref(smp), ctypes.byref(sp), self.n_vocab), None, "sampler")
            gram = self._grammar(json, schema, grammar)
            _check(L.pl_gen_new(ctypes.byref(gen), self._c, 0, smp, ctypes.byref(gp), err, len(err)), err, "gen")
            if gram:
                L.pl_gen_set_grammar(gen, gram)
            L.pl_context_set_abort(self._c, cb, None)
            arr = (ctypes.c_int32 * len(ids))(*ids)
            _check(L.pl_gen_prompt(gen, arr, len(ids), self._logits, None), None, "prompt")
            buf, n = ctypes.create_string_buffer(1024), c_size_t()
            while True:
                n.value = 0
                st = L.pl_gen_sample(gen, self._logits, buf, len(buf), ctypes.byref(n))
                if n.value:
                    yield buf.raw[:n.value].decode("utf-8", "replace")
                if st != GEN_RUNNING or L.pl_gen_next(gen, self._logits):
                    break
            tail = L.pl_gen_flush(gen, buf, len(buf))
            if tail:
                yield buf.raw[:tail].decode("utf-8", "replace")
            st = L.pl_gen_status(gen)
            if st == GEN_ERROR:
                msg = (L.pl_gen_error(gen) or b"").decode("utf-8", "replace")
                raise PicolmError("generate: " + (status_str(ERR_ABORTED) if aborted else msg),
                                  ERR_ABORTED if aborted else ERR_ARG)
            self.stop_reason = _GEN_REASON.get(st)
        finally:
            if self._c:
                L.pl_context_set_abort(self._c, _ABORT_CB(), None)
            L.pl_gen_free(gen)
            if gram:
                L.pl_grammar_free(gram)
            L.pl_sampler_free(smp)

    def generate(self, prompt, n_predict=128, temperature=0.8, seed=0, json=False, stream=None, **kw):
        """The text stream() yields, joined; stream (a function) also gets
        each piece as it comes. Other keywords as stream()."""
        out = []
        for piece in self.stream(prompt, n_predict, temperature, seed=seed, json=json, **kw):
            out.append(piece)
            if stream:
                stream(piece)
        return "".join(out)

    # ---- chat ----
    def chat_template(self):
        """The chat family of the model's template, or the one picolm's CLI
        falls back to (zephyr; phi2 for phi2 models)."""
        t = self._lib.pl_chat_template_detect(self._m)
        return t.decode() if t else ("phi2" if self.info["arch"] == "phi2" else "zephyr")

    def format_chat(self, messages, template=None, add_assistant=True):
        """(text, spans): the conversation in the template's format and each
        message's content span in it."""
        name = (template or self.chat_template()).encode()
        keep = [(m["role"].encode(), (m.get("content") or "").encode()) for m in messages]
        msgs = (_ChatMsg * max(len(keep), 1))(*[_ChatMsg(r, c) for r, c in keep])
        spans = (c_size_t * (2 * max(len(keep), 1)))()
        n = self._lib.pl_chat_format_msgs(name, msgs, len(keep), int(add_assistant), None, 0, spans)
        _check(n, None, "chat template %s" % name.decode())
        out = ctypes.create_string_buffer(n + 1)
        self._lib.pl_chat_format_msgs(name, msgs, len(keep), int(add_assistant), out, n + 1, spans)
        return out.raw[:n], list(spans[:2 * len(keep)])

    def chat(self, messages, template=None, stop=None, **kw):
        """The assistant's answer to messages ([{"role": "user", "content":
        "..."}, ...]; roles system, user, assistant, tool) in the model's
        chat template (or template=...). Keywords as generate()."""
        name = template or self.chat_template()
        text, spans = self.format_chat(messages, name)
        cap = len(text) + 8
        while True:
            out = (ctypes.c_int32 * cap)()
            plain = (c_size_t * max(len(spans), 1))(*spans)
            n = _check(self._lib.pl_tokenize_spans(self._m, text, len(text), self._lib.pl_add_bos(self._m), plain,
                                                   len(spans) // 2, out, cap), None, "tokenize")
            if n <= cap:
                break
            cap = n
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        eot = self._lib.pl_chat_template_stop(name.encode())
        if eot:
            stops.append(eot.decode())  # the end-of-turn text, should the vocabulary lack its token
        return self.generate(list(out[:n]), stop=stops, **kw)
