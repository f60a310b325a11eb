"""The load model: CPU demand offered to each workload over virtual time.

The Horizontal Pod Autoscaler reacts to CPU utilization, which in a real
cluster comes from traffic hitting the pods behind a Service.  The simulator has
no traffic, so a scenario describes the *offered load* instead: for each
workload (``namespace/name`` of the Deployment or StatefulSet an HPA targets) a
profile gives the total CPU demand, in millicores, as a function of virtual
time.  The metrics the HPA reads are derived from it the way a load balancer
spreads requests: every **ready** pod of the workload gets an equal share, so

    usage per ready pod (millicores) = demand(t) / ready pods
    utilization per ready pod (%)    = 100 × demand(t) / ready pods / cpu request

and scaling out spreads the same demand over more pods — which is exactly the
feedback loop the HPA's algorithm assumes (``desired = ceil(current × current
utilization / target)``).  Pods that are running but not ready receive no
traffic and report 0 m.

Profiles (all in millicores, ``t`` in virtual seconds):

* ``Constant(m)``;
* ``Step(before, after, at)`` — ``after`` from ``t >= at`` on;
* ``Spike(base, peak, start, duration, ramp=0)`` — a plateau at ``peak`` with
  optional linear ramps either side;
* ``DailySinusoid(mean, amplitude, period=86400, peak_at=14 h)`` — a diurnal
  cycle peaking at ``peak_at`` seconds into each period;
* ``PiecewiseLinear([(t0, m0), (t1, m1), ...])`` — linear between points,
  constant outside;
* any callable ``f(t) -> millicores``.

``LoadModel.set(workload, profile, noise=0.1)`` adds multiplicative noise:
demand × max(0, 1 + noise × z) with ``z`` a standard normal drawn per
``noise_period`` bucket (15 s by default, one per HPA sync) by a counter-based
hash of ``(seed, workload, bucket)`` into a fixed table of 65,536 standard normals.  Noise is therefore a pure function of
time — reading the same instant twice gives the same value, whatever order the
controllers ask in — and costs a few arithmetic operations, which keeps a day of
50 autoscaled workloads cheap.  ``profile_from_spec`` builds profiles from a
scenario's YAML (``{"type": "sinusoid", "mean": 400, "amplitude": 300}``).
"""
from __future__ import annotations

import bisect
import hashlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from labkit.core.errors import LabkitError

Profile = Callable[[float], float]
_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class Constant:
    millicores: float

    def __call__(self, t: float) -> float:
        return self.millicores


@dataclass(frozen=True)
class Step:
    before: float
    after: float
    at: float

    def __call__(self, t: float) -> float:
        return self.after if t >= self.at else self.before


@dataclass(frozen=True)
class Spike:
    base: float
    peak: float
    start: float
    duration: float
    ramp: float = 0.0

    def __call__(self, t: float) -> float:
        s, e, r = self.start, self.start + self.duration, self.ramp
        if t < s - r or t >= e + r:
            return self.base
        if t < s:
            return self.base + (self.peak - self.base) * (t - (s - r)) / r
        if t < e:
            return self.peak
        return self.peak - (self.peak - self.base) * (t - e) / r


@dataclass(frozen=True)
class DailySinusoid:
    mean: float
    amplitude: float
    period: float = 86400.0
    peak_at: float = 14 * 3600.0

    def __call__(self, t: float) -> float:
        return max(0.0, self.mean + self.amplitude * math.cos(2 * math.pi * (t - self.peak_at) / self.period))


class PiecewiseLinear:
    """Linear interpolation between ``(t, millicores)`` points; constant before the first and after the last."""

    def __init__(self, points: Sequence[tuple[float, float]]):
        pts = sorted((float(t), float(v)) for t, v in points)
        if not pts:
            raise LabkitError("a piecewise-linear load needs at least one point")
        self.ts = [p[0] for p in pts]
        self.vs = [p[1] for p in pts]

    def __call__(self, t: float) -> float:
        ts, vs = self.ts, self.vs
        if t <= ts[0]:
            return vs[0]
        if t >= ts[-1]:
            return vs[-1]
        i = bisect.bisect_right(ts, t)
        t0, t1, v0, v1 = ts[i - 1], ts[i], vs[i - 1], vs[i]
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)

    def __repr__(self) -> str:
        return f"PiecewiseLinear({list(zip(self.ts, self.vs))!r})"


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _box_muller(a: int) -> float:
    b = _splitmix(a)
    u1 = ((a >> 11) + 1) / 9007199254740993.0  # (0, 1]
    u2 = (b >> 11) / 9007199254740992.0
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)


# 2^16 standard normals (Box–Muller on a fixed splitmix64 sequence), indexed by a hash of (key, counter):
# one multiply-xorshift and a list lookup per draw instead of two logs and a cosine.
_NORMALS = [_box_muller(_splitmix(i * 0x9E3779B97F4A7C15 & _MASK)) for i in range(1 << 16)]


def standard_normal(key: int, counter: int) -> float:
    """A standard normal value that is a pure function of ``(key, counter)``."""
    x = (key ^ (counter * 0xD1B54A32D192ED03)) & _MASK
    x = ((x ^ (x >> 31)) * 0xBF58476D1CE4E5B9) & _MASK
    x ^= x >> 29
    return _NORMALS[x & 0xFFFF] if (x >> 16) & 1 else _NORMALS[(x >> 20) & 0xFFFF]


@dataclass
class _Entry:
    profile: Profile
    noise: float
    noise_period: float
    key: int


def workload_key(workload: str, namespace: str | None = None) -> str:
    """``"web"`` → ``"default/web"``; ``"prod/web"`` stays; ``namespace=`` overrides the default."""
    if "/" in workload:
        return workload
    return f"{namespace or 'default'}/{workload}"


class LoadModel:
    """Offered CPU demand per workload over virtual time (see the module docstring)."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._entries: dict[str, _Entry] = {}
        self._by_pair: dict[tuple[str, str], _Entry] = {}  # (namespace, name) -> entry, for the hot path

    def set(self, workload: str, profile: Profile | float | Mapping[str, Any], *, namespace: str | None = None,
            noise: float = 0.0, noise_period: float = 15.0) -> "LoadModel":
        """Offer ``profile`` (millicores over time) to ``workload`` (``name`` or ``namespace/name``)."""
        key = workload_key(workload, namespace)
        if isinstance(profile, (int, float)) and not isinstance(profile, bool):
            profile = Constant(float(profile))
        elif isinstance(profile, Mapping):
            profile = profile_from_spec(profile, field=f"load.{key}")
        if not callable(profile):
            raise LabkitError(f"a load profile must be a number, a mapping or a callable, got {profile!r}",
                              field=f"load.{key}")
        if noise < 0 or noise_period <= 0:
            raise LabkitError("noise must be >= 0 and noise_period > 0", field=f"load.{key}")
        digest = hashlib.sha256(f"{self.seed}:load:{key}".encode()).digest()
        entry = _Entry(profile, float(noise), float(noise_period), int.from_bytes(digest[:8], "big"))
        self._entries[key] = entry
        self._by_pair[tuple(key.split("/", 1))] = entry
        return self

    def remove(self, workload: str, *, namespace: str | None = None) -> None:
        key = workload_key(workload, namespace)
        self._entries.pop(key, None)
        self._by_pair.pop(tuple(key.split("/", 1)), None)

    def has(self, namespace: str, name: str) -> bool:
        return f"{namespace}/{name}" in self._entries

    def workloads(self) -> list[str]:
        return list(self._entries)

    def demand(self, namespace: str, name: str, t: float) -> float:
        """Total CPU demand (millicores) offered to the workload at time ``t``; 0 when none was set."""
        e = self._by_pair.get((namespace, name))
        if e is None:
            return 0.0
        base = e.profile(t)
        if e.noise:
            z = standard_normal(e.key, int(t // e.noise_period))
            base *= max(0.0, 1.0 + e.noise * z)
        return max(0.0, base)

    def usage_per_pod(self, namespace: str, name: str, t: float, ready_pods: int) -> float:
        """Millicores each ready pod uses when ``ready_pods`` share the demand equally."""
        if ready_pods <= 0:
            return 0.0
        return self.demand(namespace, name, t) / ready_pods


def profile_from_spec(spec: Mapping[str, Any], *, field: str = "load") -> Profile:
    """Build a profile from YAML: ``{type: constant|step|spike|sinusoid|piecewise, ...}``."""
    kind = spec.get("type")
    try:
        if kind == "constant":
            return Constant(float(spec["millicores"]))
        if kind == "step":
            return Step(float(spec["before"]), float(spec["after"]), float(spec["at"]))
        if kind == "spike":
            return Spike(float(spec["base"]), float(spec["peak"]), float(spec["start"]), float(spec["duration"]),
                         float(spec.get("ramp", 0.0)))
        if kind in ("sinusoid", "daily"):
            return DailySinusoid(float(spec["mean"]), float(spec["amplitude"]), float(spec.get("period", 86400.0)),
                                 float(spec.get("peak_at", 14 * 3600.0)))
        if kind in ("piecewise", "piecewise-linear"):
            return PiecewiseLinear([(float(p[0]), float(p[1])) for p in spec["points"]])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise LabkitError(f"malformed {kind} load profile: {exc}", field=field) from None
    raise LabkitError(f"unknown load profile type {kind!r} (constant, step, spike, sinusoid, piecewise)", field=field)
