"""Run one program confined to one directory: a stdlib-only launcher, executed as ``python -I -S _jail.py``.

This file is not imported by labkit; ``labkit.gitops.sandbox`` runs it as a
separate interpreter (isolated mode, no site-packages: it must not depend on
anything but the standard library and the kernel).  It turns itself into the
confined program in five steps and then ``exec``\\ s it, so the program
inherits every restriction and nothing of labkit's process:

1. ``unshare(CLONE_NEWUSER | CLONE_NEWNS [| CLONE_NEWNET])``: a user namespace
   (so no privilege is needed; the caller's uid and gid map to root inside,
   and only to themselves outside), a private mount namespace, and — unless
   the network was allowed — a network namespace holding nothing but a
   loopback interface that is down.  No address is reachable: ``connect``
   fails with ``ENETUNREACH`` before a packet leaves.
2. Mount propagation becomes private, so nothing below leaks to the host.
3. A fresh ``tmpfs`` is mounted on the (empty) jail directory the caller
   created, and only these are bind-mounted into it, each at the *same
   absolute path* it has outside (so error messages name the real paths):
   the directory to confine to (``--root``), the program itself, ``/dev/null``
   and, with ``--system`` (remote fetching allowed), read-only system
   directories a ``git`` clone needs (``/usr``, ``/bin``, ``/lib*``,
   ``/etc/ssl`` ...).  ``/tmp`` is the tmpfs's own, empty.
4. ``chroot`` into the jail, ``chdir`` to ``--cwd``.  From here on no path
   outside the bind mounts exists: ``/etc/passwd``, the user's home, other
   repositories, ``/proc`` and ``/dev/zero`` are simply not there, whatever a
   symlink or an absolute path in a kustomization says.
5. Resource limits (file size written, open files, CPU seconds, address
   space when asked) and ``PR_SET_NO_NEW_PRIVS``, then ``execve`` with a
   minimal environment (plus the variables named by ``--keep-env``).

Exit status 126 with one line on stderr (``labkit-jail: <step>: <error>``)
when a step fails; ``--probe`` stops before ``execve`` and exits 0 when every
step worked, which is how ``labkit.gitops.sandbox.available`` decides.
"""
import ctypes
import errno
import os
import resource
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
PR_SET_NO_NEW_PRIVS = 38

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ssl", "/etc/ca-certificates",
               "/etc/pki")
SYSTEM_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf")


def fail(step, err):
    sys.stderr.write(f"labkit-jail: {step}: {err}\n")
    sys.stderr.flush()
    os._exit(126)


def main(argv):
    args = {"--root": None, "--cwd": None, "--jail": None, "--net": False, "--system": False, "--probe": False,
            "--as-bytes": None, "--fsize-bytes": None, "--cpu-seconds": None}
    keep = []
    i = 0
    while i < len(argv) and argv[i] != "--":
        key = argv[i]
        if key == "--keep-env" and i + 1 < len(argv):
            keep.append(argv[i + 1])
            i += 2
            continue
        if key in ("--net", "--system", "--probe"):
            args[key] = True
            i += 1
            continue
        if key not in args or i + 1 >= len(argv):
            fail("arguments", f"unknown or incomplete option {key!r}")
        args[key] = argv[i + 1]
        i += 2
    program = argv[i + 1:] if i < len(argv) else []
    root, jail = args["--root"], args["--jail"]
    if not root or not jail or (not program and not args["--probe"]):
        fail("arguments", "usage: _jail.py --root DIR --jail EMPTYDIR [--cwd DIR] [--net] [--system] -- PROGRAM ...")
    root = os.path.realpath(root)
    jail = os.path.realpath(jail)
    cwd = os.path.realpath(args["--cwd"] or root)
    exe = os.path.realpath(program[0]) if program else None

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

    def mount(source, target, fstype, flags, data=None):
        rc = libc.mount(source.encode() if source else None, target.encode(), fstype.encode() if fstype else None,
                        flags, data.encode() if data else None)
        if rc != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e), target)

    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWUSER | CLONE_NEWNS | (0 if args["--net"] else CLONE_NEWNET)
    if libc.unshare(flags) != 0:
        fail("unshare", os.strerror(ctypes.get_errno()))
    try:
        with open("/proc/self/setgroups", "w") as fh:
            fh.write("deny")
        with open("/proc/self/uid_map", "w") as fh:
            fh.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as fh:
            fh.write(f"0 {gid} 1")
    except OSError as exc:
        fail("id maps", exc)
    try:
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        mount("tmpfs", jail, "tmpfs", MS_NOSUID | MS_NODEV, "size=8m,mode=0755")
    except OSError as exc:
        fail("mount", exc)

    def bind(path, *, directory, readonly):
        inner = jail + path
        if directory:
            os.makedirs(inner, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(inner), exist_ok=True)
            open(inner, "a").close()
        mount(path, inner, None, MS_BIND | MS_REC)
        if readonly:
            try:
                mount(None, inner, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
            except OSError:
                pass  # locked flags of the source mount: still confined, only not read-only

    try:
        bind(root, directory=True, readonly=False)
        if exe is not None:
            bind(exe, directory=False, readonly=True)
        bind("/dev/null", directory=False, readonly=False)
        os.makedirs(jail + "/tmp", mode=0o1777, exist_ok=True)
        if args["--system"]:
            for d in SYSTEM_DIRS:
                if os.path.isdir(d) and not os.path.islink(d):
                    bind(d, directory=True, readonly=True)
                elif os.path.islink(d):  # /bin -> usr/bin on merged-/usr systems
                    os.symlink(os.readlink(d), jail + d)
            for f in SYSTEM_FILES:
                if os.path.isfile(f):
                    bind(os.path.realpath(f), directory=False, readonly=True)
    except OSError as exc:
        fail("bind", exc)
    try:
        os.chroot(jail)
        os.chdir(cwd)
    except OSError as exc:
        fail("chroot", exc)
    try:
        if args["--fsize-bytes"]:
            n = int(args["--fsize-bytes"])
            resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))
        if args["--cpu-seconds"]:
            n = int(args["--cpu-seconds"])
            resource.setrlimit(resource.RLIMIT_CPU, (n, n + 1))
        if args["--as-bytes"]:
            n = int(args["--as-bytes"])
            resource.setrlimit(resource.RLIMIT_AS, (n, n))
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    except (OSError, ValueError) as exc:
        fail("limits", exc)
    if args["--probe"]:
        # the confinement holds: the host's files are gone and no network route exists
        if os.path.exists("/etc/passwd") or os.path.exists("/proc/self"):
            fail("probe", "host files still visible after chroot")
        os._exit(0)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LC_ALL": "C",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0",
           "GIT_CONFIG_COUNT": "5",
           "GIT_CONFIG_KEY_0": "protocol.file.allow", "GIT_CONFIG_VALUE_0": "never",
           "GIT_CONFIG_KEY_1": "protocol.ext.allow", "GIT_CONFIG_VALUE_1": "never",
           "GIT_CONFIG_KEY_2": "core.hooksPath", "GIT_CONFIG_VALUE_2": "/dev/null",
           "GIT_CONFIG_KEY_3": "core.fsmonitor", "GIT_CONFIG_VALUE_3": "false",
           "GIT_CONFIG_KEY_4": "core.sshCommand", "GIT_CONFIG_VALUE_4": "false"}
    for key in ("GOMEMLIMIT", "GOMAXPROCS", *keep):
        if os.environ.get(key):
            env[key] = os.environ[key]
    try:
        os.execve(exe, [program[0]] + program[1:], env)
    except OSError as exc:
        fail("exec", exc)
    return errno.EINVAL  # not reached


if __name__ == "__main__":
    main(sys.argv[1:])
