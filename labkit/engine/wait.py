"""Health: wait until applied objects are ready, the way Flux's kstatus poller does.

``wait_for_set`` polls every object's kstatus (``labkit.core.health.kstatus``) every
``interval`` seconds until all are ``Current`` (success), one is ``Failed`` and
``fail_fast`` is on (a stalled rollout such as ``ProgressDeadlineExceeded``), or
the timeout passes.  The failure messages are Flux's:

    health check failed after 5m0s: timeout waiting for: [Deployment/default/web status: 'InProgress']
    health check failed after 12s: failed early due to stalled resources: [Deployment/default/web status: 'Failed']

It runs against the ``Cluster`` seam, on the caller's SimPy clock.  A read
that fails with an API error (a 503, a throttled request) makes that object's
status ``Unknown`` for that poll — as the kstatus poller does, which turns a
read error into an ``Unknown`` resource status rather than failing the wait —
so a transient API fault delays readiness instead of failing the health check,
unless it lasts past the timeout.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generator, Iterable

import simpy

from labkit.core.cluster import Cluster, Obj
from labkit.core.duration import format_duration
from labkit.engine.apply import seam_latency
from labkit.engine.changeset import subject_of
from labkit.core.errors import ApiError
from labkit.core.health import kstatus


@dataclass
class WaitResult:
    ok: bool
    message: str
    elapsed: float
    statuses: dict[str, str] = field(default_factory=dict)
    ready_at: dict[str, float] = field(default_factory=dict)


def wait_for_set(
    env: simpy.Environment,
    cluster: Cluster,
    objects: Iterable[Obj],
    *,
    timeout: float,
    interval: float = 2.0,
    fail_fast: bool = True,
) -> Generator[simpy.Event, Any, WaitResult]:
    refs = [(o["apiVersion"], o["kind"], o["metadata"]["name"], (o.get("metadata") or {}).get("namespace"), subject_of(o))
            for o in objects]
    start = env.now
    ready_at: dict[str, float] = {}
    while True:
        statuses: dict[str, str] = {}
        for api_version, kind, name, ns, subject in refs:
            try:
                live = cluster.get(api_version, kind, name, ns)
            except ApiError:
                statuses[subject] = "Unknown"
                continue
            st = kstatus(live).status if live is not None else "NotFound"
            statuses[subject] = st
            if st == "Current" and subject not in ready_at:
                ready_at[subject] = env.now
        elapsed = env.now - start
        if all(s == "Current" for s in statuses.values()):
            return WaitResult(True, "", elapsed, statuses, ready_at)
        failed = [s for s, st in statuses.items() if st == "Failed"]
        if fail_fast and failed:
            listing = ", ".join(f"{s} status: 'Failed'" for s in failed)
            return WaitResult(False, f"health check failed after {format_duration(elapsed)}: failed early due to stalled resources: [{listing}]",
                              elapsed, statuses, ready_at)
        if elapsed >= timeout:
            listing = ", ".join(f"{s} status: '{st}'" for s, st in statuses.items() if st != "Current")
            return WaitResult(False, f"health check failed after {format_duration(elapsed)}: timeout waiting for: [{listing}]",
                              elapsed, statuses, ready_at)
        yield env.timeout(min(interval, max(timeout - elapsed, 0.001)) + seam_latency(cluster))
