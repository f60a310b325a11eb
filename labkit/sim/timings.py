"""How long things take in the simulated cluster: seeded timing distributions.

Design principle 2 says everything that takes time is an event on the virtual
clock with a duration drawn from a seeded distribution.  This module holds the
durations of the simulated cluster's *physical* processes — what a KWOK stage
or a real node would spend — and the few kube-controller-manager / kubelet
periods the controllers need:

================================  ==========================  ============================================
field                             default                     what it models
================================  ==========================  ============================================
``schedule``                      0.5 s                       pod created → bound to the node (scheduler)
``pull``                          uniform 2–8 s per image     first pull of an image onto the node
``pull_cached``                   0.5 s                       ``imagePullPolicy: Always`` for an image the
                                                              node already has (manifest check only)
``pull_error``                    1 s                         the registry answering "not found"
``start``                         1 s                         container create + start (sandbox included)
``ready_jitter``                  uniform 0–2 s               added to ``readinessProbe.initialDelaySeconds``
``termination``                   uniform 1–3 s               graceful stop after SIGTERM (capped by
                                                              ``terminationGracePeriodSeconds``)
``job_run``                       uniform 5–15 s              run time of a run-to-completion container
                                                              (Job pods, init containers) when the image
                                                              registry does not say
``crash_after``                   2 s                         run time of a crashing container before it
                                                              exits
``pvc_bind``                      1 s                         PVC Pending → Bound (dynamic provisioner)
``kubelet_resync``                1 s                         a failed container → the kubelet's next pod
                                                              sync reports the back-off state
                                                              (``ImagePullBackOff`` / ``CrashLoopBackOff``)
``backoff_initial/max``           10 s / 300 s                kubelet image-pull and crash-loop back-off
``metrics_window``                15 s                        metrics-server sample window (HPA readiness)
``hpa_sync_period``               15 s                        ``--horizontal-pod-autoscaler-sync-period``
``hpa_tolerance``                 0.1                         ``--horizontal-pod-autoscaler-tolerance``
``hpa_cpu_initialization_period`` 300 s                       ``--horizontal-pod-autoscaler-cpu-initialization-period``
``hpa_initial_readiness_delay``   30 s                        ``--horizontal-pod-autoscaler-initial-readiness-delay``
``hpa_downscale_stabilization``   300 s                       ``--horizontal-pod-autoscaler-downscale-stabilization``
``job_sync_batch``                1 s                         the Job controller's ``syncJobBatchPeriod``
================================  ==========================  ============================================

The defaults follow KWOK's default pod stages (a pod is scheduled, started and
ready within a couple of seconds, with jitter) widened by what real nodes add:
image pulls of a few seconds the first time an image lands on a node, and a
readiness delay that is the probe's ``initialDelaySeconds`` plus jitter.

A distribution is a ``Dist``: ``Dist.fixed(1)``, ``Dist.uniform(2, 8)``,
``Dist.normal(mean, sd)``, ``Dist.lognormal(median, sigma)``,
``Dist.exponential(mean)``.  ``Timings`` accepts plain numbers (fixed) and
``(low, high)`` pairs (uniform) wherever a ``Dist`` goes, and ``Timings.from_dict``
reads the same shapes from a scenario's YAML (``{"pull": [2, 8], "start": 1,
"ready_jitter": {"normal": {"mean": 1, "sd": 0.3}}}``).

Draws come from ``TimingSampler`` (``timings.sampler(seed)``): one
``random.Random`` per field from ``labkit.core.clock.rng_for(seed, "timings:<field>")``,
and one per image for pull times (``"pull:<image>"``), so adding pods of one
workload never shifts the draws of another stream and a seed gives the same run
every time.  A fixed distribution never consumes randomness.  For tests,
``Timings.deterministic()`` is a zero-jitter set of round numbers whose every
duration can be added up by hand.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from labkit.core.clock import rng_for
from labkit.core.errors import LabkitError


@dataclass(frozen=True)
class Dist:
    """A non-negative duration distribution (seconds)."""

    kind: str  # fixed | uniform | normal | lognormal | exponential
    a: float
    b: float = 0.0
    low: float = 0.0
    high: float = math.inf

    # ---------------------------------------------------------------- constructors
    @staticmethod
    def fixed(value: float) -> "Dist":
        return Dist("fixed", float(value))

    @staticmethod
    def uniform(low: float, high: float) -> "Dist":
        if high < low:
            raise ValueError(f"uniform({low}, {high}): high < low")
        return Dist("fixed", float(low)) if high == low else Dist("uniform", float(low), float(high))

    @staticmethod
    def normal(mean: float, sd: float, *, low: float = 0.0, high: float = math.inf) -> "Dist":
        return Dist("normal", float(mean), float(sd), low, high)

    @staticmethod
    def lognormal(median: float, sigma: float, *, high: float = math.inf) -> "Dist":
        return Dist("lognormal", float(median), float(sigma), 0.0, high)

    @staticmethod
    def exponential(mean: float, *, high: float = math.inf) -> "Dist":
        return Dist("exponential", float(mean), 0.0, 0.0, high)

    @staticmethod
    def parse(value: Any, *, name: str = "") -> "Dist":
        """A number (fixed), ``[low, high]`` (uniform), ``{"uniform": [a, b]}``, ``{"normal": {"mean":.., "sd":..}}``..."""
        if isinstance(value, Dist):
            return value
        if isinstance(value, bool):
            raise LabkitError(f"expected a duration, got {value!r}", field=name or None)
        if isinstance(value, (int, float)):
            if value < 0:
                raise LabkitError(f"a duration cannot be negative: {value}", field=name or None)
            return Dist.fixed(value)
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(x, (int, float)) for x in value):
            return Dist.uniform(value[0], value[1])
        if isinstance(value, Mapping) and len(value) == 1:
            (kind, args), = value.items()
            try:
                if kind == "fixed":
                    return Dist.fixed(args)
                if kind == "uniform":
                    return Dist.uniform(*args) if isinstance(args, (list, tuple)) else Dist.uniform(args["low"], args["high"])
                if kind == "normal":
                    return Dist.normal(args["mean"], args["sd"], low=args.get("min", 0.0), high=args.get("max", math.inf))
                if kind == "lognormal":
                    return Dist.lognormal(args["median"], args["sigma"], high=args.get("max", math.inf))
                if kind == "exponential":
                    mean = args["mean"] if isinstance(args, Mapping) else args
                    return Dist.exponential(mean)
            except (KeyError, TypeError, ValueError) as exc:
                raise LabkitError(f"malformed {kind} distribution {args!r}: {exc}", field=name or None) from None
        raise LabkitError(
            f"expected a number, [low, high] or {{fixed|uniform|normal|lognormal|exponential: ...}}, got {value!r}",
            field=name or None,
        )

    # ---------------------------------------------------------------- use
    @property
    def is_fixed(self) -> bool:
        return self.kind == "fixed"

    @property
    def mean(self) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        if self.kind == "normal":
            return self.a
        if self.kind == "lognormal":
            return self.a * math.exp(self.b ** 2 / 2)
        return self.a

    def draw(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            x = rng.uniform(self.a, self.b)
        elif self.kind == "normal":
            x = rng.gauss(self.a, self.b)
        elif self.kind == "lognormal":
            x = self.a * math.exp(rng.gauss(0.0, self.b))
        elif self.kind == "exponential":
            x = rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        else:  # pragma: no cover - constructors forbid it
            raise ValueError(self.kind)
        return min(max(x, self.low), self.high)


_DIST_FIELDS = ("schedule", "pull", "pull_cached", "pull_error", "start", "ready_jitter", "termination",
                "job_run", "crash_after", "pvc_bind")


@dataclass
class Timings:
    """Durations of the simulated cluster's processes (see the module docstring)."""

    schedule: Any = field(default_factory=lambda: Dist.fixed(0.5))
    pull: Any = field(default_factory=lambda: Dist.uniform(2.0, 8.0))
    pull_cached: Any = field(default_factory=lambda: Dist.fixed(0.5))
    pull_error: Any = field(default_factory=lambda: Dist.fixed(1.0))
    start: Any = field(default_factory=lambda: Dist.fixed(1.0))
    ready_jitter: Any = field(default_factory=lambda: Dist.uniform(0.0, 2.0))
    termination: Any = field(default_factory=lambda: Dist.uniform(1.0, 3.0))
    job_run: Any = field(default_factory=lambda: Dist.uniform(5.0, 15.0))
    crash_after: Any = field(default_factory=lambda: Dist.fixed(2.0))
    pvc_bind: Any = field(default_factory=lambda: Dist.fixed(1.0))
    kubelet_resync: float = 1.0
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    metrics_window: float = 15.0
    hpa_sync_period: float = 15.0
    hpa_tolerance: float = 0.1
    hpa_cpu_initialization_period: float = 300.0
    hpa_initial_readiness_delay: float = 30.0
    hpa_downscale_stabilization: float = 300.0
    job_sync_batch: float = 1.0

    def __post_init__(self) -> None:
        for name in _DIST_FIELDS:
            object.__setattr__(self, name, Dist.parse(getattr(self, name), name=name))
        for f in fields(self):
            if f.name not in _DIST_FIELDS:
                v = getattr(self, f.name)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    raise LabkitError(f"expected a non-negative number, got {v!r}", field=f.name)

    @classmethod
    def deterministic(cls, **overrides: Any) -> "Timings":
        """Zero jitter, round numbers: schedule 0.5, pull 2, cached pull 0, pull error 1, start 1,
        no readiness jitter, termination 2, job run 10, crash after 2, PVC bind 1."""
        base = dict(schedule=0.5, pull=2.0, pull_cached=0.0, pull_error=1.0, start=1.0, ready_jitter=0.0,
                    termination=2.0, job_run=10.0, crash_after=2.0, pvc_bind=1.0)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, file: str | None = None) -> "Timings":
        """Timings from a scenario's ``timings:`` mapping; unknown keys are an error naming the field."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        for k in data:
            if k not in known:
                raise LabkitError(f"unknown timing {k!r} (known: {', '.join(sorted(known))})", file=file, field=f"timings.{k}")
        try:
            return cls(**data)
        except LabkitError as exc:
            raise LabkitError(exc.detail, file=file, field=f"timings.{exc.field}" if exc.field else "timings") from None

    def with_(self, **changes: Any) -> "Timings":
        return replace(self, **changes)

    def sampler(self, seed: int) -> "TimingSampler":
        return TimingSampler(self, seed)


class TimingSampler:
    """Seeded draws from a ``Timings``: one random stream per field, one per image for pulls."""

    def __init__(self, timings: Timings, seed: int):
        self.timings = timings
        self.seed = seed
        self._rngs: dict[str, random.Random] = {}
        self._pull: dict[str, float] = {}

    def _rng(self, stream: str) -> random.Random:
        rng = self._rngs.get(stream)
        if rng is None:
            rng = self._rngs[stream] = rng_for(self.seed, stream)
        return rng

    def draw(self, name: str) -> float:
        dist: Dist = getattr(self.timings, name)
        if dist.kind == "fixed":
            return dist.a
        return dist.draw(self._rng("timings:" + name))

    def draw_dist(self, dist: Dist, stream: str) -> float:
        if dist.kind == "fixed":
            return dist.a
        return dist.draw(self._rng(stream))

    def pull_time(self, image: str, override: Any = None) -> float:
        """The first-pull time of ``image`` on the node: drawn once per image (registry override wins)."""
        t = self._pull.get(image)
        if t is None:
            dist = Dist.parse(override, name="pull_seconds") if override is not None else self.timings.pull
            t = self._pull[image] = self.draw_dist(dist, "pull:" + image)
        return t
