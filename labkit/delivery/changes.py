"""A team's change stream: pull requests over N days, with reviews and latent defects.

Both delivery models must be fed *the same* changes for a comparison to mean
anything, so the stream is generated up front from the seed and only then
handed to a model.  What is generated, per service:

**Arrivals.**  Pull requests become ready for review as a Poisson process in
*working time* (``work_hours`` on ``workdays``; nights and weekends do not
exist for arrivals), at ``changes_per_service_day`` per working day.

**Batch size.**  Each PR carries ``1 + Poisson(commits_per_change - 1)``
commits, spread over the ``authoring`` time before the PR was opened.  The
commits are what fourkeys calls *changes*: lead time is measured per commit,
so a bigger batch means older commits riding along.

**Size and review.**  A PR's size (lines changed) is lognormal.  With
probability ``review_probability`` it is reviewed, which takes ``review_time``
of working time before the merge; otherwise it is merged right away.

**Latent defects.**  Whether a PR breaks production is decided now, with
probability ``defect_base × (size / size median) ** defect_size_exponent``,
multiplied by ``unreviewed_factor`` when nobody reviewed it, capped at
``defect_max``.  (Bigger changes and unreviewed changes fail more often: the
direction is well supported by the code-review literature; the magnitudes are
parameters to sweep, not findings.)  A defective PR also gets its
``detection_delay``: how long after it is *deployed* monitoring opens an
incident.  Drawing these up front from per-PR random streams is what makes the
defects identical in both models — what differs is only how each model
deploys and restores.

**Fixes.**  After a rollback the defective PR's author prepares a fix
(``fix_delay`` of working time) that goes through review and the pipeline like
any change; ``fix_for`` draws it from a stream keyed by the original PR, so
both models get the same fix.

Times are virtual seconds since ``labkit.core.clock``'s epoch (2026-01-01T00:00:00Z,
a Thursday); ``WorkCalendar`` maps working time onto it.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Mapping

from labkit.core import clock as clocks
from labkit.delivery.distributions import Dist
from labkit.core.errors import LabkitError

DAY = 86400.0
HOUR = 3600.0
#: labkit.core.clock's epoch, 2026-01-01, is a Thursday (Monday = 0).
EPOCH_WEEKDAY = 3


@dataclass(frozen=True)
class WorkCalendar:
    """Working hours on working days, in virtual seconds."""

    start_h: float = 9.0
    end_h: float = 17.0
    workdays: tuple[int, ...] = (0, 1, 2, 3, 4)

    @property
    def seconds_per_day(self) -> float:
        return (self.end_h - self.start_h) * HOUR

    def weekday(self, t: float) -> int:
        return (EPOCH_WEEKDAY + int(t // DAY)) % 7

    def is_working(self, t: float) -> bool:
        h = (t % DAY) / HOUR
        return self.weekday(t) in self.workdays and self.start_h <= h < self.end_h

    def next_working(self, t: float) -> float:
        """``t`` if it is working time, else the start of the next working period."""
        for _ in range(15):
            day0 = math.floor(t / DAY) * DAY
            if self.weekday(t) in self.workdays:
                start, end = day0 + self.start_h * HOUR, day0 + self.end_h * HOUR
                if t < start:
                    return start
                if t < end:
                    return t
            t = day0 + DAY
        raise LabkitError("the work calendar has no working time", field="team.workdays")

    def add(self, t: float, seconds: float) -> float:
        """``t`` plus ``seconds`` of working time."""
        t = self.next_working(t)
        left = seconds
        while True:
            day_end = math.floor(t / DAY) * DAY + self.end_h * HOUR
            room = day_end - t
            if left <= room:
                return t + left
            left -= room
            t = self.next_working(day_end)


@dataclass(frozen=True)
class TeamConfig:
    """How a team produces changes (see the module docstring)."""

    services: int = 50
    days: int = 90
    changes_per_service_day: float = 0.5
    commits_per_change: float = 2.0
    authoring: Dist = Dist.lognormal(4 * HOUR, 0.8)
    size_lines: Dist = Dist.lognormal(80, 1.0)
    review_probability: float = 0.9
    review_time: Dist = Dist.lognormal(2 * HOUR, 0.9)
    defect_base: float = 0.05
    defect_size_exponent: float = 0.5
    unreviewed_factor: float = 2.5
    defect_max: float = 0.6
    detection_delay: Dist = Dist.lognormal(15 * 60, 1.0)
    fix_delay: Dist = Dist.lognormal(3 * HOUR, 0.8)
    calendar: WorkCalendar = WorkCalendar()

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> "TeamConfig":
        data = dict(data or {})
        base = cls()
        kw: dict[str, Any] = {}
        for key in ("authoring", "size_lines", "review_time", "detection_delay", "fix_delay"):
            if key in data:
                kw[key] = Dist.parse(data.pop(key), field=f"team.{key}")
        for key in ("services", "days"):
            if key in data:
                v = data.pop(key)
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise LabkitError(f"expected a positive integer, got {v!r}", field=f"team.{key}")
                kw[key] = v
        for key in ("changes_per_service_day", "commits_per_change", "review_probability", "defect_base",
                    "defect_size_exponent", "unreviewed_factor", "defect_max"):
            if key in data:
                v = data.pop(key)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    raise LabkitError(f"expected a non-negative number, got {v!r}", field=f"team.{key}")
                kw[key] = float(v)
        if "work_hours" in data:
            wh = data.pop("work_hours")
            if not (isinstance(wh, (list, tuple)) and len(wh) == 2 and 0 <= wh[0] < wh[1] <= 24):
                raise LabkitError("work_hours is [start_hour, end_hour]", field="team.work_hours")
            kw["calendar"] = replace(kw.get("calendar", base.calendar), start_h=float(wh[0]), end_h=float(wh[1]))
        if "workdays" in data:
            wd = data.pop("workdays")
            if not (isinstance(wd, (list, tuple)) and wd and all(isinstance(d, int) and 0 <= d <= 6 for d in wd)):
                raise LabkitError("workdays is a list of weekdays, Monday = 0", field="team.workdays")
            kw["calendar"] = replace(kw.get("calendar", base.calendar), workdays=tuple(wd))
        if data:
            raise LabkitError(f"unknown keys {sorted(data)}", field="team")
        for p in ("review_probability", "defect_base", "defect_max"):
            if kw.get(p, getattr(base, p)) > 1:
                raise LabkitError("a probability must be at most 1", field=f"team.{p}")
        return replace(base, **kw)

    def defect_probability(self, size: float, reviewed: bool) -> float:
        p = self.defect_base * (size / self.size_lines.median()) ** self.defect_size_exponent
        if not reviewed:
            p *= self.unreviewed_factor
        return min(self.defect_max, p)


@dataclass
class Change:
    """One pull request: its commits, review, merge and (latent) defect."""

    id: str
    service: str
    opened: float
    merged: float
    commits: list[tuple[str, float]]  # (commit id, commit time)
    size: float
    reviewed: bool
    defective: bool
    detection_delay: float
    fix_of: str | None = None

    @property
    def commit_ids(self) -> list[str]:
        return [c for c, _ in self.commits]


@dataclass
class ChangeStream:
    config: TeamConfig
    seed: int
    changes: list[Change] = field(default_factory=list)

    @property
    def services(self) -> list[str]:
        return service_names(self.config.services)

    @property
    def horizon(self) -> float:
        return self.config.days * DAY

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)


def service_names(n: int) -> list[str]:
    return [f"svc-{i:02d}" for i in range(n)]


def _draw_change(cfg: TeamConfig, rng: random.Random, cid: str, service: str, opened: float,
                 fix_of: str | None = None, not_before: float = 0.0) -> Change:
    cal = cfg.calendar
    n_commits = 1 + _poisson(rng, max(0.0, cfg.commits_per_change - 1))
    span = cfg.authoring.draw(rng)
    times = sorted(max(not_before, opened - rng.uniform(0, span)) for _ in range(n_commits))
    commits = [(f"{cid}.{k + 1}", t) for k, t in enumerate(times)]
    size = cfg.size_lines.draw(rng)
    reviewed = rng.random() < cfg.review_probability
    merged = cal.add(opened, cfg.review_time.draw(rng)) if reviewed else opened + rng.uniform(30, 120)
    defective = rng.random() < cfg.defect_probability(size, reviewed)
    detection = cfg.detection_delay.draw(rng)
    return Change(cid, service, opened, merged, commits, size, reviewed, defective, detection, fix_of)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def generate(config: TeamConfig | None = None, *, seed: int = 0) -> ChangeStream:
    """The team's PRs over ``config.days`` (merged within the horizon), sorted by merge time."""
    cfg = config or TeamConfig()
    cal = cfg.calendar
    horizon = cfg.days * DAY
    out: list[Change] = []
    rate = cfg.changes_per_service_day / cal.seconds_per_day  # per working second
    for service in service_names(cfg.services):
        arrivals = clocks.rng_for(seed, f"team:{service}:arrivals")
        t, n = 0.0, 0
        while rate > 0:
            t = cal.add(t, arrivals.expovariate(rate))
            if t >= horizon:
                break
            n += 1
            cid = f"{service}#{n}"
            ch = _draw_change(cfg, clocks.rng_for(seed, f"team:{cid}"), cid, service, t)
            if ch.merged < horizon:
                out.append(ch)
    out.sort(key=lambda c: (c.merged, c.id))
    return ChangeStream(cfg, seed, out)


def fix_for(stream: ChangeStream, change: Change, restored_at: float) -> Change:
    """The fix the author of ``change`` opens after the rollback at ``restored_at`` (same in both models)."""
    cfg = stream.config
    rng = clocks.rng_for(stream.seed, f"team:{change.id}:fix")
    opened = cfg.calendar.add(restored_at, cfg.fix_delay.draw(rng))
    return _draw_change(cfg, rng, f"{change.id}-fix", change.service, opened, fix_of=change.id,
                        not_before=restored_at)
