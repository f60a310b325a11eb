"""Seeded duration distributions, written as data.

Every duration in the delivery models — a CI stage, a runner's start-up, a code
review, a human typing ``git revert`` — is drawn from a distribution that a
scenario YAML can state in plain data, so that a notebook can sweep it and a
reader can see exactly what was assumed.  Four shapes cover what the models need:

``{"fixed": 30}``
    always 30 seconds (tests, and things that do not vary);
``{"uniform": [20, 40]}``
    uniform between the two bounds;
``{"lognormal": {"median": 240, "sigma": 0.35}}``
    the usual shape of task durations: positive, right-skewed, the median is the
    parameter a person can estimate ("a build takes about four minutes") and
    ``sigma`` (the standard deviation of the log) sets the tail: 0.35 puts the
    90th percentile at about 1.57 × the median, 1.0 at about 3.6 ×;
``{"exponential": {"mean": 600}}``
    memoryless waits (arrivals of unrelated work).

Any of them may carry ``"min"`` / ``"max"`` clamps.  A bare number is read as
``fixed``.  Draws always come from a ``random.Random`` the caller passes — one of
``labkit.core.clock.rng_for``'s seeded streams — never from the global generator.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Mapping

from labkit.core.errors import LabkitError

SHAPES = ("fixed", "uniform", "lognormal", "exponential")


@dataclass(frozen=True)
class Dist:
    """A duration distribution (seconds unless the caller says otherwise)."""

    shape: str
    a: float
    b: float = 0.0
    lo: float | None = None
    hi: float | None = None

    # ------------------------------------------------------------------ constructors

    @classmethod
    def fixed(cls, value: float) -> "Dist":
        return cls("fixed", float(value))

    @classmethod
    def uniform(cls, lo: float, hi: float) -> "Dist":
        if hi < lo:
            raise LabkitError(f"uniform bounds reversed: [{lo}, {hi}]", field="uniform")
        return cls("uniform", float(lo), float(hi))

    @classmethod
    def lognormal(cls, median: float, sigma: float, *, lo: float | None = None, hi: float | None = None) -> "Dist":
        if median <= 0 or sigma < 0:
            raise LabkitError(f"lognormal needs median > 0 and sigma >= 0, got {median}, {sigma}", field="lognormal")
        return cls("lognormal", float(median), float(sigma), lo, hi)

    @classmethod
    def exponential(cls, mean: float) -> "Dist":
        if mean <= 0:
            raise LabkitError(f"exponential needs mean > 0, got {mean}", field="exponential")
        return cls("exponential", float(mean))

    @classmethod
    def parse(cls, spec: Any, *, field: str = "duration") -> "Dist":
        """Read the data form (see the module docstring); errors name ``field``."""
        if isinstance(spec, Dist):
            return spec
        if isinstance(spec, bool):
            raise LabkitError(f"expected a number or a distribution, got {spec!r}", field=field)
        if isinstance(spec, (int, float)):
            return cls.fixed(float(spec))
        if not isinstance(spec, Mapping):
            raise LabkitError(f"expected a number or a distribution mapping, got {spec!r}", field=field)
        shapes = [k for k in spec if k in SHAPES]
        unknown = [k for k in spec if k not in SHAPES and k not in ("min", "max")]
        if len(shapes) != 1 or unknown:
            raise LabkitError(f"a distribution has exactly one of {', '.join(SHAPES)} (optionally min/max), "
                              f"got {sorted(spec)}", field=field)
        shape = shapes[0]
        body = spec[shape]
        lo = _num(spec.get("min"), f"{field}.min") if "min" in spec else None
        hi = _num(spec.get("max"), f"{field}.max") if "max" in spec else None
        try:
            if shape == "fixed":
                d = cls.fixed(_num(body, f"{field}.fixed"))
            elif shape == "uniform":
                if not isinstance(body, (list, tuple)) or len(body) != 2:
                    raise LabkitError("uniform takes [low, high]", field=f"{field}.uniform")
                d = cls.uniform(_num(body[0], f"{field}.uniform"), _num(body[1], f"{field}.uniform"))
            elif shape == "lognormal":
                if not isinstance(body, Mapping) or "median" not in body:
                    raise LabkitError("lognormal takes {median, sigma}", field=f"{field}.lognormal")
                d = cls.lognormal(_num(body["median"], f"{field}.lognormal.median"),
                                  _num(body.get("sigma", 0.0), f"{field}.lognormal.sigma"))
            else:
                if not isinstance(body, Mapping) or "mean" not in body:
                    raise LabkitError("exponential takes {mean}", field=f"{field}.exponential")
                d = cls.exponential(_num(body["mean"], f"{field}.exponential.mean"))
        except LabkitError as err:
            raise LabkitError(err.detail, field=err.field or field) from None
        return Dist(d.shape, d.a, d.b, lo, hi)

    # ------------------------------------------------------------------ use

    def draw(self, rng: random.Random) -> float:
        """One sample, clamped to ``[min, max]`` when given."""
        if self.shape == "fixed":
            x = self.a
        elif self.shape == "uniform":
            x = self.a if self.a == self.b else rng.uniform(self.a, self.b)
        elif self.shape == "lognormal":
            x = self.a if self.b == 0 else rng.lognormvariate(math.log(self.a), self.b)
        else:
            x = rng.expovariate(1.0 / self.a)
        if self.lo is not None and x < self.lo:
            x = self.lo
        if self.hi is not None and x > self.hi:
            x = self.hi
        return x

    def median(self) -> float:
        """The distribution's median (before clamping)."""
        if self.shape in ("fixed", "lognormal"):
            return self.a
        if self.shape == "uniform":
            return (self.a + self.b) / 2
        return self.a * math.log(2)

    def mean(self) -> float:
        """The distribution's mean (before clamping)."""
        if self.shape == "fixed":
            return self.a
        if self.shape == "uniform":
            return (self.a + self.b) / 2
        if self.shape == "lognormal":
            return self.a * math.exp(self.b * self.b / 2)
        return self.a

    def scaled(self, factor: float) -> "Dist":
        """The same shape with every duration multiplied by ``factor`` (a slower runner, a bigger repo)."""
        f = float(factor)
        lo = None if self.lo is None else self.lo * f
        hi = None if self.hi is None else self.hi * f
        if self.shape == "lognormal":
            return Dist("lognormal", self.a * f, self.b, lo, hi)
        if self.shape == "uniform":
            return Dist("uniform", self.a * f, self.b * f, lo, hi)
        return Dist(self.shape, self.a * f, self.b, lo, hi)

    def to_data(self) -> Any:
        """The data form ``parse`` reads."""
        if self.shape == "fixed":
            out: dict[str, Any] = {"fixed": self.a}
        elif self.shape == "uniform":
            out = {"uniform": [self.a, self.b]}
        elif self.shape == "lognormal":
            out = {"lognormal": {"median": self.a, "sigma": self.b}}
        else:
            out = {"exponential": {"mean": self.a}}
        if self.lo is not None:
            out["min"] = self.lo
        if self.hi is not None:
            out["max"] = self.hi
        return out


def _num(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LabkitError(f"expected a number, got {value!r}", field=field)
    if not math.isfinite(value):
        raise LabkitError(f"expected a finite number, got {value!r}", field=field)
    return float(value)
