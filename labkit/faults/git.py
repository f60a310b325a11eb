"""Faults on the git side: an unreachable remote and a remote that lies about a ref.

``FaultyRemote(repo, plan, rng)`` wraps a ``labkit.gitops.repo.ManifestRepo``
(anything with ``fetch(ref)`` and ``export(sha)``) where the source controller
meets it: register the wrapper instead of the repository
(``flux.add_remote(url, FaultyRemote(repo, plan, rng))``).  On every ``fetch``
it asks the plan:

* ``git-unavailable`` raises ``TemporaryError(reason="GitOperationFailed")``
  with the text source-controller shows for an unreachable remote — the same
  error ``repo.available = False`` produces, but per call, at a rate and in a
  time window;
* ``git-corrupt-ref`` answers a well-formed SHA-1 that names no object (a
  remote whose ref points at a commit it does not have, as after a botched
  force-push or a corrupt pack).  The controller only finds out when it tries
  to export the revision: ``RefNotFound`` (a ``LabkitError``).  The source must
  then report ``GitOperationFailed`` and keep the last artifact, never store a
  revision it could not read.

Everything else (``commit``, ``head``, ``on_push`` ...) goes straight to the
wrapped repository, so scenario code keeps committing through the same object.

``schedule_outage(env, repo, start, end)`` is the blunt instrument: a SimPy
process that sets ``repo.available = False`` at ``start`` and back to ``True``
at ``end`` (the whole host is down: fetches, clones, pulls and pushes fail).
"""
from __future__ import annotations

import hashlib
import random
from typing import Any, Callable

import simpy

from labkit.core.errors import TemporaryError
from labkit.faults.plan import FaultPlan

__all__ = ["FaultyRemote", "schedule_outage"]


class FaultyRemote:
    """A git remote that fails or lies on ``fetch`` as a ``FaultPlan`` says (see the module docstring)."""

    def __init__(self, repo: Any, faults: FaultPlan, rng: random.Random, *, env: Any = None,
                 clock: Callable[[], float] | None = None):
        self.repo = repo
        self.faults = faults
        self.rng = rng
        if clock is None:
            clock = (lambda: float(env.now)) if env is not None else (lambda: 0.0)
        self._now = clock

    def __getattr__(self, item: str) -> Any:
        if item == "repo":
            raise AttributeError(item)
        return getattr(self.repo, item)

    def fetch(self, ref: str | None = None) -> str:
        obj = f"Repository/{getattr(self.repo, 'name', '')}"
        fault = self.faults.draw("git", "fetch", "GitRepository", self._now(), self.rng, obj=obj)
        if fault is not None and fault.kind == "git-unavailable":
            raise TemporaryError(
                message=f"failed to checkout and determine revision: unable to clone '{self.repo.url}': "
                "dial tcp: connect: connection refused",
                reason="GitOperationFailed",
            )
        sha = self.repo.fetch(ref)
        if fault is not None and fault.kind == "git-corrupt-ref":
            # a well-formed SHA-1 that no object in the repository has
            return hashlib.sha1(f"corrupt:{sha}:{self.rng.random()}".encode()).hexdigest()
        return sha


def schedule_outage(env: simpy.Environment, repo: Any, start: float, end: float) -> simpy.Process:
    """Make ``repo`` unreachable (``repo.available = False``) during ``[start, end)`` of ``env``'s clock."""
    if end < start:
        raise ValueError(f"outage ends ({end}) before it starts ({start})")

    def outage():
        if start > env.now:
            yield env.timeout(start - env.now)
        repo.available = False
        yield env.timeout(max(end - env.now, 0.0))
        repo.available = True

    return env.process(outage())
