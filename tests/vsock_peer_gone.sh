# vsock_peer_gone — sourced by tests/hostile.sh and tests/faults.sh: the
# hostile guest's attack 54 streams 2,000 KiB to a host vsock listener on
# port 1234 that reads 64 KiB (or the first recv past it) and hangs up.
# vsock_peer_run VIGIL GUEST DIR: runs it with --stats; leaves the guest's
# output in DIR/out, vigil's stderr in DIR/err, the bytes the peer got in
# DIR/peer, and vigil's exit status in $rc.
vsock_peer_run() {
    local v=$1 g=$2 d=$3
    rm -f "$d/vsock" "$d/vsock_1234" "$d/peer"
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(1); s.settimeout(60)
c, _ = s.accept(); n = 0
while n < 65536:
    d = c.recv(65536)
    if not d: break
    n += len(d)
open(sys.argv[2], "w").write(str(n)); c.close()
' "$d/vsock_1234" "$d/peer" &
    local ppid=$! i
    for i in $(seq 50); do [ -S "$d/vsock_1234" ] && break; sleep 0.1; done
    timeout 60 "$v" run --kernel "$g" --cmdline attack=54 --vsock "cid=3,uds=$d/vsock" --stats >"$d/out" 2>"$d/err" </dev/null
    rc=$?
    kill "$ppid" 2>/dev/null; wait "$ppid" 2>/dev/null
}
