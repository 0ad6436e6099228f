#!/bin/bash
# Two revisions of duck under imaptest's persistent-session stress, in turns.
#
#   bench/ab_imaptest.sh KIT_DIR REV_A REV_B [PAIRS]
#   PYTHON_A=python3.11 PYTHON_B=/usr/bin/python3 bench/ab_imaptest.sh KIT_DIR HEAD HEAD
#
# (The second form compares interpreters: each revision's duck runs on its own,
# whose environment must have duck's dependencies; PYTHON sets both.)
#
# This machine's speed drifts by ±15% within minutes, so a run of one revision and
# then a run of another says little about either. Here each revision gets a fresh
# `duck serve` (its source from a git worktree of REV_A or REV_B, on the embedded
# database, 20 users) and a 20-s imaptest round (the kit of ../shared/imaptest/:
# 10 clients, 20 users, 30 messages), in the order A B B A A B ... for PAIRS pairs
# (default 3), so that a drift in time weighs on both alike. Each run prints its
# commands/s and duck's and the database's CPU per command; the end, each
# revision's means. Ports: IMAP 11143, LMTP 12424, API 18080 (loopback).
#
# "duck busy" is duck's CPU seconds over the round's seconds: it stays near 0.85-0.95
# of a core round after round, so commands/s moves with duck's CPU per command, noise
# and all, though by less than in proportion (~0.4% per 1% of the event loop's CPU:
# docs/architecture.md, "Facts about the embedded database (measured)").
set -u
KIT=${1:?usage: bench/ab_imaptest.sh KIT_DIR REV_A REV_B [PAIRS]}
REV_A=${2:?REV_A}
REV_B=${3:?REV_B}
PAIRS=${4:-3}
SECS=${SECS:-20}
REPO=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
PYTHON_A=${PYTHON_A:-$PYTHON}
PYTHON_B=${PYTHON_B:-$PYTHON}
OUT=$(mktemp -d -t duck-ab-XXXXXX)
git -C "$REPO" worktree add -q --detach "$OUT/a" "$REV_A" || exit 2
git -C "$REPO" worktree add -q --detach "$OUT/b" "$REV_B" || exit 2
for side in a b; do  # (which duck each side imports, to be sure)
  python=$PYTHON_A; [ $side = b ] && python=$PYTHON_B
  echo "$side: $(cd "$OUT/$side" && PYTHONPATH="$OUT/$side" "$python" -c \
    'import duck, sys; print(duck.__file__, sys.version.split()[0])')"
done
SPID=
cleanup() {
  [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
  git -C "$REPO" worktree remove --force "$OUT/a"
  git -C "$REPO" worktree remove --force "$OUT/b"
}
trap cleanup EXIT
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
. "$(dirname "$0")/imaptest_users.sh"

run() { # a|b
  local data="$OUT/data-$1"
  rm -rf "$data"; mkdir -p "$data"
  # (The worktree's duck first on the path: the installed one is the checkout's. Run
  # from inside the worktree: ``-m`` puts the current directory before PYTHONPATH,
  # and from the checkout both sides would run the checkout's duck.)
  local python=$PYTHON_A; [ "$1" = b ] && python=$PYTHON_B
  (cd "$OUT/$1" && PYTHONPATH="$OUT/$1" exec "$python" -m duck.cli serve --data-dir "$data" \
    --imap-port 11143 --imaps-port 0 --lmtp-port 12424 --api-port 18080 --pop3-port 0 \
    --pop3s-port 0 --managesieve-port 0 --log-level WARNING > "$OUT/duck-$1.log" 2>&1) &
  SPID=$!
  imaptest_users
  if ! kill -0 "$SPID" 2>/dev/null; then  # (a revision that does not start: say so, stop)
    echo "$1: duck serve exited at start; the end of its log:" >&2
    tail -5 "$OUT/duck-$1.log" >&2
    SPID=
    exit 2
  fi
  local db d0 b0 n
  db=$(pgrep -f "secantusd.*$data" | head -1)
  # (duck's CPU: its process and its children but the database, its parse worker
  # among them, duck/store/mail/parsers.py.)
  duckcpu() { local s; s=$(cpu "$SPID"); for p in $(pgrep -P "$SPID"); do
    [ "$p" = "$db" ] || s=$((s + $(cpu "$p"))); done; echo "$s"; }
  d0=$(duckcpu); b0=$(cpu "$db")
  timeout 300 "$KIT/imaptest" user=testuser%d@example.com pass=pass users=20 clients=10 \
    msgs=30 mbox="$KIT/sample.mbox" secs="$SECS" host=127.0.0.1 port=11143 logout=0 \
    > "$OUT/imaptest-$1.out" 2>&1
  n=$(awk '/^Totals:/{f=1} f' "$OUT/imaptest-$1.out" | sed -n 5p \
      | awk '{s=0; for(i=1;i<=NF;i++) s+=$i; print s}')
  awk -v r="$1" -v n="${n:-0}" -v s="$SECS" -v d=$(( $(duckcpu) - d0 )) \
      -v b=$(( $(cpu "$db") - b0 )) -v e="$(grep -c 'Error:' "$OUT/imaptest-$1.out")" \
    'BEGIN { printf "%s %d commands/s, duck %.3f ms, database %.3f ms per command, %d error lines, duck busy %.2f cores\n",
             r, n / s, d * 10 / (n ? n : 1), b * 10 / (n ? n : 1), e, d / 100 / s }' | tee -a "$OUT/runs"
  kill "$SPID"; wait "$SPID" 2>/dev/null; SPID=
}

for p in $(seq 1 "$PAIRS"); do
  if [ $((p % 2)) -eq 1 ]; then run a; run b; else run b; run a; fi
done
echo "A = $REV_A, B = $REV_B; means over $PAIRS runs each:"
awk '{c[$1]+=$2; d[$1]+=$5; b[$1]+=$8; k[$1]++}
     END { for (r in c) printf "%s %.0f commands/s, duck %.3f ms, database %.3f ms per command\n",
           r, c[r]/k[r], d[r]/k[r], b[r]/k[r] }' "$OUT/runs" | sort
echo "logs: $OUT"
