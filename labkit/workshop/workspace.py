"""A participant's workspace: their own fleet repository, copies of the notebooks, and their progress.

``labkit workshop start DIR`` lays out::

    DIR/
      README.md                 how to open it and what to do
      .labkit-workspace         marks the folder (JSON: version, created)
      fleet/                    a real git repository, the participant's own
        <exercise-id>/          one folder per exercise: that exercise's repository root
      notebooks/                copies of the scenario notebooks (the package's are never touched)
      .labkit/progress.json     hints shown per exercise

Each exercise folder is what the exercise's lab serves as its repository: the
participant edits files there (in JupyterLab's editor or any other), commits
with git, and ``labkit check ID`` reads the commits that touched the folder
since the workspace was created — never the working tree, because a GitOps
controller never sees what is not committed (uncommitted changes are pointed
out in the verdict).  Exercises are independent: a commit to one folder does not
change another exercise's history.

Git runs as a plain subprocess with hooks, fsmonitor, pagers and external
diff tools off, reading commits with plumbing (``rev-list``, ``ls-tree``,
``cat-file``); the participant's index is only read by ``git status`` with
optional locks off (``--no-optional-locks``), so a check never rewrites it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Mapping

from labkit.core.errors import LabkitError
from labkit.workshop.model import Commit, History

__all__ = ["Workspace", "find_workspace", "MARKER"]

MARKER = ".labkit-workspace"
_GIT_OPTS = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "core.pager=cat",
             "-c", "diff.external=", "-c", "protocol.allow=never", "-c", "commit.gpgSign=false",
             "-c", "core.autocrlf=false", "--no-pager"]
_GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
START_AUTHOR = ("labkit", "labkit@example.invalid")


def _git(repo: Path, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None) -> bytes:
    full_env = {**os.environ, **_GIT_ENV, **(env or {})}
    try:
        proc = subprocess.run(["git", *_GIT_OPTS, *args], cwd=repo, input=input, capture_output=True,  # noqa: S603
                              env=full_env, timeout=60, stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise LabkitError("git is not installed; the workshop needs it", field="git") from None
    except subprocess.TimeoutExpired:
        raise LabkitError(f"git {args[0]} did not finish within 60 s", file=str(repo)) from None
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise LabkitError(f"git {args[0]} failed: {msg[-1] if msg else proc.returncode}", file=str(repo))
    return proc.stdout


def find_workspace(path: str | os.PathLike[str] | None = None) -> "Workspace":
    """The workspace at ``path``, else ``$LABKIT_WORKSPACE``, else the current folder or one above it."""
    candidates: list[Path] = []
    if path:
        candidates = [Path(path)]
    elif os.environ.get("LABKIT_WORKSPACE"):
        candidates = [Path(os.environ["LABKIT_WORKSPACE"])]
    else:
        here = Path.cwd().resolve()
        candidates = [here, *here.parents]
    for c in candidates:
        if (c / MARKER).is_file():
            return Workspace(c)
    where = str(candidates[0]) if path or os.environ.get("LABKIT_WORKSPACE") else str(Path.cwd())
    raise LabkitError("not a labkit workshop workspace (create one with `labkit workshop start DIR`, or pass "
                      "--workspace DIR)", file=where)


class Workspace:
    """One participant's workspace (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()
        self.fleet = self.root / "fleet"
        self.notebooks = self.root / "notebooks"
        self._progress = self.root / ".labkit" / "progress.json"

    # ------------------------------------------------------------------ creation

    @classmethod
    def create(cls, root: str | os.PathLike[str], exercises: Mapping[str, Mapping[str, str]],
               notebooks: Path | None = None) -> "Workspace":
        """Lay out a new workspace with ``exercises`` (id → the folder's starting files)."""
        path = Path(root)
        if path.exists() and not path.is_dir():
            raise LabkitError("exists and is not a directory", file=str(root))
        if path.is_dir() and any(path.iterdir()):
            raise LabkitError("is not empty: give a new or empty folder for the workspace", file=str(root))
        path.mkdir(parents=True, exist_ok=True)
        ws = cls(path)
        ws.fleet.mkdir()
        for ex_id, files in exercises.items():
            ws.write_files(ex_id, files)
        _git(ws.fleet, "init", "-q", "-b", "main")
        # a fresh machine (a dev container, Binder) has no git identity: the participant's first commit must work
        _git(ws.fleet, "config", "user.name", "participant")
        _git(ws.fleet, "config", "user.email", "participant@example.invalid")
        _git(ws.fleet, "add", "-A")
        _git(ws.fleet, "-c", f"user.name={START_AUTHOR[0]}", "-c", f"user.email={START_AUTHOR[1]}",
             "commit", "-q", "-m", "workshop start: one folder per exercise")
        start = _git(ws.fleet, "rev-parse", "HEAD").decode().strip()
        _git(ws.fleet, "tag", "workshop-start", start)
        if notebooks is not None and notebooks.is_dir():
            shutil.copytree(notebooks, ws.notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        (ws.root / MARKER).write_text(json.dumps({"version": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                          time.gmtime()),
                                                  "start": start}, indent=2) + "\n")
        return ws

    def write_files(self, ex_id: str, files: Mapping[str, str | None]) -> None:
        base = self.folder(ex_id)
        for rel, text in files.items():
            p = base / rel
            if text is None:
                if p.exists():
                    p.unlink()
                continue
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")

    def folder(self, ex_id: str) -> Path:
        return self.fleet / ex_id

    # ------------------------------------------------------------------ git

    def commit(self, ex_id: str, changes: Mapping[str, str | None], message: str, *,
               author: str = "participant") -> str:
        """Write ``changes`` into the exercise folder and commit them (what ``labkit solve`` does)."""
        self.write_files(ex_id, changes)
        _git(self.fleet, "add", "-A", "--", ex_id)
        _git(self.fleet, "-c", f"user.name={author}", "-c", f"user.email={author}@example.invalid",
             "commit", "-q", "--allow-empty", "-m", message, "--", ex_id)
        return _git(self.fleet, "rev-parse", "HEAD").decode().strip()

    def _tree(self, rev: str, ex_id: str) -> dict[str, str]:
        out = _git(self.fleet, "ls-tree", "-r", "-z", "--full-tree", rev, "--", f"{ex_id}/")
        entries = []
        for rec in out.split(b"\0"):
            if not rec:
                continue
            meta, path = rec.split(b"\t", 1)
            mode, kind, sha = meta.split()
            if kind == b"blob" and mode in (b"100644", b"100755"):
                entries.append((path.decode("utf-8", "replace"), sha.decode()))
        if not entries:
            return {}
        batch = _git(self.fleet, "cat-file", "--batch", input="".join(f"{s}\n" for _, s in entries).encode())
        files: dict[str, str] = {}
        pos = 0
        prefix = f"{ex_id}/"
        for path, _sha in entries:
            header_end = batch.index(b"\n", pos)
            size = int(batch[pos:header_end].split()[2])
            data = batch[header_end + 1:header_end + 1 + size]
            pos = header_end + 1 + size + 1
            files[path[len(prefix):]] = data.decode("utf-8", "replace")
        return files

    def history(self, ex_id: str) -> History:
        """The exercise folder at the workspace's start and after each later commit touching it."""
        start = self._tree("workshop-start", ex_id)
        revs = _git(self.fleet, "rev-list", "--reverse", "--first-parent", "workshop-start..HEAD", "--",
                    f"{ex_id}/").decode().split()
        commits = []
        for sha in revs:
            msg = _git(self.fleet, "log", "-1", "--format=%s", sha).decode().strip()
            commits.append(Commit(sha, msg, self._tree(sha, ex_id)))
        status = _git(self.fleet, "--no-optional-locks", "status", "--porcelain", "-z", "--untracked-files=all",
                      "--", f"{ex_id}/").decode("utf-8", "replace")
        dirty = tuple(sorted(rec[3:] for rec in status.split("\0") if len(rec) > 3))
        return History(start, tuple(commits), dirty)

    def files(self, ex_id: str) -> dict[str, str]:
        """The exercise folder at HEAD."""
        return self._tree("HEAD", ex_id)

    def reset(self, ex_id: str, start: Mapping[str, str]) -> str:
        """Put the exercise folder back to its starting files, as a new commit (history is kept)."""
        current = self.files(ex_id)
        changes: dict[str, str | None] = {p: None for p in current if p not in start}
        changes.update(start)
        return self.commit(ex_id, changes, f"{ex_id}: back to the start")

    # ------------------------------------------------------------------ hints

    def hints_shown(self, ex_id: str) -> int:
        try:
            return int(json.loads(self._progress.read_text()).get(ex_id, {}).get("hints", 0))
        except (OSError, ValueError, AttributeError):
            return 0

    def show_hint(self, ex_id: str) -> int:
        """Record one more hint shown for ``ex_id``; returns how many have been shown."""
        try:
            data = json.loads(self._progress.read_text())
        except (OSError, ValueError):
            data = {}
        entry = data.setdefault(ex_id, {})
        entry["hints"] = int(entry.get("hints", 0)) + 1
        self._progress.parent.mkdir(parents=True, exist_ok=True)
        self._progress.write_text(json.dumps(data, indent=2) + "\n")
        return entry["hints"]
