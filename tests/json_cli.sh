#!/bin/sh
# json_cli.sh - the constrained output through the CLI on the worst case, a
# random-weight model: --json for 200 seeds, temperatures 0.3..1.5 and
# budgets 8..256 must give a document a strict parser accepts; --json-schema
# output must also satisfy the schema; --grammar outputs are checked by
# independent parsers (Node's JSON.parse, or Python's json with NaN refused;
# regular expressions and a tiny evaluator for the GBNF grammars).
set -u
BIN=${PICOLM:-build/picolm}
DATA=${PICOLM_TESTDATA:-../shared/testdata}
M=$DATA/models/tiny32k-Q4_K_M.gguf
G=tests/grammars
if [ ! -f "$DATA/README.md" ]; then
    echo "json: skipped: no reference data at $DATA (set PICOLM_TESTDATA)"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL json: $*" >&2; }

if command -v python3 >/dev/null; then
    PY=python3
else
    echo "json: python3 missing; cannot check documents" >&2
    echo "json: 0 passed, 1 failed"
    exit 1
fi

# generate: one output file per run, named by its parameters
budgets="8 16 32 64 128 256"
temps="0.3 0.7 1.0 1.5"
i=0
for seed in $(seq 1 "${JSON_SEEDS:-200}"); do
    n=$(echo $budgets | cut -d' ' -f$((seed % 6 + 1)))
    t=$(echo $temps | cut -d' ' -f$((seed % 4 + 1)))
    "$BIN" "$M" -p "Reply with JSON:" --json -n "$n" -t "$t" -s "$seed" -q -j 1 >"$T/json.$seed.$n" 2>"$T/err.$seed"
    [ $? = 0 ] || bad "--json seed $seed n $n t $t exited non-zero: $(cat "$T/err.$seed")"
    i=$((i + 1))
done
for seed in $(seq 1 40); do
    n=$(echo $budgets | cut -d' ' -f$((seed % 6 + 1)))
    [ "$n" -lt 32 ] && n=32 # the shortest valid document is 28 bytes
    "$BIN" "$M" -p "A person as JSON:" --json-schema $G/person.schema.json -n "$n" -t 1 -s "$seed" -q -j 1 \
        >"$T/schema.$seed.$n" 2>"$T/err.s$seed" || bad "--json-schema seed $seed failed: $(cat "$T/err.s$seed")"
    "$BIN" "$M" -p "2+2=" --grammar $G/arith.gbnf -n 24 -t 1 -s "$seed" -q -j 1 >"$T/arith.$seed" 2>/dev/null ||
        bad "--grammar arith seed $seed failed"
    "$BIN" "$M" -p "config:" --grammar $G/kv.gbnf -n 40 -t 1 -s "$seed" -q -j 1 >"$T/kv.$seed" 2>/dev/null ||
        bad "--grammar kv seed $seed failed"
done

# check them all with an independent parser
$PY - "$T" >"$T/report" <<'PY'
import json, os, re, sys
d = sys.argv[1]
def strict(s):
    def no_const(c): raise ValueError("non-RFC constant " + c)
    return json.loads(s, parse_constant=no_const)
ok = bad = 0
def res(cond, msg):
    global ok, bad
    if cond: ok += 1
    else:
        bad += 1
        print("FAIL json: " + msg, file=sys.stderr)
for f in sorted(os.listdir(d)):
    p = os.path.join(d, f)
    raw = open(p, "rb").read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        res(False, f + ": not UTF-8"); continue
    if f.startswith("json."):
        try:
            strict(text); res(True, "")
        except Exception as e:
            res(False, "%s: %r: %s" % (f, text[:200], e))
    elif f.startswith("schema."):
        try:
            v = strict(text)
            good = (isinstance(v, dict) and isinstance(v.get("name"), str) and type(v.get("age")) is int
                    and v.get("role") in ("admin", "user", "guest")
                    and set(v) <= {"name", "age", "tags", "role", "active"}
                    and ("tags" not in v or (isinstance(v["tags"], list) and all(isinstance(x, str) for x in v["tags"])))
                    and ("active" not in v or isinstance(v["active"], bool)))
            res(good, "%s: %r does not match the schema" % (f, text[:200]))
        except Exception as e:
            res(False, "%s: %r: %s" % (f, text[:200], e))
    elif f.startswith("arith."):
        # a prefix of a valid expression when the budget ran out is not enough: it must parse whole
        res(re.fullmatch(r"[0-9()+\-*/]*", text) is not None, f + ": bad characters %r" % text)
        tokens = re.findall(r"[0-9]+|[()+\-*/]", text)
        pos = 0
        def expr():
            global pos
            term()
            while pos < len(tokens) and tokens[pos] in "+-": pos += 1; term()
        def term():
            global pos
            factor()
            while pos < len(tokens) and tokens[pos] in "*/": pos += 1; factor()
        def factor():
            global pos
            if pos < len(tokens) and tokens[pos].isdigit(): pos += 1
            elif pos < len(tokens) and tokens[pos] == "(":
                pos += 1; expr()
                if pos >= len(tokens) or tokens[pos] != ")": raise ValueError("no )")
                pos += 1
            else: raise ValueError("no factor")
        try:
            pos = 0; expr(); res(pos == len(tokens), f + ": trailing input %r" % text)
        except Exception as e:
            res(False, "%s: %r: %s" % (f, text, e))
    elif f.startswith("kv."):
        res(re.fullmatch(r'([a-z][a-z0-9_]*=([0-9]+|"[^"\n]*")\n)+', text) is not None, f + ": %r" % text)
print("%d %d" % (ok, bad))
PY
set -- $(tail -n 1 "$T/report")
pass=$((pass + $1))
fail=$((fail + $2))

# errors: a bad grammar names line and column; exclusive options; broken files
printf 'root ::= "a" (\n' >"$T/bad.gbnf"
"$BIN" "$M" -p x --grammar "$T/bad.gbnf" >/dev/null 2>"$T/err"
[ $? = 1 ] && grep -q "grammar:[0-9]*:[0-9]*: " "$T/err" && [ "$(wc -l <"$T/err")" = 1 ] && ok || bad "bad grammar: $(cat "$T/err")"
"$BIN" "$M" -p x --json --grammar $G/kv.gbnf >/dev/null 2>&1
[ $? = 2 ] && ok || bad "--json with --grammar accepted"
"$BIN" "$M" -p x --grammar "$T/missing.gbnf" >/dev/null 2>&1
[ $? = 1 ] && ok || bad "missing grammar file"
echo '{"type": "object", "properties": {"a": {"$ref": "#/x"}}}' >"$T/ref.json"
"$BIN" "$M" -p x --json-schema "$T/ref.json" >/dev/null 2>&1
[ $? = 1 ] && ok || bad "unsupported schema accepted"

echo "json: $pass passed, $fail failed"
[ "$fail" = 0 ]
