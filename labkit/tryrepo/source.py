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

The snapshot
============

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
  git's object database, symlinks kept as symlinks so that confinement
  (``labkit.gitops.render.confine``) still sees an escape.

History
=======

``history(n)`` lists the last ``n`` commits that touched the root (``git log
-n N -- <root>``), newest first, and ``export(sha)`` writes each commit's
version of the root into its own directory.  ``labkit.tryrepo.pitfalls``
renders every revision and compares them, which is how a changed
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
import shutil
import stat
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from labkit.errors import LabkitError
from labkit.gitops.repo import SOURCE_IGNORE_DEFAULTS

__all__ = ["RepoSource", "SnapshotRemote", "open_source", "normalise_url", "check_subpath"]

_REMOTE_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)", re.IGNORECASE)
_MODE_LINK = 0o120000
#: Working-tree files larger than this are left out of the snapshot (binaries, build outputs).
MAX_FILE_BYTES = 20 * 1024 * 1024
_MODE_GITLINK = 0o160000


def _ignored(parts: tuple[str, ...]) -> bool:
    """Whether source-controller would leave this path (as parts) out of an artifact."""
    return any(d in SOURCE_IGNORE_DEFAULTS["dirs"] for d in parts[:-1]) or (
        bool(parts) and (parts[-1] in SOURCE_IGNORE_DEFAULTS["files"] or parts[-1] in SOURCE_IGNORE_DEFAULTS["dirs"])
    )


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
    _repo: Any = None
    skipped: list[str] = field(default_factory=list)
    _workdir: Path | None = None

    @property
    def has_git(self) -> bool:
        return self._repo is not None

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
        if n <= 0 or self._repo is None:
            return []
        start = self.label if self.label != "worktree" else "HEAD"
        if not self.dirty and self.revision and self.label != "worktree":
            start = self.revision
        try:
            out = self._repo.git.log(start, f"-n{int(n)}", "--format=%H%x1f%s", "--", self.prefix or ".")
        except Exception as exc:  # noqa: BLE001 - an empty repository, a shallow clone...
            raise LabkitError(f"cannot read history: {_git_text(exc)}", field="--history") from None
        rows = []
        for line in out.splitlines():
            if "\x1f" in line:
                sha, subject = line.split("\x1f", 1)
                rows.append((sha, subject))
        return rows

    def export(self, sha: str) -> Path:
        """The root as it was at commit ``sha`` (cached per commit under the work directory)."""
        assert self._workdir is not None
        dest = self._workdir / "history" / sha
        if not dest.is_dir():
            _export_commit(self._repo, sha, self.prefix, dest)
        return dest

    def close(self) -> None:
        if self._repo is not None:
            try:
                self._repo.close()
            except Exception:  # noqa: BLE001 - best effort
                pass


def _git_text(exc: Exception) -> str:
    text = getattr(exc, "stderr", None) or str(exc)
    text = str(text).strip().strip("'").strip()
    return text.replace("stderr: ", "").strip().strip("'").splitlines()[-1] if text else type(exc).__name__


def _export_commit(repo: Any, sha: str, prefix: str, dest: Path) -> None:
    """Write the files of ``prefix`` at commit ``sha`` to ``dest`` (source-controller exclusions applied)."""
    import git

    commit = repo.commit(sha)
    tree = commit.tree
    if prefix:
        try:
            tree = tree / prefix
        except KeyError:
            dest.mkdir(parents=True, exist_ok=True)  # the root did not exist yet at that commit
            return
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for item in tree.traverse():
        if not isinstance(item, git.Blob):
            continue
        rel = item.path[len(prefix) + 1:] if prefix else item.path
        parts = tuple(rel.split("/"))
        if _ignored(parts) or item.mode == _MODE_GITLINK:
            continue
        target = tmp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        data = item.data_stream.read()
        if item.mode == _MODE_LINK:
            os.symlink(data.decode("utf-8"), target)
        else:
            target.write_bytes(data)
            if item.mode & stat.S_IXUSR:
                target.chmod(0o755)
    os.replace(tmp, dest)


def _copy_tree(src: Path, dest: Path, skipped: list[str] | None = None) -> str:
    """Copy a working tree (source-controller exclusions applied); returns a SHA-1 over paths and contents.

    Files over ``MAX_FILE_BYTES`` (build outputs, binaries: never manifests) are not copied; their paths are
    appended to ``skipped``.
    """
    skipped = skipped if skipped is not None else []
    h = hashlib.sha1()
    dest.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(src):
        rel_dir = os.path.relpath(dirpath, src)
        rel_parts = () if rel_dir == "." else tuple(rel_dir.split(os.sep))
        keep = []
        for d in sorted(dirnames):
            full = os.path.join(dirpath, d)
            if d in SOURCE_IGNORE_DEFAULTS["dirs"]:
                continue
            if os.path.islink(full):
                filenames.append(d)  # copy the link itself, do not descend
                continue
            keep.append(d)
        dirnames[:] = keep
        out_dir = dest.joinpath(*rel_parts)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in sorted(filenames):
            parts = rel_parts + (name,)
            if _ignored(parts):
                continue
            full = os.path.join(dirpath, name)
            rel = "/".join(parts)
            if os.path.islink(full):
                link = os.readlink(full)
                os.symlink(link, out_dir / name)
                h.update(b"L" + rel.encode() + b"\0" + link.encode() + b"\0")
                continue
            if not os.path.isfile(full):
                continue
            if os.path.getsize(full) > MAX_FILE_BYTES:
                skipped.append(rel)
                continue
            with open(full, "rb") as fh:
                data = fh.read()
            (out_dir / name).write_bytes(data)
            h.update(b"F" + rel.encode() + b"\0" + hashlib.sha1(data).digest())
    return h.hexdigest()


def open_source(target: str, *, ref: str | None, workdir: Path) -> RepoSource:
    """Resolve the user's PATH_OR_GIT_URL and ``--ref`` into a snapshot under ``workdir``.

    Raises ``LabkitError`` (exit 2 in the CLI) for a remote URL, a path that is
    not a directory, ``--ref`` without git, or a ref that does not exist.
    """
    import git

    raw = target
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
    repo = None
    try:
        repo = git.Repo(str(path), search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        repo = None
    except Exception:  # noqa: BLE001 - a broken .git: treat as a plain directory
        repo = None
    workdir = Path(workdir)
    snap = workdir / "snapshot"
    if repo is None:
        if ref:
            raise LabkitError(f"--ref {ref!r} needs a git repository, and {raw} is a plain directory", field="--ref")
        skipped: list[str] = []
        digest = _copy_tree(path, snap, skipped)
        return RepoSource(raw, str(path), snap, digest, "worktree", dirty=True, _workdir=workdir, skipped=skipped)
    repo.git.update_environment(GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    top = Path(repo.working_tree_dir).resolve() if repo.working_tree_dir else None
    prefix = "" if top is None else os.path.relpath(path, top).replace(os.sep, "/")
    prefix = "" if prefix == "." else prefix
    origins = []
    try:
        origins = [u for r in repo.remotes for u in r.urls]
    except Exception:  # noqa: BLE001
        origins = []
    git_dir = top if top is not None else path
    if ref or top is None:
        rev = ref or "HEAD"
        try:
            sha = repo.commit(rev).hexsha
        except Exception:  # noqa: BLE001 - BadName, ValueError, an empty repository
            raise LabkitError(f"'{rev}' is not a branch, tag or commit of {git_dir}", field="--ref") from None
        _export_commit(repo, sha, prefix, snap)
        label = rev if rev != "HEAD" else _branch_name(repo) or "HEAD"
        return RepoSource(raw, str(path), snap, sha, label, False, git_dir, prefix, origins, _repo=repo,
                          _workdir=workdir)
    dirty = True
    head = ""
    try:
        head = repo.head.commit.hexsha
        dirty = repo.is_dirty(untracked_files=True, path=prefix or None)
    except Exception:  # noqa: BLE001 - no commit yet
        dirty = True
    skipped = []
    digest = _copy_tree(path, snap, skipped)
    if dirty or not head:
        return RepoSource(raw, str(path), snap, digest, "worktree", True, git_dir, prefix, origins, _repo=repo,
                          _workdir=workdir, skipped=skipped)
    return RepoSource(raw, str(path), snap, head, _branch_name(repo) or "HEAD", False, git_dir, prefix, origins,
                      _repo=repo, _workdir=workdir, skipped=skipped)


def _branch_name(repo: Any) -> str:
    try:
        return repo.active_branch.name
    except Exception:  # noqa: BLE001 - detached HEAD
        return ""


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
        p = self.source.root / path
        try:
            return p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise LabkitError(f"path '{path}' does not exist in the snapshot", file=path) from None

    def on_push(self, fn: Any) -> Any:
        return lambda: None
