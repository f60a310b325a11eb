"""What to break, when and how often: ``Fault`` and ``FaultPlan``.

A ``FaultPlan`` is a list of ``Fault`` rules plus the journal of what was
actually injected.  Every wrapper in ``labkit.faults`` (the ``Cluster`` seam,
the git remote, the renderer) asks the same plan, on every call it intercepts,
whether a fault fires *now*; the plan answers with the first matching rule
whose time window contains the current time and whose rate wins a draw from the
caller's seeded ``random.Random``.  The answer is therefore a pure function of
(seed, sequence of calls, virtual time), so a failing example replays exactly.

Rules
=====

``Fault.kind`` names the failure; it also decides which wrapper acts on it:

==================  ==========  ===========================================================
kind                target      what the caller sees
==================  ==========  ===========================================================
``internal``        api         ``ApiError("InternalError", code=500)``
``unavailable``     api         ``ApiError("ServiceUnavailable", code=503)``
``throttle``        api         ``ApiError("TooManyRequests", code=429, retry_after=...)``
``conflict``        api         ``ApiError("Conflict", code=409)`` (optimistic concurrency)
``timeout``         api         ``ApiError("Timeout", code=504)``; with ``lost_response`` a
                                write is *performed* first and only the answer is lost
``slow``            api         the call succeeds after ``latency`` seconds, which the
                                engine yields on its clock (see ``FaultyCluster``)
``git-unavailable`` git         ``TemporaryError(reason="GitOperationFailed")`` on fetch
``git-corrupt-ref`` git         ``fetch`` answers a SHA that does not exist, so exporting
                                the revision fails
``render-timeout``  render      ``RenderTimeoutError`` (kustomize did not finish in time)
==================  ==========  ===========================================================

Filters narrow a rule: ``verbs`` (``get``, ``list``, ``apply``, ``update``,
``delete``, ``patch_status``, ``is_namespaced``; ``fetch`` for git, ``render``
for kustomize), ``kinds`` (object kinds such as ``ConfigMap`` or
``Kustomization``), ``names`` (object names), ``dry_run`` (``True``: only dry-run applies, ``False``: only
real writes, ``None``: both).  ``start``/``end`` bound the window in seconds of
the run's clock (virtual time in the simulator, seconds since start against a
real cluster); ``rate`` is the probability per matching call; ``limit`` caps how
many times a rule fires.

The plan can be switched off as a whole (``plan.stop()``), which is how a
property test says "the faults stop here" regardless of the windows.
``quiet_after()`` is the end of the last finite window: after it, a plan without
open-ended rules injects nothing.

Every injection is appended to ``plan.journal`` and, when the plan has an
``EventLog``, recorded as a ``FaultInjected`` event of component ``faults`` with
the target, verb, object and kind, so a run's event-log DataFrame shows the
faults next to the controllers' reactions to them.  Nothing else of the request
is recorded (no object bodies, so no Secret values).

The plan knows nothing about Flux or Argo CD: the same plan drives whichever
dialect sits above the seam.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Iterable

from labkit.core.events import EventLog

__all__ = ["API_KINDS", "GIT_KINDS", "RENDER_KINDS", "FAULT_KINDS", "Fault", "FaultPlan", "Injection", "target_of"]

#: Fault kinds acted on by ``FaultyCluster`` (the ``Cluster`` seam).
API_KINDS = ("internal", "unavailable", "throttle", "conflict", "timeout", "slow")
#: Fault kinds acted on by ``FaultyRemote`` (the git remote).
GIT_KINDS = ("git-unavailable", "git-corrupt-ref")
#: Fault kinds acted on by ``FaultyRenderer`` (kustomize).
RENDER_KINDS = ("render-timeout",)
FAULT_KINDS = API_KINDS + GIT_KINDS + RENDER_KINDS

VERBS = ("get", "list", "apply", "update", "delete", "patch_status", "is_namespaced", "fetch", "render")


def target_of(kind: str) -> str:
    """``api``, ``git`` or ``render``: which wrapper injects a fault kind."""
    if kind in API_KINDS:
        return "api"
    if kind in GIT_KINDS:
        return "git"
    if kind in RENDER_KINDS:
        return "render"
    raise ValueError(f"unknown fault kind {kind!r}: expected one of {', '.join(FAULT_KINDS)}")


@dataclass(frozen=True)
class Fault:
    """One injection rule (see the module docstring)."""

    kind: str
    rate: float = 1.0
    start: float = 0.0
    end: float = math.inf
    verbs: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    dry_run: bool | None = None
    retry_after: float = 1.0
    latency: float = 0.0
    lost_response: bool = False
    limit: int | None = None

    def __post_init__(self) -> None:
        target_of(self.kind)
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"Fault.rate must be within [0, 1], got {self.rate}")
        if self.end < self.start:
            raise ValueError(f"Fault window ends ({self.end}) before it starts ({self.start})")
        for v in self.verbs:
            if v not in VERBS:
                raise ValueError(f"unknown verb {v!r}: expected one of {', '.join(VERBS)}")
        if self.kind == "slow" and self.latency <= 0:
            raise ValueError("a 'slow' fault needs latency > 0")

    @property
    def target(self) -> str:
        return target_of(self.kind)

    def matches(self, target: str, verb: str, kind: str, now: float, dry_run: bool, name: str = "") -> bool:
        """Whether this rule applies to a call (before the rate draw)."""
        if self.target != target or not (self.start <= now < self.end):
            return False
        if self.verbs and verb not in self.verbs:
            return False
        if self.kinds and kind not in self.kinds:
            return False
        if self.names and name not in self.names:
            return False
        if self.dry_run is not None and verb == "apply" and self.dry_run != dry_run:
            return False
        return True


@dataclass(frozen=True)
class Injection:
    """One fault that fired: when, where, on what."""

    time: float
    target: str
    verb: str
    object: str
    kind: str


class FaultPlan:
    """A list of ``Fault`` rules, the switch that stops them, and the journal of injections."""

    def __init__(self, faults: Iterable[Fault] = (), *, log: EventLog | None = None):
        self.faults: list[Fault] = list(faults)
        self.log = log
        self.enabled = True
        self.journal: list[Injection] = []
        self._fired: dict[int, int] = {}

    def __repr__(self) -> str:
        return f"FaultPlan({self.faults!r}, enabled={self.enabled})"

    # -------------------------------------------------------------- building

    @classmethod
    def none(cls) -> "FaultPlan":
        """A plan that never injects anything (the wrappers become transparent)."""
        return cls()

    def add(self, fault: Fault) -> "FaultPlan":
        self.faults.append(fault)
        return self

    def stop(self) -> None:
        """Inject nothing from now on, whatever the windows say."""
        self.enabled = False

    def resume(self) -> None:
        self.enabled = True

    def quiet_after(self) -> float:
        """The end of the last window (``inf`` if a rule is open-ended; 0 without rules)."""
        return max((f.end for f in self.faults), default=0.0)

    # -------------------------------------------------------------- deciding

    def draw(self, target: str, verb: str, kind: str, now: float, rng: random.Random, *,
             dry_run: bool = False, obj: str = "", name: str = "") -> Fault | None:
        """The rule that fires for this call, or None.  Draws from ``rng`` once per matching rule."""
        if not self.enabled:
            return None
        for i, f in enumerate(self.faults):
            if not f.matches(target, verb, kind, now, dry_run, name):
                continue
            if f.limit is not None and self._fired.get(i, 0) >= f.limit:
                continue
            if f.rate < 1.0 and rng.random() >= f.rate:
                continue
            self._fired[i] = self._fired.get(i, 0) + 1
            inj = Injection(now, target, verb, obj, f.kind)
            self.journal.append(inj)
            if self.log is not None:
                self.log.record("faults", "FaultInjected", obj, detail={"target": target, "verb": verb, "kind": f.kind},
                                time=now)
            return f
        return None

    def counts(self) -> dict[str, int]:
        """Number of injections per fault kind."""
        out: dict[str, int] = {}
        for inj in self.journal:
            out[inj.kind] = out.get(inj.kind, 0) + 1
        return out

    def describe(self) -> list[dict[str, Any]]:
        """The rules as plain dicts (for reports and benchmark tables)."""
        return [{"kind": f.kind, "rate": f.rate, "start": f.start, "end": f.end, "verbs": list(f.verbs),
                 "kinds": list(f.kinds), "names": list(f.names)} for f in self.faults]
