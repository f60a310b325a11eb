"""Where ``labkit try`` reads a repository from: a private snapshot of one revision, and its history.

The input
=========

``labkit try`` accepts a local directory, a local git repository (a working
tree or a bare repository), or a ``file://`` URL of one.  A URL that would need
the network (``https://``, ``ssh://``, ``git@host:org/repo``) is refused with a
clear message: the command promises an answer "in seconds and without a
cluster", and a clone of somebody's server is neither.  The directory given is
the *root*: the paths in Flux Kustomizations (``./apps/prod``) and Argo CD
Applications (``apps/prod``) are read relative to it, exactly as the
controllers read them relative to the repository root.  When that directory is
inside a git work tree (a ``clusters/`` folder of a bigger repository), history
comes from the enclosing repository, restricted to the directory.

The repository is untrusted input (workshops run ``labkit try`` on
repositories found on the internet, CI runs it on strangers' pull requests),
and so is everything in its ``.git``.  Three mechanisms below keep it inert.

Git without side effects
========================

Git runs commands named by the repository's own configuration: ``git status``
runs ``core.fsmonitor`` and the ``post-index-change`` hook and rewrites the
index; diffs run ``diff.external`` and textconv drivers; a pager, an askpass
or an ssh command can be configured too.  So labkit never asks git for a
status or a diff of the work tree, and every git command goes through one
runner, ``run_git``: an argv list (no shell) with ``stdin`` closed (or fed
from a file of object names), a timeout (20 s), an address-space limit
(``RLIMIT_AS``, 1 GiB, set in the child before git starts), a cap on what it
may print, and
``--no-pager --no-replace-objects`` plus ``-c`` overrides that switch off
hooks (``core.hooksPath=/dev/null``), ``core.fsmonitor``, the untracked
cache, external diff, pager, ssh, credential helpers, askpass, signature
verification, and every transport (``protocol.allow=never``: the local
repository is read through its object database, nothing is fetched).  The
environment drops the caller's ``GIT_*`` variables that relocate the
repository or inject configuration, ignores the system configuration, and
sets ``GIT_OPTIONAL_LOCKS=0``, ``GIT_TERMINAL_PROMPT=0`` and ``LC_ALL=C``.
Objects are read with plumbing only — ``rev-parse --verify
--end-of-options``, ``cat-file --batch``, ``log --end-of-options`` — and
user text that could become an option (a ``--ref`` starting with ``-``) is
refused before git sees it.  Nothing reads or writes the user's index.

Whether the work tree is "dirty" is therefore decided here, not by ``git
status``: the copied files are hashed as git blobs (``sha1("blob <size>\\0" +
data)``) and compared with the ``HEAD`` tree; a file that is not in ``HEAD``
makes the tree dirty unless ``git check-ignore --no-index`` (which reads the
ignore files, not the index) says it is ignored.  Dirty means "the snapshot is
not ``HEAD``'s": changes to what the snapshot leaves out (``.github/``, CI
files) do not count, and a file that git would pass through a clean filter
(LFS, ``autocrlf``) counts as changed, since no filter is ever run.

Before git runs at all, the git directory it would find (the nearest ``.git``
upwards, the directory a ``.git`` file names and its ``commondir``, or a bare
repository) is checked: ``config``, ``packed-refs``, ``HEAD``, ``index``,
``info/exclude``, ``objects/info/alternates`` and ``commondir`` must each be
absent or a regular file (a symlink only to a file inside the git directory).
A FIFO there blocks git and a link to ``/dev/zero`` makes it read forever, so
such a repository is refused with a ``LabkitError`` naming the file.

A repository owned by another user makes git refuse with "dubious
ownership"; that becomes one ``LabkitError`` saying which ``git config
--global --add safe.directory`` command trusts it.

The snapshot, confined by construction
======================================

Nothing is ever written into the user's tree.  Flux's build step writes a
generated ``kustomization.yaml`` into a plain directory while kustomize runs
(``labkit.gitops.render``), so every render works on a private copy:

* without ``--ref``, a copy of the working tree as it is on disk (uncommitted
  changes included — "what would happen if I pushed this"), leaving out what
  source-controller leaves out of an artifact by default (``.git/``,
  ``.github/``, ``.sops.yaml``, CI files: ``SOURCE_IGNORE_DEFAULTS``).  Its
  revision is the ``HEAD`` commit when the tree is clean, otherwise a SHA-1 of
  the copied contents, labelled ``worktree``;
* with ``--ref`` (a branch, tag or commit), the files of that commit, read from
  git's object database, symlinks kept as symlinks.

Both are written by one writer, ``_Snapshot``, and checked after writing, so
that every path in the snapshot, with symlinks resolved, stays inside it:

* git trees are checked as ``git fsck`` checks them before anything is
  written: duplicate entries (a symlink ``a`` next to a directory ``a`` — the
  classic way to write through a link), empty names, ``.``, ``..``, names
  holding ``/``, ``.git`` in any spelling a case-insensitive or 8.3 file system
  would read as ``.git`` (``.GIT``, ``.git.``, ``git~1``), unknown modes;
* every directory is entered with ``O_DIRECTORY|O_NOFOLLOW`` from the
  snapshot root down, and every file is created with ``O_CREAT|O_EXCL|
  O_NOFOLLOW``: nothing is ever written through a symlink, even one a broken
  tree managed to place, and nothing is overwritten;
* the work tree is read the same way (directory descriptors, ``lstat``,
  ``O_NOFOLLOW|O_NONBLOCK`` and an ``fstat`` check for a regular file), so a
  FIFO, a device or a socket is never opened and a symlinked directory is
  copied as a link, never followed;
* after writing, every symlink is resolved (``os.path.realpath``, repeated
  until nothing changes, so chains count): one that leads outside the
  snapshot root (absolute or relative, to a file or a directory, ``/dev/zero``)
  or to a directory containing itself (a loop a directory walk would never
  leave) is removed;
* file names that are not UTF-8 and paths longer than ``PATH_MAX`` are left
  out, as are files over ``MAX_FILE_BYTES`` (never read: their size is
  enough; for the dirty check such a file counts as changed) and files that
  fail to read (``/proc``: EAGAIN, EIO), each named in the refusal;
* a snapshot holds at most ``MAX_SNAPSHOT_FILES`` files and
  ``MAX_SNAPSHOT_BYTES`` bytes; beyond that the run stops with a
  ``LabkitError``.  A git tree is bounded while it is walked: the walk stops
  the moment it has produced more than ``MAX_SNAPSHOT_FILES`` entries or
  visited more than ``MAX_TREE_ENTRIES`` rows (a tree naming one subtree
  thousands of times, a "tree bomb"), never after expanding a whole level.

Each file left out is recorded in ``RepoSource.refused`` as ``(path,
reason)``, the path escaped (``display_path``: undecodable bytes and control
characters as backslash escapes), so a name holding terminal escape sequences
is shown, not obeyed.  ``labkit.tryrepo.run`` puts them in the report's notes
and the CLI prints one warning line per refusal.

History
=======

``history(n)`` lists the last ``n`` commits that touched the root (``git log
-n N -- <root>``, through the runner, ``n`` at most ``MAX_HISTORY``), newest
first, and ``export(sha)`` writes each commit's version of the root into its
own directory with the same checks as ``--ref``; together the history exports
may write at most ``MAX_HISTORY_BYTES``.  A commit whose export is refused (a
tree bomb, a bound) is recorded in ``refused`` once, never walked again, and
the run goes on without it.  ``labkit.tryrepo.pitfalls`` renders
every revision and compares them, which is how a changed
``volumeClaimTemplates`` — a sync that only fails against a cluster that still
runs the *previous* revision — is found.

The controllers' view
=====================

``SnapshotRemote`` is the duck-typed git remote ``labkit.flux.system.FluxSystem``
and ``labkit.argo.ArgoSystem`` fetch from (the same methods
``labkit.gitops.repo.ManifestRepo`` offers): ``fetch(ref)`` resolves every ref
to the snapshot's revision — the question being asked is "what happens when a
controller reconciles *this* revision", whatever branch the GitRepository
names — and ``export(sha)`` hands out the snapshot directory as the artifact.
"""
from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import stat
import subprocess
import tempfile
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from labkit.core.errors import LabkitError
from labkit.gitops.repo import SOURCE_IGNORE_DEFAULTS

__all__ = ["RepoSource", "SnapshotRemote", "open_source", "normalise_url", "check_subpath", "run_git",
           "display_path", "GitError", "MAX_FILE_BYTES", "MAX_SNAPSHOT_FILES", "MAX_SNAPSHOT_BYTES", "MAX_HISTORY"]

_REMOTE_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)", re.IGNORECASE)
_MiB = 1024 * 1024
#: Files larger than this are left out of a snapshot (binaries, build outputs: never manifests).
MAX_FILE_BYTES = 20 * _MiB
#: The most files (and symlinks) one snapshot may hold.
MAX_SNAPSHOT_FILES = 50_000
#: The most bytes one snapshot may hold.
MAX_SNAPSHOT_BYTES = 512 * _MiB
#: The most tree entries one walk of a git tree may visit (files, directories and refused names together).
MAX_TREE_ENTRIES = 200_000
#: The most commits ``--history`` may walk.
MAX_HISTORY = 100
#: The most bytes all history exports of one run may write together.
MAX_HISTORY_BYTES = 1024 * _MiB
#: Seconds one git command may run (well below the 30 s a whole run may take).
GIT_TIMEOUT = 20.0
#: The address space one git command may use (``RLIMIT_AS``): a hostile ``.git`` cannot make git eat the machine.
GIT_MEMORY_BYTES = 1024 * _MiB
#: The most bytes one git command may print (object batches are chunked well below this).
MAX_GIT_OUTPUT = 64 * _MiB
_BATCH_BYTES = 32 * _MiB
_BATCH_OBJECTS = 5_000
_MAX_DEPTH = 128
_PATH_MAX = 4096
_NAME_MAX = 255
_MODE_TREE = 0o040000
_MODE_FILE = 0o100644
_MODE_EXEC = 0o100755
_MODE_LINK = 0o120000
_MODE_GITLINK = 0o160000
_BLOB_MODES = {0o100644: _MODE_FILE, 0o100664: _MODE_FILE, 0o100755: _MODE_EXEC, _MODE_LINK: _MODE_LINK}
_HEX = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")

# ---------------------------------------------------------------------------------------------- the git runner

#: Before every subcommand: nothing the repository's configuration names is ever run (module docstring).
_GIT_OPTIONS: tuple[str, ...] = (
    "--no-pager", "--no-replace-objects",
    "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false",
    "-c", "diff.external=", "-c", "core.pager=cat", "-c", "protocol.allow=never", "-c", "protocol.file.allow=never",
    "-c", "core.sshCommand=false", "-c", "credential.helper=", "-c", "core.askPass=false",
    "-c", "log.showSignature=false", "-c", "gpg.program=false", "-c", "gpg.ssh.program=false",
    "-c", "gpg.x509.program=false", "-c", "core.alternateRefsCommand=", "-c", "uploadpack.packObjectsHook=",
    "-c", "core.editor=false", "-c", "sequence.editor=false", "-c", "color.ui=false", "-c", "gc.auto=0",
    "-c", "maintenance.auto=false", "-c", "i18n.logOutputEncoding=UTF-8",
    # pack windows small enough for GIT_MEMORY_BYTES (the defaults map up to 1 GiB per pack window)
    "-c", "core.packedGitWindowSize=32m", "-c", "core.packedGitLimit=256m",
)
#: The caller's GIT_* variables that are kept (they only bound discovery or say where the user's git lives).
_KEEP_GIT_ENV = frozenset({"GIT_CONFIG_GLOBAL", "GIT_CEILING_DIRECTORIES", "GIT_DISCOVERY_ACROSS_FILESYSTEM",
                           "GIT_EXEC_PATH"})
_DUBIOUS = re.compile(rb"dubious ownership in repository at '([^'\n]*)'")


class GitError(LabkitError):
    """A git command failed, timed out or printed too much (``rc`` is None for the last two)."""

    def __init__(self, message: str, *, rc: int | None = None, stderr: str = ""):
        super().__init__(message)
        self.rc = rc
        self.stderr = stderr


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEEP_GIT_ENV}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_ATTR_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0",
               GIT_NO_REPLACE_OBJECTS="1", GIT_ASKPASS="false", SSH_ASKPASS="false", GIT_PAGER="cat",
               GIT_EDITOR="false", GIT_PROTOCOL_FROM_USER="0", LC_ALL="C", LANGUAGE="C")
    return env


def _limit_git() -> None:
    """In the forked child, before git runs: cap its address space (``GIT_MEMORY_BYTES``)."""
    resource.setrlimit(resource.RLIMIT_AS, (GIT_MEMORY_BYTES, GIT_MEMORY_BYTES))


def run_git(cwd: Path, args: Sequence[str], *, input: bytes | None = None, timeout: float = GIT_TIMEOUT,
            max_output: int = MAX_GIT_OUTPUT, ok: Sequence[int] = (0,)) -> bytes:
    """Run one git command safely (module docstring) and return its stdout.

    ``input`` is fed from a temporary file (``stdin`` is ``/dev/null`` without it).  Git runs with its address
    space capped at ``GIT_MEMORY_BYTES`` and is killed after ``timeout`` seconds (at most ``GIT_TIMEOUT``).
    A failure (an exit code not in ``ok``), a timeout or more than ``max_output`` bytes of output raise
    ``GitError``; a repository git refuses for its ownership raises a ``LabkitError`` that says how to trust it.
    """
    timeout = min(timeout, GIT_TIMEOUT)
    argv = ["git", *_GIT_OPTIONS, *args]
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as ferr:
        if input is not None:
            fin.write(input)
            fin.seek(0)
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=_git_env(), stdin=fin if input is not None else
                                    subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=ferr, close_fds=True,
                                    preexec_fn=_limit_git)
        except OSError as exc:
            raise GitError(f"cannot run git: {exc.strerror or exc}") from None
        out, fate = _collect(proc, timeout, max_output)
        ferr.seek(0)
        err = ferr.read(64 * 1024)
    m = _DUBIOUS.search(err)
    if m:
        where = display_path(m.group(1)) or str(cwd)
        raise LabkitError(
            f"git refuses to read the repository at {where}: it belongs to another user (\"dubious ownership\"). "
            f"If you trust it, run: git config --global --add safe.directory {where}", file=str(cwd))
    if fate:
        raise GitError(f"git {args[0]} {fate}")
    if proc.returncode not in ok:
        text = err.strip().splitlines()  # git quotes names from the repository: escaped before anyone prints it
        raise GitError(f"git {args[0]}: {display_path(text[-1]) if text else f'exit {proc.returncode}'}",
                       rc=proc.returncode, stderr=err.decode("utf-8", "replace"))
    return out


def _collect(proc: subprocess.Popen[bytes], timeout: float, max_output: int) -> tuple[bytes, str]:
    """Read ``proc``'s stdout up to ``max_output`` bytes within ``timeout``; kill it otherwise (returns why)."""
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, expire)
    timer.start()
    chunks: list[bytes] = []
    total, fate = 0, ""
    assert proc.stdout is not None
    try:
        while chunk := proc.stdout.read1(1 << 16):
            total += len(chunk)
            if total > max_output:
                fate = f"printed more than {max_output // _MiB} MiB"
                proc.kill()
                break
            chunks.append(chunk)
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    if timed_out.is_set():
        fate = f"did not finish in {timeout:g} s"
    return b"".join(chunks), fate


def _refuse_option(text: str, what: str) -> None:
    """User text that git could read as an option (or that holds a NUL / newline) is refused."""
    if text.startswith("-"):
        raise LabkitError(f"{text!r} starts with '-': a revision cannot, and git would read it as an option",
                          field=what)
    if "\0" in text or "\n" in text:
        raise LabkitError(f"{text!r} holds a NUL or newline character", field=what)


class _Entry(NamedTuple):
    parts: tuple[str, ...]  # path below the walked tree
    mode: int  # normalised: _MODE_FILE, _MODE_EXEC, _MODE_LINK or _MODE_GITLINK
    sha: str


@dataclass
class _Git:
    """One repository as ``run_git`` sees it: where commands run, and its object format."""

    cwd: Path  # the top of the work tree, or the git directory of a bare repository
    top: Path | None  # None for a bare repository
    hash_len: int = 20

    def run(self, *args: str, **kw: Any) -> bytes:
        return run_git(self.cwd, args, **kw)

    def commit(self, rev: str) -> str | None:
        """The commit ``rev`` names (a branch, tag, SHA, ``HEAD~2``...), or None."""
        out = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", ok=(0, 1, 128))
        sha = out.decode("ascii", "replace").strip()
        return sha if _HEX.fullmatch(sha) else None

    def subtree(self, commit: str, prefix: str) -> str | None:
        """The tree of ``prefix`` (a directory relative to the top) at ``commit``, or None if it is no tree."""
        spec = f"{commit}^{{tree}}" if not prefix else f"{commit}:{prefix}"
        sha = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", spec, ok=(0, 1, 128)).decode(
            "ascii", "replace").strip()
        if not _HEX.fullmatch(sha):
            return None
        kind = self.run("cat-file", "-t", sha, ok=(0, 1, 128)).strip()
        return sha if kind == b"tree" else None

    def objects(self, shas: Iterable[str], *, max_output: int = MAX_GIT_OUTPUT) -> dict[str, tuple[str, bytes]]:
        """``sha -> (type, content)`` through one ``cat-file --batch`` (missing objects are left out)."""
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        out = self.run("cat-file", "--batch", input="\n".join(wanted).encode() + b"\n", max_output=max_output)
        found: dict[str, tuple[str, bytes]] = {}
        pos = 0
        while pos < len(out):
            nl = out.index(b"\n", pos)
            head = out[pos:nl].decode("ascii", "replace").split()
            if len(head) != 3:  # "<sha> missing"
                pos = nl + 1
                continue
            size = int(head[2])
            found[head[0]] = (head[1], out[nl + 1:nl + 1 + size])
            pos = nl + 1 + size + 1
        return found

    def sizes(self, shas: Iterable[str]) -> dict[str, int]:
        """``sha -> size`` of the blobs among ``shas`` (``cat-file --batch-check``)."""
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        out = self.run("cat-file", "--batch-check", input="\n".join(wanted).encode() + b"\n")
        sizes = {}
        for line in out.decode("ascii", "replace").splitlines():
            f = line.split()
            if len(f) == 3 and f[1] == "blob":
                sizes[f[0]] = int(f[2])
        return sizes

    def ignored(self, paths: list[str]) -> set[str]:
        """Which of ``paths`` (relative to the top) the ignore files ignore; never reads the index."""
        if not paths or self.top is None:
            return set()
        data = "\0".join(paths).encode("utf-8", "surrogateescape") + b"\0"
        out = self.run("check-ignore", "--no-index", "-z", "--stdin", input=data, ok=(0, 1), timeout=20.0)
        return {p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p}


#: The files of a git directory git reads whole (or blocks on) before any object: each must be a regular file.
_GIT_DIR_FILES = ("config", "packed-refs", "HEAD", "index", "info/exclude", "objects/info/alternates",
                  "commondir")


def _git_dirs(path: Path) -> list[Path]:
    """The git directories git would find from ``path`` (the nearest ``.git`` or bare repository upwards).

    A ``.git`` file (a linked work tree, a submodule) is read here, never followed blindly: it must be a
    regular file, and its ``gitdir:`` (and that directory's ``commondir``) are checked too.
    """
    for d in (path, *path.parents):
        dotgit = d / ".git"
        try:
            st = os.lstat(dotgit)
        except OSError:
            st = None
        if st is not None:
            if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
                found = Path(os.path.realpath(dotgit))
                if not found.is_dir():
                    raise LabkitError("is not a directory: git would read it as the repository", file=str(dotgit))
                return _with_commondir(found)
            text = _read_small_regular(dotgit)
            m = re.match(r"gitdir: (.+)", text.strip())
            if not m:
                return []  # not a gitfile: git does not treat this as a repository either
            target = Path(m.group(1))
            target = Path(os.path.realpath(target if target.is_absolute() else d / target))
            return _with_commondir(target) if target.is_dir() else []
        if all(os.path.lexists(d / n) for n in ("HEAD", "objects", "refs")):
            return _with_commondir(Path(os.path.realpath(d)))  # a bare repository
    return []


def _with_commondir(gitdir: Path) -> list[Path]:
    dirs = [gitdir]
    common = gitdir / "commondir"
    if os.path.lexists(common):
        _check_regular(gitdir, "commondir")
        rel = _read_small_regular(common).strip()
        if rel:
            dirs.append(Path(os.path.realpath(gitdir / rel)))
    return dirs


def _read_small_regular(path: Path) -> str:
    """The first 4 KiB of ``path``, opened only if it is a regular file (never a FIFO or a device)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise LabkitError(f"cannot be read: {exc.strerror}", file=display_path(str(path))) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LabkitError("is not a regular file, so git would hang or fail on it: refusing the repository",
                              file=display_path(str(path)))
        return os.read(fd, 4096).decode("utf-8", "surrogateescape")
    finally:
        os.close(fd)


def _check_regular(gitdir: Path, name: str) -> None:
    """Refuse the repository if ``gitdir/name`` exists and is not a regular file inside ``gitdir``."""
    path = gitdir / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LabkitError(f"cannot be read: {exc.strerror}: refusing the repository",
                          file=display_path(str(path))) from None
    if stat.S_ISLNK(st.st_mode):
        real = os.path.realpath(path)
        if not real.startswith(str(gitdir) + os.sep):
            raise LabkitError(f"is a symlink to {display_path(os.readlink(path))}, outside the git directory: "
                              "refusing the repository", file=display_path(str(path)))
        try:
            st = os.stat(real)
        except OSError:
            return  # a dangling link inside the git directory: git reads it as absent
    if not stat.S_ISREG(st.st_mode):
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "a directory" if stat.S_ISDIR(st.st_mode) else "not a file")
        raise LabkitError(f"is {kind}, not a regular file (git would hang or fail reading it): refusing the "
                          "repository", file=display_path(str(path)))


def _check_git_dir(path: Path) -> None:
    """Before git runs at all: every file of ``_GIT_DIR_FILES`` in the git directories found is a regular file."""
    for gitdir in _git_dirs(path):
        for name in _GIT_DIR_FILES:
            _check_regular(gitdir, name)


def _discover(path: Path, raw: str) -> _Git | None:
    """The git repository ``path`` is in (None for a plain directory or one git cannot read)."""
    _check_git_dir(path)
    try:
        out = run_git(path, ["rev-parse", "--is-bare-repository", "--is-inside-work-tree", "--absolute-git-dir",
                             "--show-object-format"], timeout=15.0)
    except GitError as exc:
        if exc.rc is None:  # a timeout: a .git that makes git hang is hostile, not a plain directory
            raise LabkitError(f"git could not read the repository: {exc.detail}", file=raw) from None
        return None  # not a repository, or a broken .git: treated as a plain directory
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) < 3:
        return None
    hash_len = 32 if len(lines) > 3 and lines[3].strip() == "sha256" else 20
    if lines[0] == "true":
        return _Git(Path(lines[2]), None, hash_len)
    if lines[1] != "true":
        raise LabkitError("is inside a .git directory; give the work tree (or a bare repository)", file=raw)
    top = Path(run_git(path, ["rev-parse", "--show-toplevel"]).decode("utf-8", "surrogateescape").strip()).resolve()
    if not (path == top or top in path.parents):
        raise LabkitError(f"git places its work tree at {top} (core.worktree), which does not contain this "
                          "directory", file=raw)
    return _Git(top, top, hash_len)


def _branch_name(git: _Git) -> str:
    out = git.run("symbolic-ref", "--quiet", "--short", "HEAD", ok=(0, 1, 128))
    return out.decode("utf-8", "replace").strip()


def _origin_urls(git: _Git) -> list[str]:
    out = git.run("config", "-z", "--get-regexp", r"^remote\..*\.url$", ok=(0, 1))
    urls = []
    for item in out.split(b"\0"):
        if b"\n" in item:
            urls.append(item.split(b"\n", 1)[1].decode("utf-8", "replace"))
    return urls


# ---------------------------------------------------------------------------------------------- names and paths

def display_path(raw: str | bytes) -> str:
    """``raw`` safe to print: undecodable bytes, control and format characters as backslash escapes."""
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
    text = data.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


_IGNORABLE = dict.fromkeys([*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF])


def _is_dotgit(name: str) -> bool:
    """``.git`` as a case-insensitive, NTFS or HFS+ file system would read ``name`` (git fsck: hasDotgit)."""
    folded = name.translate(_IGNORABLE).lower().rstrip(". ")
    return folded in (".git", "git~1")


def _bad_name(name: str) -> str | None:
    """Why ``name`` cannot be a path component of a snapshot (None if it can)."""
    if name == "":
        return "empty file name (git fsck: emptyName)"
    if name in (".", ".."):
        return f"a file named '{name}' (git fsck: hasDot/hasDotdot)"
    if "/" in name or "\0" in name:
        return "file name holds '/' or NUL (git fsck: fullPathname)"
    if _is_dotgit(name):
        return "a file named like '.git' (git fsck: hasDotgit)"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "file name is not valid UTF-8"
    if size > _NAME_MAX:
        return f"file name longer than {_NAME_MAX} bytes"
    return None


def _ignored(parts: tuple[str, ...]) -> bool:
    """Whether source-controller would leave this path (as parts) out of an artifact."""
    return any(d in SOURCE_IGNORE_DEFAULTS["dirs"] for d in parts[:-1]) or (
        bool(parts) and (parts[-1] in SOURCE_IGNORE_DEFAULTS["files"] or parts[-1] in SOURCE_IGNORE_DEFAULTS["dirs"])
    )


def _blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _join(parts: tuple[str, ...]) -> str:
    return "/".join(parts)


# ---------------------------------------------------------------------------------------------- the snapshot writer

class _Snapshot:
    """Writes one snapshot below ``root`` (module docstring): names checked, nothing written through a link.

    Refusals go to ``refused`` as ``(display path + at, reason)``; the bounds raise ``LabkitError``.
    """

    def __init__(self, root: Path, refused: list[tuple[str, str]], *, at: str = "", max_bytes: int | None = None,
                 what: str = ""):
        root.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(root, 0o755)
        self.root = root
        self.refused = refused
        self.at = at
        self.what = what or str(root)
        self.files = 0
        self.bytes = 0
        self.max_bytes = MAX_SNAPSHOT_BYTES if max_bytes is None else max_bytes
        self.max_rel = _PATH_MAX - len(os.fsencode(root)) - 2  # '/' and the terminating NUL
        self._dir: tuple[tuple[str, ...], int] | None = None

    def refuse(self, parts: tuple[str, ...] | str, reason: str) -> None:
        rel = parts if isinstance(parts, str) else "/".join(p or "''" for p in parts)  # '' shows an empty name
        self.refused.append((display_path(rel or ".") + self.at, reason))

    def check(self, parts: tuple[str, ...]) -> str | None:
        """Why ``parts`` cannot be written (None if it can)."""
        for name in parts:
            why = _bad_name(name)
            if why:
                return why
        if len(_join(parts).encode("utf-8")) > self.max_rel:
            return f"path longer than PATH_MAX ({_PATH_MAX} bytes) in the snapshot"
        return None

    def _count(self, size: int) -> None:
        self.files += 1
        self.bytes += size
        if self.files > MAX_SNAPSHOT_FILES:
            raise LabkitError(f"more than {MAX_SNAPSHOT_FILES:,} files: labkit try snapshots at most that many "
                              "(give a smaller directory)", file=self.what)
        if self.bytes > self.max_bytes:
            raise LabkitError(f"more than {self.max_bytes // _MiB} MiB of files: labkit try snapshots at most that "
                              "much (give a smaller directory)", file=self.what)

    def _dir_fd(self, parts: tuple[str, ...]) -> int:
        """A descriptor of directory ``parts``, created as needed, entered with O_NOFOLLOW at every step."""
        if self._dir is not None and self._dir[0] == parts:
            return self._dir[1]
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in parts:
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                os.close(fd)
                fd = sub
        except OSError:
            os.close(fd)
            raise
        self.close()
        self._dir = (parts, fd)
        return fd

    def mkdir(self, parts: tuple[str, ...]) -> bool:
        why = self.check(parts)
        if why:
            self.refuse(parts, why)
            return False
        try:
            self._dir_fd(parts)
        except OSError as exc:
            self.refuse(parts, f"cannot create the directory: {exc.strerror}")
            return False
        return True

    def write_file(self, parts: tuple[str, ...], data: bytes, executable: bool) -> bool:
        """Create ``parts`` (never through a link, never over an existing file); False if refused."""
        why = self.check(parts)
        if why:
            self.refuse(parts, why)
            return False
        self._count(len(data))
        try:
            dfd = self._dir_fd(parts[:-1])
            fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o755 if executable else 0o644, dir_fd=dfd)
        except FileExistsError:
            self.refuse(parts, "a second entry with this path (git fsck: duplicateEntries)")
            return False
        except OSError as exc:
            self.refuse(parts, f"cannot be written: {exc.strerror} (a parent is a symlink or a file)")
            return False
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        return True

    def write_link(self, parts: tuple[str, ...], target: bytes) -> bool:
        """Create symlink ``parts`` -> ``target`` (checked later by ``confine``); False if refused."""
        why = self.check(parts)
        if not why and (not target or b"\0" in target or len(target) >= _PATH_MAX):
            why = "symlink with an empty, NUL-holding or over-long target"
        if not why:
            try:
                text = target.decode("utf-8")
            except UnicodeDecodeError:
                why = f"symlink target {display_path(target)} is not valid UTF-8"
        if why:
            self.refuse(parts, why)
            return False
        self._count(len(target))
        try:
            os.symlink(text, parts[-1], dir_fd=self._dir_fd(parts[:-1]))
        except FileExistsError:
            self.refuse(parts, "a second entry with this path (git fsck: duplicateEntries)")
            return False
        except OSError as exc:
            self.refuse(parts, f"cannot be written: {exc.strerror} (a parent is a symlink or a file)")
            return False
        return True

    def close(self) -> None:
        if self._dir is not None:
            os.close(self._dir[1])
            self._dir = None

    def confine(self) -> None:
        """Remove every symlink that resolves outside the root, or to a directory holding it.

        All links are judged before any is removed (so every link of a chain leading out goes), and passes
        repeat until one removes nothing.
        """
        self.close()
        root = os.path.realpath(self.root)
        while True:
            links = [os.path.join(d, n) for d, dirs, files in os.walk(self.root) for n in dirs + files
                     if os.path.islink(os.path.join(d, n))]
            bad = [(link, why) for link in links if (why := _link_escape(link, root))]
            if not bad:
                return
            for link, why in bad:
                os.unlink(link)
                self.refuse(os.path.relpath(link, self.root).replace(os.sep, "/"), why)


def _link_escape(link: str, root: str) -> str | None:
    """Why the symlink ``link`` must not stay in a snapshot rooted at (resolved) ``root``, or None."""
    target = os.readlink(link)
    real = os.path.realpath(link)
    shown = display_path(target)
    if not (real == root or real.startswith(root + os.sep)):
        return f"symlink to {shown} leads outside the repository"
    here = os.path.realpath(os.path.dirname(link))
    if os.path.isdir(real) and (here == real or here.startswith(real + os.sep)):
        return f"symlink to {shown} is a loop (it leads to a directory that contains it)"
    return None


# ---------------------------------------------------------------------------------------------- git trees

def _parse_tree(data: bytes, hash_len: int) -> list[tuple[int, bytes, str]]:
    """``(mode, name, sha)`` of a raw tree object; ValueError if it is truncated or malformed."""
    out = []
    pos = 0
    while pos < len(data):
        sp = data.index(b" ", pos)
        nul = data.index(b"\0", sp)
        mode = int(data[pos:sp], 8)
        sha = data[nul + 1:nul + 1 + hash_len]
        if len(sha) != hash_len:
            raise ValueError("truncated tree")
        out.append((mode, data[sp + 1:nul], sha.hex()))
        pos = nul + 1 + hash_len
    return out


def _tree_entries(git: _Git, tree: str, refuse: Callable[[tuple[str, ...] | str, str], None],
                  *, max_rel: int) -> list[_Entry]:
    """The blobs, symlinks and gitlinks below ``tree``, checked as ``git fsck`` checks trees (module docstring).

    Refused entries (and everything below a refused directory) are reported to ``refuse`` and left out;
    source-controller's exclusions are applied.  The walk is bounded as it goes, not after a level: the
    moment more than ``MAX_SNAPSHOT_FILES`` entries are produced, or more than ``MAX_TREE_ENTRIES`` tree rows
    are visited (a tree listing one subtree thousands of times is visited that many times: nothing is
    deduplicated by SHA, since every path must be checked), a ``LabkitError`` stops it, before the next row.
    """
    walk = _TreeWalk(refuse, max_rel, tree)
    level: list[tuple[tuple[str, ...], str]] = [((), tree)]
    for depth in range(_MAX_DEPTH + 1):
        if not level:
            break
        if depth == _MAX_DEPTH:
            for parts, _sha in level:
                refuse(parts, f"directories nested deeper than {_MAX_DEPTH}")
            break
        objects = git.objects(sha for _parts, sha in level)
        parsed: dict[str, list[tuple[int, bytes, str]] | str] = {}  # one parse per distinct tree of the level
        nxt: list[tuple[tuple[str, ...], str]] = []
        for parts, sha in level:
            rows = parsed.get(sha)
            if rows is None:
                kind, data = objects.get(sha, ("missing", b""))
                try:
                    if kind != "tree":
                        raise ValueError(f"{kind} object where a tree was expected")
                    rows = _parse_tree(data, git.hash_len)
                except ValueError as exc:
                    rows = f"unreadable tree {sha[:12]}: {exc}"
                parsed[sha] = rows
            if isinstance(rows, str):
                refuse(parts, rows)
                continue
            walk.level(parts, rows, nxt)
        level = nxt
    return walk.entries


class _TreeWalk:
    """The bounded state of one ``_tree_entries`` walk: the entries produced and the rows visited so far."""

    def __init__(self, refuse: Callable[[tuple[str, ...] | str, str], None], max_rel: int, tree: str):
        self.refuse = refuse
        self.max_rel = max_rel
        self.what = f"tree {tree[:12]}"
        self.entries: list[_Entry] = []
        self.visited = 0

    def _visit(self) -> None:
        self.visited += 1
        if self.visited > MAX_TREE_ENTRIES:
            raise LabkitError(f"more than {MAX_TREE_ENTRIES:,} tree entries: labkit try reads at most that many "
                              "(a tree repeating one subtree over and over?)", file=self.what)

    def _add(self, entry: _Entry) -> None:
        self.entries.append(entry)
        if len(self.entries) > MAX_SNAPSHOT_FILES:
            raise LabkitError(f"more than {MAX_SNAPSHOT_FILES:,} files: labkit try snapshots at most that many",
                              file=self.what)

    def level(self, parts: tuple[str, ...], rows: list[tuple[int, bytes, str]],
              subtrees: list[tuple[tuple[str, ...], str]]) -> None:
        """Check one tree's rows and sort them into ``entries`` and ``subtrees`` (see ``_tree_entries``)."""
        counts = Counter(name for _mode, name, _sha in rows)
        reported: set[bytes] = set()
        for mode, raw, sha in rows:
            self._visit()
            name = raw.decode("utf-8", "surrogateescape")
            here = parts + (name,)
            if counts[raw] > 1:
                if raw not in reported:
                    reported.add(raw)
                    self.refuse(here, f"{counts[raw]} tree entries with this name (git fsck: duplicateEntries)")
                continue
            why = _bad_name(name)
            if why is None and len(_join(here).encode("utf-8")) > self.max_rel:
                why = f"path longer than PATH_MAX ({_PATH_MAX} bytes) in the snapshot"
            if why:
                self.refuse(here, why)
                continue
            if _ignored(here):
                continue
            if mode == _MODE_TREE:
                subtrees.append((here, sha))
            elif mode == _MODE_GITLINK:
                self._add(_Entry(here, _MODE_GITLINK, sha))
            elif mode in _BLOB_MODES:
                self._add(_Entry(here, _BLOB_MODES[mode], sha))
            else:
                self.refuse(here, f"unknown file mode {mode:o} (git fsck: badFilemode)")


def _write_blobs(git: _Git, entries: list[_Entry], snap: _Snapshot) -> None:
    """Read the entries' blobs in bounded batches and write them through ``snap``."""
    todo = [e for e in entries if e.mode != _MODE_GITLINK]
    sizes = git.sizes(e.sha for e in todo)
    batch: list[_Entry] = []
    batch_bytes = 0
    for e in todo:
        size = sizes.get(e.sha)
        if size is None:
            snap.refuse(e.parts, "the object is missing (a shallow or partial clone?)")
            continue
        if size > MAX_FILE_BYTES:
            snap.refuse(e.parts, f"larger than {MAX_FILE_BYTES // _MiB} MiB: left out of the snapshot")
            continue
        if batch and (batch_bytes + size > _BATCH_BYTES or len(batch) >= _BATCH_OBJECTS):
            _write_batch(git, batch, snap)
            batch, batch_bytes = [], 0
        batch.append(e)
        batch_bytes += size
    if batch:
        _write_batch(git, batch, snap)


def _write_batch(git: _Git, batch: list[_Entry], snap: _Snapshot) -> None:
    objects = git.objects((e.sha for e in batch), max_output=_BATCH_BYTES + len(batch) * 128 + MAX_FILE_BYTES)
    for e in batch:
        kind, data = objects.get(e.sha, ("missing", b""))
        if kind != "blob":
            snap.refuse(e.parts, f"{kind} object where a file was expected")
        elif e.mode == _MODE_LINK:
            snap.write_link(e.parts, data)
        else:
            snap.write_file(e.parts, data, e.mode == _MODE_EXEC)


def _export_commit(git: _Git, sha: str, prefix: str, dest: Path, refused: list[tuple[str, str]], *,
                   at: str = "", max_bytes: int | None = None) -> int:
    """Write the files of ``prefix`` at commit ``sha`` to ``dest`` (checked and confined); returns bytes written."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    snap = _Snapshot(tmp, refused, at=at, max_bytes=max_bytes, what=f"{prefix or '.'}@{sha[:12]}")
    try:
        tree = git.subtree(sha, prefix)
        if tree is not None:  # else the root did not exist yet at that commit: an empty directory
            _write_blobs(git, _tree_entries(git, tree, snap.refuse, max_rel=snap.max_rel), snap)
        snap.confine()
    except BaseException:
        snap.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.replace(tmp, dest)
    return snap.bytes


# ---------------------------------------------------------------------------------------------- the work tree

_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket"}


class _TreeCopy:
    """One copy of a work tree into a ``_Snapshot`` (see ``_copy_tree``)."""

    def __init__(self, snap: _Snapshot, seen: dict[str, tuple[int, str]] | None):
        self.snap = snap
        self.seen = seen
        self.digest = hashlib.sha1()

    def directory(self, fd: int, parts: tuple[str, ...]) -> None:
        if not self.snap.mkdir(parts):
            return
        try:
            with os.scandir(fd) as it:
                names = sorted(entry.name for entry in it)
        except OSError as exc:
            self.snap.refuse(parts, f"the directory cannot be listed: {exc.strerror or exc}")
            return
        files: list[tuple[str, os.stat_result]] = []
        dirs: list[str] = []
        for name in names:
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError as exc:
                self.snap.refuse(parts + (name,), f"cannot be read: {exc.strerror}")
                continue
            if stat.S_ISDIR(st.st_mode):
                if name not in SOURCE_IGNORE_DEFAULTS["dirs"]:
                    dirs.append(name)
            elif not _ignored(parts + (name,)):
                files.append((name, st))
        for name, st in files:
            self.entry(fd, parts + (name,), st)
        for name in dirs:
            self.subdirectory(fd, parts + (name,))

    def subdirectory(self, fd: int, parts: tuple[str, ...]) -> None:
        if len(parts) > _MAX_DEPTH:
            self.snap.refuse(parts, f"directories nested deeper than {_MAX_DEPTH}")
            return
        why = self.snap.check(parts)
        if why:
            self.snap.refuse(parts, why)
            return
        try:
            sub = os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except OSError as exc:
            self.snap.refuse(parts, f"cannot be read: {exc.strerror}")
            return
        try:
            self.directory(sub, parts)
        finally:
            os.close(sub)

    def entry(self, fd: int, parts: tuple[str, ...], st: os.stat_result) -> None:
        why = self.snap.check(parts)
        if why:
            self.snap.refuse(parts, why)
        elif stat.S_ISLNK(st.st_mode) or stat.S_ISREG(st.st_mode):
            try:  # /proc, /sys and the like: a file can fail to read (EAGAIN, EIO, EACCES...): that file is left out
                if stat.S_ISLNK(st.st_mode):
                    self.link(fd, parts)
                else:
                    self.file(fd, parts, st)
            except OSError as exc:
                self.snap.refuse(parts, f"cannot be read: {exc.strerror or exc}")
        else:
            self.snap.refuse(parts, f"{_KINDS.get(stat.S_IFMT(st.st_mode), 'not a regular file')}: never opened")

    def link(self, fd: int, parts: tuple[str, ...]) -> None:
        target = os.fsencode(os.readlink(parts[-1], dir_fd=fd))
        rel = _join(parts)
        if self.seen is not None:
            self.seen[rel] = (_MODE_LINK, _blob_sha(target))
        if self.snap.write_link(parts, target):
            self.digest.update(b"L" + rel.encode() + b"\0" + target + b"\0")

    def file(self, fd: int, parts: tuple[str, ...], st: os.stat_result) -> None:
        executable = bool(st.st_mode & stat.S_IXUSR)
        mode = _MODE_EXEC if executable else _MODE_FILE
        try:
            ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        except OSError as exc:
            self.snap.refuse(parts, f"cannot be opened: {exc.strerror}")
            return
        try:
            fst = os.fstat(ffd)
            if not stat.S_ISREG(fst.st_mode):
                self.snap.refuse(parts, "not a regular file when opened: never read")
                return
            if fst.st_size > MAX_FILE_BYTES:  # never read (a sparse file can claim terabytes)
                self.too_big(parts, mode)
                return
            data = _read_at_most(ffd, MAX_FILE_BYTES + 1)
        finally:
            os.close(ffd)
        if len(data) > MAX_FILE_BYTES:
            self.too_big(parts, mode)
            return
        rel = _join(parts)
        if self.seen is not None:
            self.seen[rel] = (mode, _blob_sha(data))
        if self.snap.write_file(parts, data, executable):
            self.digest.update(b"F" + rel.encode() + b"\0" + hashlib.sha1(data).digest())

    def too_big(self, parts: tuple[str, ...], mode: int) -> None:
        """A file over ``MAX_FILE_BYTES``: left out unread.  For the dirty check it counts as different from
        ``HEAD`` (an empty blob SHA matches nothing), whatever ``HEAD`` holds: the simple, safe answer, since
        hashing it would mean reading it.  So a tree with a huge tracked file is always "dirty"; a huge file that
        is untracked and ignored still does not count."""
        self.snap.refuse(parts, f"larger than {MAX_FILE_BYTES // _MiB} MiB: left out of the snapshot")
        if self.seen is not None:
            self.seen[_join(parts)] = (mode, "")


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk = os.read(fd, min(1 << 20, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _copy_tree(src: Path, dest: Path, refused: list[tuple[str, str]],
               seen: dict[str, tuple[int, str]] | None = None) -> str:
    """Copy a work tree into a new snapshot ``dest`` (module docstring); returns a SHA-1 over paths and contents.

    ``seen`` (if given) receives ``path -> (git mode, blob SHA-1)`` of every file and symlink read, for the
    dirty check.
    """
    snap = _Snapshot(dest, refused, what=str(src))
    copy = _TreeCopy(snap, seen)
    fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        copy.directory(fd, ())
    finally:
        os.close(fd)
        snap.close()
    snap.confine()
    return copy.digest.hexdigest()


def _differs_from(git: _Git, head: str, prefix: str, seen: dict[str, tuple[int, str]], max_rel: int) -> bool:
    """Whether the copied work tree (``seen``) differs from ``prefix`` at ``head`` (module docstring).

    ``max_rel`` is the snapshot's longest path, so that a path both sides leave out is no difference.
    """
    tree = git.subtree(head, prefix)
    try:
        entries = [] if tree is None else _tree_entries(git, tree, lambda *_: None, max_rel=max_rel)
    except LabkitError:
        return True
    tracked = {_join(e.parts): (e.mode, e.sha) for e in entries if e.mode != _MODE_GITLINK}
    gitlinks = tuple(_join(e.parts) + "/" for e in entries if e.mode == _MODE_GITLINK)
    if any(seen.get(path) != blob for path, blob in tracked.items()):
        return True
    untracked = [p for p in seen if p not in tracked and not p.startswith(gitlinks)]
    if not untracked:
        return False
    full = [f"{prefix}/{p}" if prefix else p for p in untracked]
    try:
        return not set(full) <= git.ignored(full)
    except GitError:
        return True


# ---------------------------------------------------------------------------------------------- the source

def normalise_url(url: str) -> str:
    """A comparable form of a git URL: scheme, user, ``.git`` suffix and case of the host dropped.

    ``https://github.com/Org/Repo.git``, ``ssh://git@github.com/Org/Repo`` and
    ``git@github.com:Org/Repo.git`` all become ``github.com/Org/Repo``.
    """
    u = (url or "").strip()
    m = re.match(r"^[\w.-]+@([\w.-]+):(.*)$", u)
    if m and "://" not in u:
        host, path = m.group(1), m.group(2)
    else:
        p = urllib.parse.urlsplit(u)
        if p.scheme == "file":
            return "file://" + os.path.realpath(urllib.parse.unquote(p.path))
        host, path = (p.hostname or ""), p.path
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    return f"{host.lower()}/{path}" if host else path


def local_path_of(url: str) -> Path | None:
    """The local directory a ``file://`` URL or plain path names, if it exists on this machine."""
    if not url:
        return None
    if url.startswith("file://"):
        p = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    elif _REMOTE_URL.match(url):
        return None
    else:
        p = Path(url)
    return p if p.is_dir() else None


def check_subpath(root: Path, sub: str, *, what: str = "--path") -> str:
    """``sub`` as a clean relative POSIX path inside ``root``; LabkitError if it escapes or is missing."""
    text = (sub or ".").replace("\\", "/")
    if PurePosixPath(text).is_absolute():
        raise LabkitError(f"'{sub}' is absolute; give a path relative to the repository root", field=what)
    norm = os.path.normpath(text).replace(os.sep, "/")
    if norm == ".." or norm.startswith("../"):
        raise LabkitError(f"'{sub}' escapes the repository root", field=what)
    full = root / norm
    real = os.path.realpath(full)
    root_real = os.path.realpath(root)
    if not (real == root_real or real.startswith(root_real + os.sep)):
        raise LabkitError(f"'{sub}' leads outside the repository (through a symlink to {real})", field=what)
    if not full.is_dir():
        raise LabkitError(f"'{sub}' is not a directory of the repository", field=what)
    return "." if norm in ("", ".") else norm


class _ShowShim:
    """``source._repo.git.show(...)`` for callers written against GitPython: ``git show`` through ``run_git``.

    Textconv, external diff, colour and signatures are off, and the output is capped at ``MAX_FILE_BYTES``.
    Kept only until every caller uses ``RepoSource.changed_paths`` / ``read_at``.
    """

    def __init__(self, git: _Git):
        self._git = git
        self.git = self

    def show(self, *args: str) -> str:
        out = self._git.run("show", "--no-textconv", "--no-ext-diff", "--no-color", "--no-show-signature", *args,
                            max_output=MAX_FILE_BYTES)
        return out.decode("utf-8", "replace").rstrip("\n")


@dataclass
class RepoSource:
    """One revision of the user's repository, copied to ``root`` (see the module docstring)."""

    input: str  # what the user gave
    display: str  # how messages name the repository root
    root: Path  # the private snapshot (renders may write here)
    revision: str  # a commit SHA, or a content hash for a dirty working tree
    label: str  # branch / ref name, or "worktree"
    dirty: bool = False
    git_dir: Path | None = None  # the enclosing git repository, when there is one
    prefix: str = ""  # the root's path inside that repository ('' at top level)
    origin_urls: list[str] = field(default_factory=list)
    _git: _Git | None = None
    refused: list[tuple[str, str]] = field(default_factory=list)  # (escaped path, reason): left out of a snapshot
    _workdir: Path | None = None
    _history_bytes: int = 0
    _refused_commits: dict[str, LabkitError] = field(default_factory=dict)  # sha -> why its export was refused

    @property
    def has_git(self) -> bool:
        return self._git is not None

    @property
    def _repo(self) -> _ShowShim | None:
        """Compatibility for ``git.show`` callers; prefer ``changed_paths`` / ``read_at``."""
        return _ShowShim(self._git) if self._git is not None else None

    @property
    def short(self) -> str:
        return self.revision[:12]

    def is_self_url(self, url: str) -> bool:
        """Whether a GitRepository / Application URL names this repository (by remote URL or local path)."""
        n = normalise_url(url)
        if any(n == normalise_url(o) for o in self.origin_urls):
            return True
        local = local_path_of(url)
        if local is None:
            return False
        real = os.path.realpath(local)
        candidates = {os.path.realpath(self.input) if os.path.exists(self.input) else ""}
        if self.git_dir is not None:
            candidates.add(os.path.realpath(self.git_dir))
        return real in candidates

    # ------------------------------------------------------------------ history

    def history(self, n: int) -> list[tuple[str, str]]:
        """``(sha, subject)`` of the last ``n`` commits touching the root, newest first."""
        if n <= 0 or self._git is None:
            return []
        if n > MAX_HISTORY:
            raise LabkitError(f"at most {MAX_HISTORY} commits can be checked (got {n})", field="--history")
        start = self.revision if _HEX.fullmatch(self.revision) and not self.dirty else "HEAD"
        if self._git.commit(start) is None:
            return []  # no commit yet
        try:
            out = self._git.run("log", f"-n{int(n)}", "--format=%H%x1f%s", "--no-show-signature", "--no-color",
                                "--end-of-options", start, "--", f":(top,literal){self.prefix}")
        except GitError as exc:
            raise LabkitError(f"cannot read history: {exc.detail}", field="--history") from None
        rows = []
        for line in out.decode("utf-8", "replace").splitlines():
            sha, sep, subject = line.partition("\x1f")
            if sep and _HEX.fullmatch(sha):
                rows.append((sha, subject))
        return rows

    def export(self, sha: str) -> Path:
        """The root as it was at commit ``sha`` (cached per commit under the work directory, checked as ``--ref``)."""
        assert self._workdir is not None and self._git is not None
        if not _HEX.fullmatch(sha):
            raise LabkitError(f"{sha!r} is not a commit SHA", field="--history")
        dest = self._workdir / "history" / sha
        if sha in self._refused_commits:  # refused once (and recorded): never walked again
            raise self._refused_commits[sha]
        if not dest.is_dir():
            budget = MAX_HISTORY_BYTES - self._history_bytes
            refused: list[tuple[str, str]] = []
            try:
                if budget <= 0:
                    raise LabkitError(f"the history exports of this run reached {MAX_HISTORY_BYTES // _MiB} MiB",
                                      field="--history")
                self._history_bytes += _export_commit(self._git, sha, self.prefix, dest, refused, at=f"@{sha[:12]}",
                                                      max_bytes=min(budget, MAX_SNAPSHOT_BYTES))
            except LabkitError as exc:
                refused.append((f"@{sha[:12]}", f"history not checked at this commit: {exc}"))
                self._refused_commits[sha] = exc
                raise
            finally:
                self.refused.extend(refused)
        return dest

    def changed_paths(self, sha: str) -> list[str]:
        """Paths (relative to the repository top) commit ``sha`` changed below the root."""
        if self._git is None or not _HEX.fullmatch(sha):
            return []
        out = self._git.run("diff-tree", "--no-commit-id", "--name-only", "-r", "-z", "--root", "--no-textconv",
                            "--no-ext-diff", "--end-of-options", sha, "--", f":(top,literal){self.prefix}")
        return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]

    def read_at(self, sha: str, path: str) -> bytes | None:
        """The content of ``path`` (relative to the repository top) at commit ``sha``; None if absent or too big."""
        if self._git is None or not _HEX.fullmatch(sha):
            return None
        obj = self._git.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{sha}:{path}",
                            ok=(0, 1, 128)).decode("ascii", "replace").strip()
        if not _HEX.fullmatch(obj) or self._git.sizes([obj]).get(obj, MAX_FILE_BYTES + 1) > MAX_FILE_BYTES:
            return None
        return self._git.objects([obj]).get(obj, ("", None))[1]

    def close(self) -> None:
        pass


def open_source(target: str, *, ref: str | None, workdir: Path) -> RepoSource:
    """Resolve the user's PATH_OR_GIT_URL and ``--ref`` into a snapshot under ``workdir``.

    Raises ``LabkitError`` (exit 2 in the CLI) for a remote URL, a path that is
    not a directory, ``--ref`` without git, a ref that does not exist or starts
    with ``-``, a repository git refuses for its ownership, or a snapshot over
    the bounds.
    """
    raw = target
    if ref:
        _refuse_option(ref, "--ref")
    if target.startswith("file://"):
        target = urllib.parse.unquote(urllib.parse.urlsplit(target).path)
    elif _REMOTE_URL.match(target):
        raise LabkitError(
            f"'{raw}' is a remote URL; labkit try reads repositories on this machine only "
            "(clone it first, or pass a file:// URL or a path)", field="PATH_OR_GIT_URL")
    path = Path(target).expanduser()
    if not path.exists():
        raise LabkitError("no such file or directory", file=raw)
    if not path.is_dir():
        raise LabkitError("not a directory (give the repository root, or a directory inside it)", file=raw)
    path = path.resolve()
    git = _discover(path, raw)
    workdir = Path(workdir)
    snap = workdir / "snapshot"
    refused: list[tuple[str, str]] = []
    if git is None:
        if ref:
            raise LabkitError(f"--ref {ref!r} needs a git repository, and {raw} is a plain directory", field="--ref")
        digest = _copy_tree(path, snap, refused)
        return RepoSource(raw, str(path), snap, digest, "worktree", dirty=True, _workdir=workdir, refused=refused)
    top = git.top
    prefix = "" if top is None else os.path.relpath(path, top).replace(os.sep, "/")
    prefix = "" if prefix == "." else prefix
    origins = _origin_urls(git)
    git_dir = top if top is not None else path
    if ref or top is None:
        rev = ref or "HEAD"
        sha = git.commit(rev)
        if sha is None:
            raise LabkitError(f"'{rev}' is not a branch, tag or commit of {git_dir}", field="--ref")
        _export_commit(git, sha, prefix, snap, refused)
        label = rev if rev != "HEAD" else _branch_name(git) or "HEAD"
        return RepoSource(raw, str(path), snap, sha, label, False, git_dir, prefix, origins, _git=git,
                          _workdir=workdir, refused=refused)
    head = git.commit("HEAD") or ""
    seen: dict[str, tuple[int, str]] = {}
    digest = _copy_tree(path, snap, refused, seen)
    max_rel = _PATH_MAX - len(os.fsencode(snap)) - 2
    if not head or _differs_from(git, head, prefix, seen, max_rel):
        return RepoSource(raw, str(path), snap, digest, "worktree", True, git_dir, prefix, origins, _git=git,
                          _workdir=workdir, refused=refused)
    return RepoSource(raw, str(path), snap, head, _branch_name(git) or "HEAD", False, git_dir, prefix, origins,
                      _git=git, _workdir=workdir, refused=refused)


class SnapshotRemote:
    """A git remote serving one snapshot to Flux's source-controller and Argo's repo-server.

    Implements the part of ``labkit.gitops.repo.ManifestRepo`` the controllers
    use: ``url``, ``default_branch``, ``fetch``, ``export``, ``files``,
    ``read``, ``branches``, ``on_push``.  Every ref resolves to the snapshot.
    """

    def __init__(self, source: RepoSource, url: str):
        self.source = source
        self.url = url
        self.default_branch = source.label if source.label not in ("worktree", "HEAD") else "main"
        self.sha = source.revision if re.fullmatch(r"[0-9a-f]{40}", source.revision) else \
            hashlib.sha1(source.revision.encode()).hexdigest()
        self.available = True
        self._files: list[str] | None = None

    def fetch(self, ref: str | None = None) -> str:
        return self.sha

    def resolve(self, ref: str) -> str:
        return self.sha

    def export(self, sha: str) -> Path:
        return self.source.root

    def branches(self) -> dict[str, str]:
        return {self.default_branch: self.sha}

    def files(self, ref: str | None = None) -> list[str]:
        if self._files is None:
            root = self.source.root
            out = []
            for dirpath, _dirs, filenames in os.walk(root):
                for name in filenames:
                    out.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
            self._files = sorted(out)
        return list(self._files)

    def read(self, path: str, ref: str | None = None) -> str:
        from labkit.gitops.sandbox import read_confined

        if not (self.source.root / path).exists() and not (self.source.root / path).is_symlink():
            raise LabkitError(f"path '{path}' does not exist in the snapshot", file=path)
        data = read_confined(self.source.root, path)  # symlinks out, FIFOs, devices, huge files: refused
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise LabkitError(f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start}",
                              file=path) from None

    def on_push(self, fn: Any) -> Any:
        return lambda: None


def refusal_notes(refused: Sequence[tuple[str, str]], *, cap: int = 20) -> list[str]:
    """Report notes for ``RepoSource.refused``: one line each, at most ``cap`` (then a count of the rest)."""
    notes = [f"left out of the snapshot: {path}: {why}" for path, why in refused[:cap]]
    if len(refused) > cap:
        notes.append(f"... and {len(refused) - cap} more file(s) left out of the snapshot")
    return notes
