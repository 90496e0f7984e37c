#!/bin/bash
# Server CPU time per Gemini request: one `tessera gemini serve` pinned to
# CPU 0, a Python TLS client pinned to CPU 1 making N requests (a new TLS
# connection each), the server's time on CPU, all its threads, read from
# /proc/PID/task/*/schedstat (nanoseconds) before and after. Prints
# nanoseconds per request.
#
# With RESUME=1 the client resumes its TLS session on every connection after
# the first (as clients with a session cache do) instead of a full handshake.
#
# With STRACE=FILE the server runs under `strace -f -c` instead (the CPU
# figure is then meaningless) and FILE gets its system calls, counted over
# the warm-up and the N requests.
#
# Usage: [RESUME=1] [STRACE=FILE] benches/gemini_server_cpu.sh BINARY N [SERVER FLAGS...]
# e.g.   benches/gemini_server_cpu.sh target/release/tessera 2000 --metrics-listen 0
set -euo pipefail
bin=$1; n=$2; shift 2
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
mkdir "$work/capsule" && echo "# A small capsule" > "$work/capsule/index.gmi"
cat > "$work/load.py" <<'PY'
import os, socket, ssl, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
resume = os.environ.get("RESUME") == "1"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
session, resumed = None, 0
for _ in range(n):
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            tls.sendall(b"gemini://localhost/\r\n")
            reply = b""
            while chunk := tls.recv(4096):
                reply += chunk
            assert reply.startswith(b"20 "), reply
            resumed += tls.session_reused
            if resume:
                session = tls.session
if resume:
    assert resumed >= n - 1, f"only {resumed} of {n} connections resumed"
PY
trace=()
if [ -n "${STRACE:-}" ]; then trace=(strace -f -c -o "$STRACE"); fi
taskset -c 0 "${trace[@]}" "$bin" gemini serve --root "$work/capsule" --cert-dir "$work/state" \
    --listen 127.0.0.1:0 --log-level off "$@" > "$work/out" &
pid=$!
for _ in $(seq 200); do grep -q "listening on" "$work/out" && break; sleep 0.05; done
port=$(sed -n 's/^listening on .*://p' "$work/out")
taskset -c 1 python3 "$work/load.py" "$port" 50        # warm-up
# Every thread of the server (the runtime's workers do the handshakes):
# /proc/PID/schedstat alone is the main thread's.
cpu_ns() { cat /proc/"$pid"/task/*/schedstat | awk '{ns += $1} END {printf "%d", ns}'; }
before=$(cpu_ns)
taskset -c 1 python3 "$work/load.py" "$port" "$n"
after=$(cpu_ns)
echo $(( (after - before) / n ))
if [ -n "${STRACE:-}" ]; then
    # The server is strace's child: stop it so strace writes its table.
    kill -INT "$(pgrep -P "$pid")" && wait "$pid"
fi
