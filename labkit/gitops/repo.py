"""Manifest repositories, for real: a bare git "remote" plus working clones (GitPython).

The model
=========

A GitOps controller watches a git repository.  In the lab that repository is
real: ``ManifestRepo(root)`` creates (or opens) a bare repository at
``<root>/remote.git`` that plays the part of GitHub, and ``repo.clone(name)``
makes a real ``git clone`` of it under ``<root>/clones/<name>`` that plays a
developer's laptop or a CI runner.  Everything git stores is ordinary git
objects: ``git log``, ``git fsck`` and ``git show`` work on both.

Two ways to change the remote
-----------------------------

* **Working copies** (``WorkingCopy``) use the git command line, like people
  do: edit files, ``commit`` (``git add -A`` + ``git commit``), ``push`` (a real
  ``git push``, which is refused when the clone is behind, as on GitHub),
  ``pull`` (``git fetch`` + ``git merge --ff-only``).

* **Repository-level operations** on ``ManifestRepo`` (``commit``,
  ``open_pull_request``/``merge``, ``revert``, ``tag``, ``set_image``) write
  git objects straight into the remote with GitPython's in-process object
  writer and then move the branch ref.  Each one is the equivalent of
  "commit in a clone, then push" and records both a ``Committed`` and a
  ``Pushed`` event.  This is the fast path a scenario uses to play months of
  changes: a commit costs well under a millisecond plus one loose object per
  changed file and directory, instead of several git processes.

  Merges and reverts are three-way merges computed the way git computes them:
  per path, a side that did not change since the merge base yields to the side
  that did; when both sides changed a text file differently, ``git merge-file``
  (git's own line merge) combines them; anything it cannot combine raises
  ``MergeConflict`` listing the paths (git would stop with ``CONFLICT
  (content): Merge conflict in <path>``).

Virtual time and reproducible SHAs
----------------------------------

A commit's SHA-1 covers its tree, parents, author, committer, both dates and
the message.  Every write takes ``when`` -- seconds of virtual time -- and
stores ``EPOCH + int(when)`` (``EPOCH`` is 2026-01-01T00:00:00Z, ``labkit.core.clock.EPOCH_UNIX``) with a
``+0000`` offset as both author and committer date.  Identities are explicit
(``"alice"`` becomes ``alice <alice@labkit.local>``), messages are normalised
like ``git commit`` does (one trailing newline), and every git process runs
with ``GIT_CONFIG_GLOBAL=/dev/null`` and ``GIT_CONFIG_NOSYSTEM=1`` so a user's
own git configuration (signing, hooks, templates) cannot leak in.  The same
seed therefore produces the same commit SHAs on every machine, which makes
artifact revisions (``main@sha1:<sha>``) stable across runs.  ``when`` left
out means "now on the event log's clock".

Pull requests
-------------

``open_pull_request(branch, changes, author)`` creates ``branch`` from the base
branch with one commit (the PR's content) and returns a ``PullRequest``.
``merge(pr, reviewer)`` records a review-and-merge the way GitHub's merge
button does: a merge commit on the base branch (always a merge commit, never a
fast-forward) whose author and committer are the reviewer, with the message
``Merge pull request #N from <owner>/<branch>``, the PR title, and a
``Reviewed-by: <reviewer>`` trailer.  A PR cannot be approved by its own
author (branch protection's rule).

The deploy record
-----------------

``deploy_record(path)`` is ``git log -- <path>`` (newest first): every commit
whose change touches the path, with the author, the virtual time and the
message.  For an environment overlay that is "what was deployed there, when
and by whom" -- the GitOps answer to an audit question.  It uses git's own
history simplification, so a PR shows up as the PR's commit (by its author),
not as the merge commit.

Revisions for controllers
-------------------------

``resolve(ref)`` turns a branch, tag (peeled) or (abbreviated) commit into a
SHA; ``fetch(ref)`` is what a source controller calls: the same, but an
unreachable remote (``repo.available = False`` or the bare repository gone)
raises ``labkit.core.errors.TemporaryError`` with reason ``GitOperationFailed`` as
source-controller reports it.  ``available`` models the network between the
remote and its consumers: clones cannot clone, fetch, pull or push either,
while repository-level writes (the hosting side: web merges, bots) go on.  ``checkout_tree(sha, dest)`` exports one
revision's files (what source-controller packs into an artifact), leaving out
the files source-controller excludes by default (``.git/``, ``.github/``,
``.sops.yaml``, CI configs ...); ``export(sha)`` does it once per revision
into a cache directory.  ``artifact_revision("main", sha)`` formats Flux's
revision string ``main@sha1:<sha>``.

Events and webhooks
-------------------

With an ``EventLog`` every operation is recorded under component ``git``:
``Committed``, ``Pushed``, ``PullRequestOpened``, ``Merged``, ``Reverted``,
``Tagged``, with ``revision`` the resulting SHA, ``time`` the virtual time of
the operation and ``object`` ``Repository/<name>`` (``PullRequest/<name>/<n>``
for the pull-request events).  Details carry author, branch, subject line and
paths -- never file contents.  ``commit_info(sha)`` gives a commit's author
and virtual time back, which is what lead-time metrics need.  Every ref update on the
remote (from either path) also calls the ``on_push`` subscribers with a
``PushEvent`` whose ``payload`` is shaped like GitHub's ``push`` webhook
(``ref``, ``before``, ``after``, ``repository``, ``pusher``, ``head_commit``);
``labkit.gitops.webhook`` signs and verifies such deliveries.  Delivery delay
is the subscriber's business.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import git
import yaml
from git.index.fun import write_tree_from_cache
from git.index.typ import BaseIndexEntry
from git.objects.fun import traverse_tree_recursive
from gitdb import exc as gitdb_exc
from gitdb.base import IStream

from labkit.core.clock import EPOCH_UNIX
from labkit.core.errors import LabkitError, TemporaryError
from labkit.core.events import EventLog

__all__ = [
    "DEFAULT_BRANCH",
    "EPOCH",
    "SOURCE_IGNORE_DEFAULTS",
    "ZERO_SHA",
    "Author",
    "CommitInfo",
    "ManifestRepo",
    "MergeConflict",
    "NothingToCommit",
    "PullRequest",
    "PushEvent",
    "PushRejected",
    "RefNotFound",
    "WorkingCopy",
    "artifact_revision",
    "git_date",
    "parse_artifact_revision",
    "set_image_in_kustomization",
]

#: Virtual time zero: 2026-01-01T00:00:00Z (shared with the API store).  Commit dates are ``EPOCH + int(when)``.
EPOCH = EPOCH_UNIX
DEFAULT_BRANCH = "main"
ZERO_SHA = "0" * 40
COMPONENT = "git"

_MODE_FILE = 0o100644
_MODE_EXEC = 0o100755
_MODE_LINK = 0o120000
_MODE_GITLINK = 0o160000

#: Names source-controller leaves out of an artifact unless ``spec.ignore`` overrides it
#: (``pkg/sourceignore``: ExcludeVCS, ExcludeCI, ExcludeExtra; each pattern matches at any depth).
SOURCE_IGNORE_DEFAULTS: dict[str, frozenset[str]] = {
    "dirs": frozenset({".git", ".github", ".circleci"}),
    "files": frozenset({
        ".gitignore", ".gitmodules", ".gitattributes",
        ".travis.yml", ".gitlab-ci.yml", "appveyor.yml", ".drone.yml", "cloudbuild.yaml",
        "codeship-services.yml", "codeship-steps.yml",
        ".goreleaser.yml", ".goreleaser.brew.yml", ".sops.yaml", ".flux.yaml", ".golangci.yaml",
    }),
}

# A three-way merge of one file is milliseconds; a hung git must not hang the lab.
MERGE_FILE_TIMEOUT = 30.0

# Isolate every git process from the user's configuration (signing, hooks, templates...).
_GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
}


# ------------------------------------------------------------------------------ values

class RefNotFound(LabkitError):
    """A branch, tag or commit that the repository does not have."""

    def __init__(self, ref: str, message: str | None = None):
        self.ref = ref
        super().__init__(message or f"unknown revision '{ref}'", field="ref")


class NothingToCommit(LabkitError):
    """A commit that would not change the tree (``git commit``: nothing to commit)."""


class MergeConflict(LabkitError):
    """A merge or revert that git could not complete without a human."""

    def __init__(self, message: str, paths: Sequence[str]):
        self.paths = list(paths)
        super().__init__(message + "".join(f"\nCONFLICT (content): Merge conflict in {p}" for p in self.paths))


class PushRejected(LabkitError):
    """``git push`` refused (e.g. the clone is behind the remote: fetch first)."""


@dataclass(frozen=True)
class Author:
    """A git identity.  ``Author.of("alice")`` is ``alice <alice@labkit.local>``."""

    name: str
    email: str

    @classmethod
    def of(cls, who: "str | Author") -> "Author":
        if isinstance(who, Author):
            return who
        text = str(who).strip()
        m = re.fullmatch(r"(.+?)\s*<([^<>]+)>", text)
        if m:
            return cls(m.group(1), m.group(2))
        if not text or any(c in text for c in "<>\n"):
            raise LabkitError(f"invalid author {who!r}", field="author")
        slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-") or "user"
        return cls(text, f"{slug}@labkit.local")

    def actor(self) -> git.Actor:
        return git.Actor(self.name, self.email)

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class CommitInfo(NamedTuple):
    """One entry of a deploy record: ``(sha, author, time, message)``; time is virtual seconds."""

    sha: str
    author: str
    time: float
    message: str

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]


@dataclass
class PullRequest:
    number: int
    title: str
    branch: str
    base: str
    author: str
    opened_at: float
    head: str
    state: str = "open"  # open | merged
    merge_sha: str | None = None
    reviewer: str | None = None
    merged_at: float | None = None


@dataclass(frozen=True)
class PushEvent:
    """A ref update on the remote; ``payload`` is shaped like GitHub's ``push`` webhook."""

    ref: str
    before: str
    after: str
    when: float
    pusher: str
    payload: dict[str, Any] = field(default_factory=dict)


def git_date(when: float) -> str:
    """Git's internal date format for virtual time ``when``: ``"<unix> +0000"``."""
    return f"{EPOCH + int(when)} +0000"


def artifact_revision(ref_name: str | None, sha: str) -> str:
    """Flux's artifact revision: ``main@sha1:<sha>``, or ``sha1:<sha>`` for a bare commit."""
    return f"{ref_name}@sha1:{sha}" if ref_name else f"sha1:{sha}"


def parse_artifact_revision(revision: str) -> tuple[str | None, str]:
    """Inverse of ``artifact_revision``: ``"main@sha1:abc"`` -> ``("main", "abc")``."""
    name, sep, rest = revision.rpartition("@")
    digest = rest if sep else revision
    if digest.startswith("sha1:"):
        digest = digest[len("sha1:"):]
    return (name or None) if sep else None, digest


def _normalise_message(message: str) -> str:
    """``git commit``'s default ``whitespace`` cleanup: trailing spaces, blank-line runs, one final newline."""
    out: list[str] = []
    for line in str(message).replace("\r\n", "\n").split("\n"):
        line = line.rstrip()
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    if not out:
        raise LabkitError("aborting commit due to empty commit message", field="message")
    return "\n".join(out) + "\n"


def _clean_path(path: str) -> str:
    p = str(path).replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    parts = [x for x in p.split("/") if x not in ("", ".")]
    if not parts or p.startswith("/") or ".." in parts or ".git" in parts:
        raise LabkitError(f"invalid repository path '{path}'", file=str(path))
    return "/".join(parts)


def _yaml_scalar(value: str) -> str:
    """``value`` as a YAML scalar that reads back as the same string (quoted if needed)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31 - 1)
    if text.endswith("\n...\n"):
        text = text[: -len("\n...\n")]
    text = text.strip()
    if text == value and value.lower() in ("y", "n"):  # booleans to Go's YAML 1.1, not to PyYAML
        text = f"'{value}'"
    return text


# ------------------------------------------------------------------------------ set image

def set_image_in_kustomization(
    text: str,
    image_name: str,
    new_tag: str | None = None,
    *,
    new_name: str | None = None,
    digest: str | None = None,
    source: str = "kustomization.yaml",
) -> str:
    """``kustomize edit set image`` on the text of a kustomization file.

    Finds the ``images:`` entry whose ``name`` is ``image_name`` (creating the
    entry, or the whole ``images:`` list, if absent) and sets ``newTag`` (and
    optionally ``newName`` / ``digest``).  Setting a tag drops a ``digest`` of
    that entry, since kustomize prefers a digest over a tag.  Only the lines of
    that entry change; comments, order and the rest of the file are kept
    byte for byte.  Raises ``LabkitError`` naming ``source`` for unparsable
    input.
    """
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise LabkitError(f"cannot parse kustomization: {exc}", file=source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise LabkitError("kustomization is not a YAML mapping", file=source)
    images = data.get("images")
    if images is None:
        images = []
    if not isinstance(images, list) or not all(isinstance(i, dict) for i in images):
        raise LabkitError("'images' must be a list of mappings", file=source, field="images")

    updates: dict[str, str] = {}
    if new_name is not None:
        updates["newName"] = str(new_name)
    if new_tag is not None:
        updates["newTag"] = str(new_tag)
    if digest is not None:
        updates["digest"] = str(digest)
    drop = ["digest"] if (new_tag is not None and digest is None) else []

    expected_images = [dict(i) for i in images]
    index = next((k for k, i in enumerate(expected_images) if i.get("name") == image_name), None)
    if index is None:
        entry: dict[str, Any] = {"name": image_name}
        entry.update(updates)
        expected_images.append(entry)
    else:
        for k in drop:
            expected_images[index].pop(k, None)
        expected_images[index].update(updates)
    expected = dict(data)
    expected["images"] = expected_images
    if expected_images == images and "images" in data:
        return text  # nothing to change

    for attempt in (_edit_images_lines, _rewrite_images_block):
        try:
            candidate = attempt(text, image_name, updates, drop, expected_images)
        except _NoFit:
            continue
        try:
            if yaml.safe_load(candidate) == expected:
                return candidate
        except yaml.YAMLError:
            continue
    raise LabkitError(f"could not set image '{image_name}' without disturbing the file", file=source, field="images")


class _NoFit(Exception):
    pass


_IMAGES_KEY = re.compile(r"^images:[ \t]*(#.*)?$")


def _images_block(lines: list[str]) -> tuple[int, int] | None:
    """(index of the ``images:`` line, index after its block) or None."""
    for i, line in enumerate(lines):
        if _IMAGES_KEY.match(line.rstrip("\n")):
            j = i + 1
            while j < len(lines):
                raw = lines[j].rstrip("\n")
                s = raw.strip()
                if s and not s.startswith("#") and not raw.startswith((" ", "\t", "-")):
                    break
                j += 1
            # do not swallow trailing blank/comment lines that precede the next key
            while j > i + 1 and (not lines[j - 1].strip() or lines[j - 1].lstrip().startswith("#")):
                j -= 1
            return i, j
        if line.startswith("images:"):
            raise _NoFit  # flow style or inline value
    return None


def _edit_images_lines(
    text: str, image_name: str, updates: dict[str, str], drop: list[str], expected: list[dict[str, Any]]
) -> str:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    block = _images_block(lines)
    if block is None:
        entry = expected[-1]
        out = list(lines)
        out.append("images:\n")
        first = True
        for k, v in entry.items():
            out.append(("- " if first else "  ") + f"{k}: {_yaml_scalar(str(v))}\n")
            first = False
        return "".join(out)
    start, end = block
    item_re = re.compile(r"^(\s*)- ")
    items: list[int] = []
    indent = None
    for row in range(start + 1, end):
        m = item_re.match(lines[row])
        if m and (indent is None or len(m.group(1)) == indent):
            indent = len(m.group(1))
            items.append(row)
    if indent is None:
        raise _NoFit
    bounds = list(zip(items, items[1:] + [end]))
    key_indent = " " * (indent + 2)
    for s, e in bounds:
        chunk = "".join(lines[s:e])
        try:
            parsed = yaml.safe_load(chunk)
        except yaml.YAMLError:
            raise _NoFit from None
        if not (isinstance(parsed, list) and len(parsed) == 1 and isinstance(parsed[0], dict)):
            raise _NoFit
        if parsed[0].get("name") != image_name:
            continue
        new = list(lines[s:e])
        for key in drop:
            new = [ln for ln in new if not re.match(rf"^(\s*-\s+|\s+){key}:", ln)]
        for key, value in updates.items():
            pat = re.compile(rf"^(\s*-\s+|\s+)({key}):[^\n#]*?(\s*#.*)?$")
            for idx, ln in enumerate(new):
                m = pat.match(ln.rstrip("\n"))
                if m:
                    new[idx] = f"{m.group(1)}{key}: {_yaml_scalar(value)}{m.group(3) or ''}\n"
                    break
            else:
                name_idx = next(
                    (i for i, ln in enumerate(new) if re.match(r"^(\s*-\s+|\s+)name:", ln)), None
                )
                if name_idx is None:
                    raise _NoFit
                new.insert(name_idx + 1, f"{key_indent}{key}: {_yaml_scalar(value)}\n")
        return "".join(lines[:s] + new + lines[e:])
    # entry absent: append after the last item
    entry = expected[-1]
    add = []
    first = True
    for k, v in entry.items():
        add.append((" " * indent + "- " if first else key_indent) + f"{k}: {_yaml_scalar(str(v))}\n")
        first = False
    return "".join(lines[:end] + add + lines[end:])


def _rewrite_images_block(
    text: str, image_name: str, updates: dict[str, str], drop: list[str], expected: list[dict[str, Any]]
) -> str:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    dumped = yaml.safe_dump({"images": expected}, sort_keys=False, default_flow_style=False, width=2**31 - 1)
    try:
        block = _images_block(lines)
    except _NoFit:
        block = next(((i, i + 1) for i, ln in enumerate(lines) if ln.startswith("images:")), None)
    if block is None:
        return "".join(lines) + dumped
    start, end = block
    return "".join(lines[:start]) + dumped + "".join(lines[end:])


# ------------------------------------------------------------------------------ the repository

class ManifestRepo:
    """A bare "remote" repository plus named working clones; see the module docstring."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        log: EventLog | None = None,
        name: str = "fleet",
        owner: str = "labkit",
        url: str | None = None,
        default_branch: str = DEFAULT_BRANCH,
    ):
        self.root = Path(root).resolve()
        self.remote_path = self.root / "remote.git"
        self.name = name
        self.owner = owner
        self.log = log
        self.default_branch = default_branch
        #: Set to False to make the remote unreachable from controllers and clones:
        #: ``fetch``, ``clone`` and WorkingCopy fetch/pull/push raise TemporaryError.
        #: Repository-level writes (the hosting side: web merges, bots) still work.
        self.available = True
        self._subscribers: list[Callable[[PushEvent], None]] = []
        self._prs: dict[int, PullRequest] = {}
        self._clones: dict[str, WorkingCopy] = {}
        self._flat_cache: OrderedDict[bytes, dict[str, tuple[int, bytes]]] = OrderedDict()
        if not (self.remote_path / "HEAD").exists():
            self.root.mkdir(parents=True, exist_ok=True)
            git.Git(str(self.root)).execute(
                ["git", "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(self.remote_path)],
                env=_GIT_ENV,
            )
        self._repo = git.Repo(str(self.remote_path))
        self._repo.git.update_environment(**_GIT_ENV)
        # Objects are written in-process (SHA-1 + zlib + rename), never via `git hash-object`.
        self._objects = self.remote_path / "objects"
        self._writer = _LooseWriter(self._store)
        self._commit_trees: dict[str, bytes] = {}
        self._peeled: dict[str, str] = {}  # object SHA -> the commit it peels to (objects never change)
        with self._repo.config_writer() as cw:
            cw.set_value("gc", "auto", "0")
            cw.set_value("core", "logAllRefUpdates", "false")
        #: The clone URL controllers are configured with (``file://`` unless given).
        self.url = url or self.remote_path.as_uri()

    # -------------------------------------------------------------- plumbing

    def __enter__(self) -> "ManifestRepo":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the persistent git helper processes of this repository and its clones."""
        for wc in self._clones.values():
            wc.git.close()
        self._repo.close()

    @property
    def git(self) -> git.Repo:
        """The GitPython handle of the bare remote (for inspection)."""
        return self._repo

    def _now(self, when: float | None) -> float:
        if when is not None:
            return float(when)
        return self.log.now() if self.log is not None else 0.0

    @property
    def object_key(self) -> str:
        """The event-log object of this repository's events: ``Repository/<name>``."""
        return f"Repository/{self.name}"

    def _record(self, event: str, revision: str, when: float, detail: dict[str, Any], obj: str = "") -> None:
        if self.log is not None:
            self.log.record(COMPONENT, event, obj or self.object_key, revision, detail, time=when)

    def _ref_sha(self, ref: str) -> str | None:
        """Read a ref of the remote (loose file, else packed-refs) without spawning git."""
        for _ in range(5):
            try:
                value = (self.remote_path / ref).read_text(encoding="utf-8").strip()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return self._packed_ref(ref)
            if value.startswith("ref: "):
                ref = value[5:].strip()
                continue
            return value or None
        return None

    def _packed_ref(self, ref: str) -> str | None:
        try:
            lines = (self.remote_path / "packed-refs").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            if line.startswith(("#", "^")):
                continue
            sha, _, name = line.partition(" ")
            if name.strip() == ref:
                return sha
        return None

    def _commit_tree(self, commit_sha: str) -> bytes:
        tree = self._commit_trees.get(commit_sha)
        if tree is None:
            tree = self._repo.commit(commit_sha).tree.binsha
            self._commit_trees[commit_sha] = tree
        return tree

    def _flat(self, commit_sha: str | None) -> dict[str, tuple[int, bytes]]:
        if commit_sha is None:
            return {}
        tree = self._commit_tree(commit_sha)
        hit = self._flat_cache.get(tree)
        if hit is None:
            hit = {p: (mode, sha) for sha, mode, p in traverse_tree_recursive(self._repo.odb, tree, "")}
            self._flat_cache[tree] = hit
            while len(self._flat_cache) > 128:
                self._flat_cache.popitem(last=False)
        else:
            self._flat_cache.move_to_end(tree)
        return dict(hit)

    def _store(self, kind: bytes, data: bytes) -> bytes:
        """Write a loose object as git does (``objects/xx/yyyy``, zlib of header + data)."""
        header = kind + b" " + str(len(data)).encode("ascii") + b"\0"
        h = hashlib.sha1(header)
        h.update(data)
        binsha = h.digest()
        hexsha = binsha.hex()
        path = self._objects / hexsha[:2] / hexsha[2:]
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix="tmp_obj_", dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(zlib.compress(header + data, 1))
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
        return binsha

    def _blob(self, data: bytes) -> bytes:
        return self._store(b"blob", data)

    def _read_blob(self, binsha: bytes) -> bytes:
        return self._repo.odb.stream(binsha).read()

    def _write_tree(self, flat: Mapping[str, tuple[int, bytes]]) -> bytes:
        entries = [BaseIndexEntry((mode, sha, 0, p)) for p, (mode, sha) in sorted(flat.items())]
        binsha, _ = write_tree_from_cache(entries, self._writer, slice(0, len(entries)))  # type: ignore[arg-type]
        return binsha

    def _write_commit(
        self,
        flat: Mapping[str, tuple[int, bytes]],
        parents: Sequence[str],
        message: str,
        author: Author,
        committer: Author,
        when: float,
    ) -> str:
        tree = self._write_tree(flat)
        date = git_date(when)
        lines = [f"tree {tree.hex()}"]
        lines += [f"parent {p}" for p in parents]
        lines.append(f"author {author.name} <{author.email}> {date}")
        lines.append(f"committer {committer.name} <{committer.email}> {date}")
        body = ("\n".join(lines) + "\n\n" + _normalise_message(message)).encode("utf-8")
        sha = self._store(b"commit", body).hex()
        self._commit_trees[sha] = tree
        self._flat_cache[tree] = dict(flat)
        while len(self._flat_cache) > 128:
            self._flat_cache.popitem(last=False)
        return sha

    def _set_ref(self, ref: str, sha: str) -> None:
        """Point ``ref`` at ``sha`` (atomic rename of the loose ref file, as git does)."""
        path = self.remote_path / ref
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".lock")
        tmp.write_text(sha + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def _apply(self, flat: dict[str, tuple[int, bytes]], changes: Mapping[str, str | bytes | None]) -> dict[str, tuple[int, bytes]]:
        out = dict(flat)
        for raw_path, content in changes.items():
            path = _clean_path(raw_path)
            if content is None:
                prefix = path + "/"
                doomed = [p for p in out if p == path or p.startswith(prefix)]
                if not doomed:
                    raise LabkitError(f"pathspec '{path}' did not match any files", file=path)
                for p in doomed:
                    del out[p]
                continue
            data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
            prefix = path + "/"
            if any(p.startswith(prefix) for p in out):
                raise LabkitError(f"'{path}' is a directory in the repository", file=path)
            parts = path.split("/")
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) in out:
                    raise LabkitError(f"'{'/'.join(parts[:i])}' is a file in the repository", file=path)
            mode = out.get(path, (_MODE_FILE, b""))[0]
            if mode not in (_MODE_FILE, _MODE_EXEC):
                mode = _MODE_FILE
            out[path] = (mode, self._blob(data))
        return out

    def _push_event(self, ref: str, before: str | None, after: str, when: float, author: Author, message: str) -> None:
        before = before or ZERO_SHA
        self._record("Pushed", after, when, {"ref": ref, "before": before, "after": after, "pusher": author.name})
        if not self._subscribers:
            return
        ts = datetime.fromtimestamp(EPOCH + int(when), tz=timezone.utc).isoformat().replace("+00:00", "Z")
        payload = {
            "ref": ref,
            "before": before,
            "after": after,
            "created": before == ZERO_SHA,
            "deleted": after == ZERO_SHA,
            "forced": False,
            "repository": {
                "name": self.name,
                "full_name": f"{self.owner}/{self.name}",
                "clone_url": self.url,
                "default_branch": self.default_branch,
            },
            "pusher": {"name": author.name, "email": author.email},
            "head_commit": {
                "id": after,
                "message": message.rstrip("\n"),
                "timestamp": ts,
                "author": {"name": author.name, "email": author.email},
            },
        }
        event = PushEvent(ref=ref, before=before, after=after, when=when, pusher=author.name, payload=payload)
        for fn in list(self._subscribers):
            fn(event)

    def on_push(self, fn: Callable[[PushEvent], None]) -> Callable[[], None]:
        """Call ``fn(PushEvent)`` on every ref update of the remote; returns an unsubscribe function."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    # -------------------------------------------------------------- reading

    def head(self, branch: str | None = None) -> str:
        """The SHA a branch points to; ``RefNotFound`` if the branch does not exist."""
        branch = branch or self.default_branch
        sha = self._ref_sha(f"refs/heads/{branch}")
        if sha is None:
            raise RefNotFound(branch, f"couldn't find remote ref \"refs/heads/{branch}\"")
        return sha

    def branches(self) -> dict[str, str]:
        return {h.name: h.commit.hexsha for h in self._repo.heads}

    def tags(self) -> dict[str, str]:
        """Tag name -> commit SHA (annotated tags peeled)."""
        return {t.name: t.commit.hexsha for t in self._repo.tags}

    def resolve(self, ref: str) -> str:
        """Branch, tag (peeled), full or abbreviated commit SHA -> full commit SHA."""
        if not ref or any(c in ref for c in " ~^:?*[\\") or ref.startswith("-"):
            raise RefNotFound(ref)
        for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref if ref.startswith("refs/") else None):
            if candidate is None:
                continue
            sha = self._ref_sha(candidate)
            if sha is not None:
                return self._peel(sha)
        if re.fullmatch(r"[0-9a-fA-F]{4,40}", ref):
            try:
                binsha = self._repo.odb.partial_to_complete_sha_hex(ref.lower())
                self._repo.odb.info(binsha)  # must exist, not merely look like a SHA
            except (git.BadName, git.BadObject, ValueError, gitdb_exc.BadObject, gitdb_exc.AmbiguousObjectName):
                raise RefNotFound(ref) from None
            return self._peel(binsha.hex())
        raise RefNotFound(ref)

    def _peel(self, sha: str) -> str:
        """The commit an object SHA peels to; remembered, since a git object never changes (a source controller
        fetching an unchanged branch every interval then costs no round trip to ``git cat-file``)."""
        hit = self._peeled.get(sha)
        if hit is not None:
            return hit
        try:
            obj = self._repo.rev_parse(sha)
        except (git.BadName, git.BadObject, ValueError):
            raise RefNotFound(sha) from None
        while isinstance(obj, git.TagObject):
            obj = obj.object
        if not isinstance(obj, git.Commit):
            raise RefNotFound(sha, f"'{sha}' is not a commit")
        self._peeled[sha] = obj.hexsha
        return obj.hexsha

    def read(self, path: str, ref: str | None = None) -> str:
        """The text of a file at a revision (default: head of the default branch)."""
        flat = self._flat(self.resolve(ref or self.default_branch))
        p = _clean_path(path)
        if p not in flat:
            raise LabkitError(f"path '{p}' does not exist in '{ref or self.default_branch}'", file=p)
        return self._read_blob(flat[p][1]).decode("utf-8")

    def files(self, ref: str | None = None) -> list[str]:
        """All file paths at a revision."""
        return sorted(self._flat(self.resolve(ref or self.default_branch)))

    def fetch(self, ref: str | None = None) -> str:
        """What a source controller does: resolve ``ref`` on the remote.

        Raises ``TemporaryError`` (reason ``GitOperationFailed``) when the remote
        is unreachable, ``RefNotFound`` when the ref does not exist.
        """
        ref = ref or self.default_branch
        if not self.available or not (self.remote_path / "HEAD").exists():
            raise TemporaryError(
                message=f"failed to checkout and determine revision: unable to clone '{self.url}': "
                "repository not found or unreachable",
                reason="GitOperationFailed",
            )
        return self.resolve(ref)

    def commit_info(self, ref: str) -> CommitInfo:
        """Author, virtual time and message of one commit (e.g. for lead-time metrics)."""
        c = self._repo.commit(self.resolve(ref))
        return CommitInfo(c.hexsha, c.author.name or "", float(c.authored_date - EPOCH), _text(c.message).strip("\n"))

    def deploy_record(self, path: str, *, ref: str | None = None) -> list[CommitInfo]:
        """``git log -- <path>``: the commits touching ``path``, newest first."""
        start = self.resolve(ref or self.default_branch)
        p = path.replace("\\", "/").strip("/")
        while p.startswith("./"):
            p = p[2:]
        out = self._repo.git.log(start, "--format=%H%x1f%an%x1f%at%x1f%B%x1e", "--", p or ".")
        records = []
        for chunk in out.split("\x1e"):
            chunk = chunk.strip("\n")
            if not chunk:
                continue
            sha, author, at, message = chunk.split("\x1f", 3)
            records.append(CommitInfo(sha, author, float(int(at) - EPOCH), message.strip("\n")))
        return records

    def checkout_tree(
        self, ref: str, dest: str | os.PathLike[str], *, exclude_defaults: bool = True
    ) -> Path:
        """Write the files of revision ``ref`` to ``dest`` (absent or empty) and return it.

        Symlinks are recreated as symlinks and executable bits kept; submodule
        entries are skipped.  With ``exclude_defaults`` the files
        source-controller leaves out of artifacts by default are skipped.
        """
        sha = self.resolve(ref)
        out = Path(dest)
        if out.exists() and any(out.iterdir()):
            raise LabkitError(f"destination '{out}' is not empty", file=str(out))
        out.mkdir(parents=True, exist_ok=True)
        dirs_made: set[str] = set()
        for p, (mode, binsha) in sorted(self._flat(sha).items()):
            parts = p.split("/")
            if exclude_defaults and (
                any(d in SOURCE_IGNORE_DEFAULTS["dirs"] for d in parts[:-1])
                or parts[-1] in SOURCE_IGNORE_DEFAULTS["files"]
            ):
                continue
            if mode == _MODE_GITLINK:
                continue
            parent = "/".join(parts[:-1])
            if parent and parent not in dirs_made:
                (out / parent).mkdir(parents=True, exist_ok=True)
                dirs_made.add(parent)
            target = out / p
            data = self._read_blob(binsha)
            if mode == _MODE_LINK:
                os.symlink(data.decode("utf-8"), target)
            else:
                target.write_bytes(data)
                if mode == _MODE_EXEC:
                    target.chmod(0o755)
        return out

    def export(self, ref: str) -> Path:
        """``checkout_tree`` once per revision into ``<root>/artifacts/<sha>`` (cached)."""
        sha = self.resolve(ref)
        dest = self.root / "artifacts" / sha
        if dest.is_dir():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=dest.parent))
        try:
            self.checkout_tree(sha, tmp)
            os.rename(tmp, dest)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not dest.is_dir():
                raise
        return dest

    # -------------------------------------------------------------- writing

    def seed(
        self,
        source: str | os.PathLike[str],
        *,
        author: str | Author = "labkit",
        when: float | None = None,
        message: str = "Initial commit",
        branch: str | None = None,
        exclude: Iterable[str] = (),
    ) -> str:
        """Make the first commit of ``branch`` from the files under ``source``.

        ``exclude`` holds glob patterns matched against paths relative to
        ``source`` (a matching directory is skipped whole).  ``.git`` is always
        skipped.  Raises ``LabkitError`` if the branch already has commits.
        """
        branch = branch or self.default_branch
        if self._ref_sha(f"refs/heads/{branch}") is not None:
            raise LabkitError(f"branch '{branch}' already has commits; seed only starts a repository", field="seed")
        src = Path(source)
        if not src.is_dir():
            raise LabkitError(f"seed directory '{src}' does not exist", file=str(src))
        patterns = list(exclude)
        flat: dict[str, tuple[int, bytes]] = {}
        for dirpath, dirnames, filenames in os.walk(src):
            rel_dir = os.path.relpath(dirpath, src).replace(os.sep, "/")
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            link_dirs = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
            dirnames[:] = sorted(
                d for d in dirnames
                if d not in link_dirs and d != ".git" and not _excluded(rel_dir + d, patterns)
            )
            for fname in sorted(filenames + link_dirs):
                rel = rel_dir + fname
                if _excluded(rel, patterns):
                    continue
                full = os.path.join(dirpath, fname)
                if os.path.islink(full):
                    flat[rel] = (_MODE_LINK, self._blob(os.readlink(full).encode("utf-8")))
                    continue
                st = os.stat(full)
                mode = _MODE_EXEC if st.st_mode & stat.S_IXUSR else _MODE_FILE
                with open(full, "rb") as fh:
                    flat[rel] = (mode, self._blob(fh.read()))
        who = Author.of(author)
        t = self._now(when)
        sha = self._write_commit(flat, [], message, who, who, t)
        self._set_ref(f"refs/heads/{branch}", sha)
        self._record("Committed", sha, t, {"branch": branch, "author": who.name, "message": message.split("\n")[0], "files": len(flat)})
        self._push_event(f"refs/heads/{branch}", None, sha, t, who, message)
        return sha

    def commit(
        self,
        changes: Mapping[str, str | bytes | None],
        *,
        message: str,
        author: str | Author,
        when: float | None = None,
        branch: str | None = None,
        allow_empty: bool = False,
    ) -> str:
        """Commit ``changes`` (path -> new text/bytes, or None to delete) on ``branch`` and push.

        A branch that does not exist yet starts from the default branch.
        Raises ``NothingToCommit`` when the tree would not change.
        """
        branch = branch or self.default_branch
        who = Author.of(author)
        t = self._now(when)
        old = self._ref_sha(f"refs/heads/{branch}")
        parent = old
        if parent is None and branch != self.default_branch:
            parent = self._ref_sha(f"refs/heads/{self.default_branch}")
        flat = self._flat(parent)
        new_flat = self._apply(flat, changes)
        if parent is not None and new_flat == flat and not allow_empty:
            raise NothingToCommit("nothing to commit, working tree clean", field="changes")
        sha = self._write_commit(new_flat, [parent] if parent else [], message, who, who, t)
        self._set_ref(f"refs/heads/{branch}", sha)
        self._record(
            "Committed", sha, t,
            {"branch": branch, "author": who.name, "message": message.split("\n")[0],
             "paths": sorted(_clean_path(p) for p in changes)[:50]},
        )
        self._push_event(f"refs/heads/{branch}", old, sha, t, who, message)
        return sha

    def set_image(
        self,
        overlay_path: str,
        image_name: str,
        new_tag: str,
        *,
        author: str | Author,
        when: float | None = None,
        branch: str | None = None,
        message: str | None = None,
        new_name: str | None = None,
    ) -> str:
        """Commit a ``kustomize edit set image`` of the overlay's kustomization file.

        Returns the new commit, or the current head if the entry already had
        that tag (nothing to commit).
        """
        branch = branch or self.default_branch
        head = self.head(branch)
        flat = self._flat(head)
        base = _clean_path(overlay_path)
        kpath = next((f"{base}/{n}" for n in ("kustomization.yaml", "kustomization.yml", "Kustomization") if f"{base}/{n}" in flat), None)
        if kpath is None:
            raise LabkitError(f"no kustomization file in '{base}' on '{branch}'", file=base)
        text = self._read_blob(flat[kpath][1]).decode("utf-8")
        new_text = set_image_in_kustomization(text, image_name, new_tag, new_name=new_name, source=kpath)
        if new_text == text:
            return head
        msg = message or f"{base}: set image {image_name}:{new_tag}"
        return self.commit({kpath: new_text}, message=msg, author=author, when=when, branch=branch)

    def open_pull_request(
        self,
        branch: str,
        changes: Mapping[str, str | bytes | None],
        author: str | Author,
        *,
        title: str | None = None,
        when: float | None = None,
        base: str | None = None,
    ) -> PullRequest:
        """Push ``branch`` (base head + one commit with ``changes``) and open a PR for it."""
        base = base or self.default_branch
        if self._ref_sha(f"refs/heads/{branch}") is not None:
            raise LabkitError(f"a branch named '{branch}' already exists", field="branch")
        base_sha = self.head(base)
        who = Author.of(author)
        t = self._now(when)
        title = title or f"Update {', '.join(sorted(_clean_path(p) for p in changes))[:60]}"
        flat = self._flat(base_sha)
        new_flat = self._apply(flat, changes)
        if new_flat == flat:
            raise NothingToCommit("nothing to commit, working tree clean", field="changes")
        sha = self._write_commit(new_flat, [base_sha], title, who, who, t)
        self._set_ref(f"refs/heads/{branch}", sha)
        self._record("Committed", sha, t, {"branch": branch, "author": who.name, "message": title.split("\n")[0],
                                          "paths": sorted(_clean_path(p) for p in changes)[:50]})
        self._push_event(f"refs/heads/{branch}", None, sha, t, who, title)
        number = len(self._prs) + 1
        pr = PullRequest(number=number, title=title.split("\n")[0], branch=branch, base=base,
                         author=who.name, opened_at=t, head=sha)
        self._prs[number] = pr
        self._record("PullRequestOpened", sha, t, {"number": number, "branch": branch, "base": base,
                                                   "author": who.name, "title": pr.title}, obj=self._pr_key(number))
        return pr

    def pull_requests(self) -> list[PullRequest]:
        return list(self._prs.values())

    def _pr_key(self, number: int) -> str:
        return f"PullRequest/{self.name}/{number}"

    def merge(
        self,
        pr: PullRequest | int,
        reviewer: str | Author,
        *,
        when: float | None = None,
        message: str | None = None,
    ) -> str:
        """Review and merge a pull request with a merge commit; returns its SHA."""
        pr = self._prs[pr] if isinstance(pr, int) else pr
        if pr.state != "open":
            raise LabkitError(f"pull request #{pr.number} is already {pr.state}", field="pr")
        who = Author.of(reviewer)
        if who.name == pr.author:
            raise LabkitError(f"pull request #{pr.number} cannot be approved by its author {pr.author}", field="reviewer")
        t = self._now(when)
        ours = self.head(pr.base)
        theirs = self.head(pr.branch)
        mb = self._merge_base(ours, theirs)
        if mb == theirs:
            raise LabkitError(f"pull request #{pr.number}: nothing to merge, '{pr.branch}' is already in '{pr.base}'")
        if mb == ours:
            merged = self._flat(theirs)
        else:
            merged = self._three_way(self._flat(mb), self._flat(ours), self._flat(theirs),
                                     f"Automatic merge of pull request #{pr.number} failed")
        msg = message or (
            f"Merge pull request #{pr.number} from {self.owner}/{pr.branch}\n\n{pr.title}\n\nReviewed-by: {who}"
        )
        if message and "Reviewed-by:" not in message:
            msg = message.rstrip("\n") + f"\n\nReviewed-by: {who}"
        sha = self._write_commit(merged, [ours, theirs], msg, who, who, t)
        self._set_ref(f"refs/heads/{pr.base}", sha)
        pr.state, pr.merge_sha, pr.reviewer, pr.merged_at, pr.head = "merged", sha, who.name, t, theirs
        self._record("Merged", sha, t, {"number": pr.number, "branch": pr.branch, "base": pr.base,
                                        "author": pr.author, "reviewer": who.name, "head": theirs},
                     obj=self._pr_key(pr.number))
        self._push_event(f"refs/heads/{pr.base}", ours, sha, t, who, msg)
        return sha

    def revert(
        self,
        sha: str,
        author: str | Author,
        *,
        when: float | None = None,
        branch: str | None = None,
        message: str | None = None,
    ) -> str:
        """``git revert <sha>`` on ``branch`` (merge commits against their first parent) and push."""
        branch = branch or self.default_branch
        target = self.resolve(sha)
        commit = self._repo.commit(target)
        if not commit.parents:
            raise LabkitError(f"cannot revert the root commit {target[:7]}", field="sha")
        parent = commit.parents[0].hexsha
        head = self.head(branch)
        who = Author.of(author)
        t = self._now(when)
        subject = _text(commit.message).split("\n", 1)[0]
        merged = self._three_way(self._flat(target), self._flat(head), self._flat(parent),
                                 f"error: could not revert {target[:7]}... {subject}")
        if merged == self._flat(head):
            raise NothingToCommit(f"nothing to commit: reverting {target[:7]} changes nothing on '{branch}'")
        msg = message or f'Revert "{subject}"\n\nThis reverts commit {target}'
        if not message:
            msg += f", reversing\nchanges made to {parent}." if len(commit.parents) > 1 else "."
        new = self._write_commit(merged, [head], msg, who, who, t)
        self._set_ref(f"refs/heads/{branch}", new)
        self._record("Reverted", new, t, {"branch": branch, "author": who.name, "reverted": target,
                                          "message": msg.split("\n")[0]})
        self._push_event(f"refs/heads/{branch}", head, new, t, who, msg)
        return new

    def tag(
        self,
        name: str,
        ref: str | None = None,
        *,
        message: str | None = None,
        author: str | Author = "labkit",
        when: float | None = None,
    ) -> str:
        """Create tag ``name`` at ``ref`` (annotated when ``message`` is given); returns the commit SHA."""
        if not re.fullmatch(r"[A-Za-z0-9._/-]+", name) or ".." in name or name.endswith((".", "/", ".lock")):
            raise LabkitError(f"'{name}' is not a valid tag name", field="tag")
        if self._ref_sha(f"refs/tags/{name}") is not None:
            raise LabkitError(f"tag '{name}' already exists", field="tag")
        sha = self.resolve(ref or self.default_branch)
        who = Author.of(author)
        t = self._now(when)
        if message is not None:
            body = (
                f"object {sha}\ntype commit\ntag {name}\n"
                f"tagger {who.name} <{who.email}> {git_date(t)}\n\n{_normalise_message(message)}"
            ).encode("utf-8")
            self._set_ref(f"refs/tags/{name}", self._store(b"tag", body).hex())
        else:
            self._set_ref(f"refs/tags/{name}", sha)
        self._record("Tagged", sha, t, {"tag": name, "annotated": message is not None, "author": who.name})
        self._push_event(f"refs/tags/{name}", None, sha, t, who, message or name)
        return sha

    # -------------------------------------------------------------- merging

    def _merge_base(self, a: str, b: str) -> str | None:
        bases = self._repo.merge_base(a, b)
        return bases[0].hexsha if bases else None

    def _three_way(
        self,
        base: dict[str, tuple[int, bytes]],
        ours: dict[str, tuple[int, bytes]],
        theirs: dict[str, tuple[int, bytes]],
        failure: str,
    ) -> dict[str, tuple[int, bytes]]:
        out: dict[str, tuple[int, bytes]] = {}
        conflicts: list[str] = []
        for p in sorted(set(base) | set(ours) | set(theirs)):
            b, o, t = base.get(p), ours.get(p), theirs.get(p)
            if o == t:
                result = o
            elif b == o:
                result = t
            elif b == t:
                result = o
            elif o is not None and t is not None and o[0] == t[0] != _MODE_LINK:
                merged = self._merge_file(
                    self._read_blob(b[1]) if b else None, self._read_blob(o[1]), self._read_blob(t[1])
                )
                if merged is None:
                    conflicts.append(p)
                    continue
                result = (o[0], self._blob(merged))
            else:
                conflicts.append(p)
                continue
            if result is not None:
                out[p] = result
        if conflicts:
            raise MergeConflict(failure, conflicts)
        paths = set(out)
        clash = sorted(p for p in paths if any(p.startswith(q + "/") for q in paths))
        if clash:
            raise MergeConflict(failure, clash)
        return out

    def _merge_file(self, base: bytes | None, ours: bytes, theirs: bytes) -> bytes | None:
        with tempfile.TemporaryDirectory(prefix="labkit-merge-") as d:
            paths = []
            for name, data in (("ours", ours), ("base", base or b""), ("theirs", theirs)):
                fp = os.path.join(d, name)
                with open(fp, "wb") as fh:
                    fh.write(data)
                paths.append(fp)
            try:
                proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
                    ["git", "merge-file", "-p", *paths],
                    capture_output=True,
                    env={**os.environ, **_GIT_ENV},
                    timeout=MERGE_FILE_TIMEOUT,
                )
            except subprocess.TimeoutExpired:
                raise LabkitError(
                    f"git merge-file did not finish within {MERGE_FILE_TIMEOUT:g} s; the merge was abandoned "
                    "and nothing was committed"
                ) from None
        return proc.stdout if proc.returncode == 0 else None

    # -------------------------------------------------------------- clones

    def clone(self, name: str) -> "WorkingCopy":
        """A working clone at ``<root>/clones/<name>`` (``git clone``); reused if it exists."""
        if name in self._clones:
            return self._clones[name]
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise LabkitError(f"invalid clone name '{name}'", field="name")
        self._check_available()
        dest = self.root / "clones" / name
        if (dest / ".git").exists():
            repo = git.Repo(str(dest))
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                repo = git.Repo.clone_from(str(self.remote_path), str(dest), env=_GIT_ENV)
            except git.GitCommandError as exc:
                raise TemporaryError(message=f"git clone failed: {_git_stderr(exc)}", reason="GitOperationFailed") from None
        wc = WorkingCopy(self, repo, name)
        self._clones[name] = wc
        return wc

    def _check_available(self) -> None:
        if not self.available or not (self.remote_path / "HEAD").exists():
            raise TemporaryError(
                message=f"unable to access '{self.url}': repository not found or unreachable",
                reason="GitOperationFailed",
            )


class _LooseWriter:
    """Adapter giving ``write_tree_from_cache`` the ``store(IStream)`` it expects."""

    def __init__(self, store: Callable[[bytes, bytes], bytes]):
        self._store_fn = store

    def store(self, istream: IStream) -> IStream:
        istream.binsha = self._store_fn(istream.type, istream.read())
        return istream


def _excluded(rel: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(PurePosixPath(rel).name, pat) for pat in patterns)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _git_stderr(exc: git.GitCommandError) -> str:
    text = _text(exc.stderr or str(exc)).strip()
    text = re.sub(r"^\s*stderr:\s*", "", text)
    return " ".join(line.strip().strip("'") for line in text.splitlines() if line.strip())[:500]


class WorkingCopy:
    """A real clone of the remote, driven through the git command line."""

    def __init__(self, repo: ManifestRepo, handle: git.Repo, name: str):
        self.repo = repo
        self.git = handle
        self.name = name
        self.path = Path(handle.working_tree_dir or "")
        self.git.git.update_environment(**_GIT_ENV)
        with self.git.config_writer() as cw:
            cw.set_value("commit", "gpgsign", "false")
            cw.set_value("core", "autocrlf", "false")
            cw.set_value("gc", "auto", "0")
        if not self.git.head.is_valid() and repo._ref_sha(f"refs/heads/{repo.default_branch}") is None:
            # empty remote: make sure the unborn branch has the default name
            self.git.git.symbolic_ref("HEAD", f"refs/heads/{repo.default_branch}")

    # -------------------------------------------------------------- files

    def _p(self, rel: str) -> Path:
        return self.path / _clean_path(rel)

    def read(self, rel: str) -> str:
        return self._p(rel).read_text(encoding="utf-8")

    def write(self, rel: str, content: str | bytes) -> None:
        p = self._p(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            p.write_text(content, encoding="utf-8")
        else:
            p.write_bytes(content)

    def remove(self, rel: str) -> None:
        p = self._p(rel)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()

    def set_image(self, overlay_path: str, image_name: str, new_tag: str, *, new_name: str | None = None) -> bool:
        """Edit the overlay's kustomization file in the clone; True if it changed."""
        base = self._p(overlay_path)
        kfile = next((base / n for n in ("kustomization.yaml", "kustomization.yml", "Kustomization") if (base / n).is_file()), None)
        if kfile is None:
            raise LabkitError(f"no kustomization file in '{overlay_path}'", file=str(overlay_path))
        text = kfile.read_text(encoding="utf-8")
        new = set_image_in_kustomization(text, image_name, new_tag, new_name=new_name, source=str(kfile.relative_to(self.path)))
        if new != text:
            kfile.write_text(new, encoding="utf-8")
        return new != text

    # -------------------------------------------------------------- git

    @property
    def branch(self) -> str:
        return self.git.head.ref.name if not self.git.head.is_detached else ""

    def head(self) -> str:
        return self.git.head.commit.hexsha

    def checkout(self, branch: str, *, create: bool = False) -> None:
        try:
            if create:
                self.git.git.checkout("-b", branch)
            else:
                self.git.git.checkout(branch)
        except git.GitCommandError as exc:
            raise LabkitError(_git_stderr(exc), field="branch") from None

    def commit(
        self,
        message: str,
        *,
        author: str | Author,
        when: float | None = None,
        allow_empty: bool = False,
    ) -> str:
        """``git add -A`` and ``git commit`` with a fixed identity and virtual date."""
        who = Author.of(author)
        t = self.repo._now(when)
        date = git_date(t)
        env = {
            "GIT_AUTHOR_NAME": who.name, "GIT_AUTHOR_EMAIL": who.email, "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": who.name, "GIT_COMMITTER_EMAIL": who.email, "GIT_COMMITTER_DATE": date,
        }
        args = ["--no-verify", "--no-gpg-sign", "--cleanup=verbatim", "-m", _normalise_message(message)]
        if allow_empty:
            args.insert(0, "--allow-empty")
        with self.git.git.custom_environment(**env):
            self.git.git.add("-A")
            try:
                self.git.git.commit(*args)
            except git.GitCommandError as exc:
                if "nothing to commit" in (exc.stdout or "") + (exc.stderr or ""):
                    raise NothingToCommit("nothing to commit, working tree clean") from None
                raise LabkitError(_git_stderr(exc)) from None
        sha = self.head()
        self.repo._record("Committed", sha, t, {"branch": self.branch, "author": who.name,
                                                "message": message.split("\n")[0], "clone": self.name})
        return sha

    def push(self, branch: str | None = None, *, when: float | None = None, pusher: str | Author | None = None) -> str:
        """``git push origin HEAD:<branch>``; ``PushRejected`` if the remote moved on."""
        branch = branch or self.branch or self.repo.default_branch
        self.repo._check_available()
        ref = f"refs/heads/{branch}"
        before = self.repo._ref_sha(ref)
        head = self.head()
        try:
            self.git.git.push("origin", f"HEAD:{ref}")
        except git.GitCommandError as exc:
            err = _git_stderr(exc)
            if "rejected" in err or "non-fast-forward" in err or "fetch first" in err:
                raise PushRejected(
                    f"failed to push some refs to '{self.repo.url}': updates were rejected because the remote "
                    f"contains work that you do not have locally (fetch first)",
                    field="push",
                ) from None
            raise TemporaryError(message=f"git push failed: {err}", reason="GitOperationFailed") from None
        t = self.repo._now(when)
        if before != head:
            commit = self.git.commit(head)
            who = Author.of(pusher) if pusher else Author(commit.author.name or "", commit.author.email or "")
            self.repo._push_event(ref, before, head, t, who, _text(commit.message))
        return head

    def fetch(self) -> None:
        self.repo._check_available()
        try:
            self.git.git.fetch("origin", "--prune")
        except git.GitCommandError as exc:
            raise TemporaryError(message=f"git fetch failed: {_git_stderr(exc)}", reason="GitOperationFailed") from None

    def pull(self) -> str:
        """``git fetch`` + ``git merge --ff-only origin/<branch>``; returns the new head."""
        self.fetch()
        branch = self.branch or self.repo.default_branch
        try:
            self.git.git.merge("--ff-only", f"origin/{branch}")
        except git.GitCommandError as exc:
            raise LabkitError(_git_stderr(exc), field="pull") from None
        return self.head()

    def __repr__(self) -> str:
        return f"WorkingCopy({self.name!r}, {str(self.path)!r})"
