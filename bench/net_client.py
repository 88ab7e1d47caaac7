#!/usr/bin/env python3
"""bench/net's host side: talks to the three servers a container runs on
one published port, in turn (see bench/net), and prints
"h2g_mbps g2h_mbps rtt_us". An optional fourth argument is the server's
address (default 127.0.0.1, the published port; a tap guest's own
address otherwise)."""
import socket
import statistics
import sys
import time

port, size, trips = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
host = sys.argv[4] if len(sys.argv) > 4 else "127.0.0.1"


def connect_ready(deadline=240):
    """A connection to the guest's server once it says R: until the guest
    listens, the user-mode NAT accepts and then drops the connection (a
    tap guest refuses it, or is not there yet)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            s = socket.create_connection((host, port), timeout=60)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if s.recv(2) == b"R\n":
                return s
            s.close()
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("bench/net: the guest's server never answered")


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            sys.exit("bench/net: connection closed early")
        buf += b
    return buf


# host -> guest: the guest counts and says "done" at EOF
s = connect_ready()
chunk = b"\0" * 65536
t0 = time.monotonic()
for _ in range(size // len(chunk)):
    s.sendall(chunk)
s.shutdown(socket.SHUT_WR)
reply = s.recv(64)
h2g = size / (time.monotonic() - t0) / 1e6
s.close()
if not reply.startswith(b"done"):
    sys.exit("bench/net: host->guest transfer not confirmed")

# guest -> host: the guest sends size bytes and closes
s = connect_ready()
got = 0
t0 = time.monotonic()
while True:
    b = s.recv(1 << 20)
    if not b:
        break
    got += len(b)
g2h = got / (time.monotonic() - t0) / 1e6
s.close()
if got != size:
    sys.exit(f"bench/net: guest->host got {got} of {size} bytes")

# round trips of 32 bytes through the guest's cat
s = connect_ready()
msg = b"x" * 32
rtts = []
for _ in range(trips):
    t0 = time.monotonic()
    s.sendall(msg)
    recv_exact(s, len(msg))
    rtts.append(time.monotonic() - t0)
s.close()
print(f"{h2g:.1f} {g2h:.1f} {statistics.median(rtts) * 1e6:.0f}")
