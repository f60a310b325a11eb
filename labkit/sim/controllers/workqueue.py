"""The simulator's controller skeleton, as client-go builds them, on the one reconcile driver.

Every kube-controller-manager controller has the same shape
(``k8s.io/client-go/util/workqueue`` plus a shared informer): event handlers on
the informers *only enqueue a key* (``namespace/name``) and return; a worker pops
keys and runs ``sync(key)``, which reads the current state from the informer
cache and acts.  The queue and the worker are ``labkit.core.workqueue``'s
``WorkQueue`` and ``Driver`` with the one-worker policy (coalescing, delayed
adds with shared timers, per-key exponential back-off from 5 ms doubling to
1000 s on an ``ApiError`` — a conflict, a NotFound race — and ``forget`` after a
success); this module only adds what every simulator controller shares.

Syncs take no virtual time (the real ones take milliseconds), so a change and
every controller's reaction to it happen at the same virtual instant, in a
deterministic order: the store calls watchers synchronously, keys are queued
FIFO, and SimPy runs same-time events in the order they were scheduled.  After
each sync the worker yields for zero virtual seconds, so the other controllers
react to that sync's writes before this one syncs again — the interleaving
informer latency gives real controllers (the ReplicaSet controller creates the
first new pod before the Deployment controller scales the old ReplicaSet down).
A controller whose sync wrote nothing other controllers watch may clear
``interleave`` for that sync (the HPA does, unless it rescaled its target) to
save the zero-time yield.

``Controller.event`` records a Kubernetes Event (reason + message, ``Normal`` /
``Warning``) in the run's event log under the controller's component name.
"""
from __future__ import annotations

from typing import Any, Hashable

import simpy

from labkit.core.workqueue import Driver, WorkQueue
from labkit.core.errors import ApiError

__all__ = ["Controller"]


class Controller:
    """A controller: informer handlers enqueue keys, the driver's one worker syncs them."""

    component = "controller"

    def __init__(self, cluster: Any):
        self.cluster = cluster
        self.store = cluster.store
        self.env: simpy.Environment = cluster.env
        self.log = cluster.log
        self.driver = Driver(self.env, self.sync, retryable=(ApiError,), on_error=self._sync_error)
        self.queue: WorkQueue = self.driver.queue  # type: ignore[assignment]
        self.process = self.driver.process

    @property
    def interleave(self) -> bool:
        """Yield to the other controllers between syncs (a sync may clear it for itself)."""
        return self.driver.interleave

    @interleave.setter
    def interleave(self, value: bool) -> None:
        self.driver.interleave = value

    def _sync_error(self, key: Hashable, exc: BaseException, delay: float | None, _obj: Any) -> None:
        self.log.record(self.component, "SyncError", self.object_key(key),
                        detail={"reason": getattr(exc, "reason", ""), "message": getattr(exc, "message", str(exc)),
                                "retry_in": delay})

    def sync(self, key: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def object_key(self, key: Any) -> str:
        return str(key)

    # -------------------------------------------------------------- events
    def event(self, reason: str, obj: str, message: str, *, type: str = "Normal", **detail: Any) -> None:
        """Record a Kubernetes Event of this controller in the run's event log."""
        d = {"type": type, "message": message}
        if detail:
            d.update(detail)
        self.log.record(self.component, reason, obj, detail=d)
