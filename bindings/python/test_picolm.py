"""test_picolm.py - the ctypes binding against build/libpicolm.so and the
tiny32k test model: structs as the library lays them out, tokens, greedy
text equal to the CLI's, streaming, seeds, stop strings, JSON mode and
schemas, GBNF, chat, abort, errors. Each test_* function also runs under
pytest; run directly it prints "python: N passed, M failed".
Usage: python3 bindings/python/test_picolm.py (PICOLM_LIB, PICOLM_TESTDATA,
PICOLM: the CLI to compare with; default build/picolm)"""

import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)
import picolm  # noqa: E402

DATA = os.environ.get("PICOLM_TESTDATA") or os.path.join(ROOT, "..", "shared", "testdata")
MODEL = os.path.join(DATA, "models", "tiny32k-Q4_K_M.gguf")
PROMPT = "Once upon a time"
_model = None


def model():
    global _model
    if _model is None:
        _model = picolm.Model(MODEL, n_ctx=256, n_threads=1)
    return _model


def test_version():
    with open(os.path.join(ROOT, "include", "picolm.h")) as f:
        want = re.search(r'#define PICOLM_VERSION "([^"]+)"', f.read()).group(1)
    assert picolm.version() == want, (picolm.version(), want)
    assert picolm.status_str(picolm.ERR_ABORTED) == "aborted"
    assert picolm.status_str(1234) == "unknown status"


def test_struct_layout():
    # the defaults picolm.h documents, read through the binding's structs
    L = picolm.load()
    sp = L.pl_sampler_default_params()
    assert abs(sp.temperature - 0.8) < 1e-6 and abs(sp.top_p - 0.9) < 1e-6 and sp.top_k == 0
    assert sp.repeat_penalty == 1.0 and sp.repeat_last_n == 64 and sp.n_logit_bias == 0 and sp.seed == 0
    gp = L.pl_gen_default_params()
    assert gp.n_predict == -1 and gp.n_keep == -1 and gp.n_stop == 0 and gp.lookup == 0
    cp = L.pl_context_default_params()
    assert (cp.n_ctx, cp.n_threads, cp.mem_budget_mb, cp.kv_q8, cp.n_seq, cp.n_batch) == (0, 0, 0, 0, 0, 0)
    info = model().info
    assert info["n_vocab"] == 32000 and info["arch"] == "llama" and info["ftype"] == "Q4_K", info
    assert info["head_dim"] == info["n_embd"] // info["n_head"], info
    assert model().n_ctx == 256


def test_tokenize():
    m = model()
    ids = m.tokenize("Hello world")
    assert ids[0] == 1 and len(ids) == 3, ids
    assert m.tokenize("Hello world", add_bos=False) == ids[1:]
    assert m.detokenize(ids) == "Hello world"
    assert m.tokenize("") == [1]
    text = "naïve café, 東京 🙂"
    assert m.detokenize(m.tokenize(text)) == text
    assert len(m.tokenize("x" * 5000)) > 100  # past the first guess of the buffer


def test_greedy_matches_cli():
    text = model().generate(PROMPT, n_predict=12, temperature=0)
    assert text, "no text"
    assert model().stop_reason == "length"
    cli = os.environ.get("PICOLM") or os.path.join(ROOT, "build", "picolm")
    if os.path.exists(cli):
        r = subprocess.run([cli, MODEL, "-p", PROMPT, "-n", "12", "-t", "0", "-j", "1"], capture_output=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().strip() == text.strip(), (r.stdout, text)
    # the same again: the context's prefix is reused, the text the same
    assert model().generate(PROMPT, n_predict=12, temperature=0) == text


def test_stream():
    m = model()
    want = m.generate(PROMPT, n_predict=16, temperature=0)
    pieces = list(m.stream(PROMPT, n_predict=16, temperature=0))
    assert len(pieces) > 1 and "".join(pieces) == want, pieces
    got = []
    assert m.generate(PROMPT, n_predict=16, temperature=0, stream=got.append) == want
    assert "".join(got) == want
    # a consumer that stops early leaves the model usable
    for _ in m.stream(PROMPT, n_predict=16, temperature=0):
        break
    assert m.generate(PROMPT, n_predict=16, temperature=0) == want
    ids = m.tokenize(PROMPT)
    assert m.generate(ids, n_predict=16, temperature=0) == want


def test_seed():
    m = model()
    a = m.generate(PROMPT, n_predict=16, temperature=1.0, seed=7)
    b = m.generate(PROMPT, n_predict=16, temperature=1.0, seed=7)
    assert a == b and a, (a, b)


def test_stop():
    m = model()
    full = m.generate(PROMPT, n_predict=12, temperature=0)
    word = full.split()[3]
    text = m.generate(PROMPT, n_predict=12, temperature=0, stop=[word])
    assert m.stop_reason == "stop" and text == full[:full.index(word)], (text, full, word)


def test_json_mode():
    m = model()
    for seed in (1, 2, 3):
        text = m.generate("A person as JSON:", n_predict=48, seed=seed, json=True)
        json.loads(text)
        assert m.stop_reason in ("eog", "length"), m.stop_reason


def test_schema():
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    m = model()
    for seed in (1, 2):
        doc = json.loads(m.generate("A person:", n_predict=96, seed=seed, schema=schema))
        assert isinstance(doc.get("name"), str) and isinstance(doc.get("age"), int), doc
    doc = json.loads(m.generate("Yes or no:", n_predict=16, seed=1, schema=json.dumps({"enum": ["yes", "no"]})))
    assert doc in ("yes", "no"), doc


def test_gbnf():
    text = model().generate("Answer:", n_predict=16, seed=3, grammar='root ::= ("yes" | "no") "."')
    assert text in ("yes.", "no."), text


def test_chat():
    m = model()
    assert m.chat_template() == "zephyr"  # none in the file: the CLI's fallback
    text, spans = m.format_chat([{"role": "user", "content": "Hi"}], "chatml")
    assert text == b"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", text
    assert text[spans[0]:spans[1]] == b"Hi"
    msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello <|im_end|>"}]
    a = m.chat(msgs, template="chatml", n_predict=16, temperature=0)
    assert isinstance(a, str) and "<|im_end|>" not in a
    assert m.chat(msgs, n_predict=8, temperature=0) is not None
    doc = m.chat([{"role": "user", "content": "JSON please"}], json=True, n_predict=32, seed=1)
    json.loads(doc)


def test_abort():
    m = model()
    want = m.generate(PROMPT, n_predict=8, temperature=0)
    for after in (1, 3, 40):  # in the prompt, in the first tokens, later
        calls = []

        def stop():
            calls.append(1)
            return len(calls) >= after
        try:
            m.generate(PROMPT + " there", n_predict=32, temperature=0, abort=stop)
            assert False, "not aborted"
        except picolm.PicolmError as e:
            assert e.status == picolm.ERR_ABORTED, e
    assert m.generate(PROMPT, n_predict=8, temperature=0) == want
    assert m.generate(PROMPT, n_predict=8, temperature=0, abort=lambda: False) == want


def test_errors():
    try:
        picolm.Model(os.path.join(DATA, "no-such-model.gguf"))
        assert False, "opened a missing file"
    except picolm.PicolmError as e:
        assert e.status == picolm.ERR_IO and "no-such-model" in str(e), e
    m = model()
    for kw in ({"grammar": "root ::= ["}, {"schema": "{not json"}, {"json": True, "grammar": 'root ::= "x"'}):
        try:
            m.generate("x", n_predict=4, **kw)
            assert False, "accepted %r" % kw
        except picolm.PicolmError as e:
            assert str(e), kw
    try:
        m.chat([{"role": "user", "content": "x"}], template="no-such-template")
        assert False, "accepted an unknown template"
    except picolm.PicolmError as e:
        assert e.status == picolm.ERR_ARG
    assert m.generate(PROMPT, n_predict=4, temperature=0)  # still usable


def main():
    tests = [(k, v) for k, v in sorted(globals().items()) if k.startswith("test_") and callable(v)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
            passed += 1
        except Exception as e:  # noqa: BLE001 - report every failure, go on
            failed += 1
            print("FAIL python: %s: %s: %s" % (name, type(e).__name__, e), file=sys.stderr)
    if _model:
        _model.close()
    print("python: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
