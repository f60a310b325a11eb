"""``argocd-repo-server``: resolving revisions and generating manifests, with Argo's caching.

In Argo CD the application controller never touches git itself: it asks the
repo-server for "the manifests of ``repoURL`` at ``targetRevision``, path
``path``".  The repo-server resolves the revision (``git ls-remote``; a branch,
a tag, ``HEAD`` meaning the default branch, or a commit SHA), checks the commit
out and generates manifests according to the *source type* it detects:

* **Kustomize** when the path holds a ``kustomization.yaml`` (or ``.yml`` /
  ``Kustomization``): real ``kubectl kustomize`` over the exported commit
  (``labkit.gitops.render.Renderer``, confined to the checkout);
* **Directory** otherwise: the ``*.yaml``, ``*.yml`` and ``*.json`` files of
  the path itself — and of its subdirectories only with ``directory.recurse:
  true`` — parsed as Kubernetes manifests, no kustomize involved.  That is how
  Argo reads a plain directory, and it makes a fleet of plain-YAML services
  cheap to render (no process per application).

Generated manifests are cached per ``(repoURL, commit, path, recurse)`` — Argo
keeps them in Redis keyed by revision — so a refresh at an unchanged commit
costs nothing; a "hard" refresh bypasses the cache.  A path that does not exist
at that commit fails with Argo's text ``<path>: app path does not exist``.

Reading is content-addressed: a commit's tree is listed once (``git ls-tree``)
and each file is read and parsed by its blob id, so a new commit that changes
one service does not re-read the other thousand (the *virtual* cost of a
manifest generation is still charged per revision by the controller).
``ls-remote`` answers are remembered until the next push to that repository —
which is exactly when they could change.

The cached objects are shared: callers must treat them as read-only and copy
what they change (the controller replaces ``metadata`` when it adds the
tracking annotation and namespace, and leaves the rest shared).

Failures: an unreachable host is ``TemporaryError("failed to list refs: ...")``;
a ref pointing at a commit the remote does not have fails the checkout with
git's ``not our ref`` and is never remembered; a generation that times out
(``RenderTimeoutError``, or the ``gate`` fault hook) is not cached, while
deterministic errors (bad YAML, a missing path, an unknown hook type — named
with its file) are cached per revision like manifests.

Time is the controller's business: ``labkit.argo.controller`` yields the
modelled ls-remote and manifest-generation durations around these calls.
"""
from __future__ import annotations

import posixpath
from collections import OrderedDict
from typing import Any, Callable

from labkit.argo.hooks import validate_hook
from labkit.core.errors import LabkitError, TemporaryError
from labkit.gitops.render import RenderTimeoutError

__all__ = ["RepoServer", "KUSTOMIZATION_FILES"]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_MANIFEST_EXT = (".yaml", ".yml", ".json")


class RepoServer:
    """Revision resolution and manifest generation over registered ``ManifestRepo`` remotes."""

    def __init__(self) -> None:
        self._repos: dict[str, Any] = {}
        self._trees: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()
        self._files: dict[tuple[str, str], list[str]] = {}
        self._manifests: dict[tuple[str, str, str, bool], list[dict[str, Any]] | LabkitError] = {}
        self._parsed: OrderedDict[tuple[str, str], list[dict[str, Any]]] = OrderedDict()
        self._resolved: dict[tuple[str, str], str] = {}
        self._renderer: Any = None
        self.generated = 0  # cache misses (manifest generations)
        #: called with the app path before every manifest generation (a cache miss); raising
        #: ``RenderTimeoutError`` models a generation that outlived ``--repo-server-timeout-seconds``
        #: (``labkit.faults.argo`` plugs a ``FaultyRenderer`` in here)
        self.gate: Callable[[str], None] | None = None

    @property
    def renderer(self) -> Any:
        """What renders Kustomize sources (``labkit.gitops.render.Renderer`` unless replaced, e.g. by a
        ``FaultyRenderer`` over it)."""
        if self._renderer is None:
            from labkit.gitops.render import Renderer

            self._renderer = Renderer()
        return self._renderer

    @renderer.setter
    def renderer(self, value: Any) -> None:
        self._renderer = value

    # ------------------------------------------------------------------ repositories

    def add(self, url: str, repo: Any) -> None:
        self._repos[url.rstrip("/")] = repo
        on_push = getattr(repo, "on_push", None)
        if callable(on_push):
            on_push(lambda _event: self._resolved.clear())

    def repo(self, url: str) -> Any:
        repo = self._repos.get(url.rstrip("/"))
        if repo is None:
            raise LabkitError(f"repository not found: {url} is not registered with ArgoSystem.add_repo",
                              field="spec.source.repoURL")
        return repo

    def urls_of(self, repo: Any) -> list[str]:
        return [u for u, r in self._repos.items() if r is repo]

    def resolve(self, url: str, target_revision: str) -> str:
        """``git ls-remote``: branch, tag, ``HEAD`` or SHA → commit SHA (TemporaryError if unreachable)."""
        repo = self.repo(url)
        ref = target_revision or "HEAD"
        if ref == "HEAD":
            ref = repo.default_branch
        key = (url, ref)
        hit = self._resolved.get(key)
        if hit is not None and getattr(repo, "available", True):
            return hit  # nothing was pushed since: ls-remote would answer the same
        try:
            sha = repo.fetch(ref)
        except TemporaryError as err:
            # the host is unreachable: Argo's ls-remote says "failed to list refs: <the transport's error>"
            cause = err.message.split("': ", 1)[1] if "': " in err.message else err.message
            raise TemporaryError(message=f"failed to list refs: {cause}", reason=err.reason or "GitError") from None
        except LabkitError as err:
            raise LabkitError(f"unable to resolve '{target_revision}' to a commit SHA: {err.detail}",
                              field="spec.source.targetRevision") from None
        self._check_commit(repo, sha)
        self._resolved[key] = sha
        return sha

    @staticmethod
    def _check_commit(repo: Any, sha: str) -> None:
        """A ref that points at a commit the remote does not have fails the checkout, and is never remembered.

        (A corrupt pack or a botched force-push: ``ls-remote`` answers a SHA that
        ``git fetch`` then cannot get.)  Raises ``TemporaryError`` with git's words.
        """
        resolve = getattr(repo, "resolve", None)
        if not callable(resolve):
            return
        try:
            resolve(sha)
        except LabkitError:
            raise TemporaryError(
                message=f"failed to checkout {sha}: `git fetch origin {sha} --force --prune` failed exit status 128: "
                        f"fatal: remote error: upload-pack: not our ref {sha}", reason="GitError") from None

    def branch_of(self, url: str, target_revision: str) -> str:
        """The branch a target revision follows (HEAD → default branch); '' for tags and SHAs."""
        repo = self.repo(url)
        ref = target_revision or "HEAD"
        if ref == "HEAD":
            return repo.default_branch
        try:
            return ref if ref in repo.branches() else ""
        except Exception:  # pragma: no cover - defensive
            return ""

    # ------------------------------------------------------------------ files

    def _tree(self, url: str, sha: str) -> dict[str, str]:
        """``path -> blob id`` of a commit (``git ls-tree -r``), a few commits kept."""
        key = (url, sha)
        hit = self._trees.get(key)
        if hit is not None:
            self._trees.move_to_end(key)
            return hit
        repo = self.repo(url)
        tree: dict[str, str] = {}
        handle = getattr(repo, "git", None)
        if handle is not None and hasattr(handle, "git"):
            for line in handle.git.ls_tree("-r", "-z", sha).split("\0"):
                if not line:
                    continue
                meta, path = line.split("\t", 1)
                _mode, kind, blob = meta.split()
                if kind == "blob":
                    tree[path] = blob
        else:  # pragma: no cover - a repository object without a GitPython handle
            tree = {p: "" for p in repo.files(sha)}
        self._trees[key] = tree
        while len(self._trees) > 8:
            self._trees.popitem(last=False)
        return tree

    def files(self, url: str, sha: str) -> list[str]:
        key = (url, sha)
        cached = self._files.get(key)
        if cached is None:
            cached = sorted(self._tree(url, sha))
            self._files[key] = cached
            if len(self._files) > 64:
                self._files.pop(next(iter(self._files)))
        return cached

    def _read(self, url: str, sha: str, path: str) -> tuple[str, str]:
        """``(blob id, text)`` of one file: blobs are read by id, so unchanged files cost nothing across commits."""
        blob = self._tree(url, sha).get(path, "")
        repo = self.repo(url)
        if blob:
            data = repo.git.odb.stream(bytes.fromhex(blob)).read()
            try:
                return blob, data.decode("utf-8")
            except UnicodeDecodeError as err:
                raise LabkitError(f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start} "
                                  f"({err.reason})", file=path) from None
        return "", repo.read(path, sha)  # pragma: no cover

    def directories(self, url: str, sha: str) -> list[str]:
        """Every directory of the commit (hidden ones excluded), as the git generator lists them."""
        dirs: set[str] = set()
        for f in self.files(url, sha):
            parts = f.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                if any(p.startswith(".") for p in parts[:i]):
                    break
                dirs.add("/".join(parts[:i]))
        return sorted(dirs)

    # ------------------------------------------------------------------ manifests

    def cached(self, url: str, sha: str, path: str, recurse: bool = False) -> bool:
        return (url, sha, path, recurse) in self._manifests

    def source_type(self, url: str, sha: str, path: str) -> str:
        prefix = f"{path}/" if path else ""
        names = set(self.files(url, sha))
        return "Kustomize" if any(f"{prefix}{k}" in names for k in KUSTOMIZATION_FILES) else "Directory"

    def manifests(self, url: str, sha: str, path: str, *, recurse: bool = False,
                  hard: bool = False) -> list[dict[str, Any]]:
        """The objects at ``path`` of commit ``sha`` (shared, read-only). Raises LabkitError."""
        key = (url, sha, path, recurse)
        hit = None if hard else self._manifests.get(key)
        if hit is not None:
            if isinstance(hit, LabkitError):
                raise hit
            return hit
        self.generated += 1
        if self.gate is not None:
            self.gate(path or ".")  # fault injection: a generation that times out is not cached
        try:
            result: list[dict[str, Any]] | LabkitError = self._generate(url, sha, path, recurse)
        except RenderTimeoutError:
            raise  # not deterministic: the next refresh generates again
        except LabkitError as err:
            result = err
        self._manifests[key] = result
        if isinstance(result, LabkitError):
            raise result
        return result

    def _generate(self, url: str, sha: str, path: str, recurse: bool) -> list[dict[str, Any]]:
        files = self.files(url, sha)
        prefix = f"{path}/" if path else ""
        inside = [f for f in files if f.startswith(prefix)]
        if not inside:
            raise LabkitError(f"{path or '.'}: app path does not exist", field="spec.source.path")
        if self.source_type(url, sha, path) == "Kustomize":
            return self._kustomize(url, sha, path)
        from labkit.gitops.render import parse_manifests

        tree = self._tree(url, sha)
        out: list[dict[str, Any]] = []
        for f in inside:
            rel = f[len(prefix):]
            if not recurse and "/" in rel:
                continue
            if not rel.endswith(_MANIFEST_EXT) or any(p.startswith(".") for p in rel.split("/")):
                continue
            pkey = (tree.get(f, ""), f)
            objs = self._parsed.get(pkey) if pkey[0] else None
            if objs is None:
                _blob, text = self._read(url, sha, f)
                objs = parse_manifests(text, source=f)
                for obj in objs:
                    if not obj.get("apiVersion") or not obj.get("kind"):
                        raise LabkitError("not a Kubernetes object: apiVersion and kind are required", file=f)
                    validate_hook(obj, source=f)  # here the file is still known: name it
                if pkey[0]:
                    self._parsed[pkey] = objs
                    while len(self._parsed) > 50_000:
                        self._parsed.popitem(last=False)
            out.extend(objs)
        return out

    def _kustomize(self, url: str, sha: str, path: str) -> list[dict[str, Any]]:
        root = self.repo(url).export(sha)
        target = posixpath.join(".", path) if path else "."
        return self.renderer.render(target, root=root, key=sha)
