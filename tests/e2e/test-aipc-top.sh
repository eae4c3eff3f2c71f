#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# End-to-end tests of "aipc top": a real "aipc serve", a real "aipc play"
# client, and top asking the server's control socket about them; other
# users and the audio clients' own connections must get nothing.
#
#   test-aipc-top.sh AIPC BACKEND
#
# BACKEND is the server's (virtual:..., or pulse with the private
# PulseAudio of scripts/pulse.sh). Prints PASS/FAIL (and SKIP, never
# counted as passed) per check and a last line "N passed, N failed".
set -u

aipc=$1
backend=$2

dir=$(mktemp -d /tmp/aipc-top-XXXXXX) || exit 1
# Others (nobody, below) must be able to reach the socket's directory:
# the socket's own mode is what keeps them out.
chmod 755 "$dir"
sock=$dir/sock
serve_pid=
play_pid=
cleanup() {
  local pid
  for pid in $play_pid $serve_pid; do
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  rm -rf "$dir"
}
trap cleanup EXIT

# shellcheck source=../checks.sh
. "$(dirname "$0")/../checks.sh"
# expect NAME COMMAND...: passes if COMMAND succeeds.
expect() {
  local name=$1
  shift
  "$@"
  result $? "$name"
}

# --- The server and a client that plays ---------------------------------------

mkfifo "$dir/serve.fifo"
"$aipc" serve --listen "$sock" --backend "$backend" \
  >"$dir/serve.fifo" 2>"$dir/serve.err" &
serve_pid=$!
exec {serve_fd}<"$dir/serve.fifo"
if ! read -r -t 30 -u "$serve_fd" line || [[ "$line" != *"listening on $sock" ]]; then
  result 1 "serve starts on $backend"
  indent "$dir/serve.err"
  echo "$passed passed, $failed failed"
  exit 1
fi
echo "    | $line"
# Whatever serve prints from now on, for the checks of its log below.
cat <&"$serve_fd" >"$dir/serve.out" &

expect "serve's control socket $sock.ctl exists with mode 0600" \
  [ "$(stat -c %a "$sock.ctl" 2>/dev/null)" = 600 ]

"$aipc" play --connect "$sock" --tone 440 --seconds 5 >"$dir/play.out" 2>&1 &
play_pid=$!

# top --once until the stream has run a while (a generous bound: it only
# catches a hang).
listed=1
for _ in $(seq 100); do
  "$aipc" top --connect "$sock" --once >"$dir/top.out" 2>"$dir/top.err"
  status=$?
  if [ "$status" -ne 0 ]; then
    break
  fi
  # The play client's row: its pid, then an output stream that has
  # started and has had callbacks.
  if awk -v pid="$play_pid" '$2 == pid && $5 == "output" && $10 == "started" \
      && $11 > 10 { found = 1 } END { exit !found }' "$dir/top.out"; then
    listed=0
    break
  fi
  sleep 0.1
done
indent "$dir/top.out"
indent "$dir/top.err"
result "$listed" "top --once lists the playing client (pid $play_pid) with a started output stream and its callbacks"
expect "top --once: the row has the client's uid, the rate, 2 channels, a latency, misses and wait figures" \
  awk -v pid="$play_pid" -v uid="$(id -u)" '$2 == pid && $3 == uid &&
    $6 > 0 && $7 == 2 && $9 > 0 && $12 ~ /^[0-9]+$/ && $13 ~ /^[0-9]+$/ &&
    $14 ~ /^[0-9]+$/ { found = 1 } END { exit !found }' "$dir/top.out"

"$aipc" top --connect "$sock" --once --json >"$dir/top.json" 2>"$dir/top.err"
status=$?
indent "$dir/top.json"
python3 - "$dir/top.json" "$play_pid" "$(id -u)" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    snap = json.load(f)
pid, uid = int(sys.argv[2]), int(sys.argv[3])
ours = [c for c in snap["clients"] if c["pid"] == pid]
assert len(ours) == 1, ours
c = ours[0]
assert c["uid"] == uid, c
(s,) = c["streams"]
assert s["direction"] == "output" and s["output_channels"] == 2, s
assert s["input_channels"] == 0 and s["state"] == "started", s
assert s["callbacks"] > 0 and s["frames"] > 0 and s["rate"] > 0, s
for key in ("misses", "wait_p50_us", "wait_p99_us", "latency_frames"):
    assert isinstance(s[key], int) and s[key] >= 0, (key, s)
assert snap["server"]["uid"] == uid, snap["server"]
PY
result $? "top --once --json parses (json.load) and holds the client's pid, uid and stream figures"
expect "top --once --json exits 0" [ "$status" -eq 0 ]

# Without --once it refreshes: two snapshots a second apart, the second
# with more callbacks.
timeout 10 "$aipc" top --connect "$sock" --json 2>/dev/null | head -2 \
  >"$dir/top.lines"
python3 - "$dir/top.lines" "$play_pid" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, lines
def callbacks(line):
    snap = json.loads(line)
    (c,) = [c for c in snap["clients"] if c["pid"] == int(sys.argv[2])]
    return c["streams"][0]["callbacks"]
assert callbacks(lines[1]) > callbacks(lines[0]), lines
PY
result $? "top (no --once) refreshes: the next snapshot has more callbacks"

# --- Nobody else may ask ------------------------------------------------------

# nobody_asks WHAT WANTED: passes if top, run as nobody, fails (status 1),
# prints nothing on stdout and says WANTED on stderr.
nobody_asks() {
  setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$aipc" top --connect "$sock" --once >"$dir/nobody.out" 2>"$dir/nobody.err"
  local status=$?
  indent "$dir/nobody.err"
  [ "$status" -eq 1 ] && [ ! -s "$dir/nobody.out" ] &&
    grep -q "$2" "$dir/nobody.err"
  result $? "$1"
}
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  nobody_asks "another uid (nobody) cannot connect to the control socket (its mode)" \
    "Permission denied"
  # With the mode opened up by the owner, the server's own uid check
  # still refuses.
  chmod 666 "$sock.ctl"
  nobody_asks "another uid on a control socket opened to all is refused by its peer uid check" \
    "refused: uid $(id -u nobody) may not see"
  chmod 600 "$sock.ctl"
else
  echo "SKIP: the checks of another uid need root and setpriv"
fi

# An audio client's connection (what a sandboxed process holds) asking
# for the snapshot: the request is not a message of the audio protocol,
# so the server drops the connection, and nothing of the snapshot comes.
python3 - "$sock" >"$dir/client-ask.out" 2>&1 <<'PY'
import array, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.settimeout(20)
# The serve socket hands over a client connection, nothing else.
msg, anc, flags, addr = s.recvmsg(16, socket.CMSG_LEN(4))
(level, kind, data), = anc
assert level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS
fd = array.array("i", data[:4])[0]
# Then serve closes its side: a control request there goes nowhere.
try:
    s.send(b"json")
    assert s.recv(65536) == b"", "serve's socket answered a control request"
except (BrokenPipeError, ConnectionResetError):
    pass
conn = socket.socket(fileno=fd)
conn.settimeout(20)
conn.send(b"json")
got = b""
try:
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        got += chunk
except ConnectionResetError:
    pass
print("the client connection answered %d bytes, then closed" % len(got))
assert b"clients" not in got and b"stream" not in got, got
PY
result $? "a client connection that sends the control request is dropped, and gets no snapshot"
indent "$dir/client-ask.out"

# --- The client goes, so does its row ----------------------------------------

wait "$play_pid"
status=$?
played_pid=$play_pid
play_pid=
indent "$dir/play.out"
expect "play exits 0" [ "$status" -eq 0 ]
"$aipc" top --connect "$sock" --once --json >"$dir/after.json" 2>&1
python3 - "$dir/after.json" <<'PY'
import json, sys
snap = json.load(open(sys.argv[1]))
assert all(c["streams"] == [] for c in snap["clients"]), snap
PY
result $? "once play has exited, top lists no stream"

# --- Usage ---------------------------------------------------------------------

"$aipc" top --once >"$dir/usage.out" 2>"$dir/usage.err"
status=$?
expect "'aipc top' without --connect exits 2, naming it and pointing to --help" \
  eval '[ "$status" -eq 2 ] && [ ! -s "$dir/usage.out" ] &&
    grep -q "^aipc top: --connect PATH is needed" "$dir/usage.err" &&
    grep -qx "see aipc top --help" "$dir/usage.err"'
"$aipc" top --connect "$dir/nosuch" --once >"$dir/usage.out" 2>"$dir/usage.err"
status=$?
indent "$dir/usage.err"
expect "'aipc top' with no server there exits 1" \
  eval '[ "$status" -eq 1 ] && [ ! -s "$dir/usage.out" ]'

kill -TERM "$serve_pid"
wait "$serve_pid"
status=$?
serve_pid=
wait
exec {serve_fd}<&-
indent "$dir/serve.out"
expect "serve exits 0 on SIGTERM" [ "$status" -eq 0 ]
expect "serve removed both sockets" \
  eval '[ ! -e "$sock" ] && [ ! -e "$sock.ctl" ]'
number=$(python3 -c 'import json, sys
snap = json.load(open(sys.argv[1]))
print(next(c["client"] for c in snap["clients"] if c["pid"] == int(sys.argv[2])))' \
  "$dir/top.json" "$played_pid")
expect "serve's log names the client by the number top shows ($number)" \
  grep -q "^aipc serve: client $number connected: pid $played_pid," "$dir/serve.out"
if [ "$(id -u)" -eq 0 ]; then
  expect "serve logged the refused uid" \
    grep -q "refused pid [0-9]*, uid $(id -u nobody), on the control socket" \
    "$dir/serve.out"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
