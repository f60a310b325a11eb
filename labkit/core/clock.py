"""Clocks: the SimPy environment every process runs on.

Principle 2 of the design: everything that takes time is an event on a
discrete-event clock.  In the simulator that clock is a plain
``simpy.Environment`` (virtual seconds, as fast as the CPU allows).  Against a
real cluster the same processes run on ``simpy.rt.RealtimeEnvironment`` so a
``yield env.timeout(30)`` really waits 30 seconds.  Randomness is always drawn
from a ``random.Random`` seeded per run (``rng_for``), never from the global
generator, so a seed gives the same run every time.
"""
from __future__ import annotations

import calendar
import functools
import hashlib
import random
import time

import simpy
import simpy.rt


def virtual(initial_time: float = 0.0) -> simpy.Environment:
    """A virtual-time environment (the default for the simulator)."""
    return simpy.Environment(initial_time=initial_time)


def realtime(factor: float = 1.0) -> simpy.rt.RealtimeEnvironment:
    """A wall-time environment for real clusters; ``strict=False`` tolerates slow API calls."""
    return simpy.rt.RealtimeEnvironment(factor=factor, strict=False)


def rng_for(seed: int, stream: str) -> random.Random:
    """An independent, reproducible random stream for one component of a seeded run."""
    digest = hashlib.sha256(f"{seed}:{stream}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


EPOCH_ISO = "2026-01-01T00:00:00Z"
#: Virtual time zero as a Unix timestamp: every component (API store, git commits) dates from it.
EPOCH_UNIX = 1_767_225_600


def timestamp(seconds: float) -> str:
    """Seconds on a run's clock as an RFC 3339 timestamp (runs start at 2026-01-01T00:00:00Z)."""
    return _timestamp(int(seconds // 1))  # whole seconds, as metav1.Time serialises


@functools.lru_cache(maxsize=4096)
def _timestamp(whole_seconds: int) -> str:
    from datetime import datetime, timedelta, timezone

    t = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=whole_seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


_parsed: dict[str, float] = {}


def parse_time(value: str | None) -> float | None:
    """Virtual seconds of an RFC 3339 timestamp (the inverse of ``timestamp``; None or unparseable -> None), memoised."""
    if not value:
        return None
    t = _parsed.get(value)
    if t is None:
        try:
            t = float(calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")) - EPOCH_UNIX)
        except ValueError:
            return None
        if len(_parsed) > 200_000:
            _parsed.clear()
        _parsed[value] = t
    return t
