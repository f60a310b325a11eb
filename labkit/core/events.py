"""The one event log every component writes to.

Design principle 5 ("everything is an event"): the simulator's API store and
controllers, the git helpers, the GitOps engine and the delivery models all append
typed ``Event`` records to a single ``EventLog``.  Metrics, DORA figures, timelines
and plots are *derived* from the log as pandas DataFrames; no component keeps a
private tally that a notebook would have to trust.

A record is ``(time, component, event, object, revision, detail)``:

* ``time`` — seconds on the run's clock (virtual seconds in the simulator, seconds
  since the run started against a real cluster);
* ``component`` — who acted: ``api``, ``deployment-controller``, ``hpa``,
  ``kustomize-controller``, ``git``, ``webhook`` ...;
* ``event`` — a short CamelCase verb phrase: ``Created``, ``ScaledUp``,
  ``ReconciliationSucceeded``, ``Pushed`` ...;
* ``object`` — ``Kind/namespace/name`` (or ``Kind/name`` when cluster-scoped),
  empty when the event is not about one object;
* ``revision`` — a git revision when one is involved;
* ``detail`` — a small dict of anything else (never a Secret value).

The log is append-only and cheap to write (a list of tuples); the DataFrame is built
on demand.  Subscribers (``subscribe``) see each record as it is appended, which is
how the notebooks' live views and the tests' probes observe a run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import pandas as pd

COLUMNS = ["time", "component", "event", "object", "revision", "detail"]


@dataclass(frozen=True, slots=True)
class Event:
    time: float
    component: str
    event: str
    object: str = ""
    revision: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


def object_key(kind: str, namespace: str | None, name: str) -> str:
    """``Deployment/default/web``; cluster-scoped objects have no namespace part."""
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def key_of(obj: dict[str, Any]) -> str:
    md = obj.get("metadata") or {}
    return object_key(obj.get("kind", ""), md.get("namespace"), md.get("name", ""))


class EventLog:
    """Append-only log of ``Event`` records, shared by every component of a run."""

    def __init__(self, clock: Callable[[], float] | None = None):
        self._records: list[Event] = []
        self._clock = clock or (lambda: 0.0)
        self._subscribers: list[Callable[[Event], None]] = []

    def bind_clock(self, clock: Callable[[], float]) -> None:
        """Use ``clock()`` as the time of records appended without an explicit time."""
        self._clock = clock

    def now(self) -> float:
        return float(self._clock())

    def record(
        self,
        component: str,
        event: str,
        object: str = "",
        revision: str = "",
        detail: dict[str, Any] | None = None,
        *,
        time: float | None = None,
    ) -> Event:
        ev = Event(
            self.now() if time is None else float(time),
            component,
            event,
            object,
            revision or "",
            detail or {},
        )
        self._records.append(ev)
        for fn in self._subscribers:
            fn(ev)
        return ev

    def subscribe(self, fn: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``fn(event)`` for every new record; returns an unsubscribe function."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._records)

    def records(self) -> list[Event]:
        return list(self._records)

    def filter(
        self,
        *,
        component: str | Iterable[str] | None = None,
        event: str | Iterable[str] | None = None,
        object: str | None = None,
        since: float | None = None,
    ) -> list[Event]:
        comps = {component} if isinstance(component, str) else (set(component) if component else None)
        evs = {event} if isinstance(event, str) else (set(event) if event else None)
        out = []
        for r in self._records:
            if comps is not None and r.component not in comps:
                continue
            if evs is not None and r.event not in evs:
                continue
            if object is not None and r.object != object:
                continue
            if since is not None and r.time < since:
                continue
            out.append(r)
        return out

    def first(self, **kw: Any) -> Event | None:
        found = self.filter(**kw)
        return found[0] if found else None

    def to_frame(self) -> pd.DataFrame:
        """All records as a DataFrame with columns ``time, component, event, object, revision, detail``."""
        if not self._records:
            return pd.DataFrame(columns=COLUMNS)
        return pd.DataFrame(
            [(r.time, r.component, r.event, r.object, r.revision, r.detail) for r in self._records],
            columns=COLUMNS,
        )
