#!/bin/sh
# interactive.sh - picolm's chat at a terminal (a pseudo-terminal from
# python3's pty module): with no prompt it is a chat with a "> " marker on
# stderr, Ctrl-C stops an answer and returns to the marker, one Ctrl-D ends
# with exit 0, Ctrl-C at the marker quits (130); a one-shot prompt read at
# the terminal ends with one Ctrl-D too. Not under wine (no pty there).
# Usage: PICOLM=build/picolm sh tests/interactive.sh
set -u
BIN=${PICOLM:-build/picolm}
DATA=${PICOLM_TESTDATA:-../shared/testdata}
M32=$DATA/models/tiny32k-Q4_K_M.gguf
if [ ! -f "$M32" ]; then
    echo "interactive: skipped: no $M32 (set PICOLM_TESTDATA)"
    exit 0
fi
if ! command -v python3 >/dev/null || ! python3 -c 'import pty' 2>/dev/null; then
    echo "interactive: skipped: no python3 with the pty module"
    exit 0
fi
if grep -q "exec wine" "$BIN" 2>/dev/null; then
    echo "interactive: skipped: no pseudo-terminal under wine"
    exit 0
fi
exec python3 - "$BIN" "$M32" <<'PY'
import os, pty, select, sys, time

BIN, M = sys.argv[1], sys.argv[2]
passed = failed = 0

def check(cond, what, out=b""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL interactive: %s: %r" % (what, out[-400:]), file=sys.stderr)

class Term:
    def __init__(self, *args):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(BIN, [BIN] + list(args))
        self.out, self.pos, self.rc = b"", 0, None

    def send(self, b):
        os.write(self.fd, b)

    def wait_for(self, what, timeout=10.0):
        """Reads until `what` appears past the last match (as expect does)."""
        end = time.time() + timeout
        while True:
            at = self.out.find(what, self.pos)
            if at >= 0:
                self.pos = at + len(what)
                return True
            if time.time() > end:
                return False
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    d = os.read(self.fd, 65536)
                except OSError:
                    d = b""
                if not d:
                    return False
                self.out += d

    def wait_exit(self, timeout=10.0):
        end = time.time() + timeout
        while time.time() < end:
            self.wait_for(b"\0\0", 0.1)  # drain
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.rc = os.WEXITSTATUS(st) if os.WIFEXITED(st) else -os.WTERMSIG(st)
                return self.rc
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        return None

# no prompt at a terminal: a chat; Ctrl-C stops an endless answer (the
# window slides forever at -n 1000000; this greedy one has no end of
# text) and the marker comes back; one Ctrl-D at the marker ends with 0
t = Term(M, "-n", "1000000", "-t", "0")
check(t.wait_for(b"> "), "no marker at start", t.out)
t.send(b"Hello\n")
time.sleep(0.5)
t.send(b"\x03")
check(t.wait_for(b"(interrupted)") and t.wait_for(b"> "), "Ctrl-C did not stop the answer", t.out)
t.send(b"\x04")
check(t.wait_exit() == 0, "one Ctrl-D did not end with 0 (rc %r)" % t.rc, t.out)

# turns go on, the second reusing the first's tokens; Ctrl-C at the
# marker quits with 130
t = Term(M, "-i", "-n", "4", "-t", "0")
check(t.wait_for(b"> "), "no marker with -i", t.out)
t.send(b"Hi\n")
check(t.wait_for(b"> "), "no marker after an answer", t.out)
t.send(b"Again\n")
check(t.wait_for(b"turn 2: prompt") and t.wait_for(b"> "), "no second turn", t.out)
check(b"reused 0," not in t.out.split(b"turn 2:")[-1].split(b"\n")[0], "turn 2 reused nothing", t.out)
t.send(b"\x03")
check(t.wait_exit() == 130, "Ctrl-C at the marker: rc %r" % t.rc, t.out)

# a one-shot stdin prompt at a terminal (--tokenize is never a chat): one
# Ctrl-D after the line ends it
t = Term(M, "--tokenize")
t.send(b"Hello\n")
time.sleep(0.3)
t.send(b"\x04")
check(t.wait_exit() == 0 and b"1 15043 13" in t.out, "one Ctrl-D did not end a stdin prompt (rc %r)" % t.rc, t.out)

print("interactive: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
