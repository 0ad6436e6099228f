#!/bin/bash
# Dovecot and duck side by side on this machine, interleaved so that both see the
# same machine speed: with both servers up, each round runs the imaptest kit's
# stress command against Dovecot, then against duck (3 persistent rounds, 2
# login-cycle rounds), then lmtp-bench against each (2 rounds). Prints commands/s,
# imaptest's error lines, duck's and its database's CPU per persistent command, the
# cores the machine left idle in each persistent round (and, when duck runs alone,
# its main thread's share of a core and the share it spent runnable but waiting
# for one: /proc's schedstat), and duck's average latency per command type in each
# persistent round (bench/command_latency.py).
#
#   bench/side_by_side.sh KIT_DIR [duck serve options, e.g. --workers 2]
#
# KIT_DIR is where the imaptest kit is installed (imaptest, sample.mbox,
# lmtp-bench.py, dovecot/start-dovecot.sh; see ../shared/imaptest/README.md).
# Ports: Dovecot's from the kit (IMAP 10143, LMTP 10024); duck on 11143, LMTP 12424,
# API 18080. Loopback only. Output and imaptest's logs go to a fresh temp directory.
set -u
KIT=${1:?usage: bench/side_by_side.sh KIT_DIR [duck serve options]}
shift
OUT=$(mktemp -d -t duck-side-XXXXXX)
SECS=${SECS:-20}
IT="$KIT/imaptest user=testuser%d@example.com pass=pass users=20 clients=10 msgs=30 mbox=$KIT/sample.mbox secs=$SECS"
count() { awk '/^Totals:/{f=1} f' "$1" | sed -n 5p | awk '{s=0; for(i=1;i<=NF;i++) s+=$i; print s}'; }
run_it() { # name port mode
  local args=""; [ "$3" = persistent ] && args="logout=0"
  timeout 300 $IT host=127.0.0.1 port="$2" $args > "$OUT/$1-$3.out" 2>&1
  local sum; sum=$(count "$OUT/$1-$3.out")
  echo "$1 $3: ${sum:-0} commands => $(( ${sum:-0} / SECS ))/s, imaptest error lines $(grep -c 'Error:' "$OUT/$1-$3.out")"
}
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
# Idle and iowait of the whole machine, in clock ticks (for the idle cores a round
# leaves: Dovecot's keep both cores busy; duck's have left ~0.5 of 2 idle).
idle() { awk '/^cpu /{print $5+$6}' /proc/stat; }
cores() { awk -v t="$1" -v s="$SECS" 'BEGIN { printf "%.2f", t / 100 / s }'; }
# The interpreter duck runs on weighs on its CPU per command (docs/admin.md,
# "Install"): which, and whether it runs from libpython's shared library.
# (The venv's own python beside the duck script; else the script's #! line.)
DUCKPY="$(dirname "$(command -v duck)")/python"
[ -x "$DUCKPY" ] || DUCKPY=$(head -1 "$(command -v duck)" | sed 's/^#!//')
DUCKPY=$(readlink -f "$DUCKPY")
echo "duck's Python: $DUCKPY $("$DUCKPY" -c 'import sys; print(sys.version.split()[0])')$(
  ldd "$DUCKPY" | grep -q libpython && echo ', linked to libpython')"
bash "$KIT/dovecot/stop-dovecot.sh" >/dev/null 2>&1
bash "$KIT/dovecot/start-dovecot.sh" --clean >/dev/null 2>&1 || { echo "Dovecot did not start" >&2; exit 2; }
sleep 2
D="$OUT/duck-data"; mkdir -p "$D"
duck serve --data-dir "$D" --imap-port 11143 --imaps-port 0 --lmtp-port 12424 --api-port 18080 \
  --pop3-port 0 --pop3s-port 0 --managesieve-port 0 --log-level WARNING "$@" > "$OUT/duck.log" 2>&1 &
SPID=$!
trap 'kill $SPID 2>/dev/null; wait $SPID 2>/dev/null; bash "$KIT/dovecot/stop-dovecot.sh" >/dev/null 2>&1' EXIT
. "$(dirname "$0")/imaptest_users.sh"
imaptest_users
DBPID=$(pgrep -f "secantusd.*$D" | head -1)
duckcpu() { local s; s=$(cpu $SPID); for p in $(pgrep -P $SPID); do [ "$p" = "$DBPID" ] || s=$((s + $(cpu "$p"))); done; echo "$s"; }
LATENCY="python3 $(dirname "$0")/command_latency.py"
# duck's main thread (the process itself when it runs alone; with --workers, the
# parent's, which serves nothing, so it is not printed).
mainthread() { awk '{print $14+$15}' "/proc/$SPID/task/$SPID/stat"; }
# Its time in a run queue (ns), in clock ticks: under imaptest ~0.13 of a core
# while the machine shows ~0.45 idle (docs/architecture.md).
mainwait() { awk '{printf "%d", $2 / 10000000}' "/proc/$SPID/task/$SPID/schedstat"; }
ALONE=1
for option in "$@"; do case $option in --workers*) ALONE=0 ;; esac; done
for r in 1 2 3; do
  i0=$(idle); line=$(run_it "dovecot$r" 10143 persistent); i1=$(idle)
  echo "$line; idle cores $(cores $((i1 - i0)))"
  $LATENCY save http://127.0.0.1:18080 "$OUT/latency.json"
  d0=$(duckcpu); b0=$(cpu "$DBPID"); m0=$(mainthread); w0=$(mainwait); i0=$(idle)
  line=$(run_it "duck$r" 11143 persistent)
  d1=$(duckcpu); b1=$(cpu "$DBPID"); m1=$(mainthread); w1=$(mainwait); i1=$(idle)
  n=$(count "$OUT/duck$r-persistent.out")
  main=""
  [ $ALONE = 1 ] && main=", main thread $(cores $((m1 - m0))) cores (waiting for a core $(cores $((w1 - w0))))"
  echo "$line; CPU per command: $(awk -v d=$((d1 - d0)) -v b=$((b1 - b0)) -v n="${n:-1}" \
    'BEGIN { printf "duck %.2f ms, database %.2f ms", d * 10 / n, b * 10 / n }')$main, idle cores $(cores $((i1 - i0)))"
  $LATENCY diff http://127.0.0.1:18080 "$OUT/latency.json"
done
for r in 1 2; do
  run_it "dovecot$r" 10143 login
  run_it "duck$r" 11143 login
done
for r in 1 2; do
  python3 "$KIT/lmtp-bench.py" --port 10024 -n 1000 -p 4 --users 20 --user-fmt 'testuser%d' 2>&1 | tail -1 | sed "s/^/dovecot$r lmtp: /"
  python3 "$KIT/lmtp-bench.py" --port 12424 -n 1000 -p 4 --users 20 --user-fmt 'testuser%d@example.com' 2>&1 | tail -1 | sed "s/^/duck$r lmtp: /"
done
# The ratio over all rounds of a mode: Dovecot's own figure moves by up to half
# from round to round (it grows as its indexes warm), so one round says little.
for mode in persistent login; do
  d=0; v=0
  for f in "$OUT"/duck?-$mode.out; do d=$((d + $(count "$f"))); done
  for f in "$OUT"/dovecot?-$mode.out; do v=$((v + $(count "$f"))); done
  awk -v d=$d -v v=$v -v m=$mode 'BEGIN { if (v) printf "%s, all rounds: duck %d / Dovecot %d commands = %.3f\n", m, d, v, d / v }'
done
echo "logs: $OUT"
