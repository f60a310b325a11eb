"""One reconcile driver: a work queue, rate-limited requeues and explicit outcomes.

Every controller in labkit — the simulator's kube-controller-manager
controllers, Flux's source- and kustomize-controllers, Argo CD's application
controller and ApplicationSet controller — has the same outer shape, the one
client-go, controller-runtime and kopf give real controllers: something *enqueues
a key*; a worker pops it and runs a *reconcile* for it; the reconcile says how it
went, and the driver decides when the key comes back.  This module owns that
shape once, so a controller only writes its reconcile.

The queue (``WorkQueue``)
-------------------------
As ``k8s.io/client-go/util/workqueue``, on the virtual clock:

* **coalescing** — a key added ten times before a worker gets to it runs once
  (``add``);
* **delayed adds** — ``add_after(key, d)`` makes the key ready ``d`` seconds
  later; a later request for a key already waiting keeps the earlier time, as
  client-go's ``waitingForQueue`` does (keys due at the same instant share one
  SimPy timer);
* **rate-limited retries** — ``add_rate_limited(key)`` requeues with the per-key
  exponential back-off of its ``RateLimiter`` (client-go's
  ``ItemExponentialFailureRateLimiter``: ``base * 2**failures`` capped), and
  ``forget`` resets it after a success.

The outcomes
------------
A reconcile function says how it went, as controller-runtime's
``(Result, error)`` and kopf's exceptions do:

* return ``None`` or ``DONE`` — success, nothing to come back for: the key's
  back-off is reset (``forget``), and it runs again only when it is added again
  (a watch event, or an ``add_after`` the reconcile made itself);
* return ``RequeueAfter(s)`` — success, come back after ``s`` virtual seconds
  (``0``: at once); the back-off is reset;
* raise ``labkit.core.errors.RetryAfter(delay=s)`` — the same as ``RequeueAfter``, for
  code deep in a call stack (kopf's ``TemporaryError(delay=)`` that is not a
  failure);
* raise a *temporary error* — ``labkit.core.errors.ApiError`` or
  ``labkit.core.errors.TemporaryError`` (any class in the driver's ``retryable``):
  the failure is counted and the key comes back after the rate limiter's delay
  (``TemporaryError.delay`` when it gives one; with
  ``RateLimiter.honour_retry_after``, never sooner than an ``ApiError``'s
  ``Retry-After``);
* raise ``labkit.core.errors.PermanentError`` — a failure that will recur until the
  input changes: reported, the back-off reset, no requeue.

Every failure (temporary or permanent) is handed to the driver's ``on_error``
hook, ``on_error(key, err, delay, obj)`` (``delay`` None for a permanent error;
``obj`` what ``read`` returned, or None), before the key is requeued: that is
where a controller logs ``SyncError``/``ReconcileError`` and writes
``Ready=False`` on the object.  Any other exception is a bug and propagates (it
stops the run, loudly).

A reconcile function is either a **plain call** (takes no virtual time; the
simulator's controllers, whose syncs take milliseconds) or a **SimPy generator**
(takes virtual time with ``yield env.timeout(...)``; Flux's fetch and build).  The
driver tells them apart by what the call returns: a generator is driven with
``yield from``, anything else is the outcome.

The worker policies
-------------------
``Driver(..., policy=ONE_WORKER)`` — the simulator's: one worker per controller
pops keys FIFO from a ``WorkQueue`` and reconciles them one after another.
After each reconcile it yields for zero virtual seconds when more keys wait, so
other controllers react to that reconcile's writes before this one runs again
(the interleaving informer latency gives real controllers).  A reconcile that
wrote nothing other controllers watch may clear ``driver.interleave`` for
itself to save that yield.  Requeues go through the queue: ``add_after`` keeps
the earlier of two due times.

``Driver(..., policy=PerKey(limit=4))`` — Flux's: every key has its own loop
(a SimPy process started by the first ``add``), and reconciles of different
keys run concurrently, at most ``limit`` at once (``--concurrent``; FIFO on a
``simpy.Resource``).  A key's loop waits for its requeue delay *or* an ``add``,
whichever comes first; the outcome of the latest reconcile replaces any delay
still pending (the object's interval restarts from its last run).  An ``add``
while the key is being reconciled makes it run once more right after.  With a
``read`` hook the loop first reads the object, outside the concurrency limit
(an informer-cache read): ``read(key)`` returning None means the object is
gone — the loop ends and ``on_gone(key)`` is called; ``reconcile(key, obj)`` then
gets what was read.  After each reconcile, still holding its slot, the loop
runs the optional ``settle(key)`` generator (Flux charges the cluster seam's
unaccounted latency there).

Using it
--------
The simulator's ``Controller`` (``labkit.sim.controllers.workqueue``)::

    self.driver = Driver(env, self.sync, on_error=self._sync_error)
    self.queue = self.driver.queue          # informer handlers: self.queue.add(key)

Flux (``labkit.flux.system``)::

    Driver(env, self._reconcile, policy=PerKey(limit=concurrent), read=self._read,
           on_gone=self._gone, on_error=self._requeue_error, settle=self._settle,
           limiter=RateLimiter(0.75, 900.0, honour_retry_after=True))
    driver.add(key)                          # start the key's loop, or wake it

Counters: ``driver.runs`` (reconciles started) and ``driver.failures`` (failed
ones).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from types import GeneratorType
from typing import Any, Callable, Generator, Hashable, Union

import simpy

from labkit.core.errors import ApiError, PermanentError, RetryAfter, TemporaryError

__all__ = ["WorkQueue", "RateLimiter", "Done", "DONE", "RequeueAfter", "Outcome", "OneWorker", "PerKey",
           "ONE_WORKER", "Driver"]


# ---------------------------------------------------------------- outcomes

@dataclass(frozen=True)
class Done:
    """Success; nothing to come back for (the key runs again when it is added again)."""


DONE = Done()


@dataclass(frozen=True)
class RequeueAfter:
    """Success; come back after ``delay`` virtual seconds (0: at once)."""

    delay: float


Outcome = Union[Done, RequeueAfter, None]


# ---------------------------------------------------------------- rate limiter

class RateLimiter:
    """Per-key exponential back-off, as client-go's ``ItemExponentialFailureRateLimiter``.

    The n-th consecutive failure of a key waits ``min(base * 2**(n-1), cap)``
    seconds.  With ``honour_retry_after`` an ``ApiError``'s ``Retry-After`` is a
    floor (Flux does this; client-go's queue does not).
    """

    def __init__(self, base: float = 0.005, cap: float = 1000.0, *, honour_retry_after: bool = False):
        self.base = base
        self.cap = cap
        self.honour_retry_after = honour_retry_after
        self._failures: dict[Hashable, int] = {}

    def when(self, key: Hashable, err: BaseException | None = None) -> float:
        """Count one more failure of ``key`` and return how long to wait before retrying it."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        delay = min(self.base * (2 ** min(n, 60)), self.cap)
        if self.honour_retry_after and err is not None:
            retry_after = getattr(err, "retry_after", None)
            if retry_after:
                delay = max(delay, float(retry_after))
        return delay

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)


# ---------------------------------------------------------------- the queue

class WorkQueue:
    """A coalescing, delaying, rate-limited work queue on a SimPy clock (see the module docstring)."""

    def __init__(self, env: simpy.Environment, *, limiter: RateLimiter | None = None):
        self.env = env
        self._queue: deque = deque()
        self._dirty: dict[Hashable, None] = {}
        self._waiting: dict[Hashable, float] = {}
        self._timers: dict[float, list] = {}  # one SimPy timeout per instant, shared by its keys
        self.limiter = limiter if limiter is not None else RateLimiter()
        self._wakeup: simpy.Event | None = None
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

    def add_rate_limited(self, key: Hashable, err: BaseException | None = None) -> float:
        """Requeue ``key`` after its back-off (counting one more failure); returns the delay."""
        delay = self.limiter.when(key, err)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        self.limiter.forget(key)

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


# ---------------------------------------------------------------- worker policies

@dataclass(frozen=True)
class OneWorker:
    """One worker pops keys FIFO and reconciles them one at a time (the simulator's controllers)."""


ONE_WORKER = OneWorker()


@dataclass(frozen=True)
class PerKey:
    """One loop per key; reconciles of different keys overlap, at most ``limit`` at once (Flux)."""

    limit: int = 4


# ---------------------------------------------------------------- the driver

ErrorHook = Callable[[Hashable, BaseException, "float | None", Any], None]


class Driver:
    """Runs ``reconcile`` for queued keys and requeues them by outcome (see the module docstring)."""

    def __init__(
        self,
        env: simpy.Environment,
        reconcile: Callable[..., Any],
        *,
        policy: OneWorker | PerKey = ONE_WORKER,
        limiter: RateLimiter | None = None,
        retryable: tuple[type[BaseException], ...] = (ApiError, TemporaryError),
        on_error: ErrorHook | None = None,
        read: Callable[[Hashable], Any] | None = None,
        on_gone: Callable[[Hashable], None] | None = None,
        settle: Callable[[Hashable], Generator[Any, Any, None]] | None = None,
    ):
        self.env = env
        self.reconcile = reconcile
        self.policy = policy
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.retryable = retryable
        self.on_error = on_error
        self.read = read
        self.on_gone = on_gone
        self.settle = settle
        self.interleave = True
        self.runs = 0
        self.failures = 0
        if isinstance(policy, PerKey):
            self.queue: WorkQueue | None = None
            self.slots: simpy.Resource | None = simpy.Resource(env, capacity=policy.limit)
            self._loops: dict[Hashable, simpy.Process] = {}
            self._wakes: dict[Hashable, simpy.Event] = {}
            self.process: simpy.Process | None = None
        else:
            if read is not None or on_gone is not None or settle is not None:
                raise TypeError("read, on_gone and settle belong to the PerKey policy")
            self.queue = WorkQueue(env, limiter=self.limiter)
            self.slots = None
            self.process = env.process(self._one_worker())

    # -------------------------------------------------------------- enqueueing

    def add(self, key: Hashable) -> None:
        """Enqueue ``key``: queue it (one worker), or start its loop / wake it (per key)."""
        if self.queue is not None:
            self.queue.add(key)
            return
        if key not in self._loops:
            self._wakes[key] = self.env.event()
            self._loops[key] = self.env.process(self._key_loop(key))
            return
        ev = self._wakes[key]
        if not ev.triggered:
            ev.succeed()

    def __contains__(self, key: Hashable) -> bool:
        """Whether ``key`` is known: has a loop (per key) or is queued (one worker)."""
        if self.queue is not None:
            return key in self.queue._dirty
        return key in self._loops

    def keys(self) -> list[Hashable]:
        """The keys with a loop (per key) or queued (one worker), in the order they came."""
        return list(self._loops) if self.queue is None else list(self.queue._dirty)

    # -------------------------------------------------------------- outcomes

    def _failed(self, key: Hashable, err: BaseException, obj: Any) -> float | None:
        """A raised outcome: the delay before the key comes back, or None (do not requeue)."""
        if isinstance(err, RetryAfter):
            self.limiter.forget(key)
            return float(err.delay)
        self.failures += 1
        if isinstance(err, PermanentError):
            self.limiter.forget(key)
            delay = None
        else:
            delay = self.limiter.when(key, err)
            own = getattr(err, "delay", None) if isinstance(err, TemporaryError) else None
            if own is not None:
                delay = float(own)
        if self.on_error is not None:
            self.on_error(key, err, delay, obj)
        return delay

    def _succeeded(self, key: Hashable, outcome: Any) -> float | None:
        self.limiter.forget(key)
        if outcome is None or isinstance(outcome, Done):
            return None
        if isinstance(outcome, RequeueAfter):
            return outcome.delay
        raise TypeError(f"reconcile of {key!r} returned {outcome!r}, not an outcome (None, DONE, RequeueAfter)")

    # -------------------------------------------------------------- one worker

    def _one_worker(self) -> Generator[simpy.Event, Any, None]:
        queue = self.queue
        assert queue is not None
        reconcile = self.reconcile
        caught = self.retryable + (RetryAfter, PermanentError)
        while True:
            key = queue.pop()
            if key is None:
                yield queue.wait()
                continue
            self.runs += 1
            try:
                outcome = reconcile(key)
                if type(outcome) is GeneratorType:
                    outcome = yield from outcome
            except caught as err:
                delay = self._failed(key, err, None)
                if delay is not None:
                    queue.add_after(key, delay)
            else:
                if outcome is None:  # the common case, kept cheap: a sync that requeues itself
                    self.limiter.forget(key)
                else:
                    delay = self._succeeded(key, outcome)
                    if delay is not None:
                        queue.add_after(key, delay)
            # Let every other process of this instant run before the next reconcile, as informer
            # latency does for real controllers.  (With an empty queue the wait above yields anyway.)
            if queue._queue and self.interleave:
                yield self.env.timeout(0)

    # -------------------------------------------------------------- per key

    def _key_loop(self, key: Hashable) -> Generator[simpy.Event, Any, None]:
        env = self.env
        slots = self.slots
        assert slots is not None
        caught = self.retryable + (RetryAfter, PermanentError)
        delay: float | None = 0.0
        while True:
            wake = self._wakes[key]
            if delay is None:
                yield wake
            elif delay > 0:
                yield env.timeout(delay) | wake
            if wake.triggered:
                self._wakes[key] = env.event()
            obj = None
            if self.read is not None:
                try:
                    obj = self.read(key)
                except caught as err:
                    delay = self._failed(key, err, None)
                    continue
                if obj is None:
                    self._loops.pop(key, None)
                    self._wakes.pop(key, None)
                    if self.on_gone is not None:
                        self.on_gone(key)
                    return
            with slots.request() as req:
                yield req
                self.runs += 1
                try:
                    outcome = self.reconcile(key, obj) if self.read is not None else self.reconcile(key)
                    if type(outcome) is GeneratorType:
                        outcome = yield from outcome
                except caught as err:
                    delay = self._failed(key, err, obj)
                else:
                    delay = self._succeeded(key, outcome)
                if self.settle is not None:
                    yield from self.settle(key)
