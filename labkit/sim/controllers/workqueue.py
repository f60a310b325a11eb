"""Work queues and the controller skeleton, as client-go builds them.

Every kube-controller-manager controller has the same shape
(``k8s.io/client-go/util/workqueue`` plus a shared informer): event handlers on
the informers *only enqueue a key* (``namespace/name``) and return; one or more
workers pop keys and run ``sync(key)``, which reads the current state from the
informer cache and acts.  The queue gives three guarantees the controllers lean
on, and ``WorkQueue`` reproduces them on the virtual clock:

* **coalescing** — a key added ten times before a worker gets to it is synced
  once (``add``);
* **delayed adds** — ``add_after(key, d)`` (the delaying queue) makes the key
  ready ``d`` seconds later; a later request for a key already waiting keeps the
  earlier time, as client-go's ``waitingForQueue`` does (keys due at the same
  instant share one SimPy timer);
* **rate-limited retries** — a sync that fails with an ``ApiError`` (a conflict, a
  NotFound race) is retried with per-key exponential back-off, 5 ms doubling to
  1000 s (``DefaultControllerRateLimiter``'s item limiter), and ``forget``
  resets it after a success.

``Controller`` is the worker half: a SimPy process that sleeps until its queue
has work, then syncs keys one by one.  Syncs take no virtual time (the real ones
take milliseconds), so a change and every controller's reaction to it happen at
the same virtual instant, in a deterministic order: the store calls watchers
synchronously, keys are queued FIFO, and SimPy runs same-time events in the
order they were scheduled.  After each sync the worker yields for zero virtual
seconds, so the other controllers react to that sync's writes before this one
syncs again — the interleaving informer latency gives real controllers (the
ReplicaSet controller creates the first new pod before the Deployment
controller scales the old ReplicaSet down).  A controller whose sync wrote
nothing other controllers watch may clear ``interleave`` for that sync (the HPA
does, unless it rescaled its target) to save the zero-time yield.

``Controller.event`` records a Kubernetes Event
(reason + message, ``Normal`` / ``Warning``) in the run's event log under the
controller's component name.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Hashable

import simpy

from labkit.errors import ApiError


class WorkQueue:
    """A coalescing, delaying, rate-limited work queue on a SimPy clock."""

    def __init__(self, env: simpy.Environment, *, base_delay: float = 0.005, max_delay: float = 1000.0):
        self.env = env
        self._queue: deque = deque()
        self._dirty: dict[Hashable, None] = {}
        self._waiting: dict[Hashable, float] = {}
        self._timers: dict[float, list] = {}  # one SimPy timeout per instant, shared by its keys
        self._failures: dict[Hashable, int] = {}
        self._wakeup: simpy.Event | None = None
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.adds = 0

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: Hashable) -> None:
        if key in self._dirty:
            return
        self.adds += 1
        self._dirty[key] = None
        self._queue.append(key)
        w = self._wakeup
        if w is not None:
            self._wakeup = None
            w.succeed()

    def add_after(self, key: Hashable, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        at = self.env.now + delay
        cur = self._waiting.get(key)
        if cur is not None and cur <= at:
            return
        self._waiting[key] = at
        keys = self._timers.get(at)
        if keys is None:
            keys = self._timers[at] = []
            ev = self.env.timeout(delay)
            ev.callbacks.append(lambda _ev, at=at: self._fire(at))
        keys.append(key)

    def _fire(self, at: float) -> None:
        for key in self._timers.pop(at, ()):
            if self._waiting.get(key) == at:
                del self._waiting[key]
                self.add(key)

    def waiting_until(self, key: Hashable) -> float | None:
        return self._waiting.get(key)

    def add_rate_limited(self, key: Hashable) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        delay = min(self.base_delay * (2 ** n), self.max_delay)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def pop(self) -> Hashable | None:
        if not self._queue:
            return None
        key = self._queue.popleft()
        del self._dirty[key]
        return key

    def wait(self) -> simpy.Event:
        """An event that fires when a key is added (only call when the queue is empty)."""
        ev = self._wakeup = self.env.event()
        return ev


class Controller:
    """A controller: informer handlers enqueue keys, a SimPy worker process syncs them."""

    component = "controller"
    interleave = True  # yield to the other controllers between syncs (a sync may clear it for itself)

    def __init__(self, cluster: Any):
        self.cluster = cluster
        self.store = cluster.store
        self.env: simpy.Environment = cluster.env
        self.log = cluster.log
        self.queue = WorkQueue(self.env)
        self.syncs = 0
        self.errors = 0
        self.process = self.env.process(self._worker())

    # -------------------------------------------------------------- the worker
    def _worker(self):
        queue = self.queue
        while True:
            key = queue.pop()
            if key is None:
                yield queue.wait()
                continue
            self.syncs += 1
            try:
                self.sync(key)
            except ApiError as exc:
                self.errors += 1
                delay = queue.add_rate_limited(key)
                self.log.record(self.component, "SyncError", self.object_key(key),
                                detail={"reason": exc.reason, "message": exc.message, "retry_in": delay})
            else:
                queue.forget(key)
            # Let every other process of this instant run before the next sync, as informer
            # latency does for real controllers: the ReplicaSet controller sees the Deployment
            # controller's first write before the Deployment controller makes its second.
            # (With an empty queue the wait below yields anyway.)
            if queue._queue and self.interleave:
                yield self.env.timeout(0)

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
