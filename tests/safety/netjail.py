"""Run a command with loopback listeners that log every connection (the harness runs this in `unshare -n`).

    python -I netjail.py LOG PORT[,PORT...] -- COMMAND...

Inside a fresh network namespace the loopback interface is brought up and a
TCP listener is opened on 127.0.0.1 and ::1 for each port (and UDP/TCP 53 when
root); every accepted connection or datagram is appended to LOG.  Nothing else
is reachable.  SIGTERM, SIGINT and SIGHUP are forwarded to the command; the exit
status is the command's (128+N when a signal ended it).  Standard library only:
it runs with ``-I``, outside labkit's virtualenv site-packages.
"""
from __future__ import annotations

import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
import threading


def lo_up() -> None:
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH22x", b"lo", 0))
        flags = struct.unpack("16sH22x", ifr)[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def log(path: str, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text + "\n")


def tcp_listener(path: str, family: int, host: str, port: int) -> None:
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(64)
    except OSError:
        return

    def loop() -> None:
        while True:
            try:
                conn, peer = s.accept()
            except OSError:
                return
            log(path, f"tcp connection to {host}:{port} from {peer}")
            try:
                conn.settimeout(0.5)
                conn.recv(256)
            except OSError:
                pass
            conn.close()

    threading.Thread(target=loop, daemon=True).start()


def udp_listener(path: str, host: str, port: int) -> None:
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, port))
    except OSError:
        return

    def loop() -> None:
        while True:
            try:
                _data, peer = s.recvfrom(2048)
            except OSError:
                return
            log(path, f"udp datagram to {host}:{port} from {peer}")

    threading.Thread(target=loop, daemon=True).start()


def main() -> int:
    logfile, ports = sys.argv[1], [int(p) for p in sys.argv[2].split(",") if p]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    isolated = os.environ.pop("NETJAIL_ISOLATED", "") == "1"
    if isolated:
        try:
            lo_up()
        except OSError as exc:
            log(logfile + ".info", f"loopback not up: {exc}")
        ports = ports + [53, 80, 443, 22, 9418]  # the namespace is ours: default ports too
    for port in ports:
        tcp_listener(logfile, socket.AF_INET, "127.0.0.1", port)
        tcp_listener(logfile, socket.AF_INET6, "::1", port)
    if isolated:
        udp_listener(logfile, "127.0.0.1", 53)
        udp_listener(logfile, "127.0.0.53", 53)
    child = subprocess.Popen(cmd)

    def forward(signum, _frame):
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            rc = child.wait()
            break
        except InterruptedError:
            continue
    return 128 - rc if rc < 0 else rc


if __name__ == "__main__":
    sys.exit(main())
