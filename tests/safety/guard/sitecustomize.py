"""Test-only network guard for the hostile-repository suite (tests/safety), loaded through PYTHONPATH.

When ``LABKIT_TEST_CONNECT_LOG`` is set, every ``connect`` / ``connect_ex`` /
``sendto`` / ``sendmsg`` on a socket that is not ``AF_UNIX`` is appended to
that file and then refused (``ENETUNREACH``), so a Python-side connection is
caught even where no network namespace can be made.  ``<log>.loaded`` records
each process that loaded the guard, so the harness knows it was active.
"""
import errno
import os
import socket

_LOG = os.environ.get("LABKIT_TEST_CONNECT_LOG")

if _LOG:
    try:
        with open(_LOG + ".loaded", "a") as _fh:
            _fh.write(f"{os.getpid()}\n")
    except OSError:
        pass

    def _record(sock, how, address):
        try:
            family = socket.AddressFamily(sock.family).name
        except ValueError:
            family = str(sock.family)
        try:
            with open(_LOG, "a") as fh:
                fh.write(f"pid {os.getpid()} {how} {family} {address!r}\n")
        except OSError:
            pass
        raise OSError(errno.ENETUNREACH, "network blocked by the labkit safety-test guard")

    _orig = {name: getattr(socket.socket, name) for name in ("connect", "connect_ex", "sendto", "sendmsg")}

    def _wrap(name):
        orig = _orig[name]

        def method(self, *args, **kwargs):
            if self.family != socket.AF_UNIX:
                if name in ("connect", "connect_ex"):
                    _record(self, name, args[0] if args else kwargs)
                elif name == "sendto":
                    _record(self, name, args[-1] if args else kwargs)
                elif name == "sendmsg" and len(args) >= 4 and args[3] is not None:
                    _record(self, name, args[3])
            return orig(self, *args, **kwargs)

        method.__name__ = name
        return method

    for _name in _orig:
        setattr(socket.socket, _name, _wrap(_name))
