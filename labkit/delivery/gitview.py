"""A real git repository seen through a virtual clock: ``TimedRemote``.

A Monte Carlo rollback study needs a thousand runs, each with its own virtual
clock, cluster and controllers.  Making real commits and running kustomize in
every run would cost seconds per run, and would not change the answer: the
commits of a rollback are always the same three — the good revision, the bad
one, and ``git revert`` of the bad one.  So the repository and its revisions
are built once, for real (``labkit.delivery.fixture``), and each run sees them
through a ``TimedRemote``: an adapter over the real ``ManifestRepo`` whose branch
head *as the controller sees it* moves at the virtual time a person pushes
(``push(sha)``).  Everything else — resolving tags and SHAs, exporting a
revision's tree (``export``: what source-controller stores as an artifact) — is
answered by the real repository; revisions exported up front (``exports``)
are answered without calling git at all, which keeps runs cheap and lets them
run in forked worker processes.

A push is what it is on a git host: the ref moves, a ``Pushed`` record lands in
the run's event log (component ``git``), and every ``on_push`` subscriber gets a
push event shaped like ``labkit.gitops.repo.PushEvent`` (GitHub's payload),
which is how a webhook delivery starts.  The event also answers ``get("branch")``
and ``get("sha")`` for subscribers that read it as a mapping.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import simpy

from labkit.core.errors import TemporaryError
from labkit.core.events import EventLog
from labkit.gitops.repo import EPOCH, ZERO_SHA, ManifestRepo, PushEvent

COMPONENT = "git"


@dataclass(frozen=True)
class PushNotice(PushEvent):
    """A ``PushEvent`` that can also be read like a mapping (``branch``, ``sha``)."""

    def get(self, key: str, default: Any = None) -> Any:
        if key == "branch":
            return self.ref.removeprefix("refs/heads/")
        if key == "sha":
            return self.after
        return self.payload.get(key, default)


class TimedRemote:
    """A ``ManifestRepo`` whose branch head moves at virtual times (see the module docstring)."""

    def __init__(
        self,
        repo: ManifestRepo,
        env: simpy.Environment,
        *,
        head: str,
        branch: str | None = None,
        log: EventLog | None = None,
        exports: dict[str, Path] | None = None,
    ):
        self.repo = repo
        #: sha -> exported tree; revisions exported up front need no git call during a run.
        self.exports = exports if exports is not None else {}
        self.env = env
        self.branch = branch or repo.default_branch
        self.log = log
        self.url = repo.url
        self.available = True
        self.history: list[tuple[float, str]] = [(env.now, head if head in self.exports else repo.resolve(head))]
        self._subscribers: list[Callable[[Any], None]] = []

    @property
    def head(self) -> str:
        return self.history[-1][1]

    def head_at(self, t: float) -> str:
        """The branch head visible at virtual time ``t``."""
        sha = self.history[0][1]
        for when, s in self.history:
            if when <= t:
                sha = s
        return sha

    # ------------------------------------------------------------------ writing (a push)

    def push(self, sha: str, *, pusher: str = "developer", message: str = "") -> str:
        """Move the branch to ``sha`` now, record ``Pushed`` and notify subscribers."""
        before = self.head
        after = sha if sha in self.exports else self.repo.resolve(sha)
        self.history.append((self.env.now, after))
        ref = f"refs/heads/{self.branch}"
        if self.log is not None:
            self.log.record(COMPONENT, "Pushed", "", after,
                            {"ref": ref, "before": before, "after": after, "pusher": pusher})
        ts = datetime.fromtimestamp(EPOCH + int(self.env.now), tz=timezone.utc).isoformat().replace("+00:00", "Z")
        payload = {"ref": ref, "before": before or ZERO_SHA, "after": after, "created": False, "deleted": False,
                   "forced": False,
                   "repository": {"name": self.repo.name, "full_name": f"{self.repo.owner}/{self.repo.name}",
                                  "clone_url": self.url, "default_branch": self.repo.default_branch},
                   "pusher": {"name": pusher}, "head_commit": {"id": after, "message": message, "timestamp": ts}}
        event = PushNotice(ref=ref, before=before, after=after, when=self.env.now, pusher=pusher, payload=payload)
        for fn in list(self._subscribers):
            fn(event)
        return after

    def on_push(self, fn: Callable[[Any], None]) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    # ------------------------------------------------------------------ reading (what controllers call)

    def _map(self, ref: str | None) -> str | None:
        if ref in (None, self.branch, f"refs/heads/{self.branch}"):
            return self.head
        return ref

    def resolve(self, ref: str) -> str:
        if ref in (self.branch, f"refs/heads/{self.branch}"):
            return self.head
        if ref in self.exports:
            return ref
        return self.repo.resolve(ref)

    def fetch(self, ref: str | None = None) -> str:
        if not self.available:
            raise TemporaryError(message=f"failed to checkout and determine revision: unable to clone '{self.url}': "
                                 "repository not found or unreachable", reason="GitOperationFailed")
        return self.resolve(ref or self.branch)

    def export(self, ref: str) -> Path:
        sha = self.resolve(ref)
        path = self.exports.get(sha)
        if path is None:
            path = self.exports[sha] = self.repo.export(sha)
        return path

    def checkout_tree(self, ref: str, dest: str | Path, **kw: Any) -> Path:
        return self.repo.checkout_tree(self.resolve(ref), dest, **kw)

    def read(self, path: str, ref: str | None = None) -> str:
        return self.repo.read(path, self._map(ref))

    def files(self, ref: str | None = None) -> list[str]:
        return self.repo.files(self._map(ref))
