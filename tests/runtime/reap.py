#!/usr/bin/env python3
"""tests/runtime/reap.py RUNTIME ROOT ID BUNDLE [create options...]

Acts as containerd's shim does: becomes a child subreaper, runs
`RUNTIME create --pid-file` and `start`, then waits for the pid in the pid
file (reparented to us) and prints its exit status as "exit=N". With
HUSK_TEST_CONSOLE=1 it also receives the terminal master over a console
socket, as the shim does, and prints what the container wrote to it."""
import ctypes, os, socket, subprocess, sys, tempfile

PR_SET_CHILD_SUBREAPER = 36
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

rt, root, cid, bundle = sys.argv[1:5]
extra = sys.argv[5:]
tmp = tempfile.mkdtemp()
pidfile = os.path.join(tmp, "pid")
console = os.environ.get("HUSK_TEST_CONSOLE") == "1"
master = None
if console:
    path = os.path.join(tmp, "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    extra += ["--console-socket", path]

create = subprocess.Popen([rt, "--root", root, "create", "--bundle", bundle,
                           "--pid-file", pidfile] + extra + [cid],
                          stdin=subprocess.DEVNULL)
if console:
    srv.settimeout(300)
    conn, _ = srv.accept()
    msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    master = fds[0]
    print("console-name=" + msg.decode())
if create.wait() != 0:
    print("create failed")
    sys.exit(1)
pid = int(open(pidfile).read())
if subprocess.call([rt, "--root", root, "start", cid]) != 0:
    print("start failed")
    sys.exit(1)
out = b""
if master is not None:
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if b"DONE" in out:
            break
    sys.stdout.write(out.decode(errors="replace"))
_, status = os.waitpid(pid, 0)
print("exit=%d" % (os.waitstatus_to_exitcode(status)))
