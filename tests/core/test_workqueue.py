"""The reconcile driver: queue semantics, outcomes and worker policies, at exact virtual times."""
from __future__ import annotations

import pytest
import simpy

from labkit.core.workqueue import DONE, Driver, PerKey, RateLimiter, RequeueAfter, WorkQueue
from labkit.core.errors import ApiError, PermanentError, RetryAfter, TemporaryError


# ---------------------------------------------------------------- the queue

def test_queue_coalesces_and_keeps_the_earlier_due_time():
    env = simpy.Environment()
    q = WorkQueue(env)
    q.add("a"), q.add("a"), q.add("b")
    assert [q.pop(), q.pop(), q.pop()] == ["a", "b", None]
    q.add_after("c", 5.0)
    q.add_after("c", 9.0)  # later: ignored
    q.add_after("d", 5.0)  # same instant: shares the timer
    assert q.waiting_until("c") == 5.0
    env.run(until=4.9)
    assert len(q) == 0
    env.run(until=5.1)
    assert [q.pop(), q.pop()] == ["c", "d"]
    env.run(until=20)
    assert len(q) == 0  # the ignored 9 s request left no timer behind


def test_rate_limiter_doubles_caps_and_forgets():
    rl = RateLimiter(0.5, 3.0)
    assert [rl.when("k") for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert rl.failures("k") == 5
    rl.forget("k")
    assert rl.when("k") == 0.5
    assert RateLimiter(0.5, 3.0).when("k", ApiError("TooManyRequests", "slow", retry_after=7)) == 0.5
    assert RateLimiter(0.5, 30.0, honour_retry_after=True).when("k", ApiError("TooManyRequests", "slow", retry_after=7)) == 7.0
    assert RateLimiter(0.005, 1000.0).when("x") == 0.005
    big = RateLimiter(0.005, 1000.0)
    for _ in range(500):  # no overflow however long it fails
        last = big.when("x")
    assert last == 1000.0


# ---------------------------------------------------------------- one worker

def test_one_worker_outcomes_at_exact_times():
    env = simpy.Environment()
    seen: list[tuple[float, str]] = []
    errors: list[tuple[float, str, float | None]] = []
    fails = {"api": 3}

    def reconcile(key):
        seen.append((env.now, key))
        if key == "api" and fails["api"]:
            fails["api"] -= 1
            raise ApiError("Conflict", "try again")
        if key == "api":
            return DONE
        if key == "again" and env.now < 10:
            return RequeueAfter(10.0)
        if key == "later" and env.now < 1:
            raise RetryAfter(delay=2.0)
        if key == "temp" and env.now < 1:
            raise TemporaryError(message="git down", delay=4.0)
        if key == "perm":
            raise PermanentError(message="bad input")
        return None

    d = Driver(env, reconcile, limiter=RateLimiter(1.0, 100.0),
               on_error=lambda k, e, delay, obj: errors.append((env.now, k, delay)))
    for k in ("api", "again", "later", "temp", "perm"):
        d.add(k)
    env.run(until=50)
    assert seen == [(0, "api"), (0, "again"), (0, "later"), (0, "temp"), (0, "perm"),
                    (1.0, "api"), (2.0, "later"), (3.0, "api"), (4.0, "temp"), (7.0, "api"), (10.0, "again")]
    assert errors == [(0, "api", 1.0), (0, "temp", 4.0), (0, "perm", None), (1.0, "api", 2.0), (3.0, "api", 4.0)]
    assert d.limiter.failures("api") == 0  # forgotten after the success
    assert (d.runs, d.failures) == (11, 5)


def test_one_worker_generator_reconciles_run_one_after_another():
    env = simpy.Environment()
    done: list[tuple[float, str]] = []

    def reconcile(key):
        yield env.timeout(2.0)
        done.append((env.now, key))

    d = Driver(env, reconcile)
    d.add("a"), d.add("b"), d.add("a")
    env.run(until=10)
    assert done == [(2.0, "a"), (4.0, "b")]


def test_one_worker_yields_to_other_controllers_between_syncs_unless_told_not_to():
    def order(interleave: bool) -> list[str]:
        env = simpy.Environment()
        seen: list[str] = []

        def a_sync(key):
            seen.append(key)
            a.interleave = interleave
            if key == "a1":
                b.add("b1")

        a = Driver(env, a_sync)
        b = Driver(env, lambda key: seen.append(key))
        env.run(until=0.5)  # both workers waiting
        a.add("a1"), a.add("a2")
        env.run(until=1)
        return seen

    assert order(True) == ["a1", "b1", "a2"]
    assert order(False) == ["a1", "a2", "b1"]


def test_one_worker_refuses_per_key_hooks_and_non_outcomes():
    env = simpy.Environment()
    with pytest.raises(TypeError):
        Driver(env, lambda k: None, read=lambda k: {})
    d = Driver(env, lambda k: 42.0)
    d.add("k")
    with pytest.raises(TypeError, match="not an outcome"):
        env.run(until=1)


# ---------------------------------------------------------------- per key

def test_per_key_bounds_concurrency_fifo():
    env = simpy.Environment()
    spans: list[tuple[str, float, float]] = []

    def reconcile(key):
        t0 = env.now
        yield env.timeout(1.0)
        spans.append((key, t0, env.now))

    d = Driver(env, reconcile, policy=PerKey(limit=2))
    for k in "abc":
        d.add(k)
    env.run(until=10)
    assert spans == [("a", 0, 1.0), ("b", 0, 1.0), ("c", 1.0, 2.0)]
    assert "a" in d and "z" not in d and d.keys() == ["a", "b", "c"]


def test_per_key_wake_replaces_the_pending_delay_and_reruns_after_a_busy_add():
    env = simpy.Environment()
    runs: list[float] = []

    def reconcile(key):
        runs.append(env.now)
        yield env.timeout(1.0)
        return RequeueAfter(10.0)

    d = Driver(env, reconcile, policy=PerKey(limit=1))
    d.add("k")  # runs 0..1, then due at 11

    def poke():
        yield env.timeout(0.5)
        d.add("k")  # while reconciling: once more right after (1..2), then due at 12
        yield env.timeout(4.5)
        d.add("k")  # at 5, while waiting: runs at once (5..6); due at 16, not 12
    env.process(poke())
    env.run(until=20)
    assert runs == [0, 1.0, 5.0, 16.0]


def test_per_key_read_gone_and_errors_with_the_object():
    env = simpy.Environment()
    store = {"k": {"v": 1}}
    errors: list[tuple[float, str, float | None, object]] = []
    gone: list[tuple[float, str]] = []
    settled: list[float] = []
    calls = {"read": 0}

    def read(key):
        calls["read"] += 1
        if calls["read"] == 1:
            raise ApiError("ServiceUnavailable", "etcd down", retry_after=3)
        return store.get(key)

    def reconcile(key, obj):
        if env.now < 5:
            raise ApiError("Conflict", "stale")
        store.pop(key)
        return RequeueAfter(1.0)

    def settle(key):
        yield env.timeout(0.25)
        settled.append(env.now)

    d = Driver(env, reconcile, policy=PerKey(), read=read, settle=settle,
               limiter=RateLimiter(0.75, 900.0, honour_retry_after=True),
               on_error=lambda k, e, delay, obj: errors.append((env.now, k, delay, obj)),
               on_gone=lambda k: gone.append((env.now, k)))
    d.add("k")
    env.run(until=30)
    # read fails at 0 (Retry-After 3 beats 0.75); reconcile fails at 3 (1.5 s), settles 3.25 -> due 4.75;
    # fails again at 4.75 (3 s) -> settles 5.0, due 8.0; succeeds, settles at 8.25, due 9.25: gone
    assert errors == [(0, "k", 3.0, None), (3.0, "k", 1.5, {"v": 1}), (4.75, "k", 3.0, {"v": 1})]
    assert settled == [3.25, 5.0, 8.25]
    assert gone == [(9.25, "k")]
    assert "k" not in d
    d.add("k")  # a new object under the same key starts a new loop
    assert "k" in d
