"""The DORA four keys, computed from the event log the way dora-team/fourkeys does.

Where the numbers come from
===========================

fourkeys (github.com/dora-team/fourkeys) turns webhook events from a git host
and a CD tool into three BigQuery tables and computes the keys with a handful of
SQL queries (``queries/*.sql``, documented in ``METRICS.md``).  labkit keeps the
same three tables as pandas DataFrames, built from the run's ``EventLog``
(``tables_from_log``), and reproduces the queries:

``changes``      one row per commit: ``change_id``, ``time_created``, ``service``.
                 Recorded by the change-stream generator (``team``/``ChangeCommitted``).
``deployments``  one row per *successful* deployment: ``deploy_id``,
                 ``time_created``, ``service``, ``changes`` (the commits it
                 shipped for the first time), ``rollback``.  Recorded by the
                 delivery models (``delivery``/``Deployed``) — by the push
                 pipeline's deploy stage, or when the pull controller applies a
                 new revision healthily.
``incidents``    ``incident_id``, ``time_created``, ``time_resolved``,
                 ``changes`` (the root-cause commits).  Recorded by the on-call
                 model (``oncall``/``IncidentOpened`` and ``IncidentResolved``).

The keys
--------

**Deployment frequency.**  Deploys per day over the window, and fourkeys'
bucket: the window's days are grouped into weeks (``TIMESTAMP_TRUNC(day,
WEEK)``: weeks start on Sunday); per week, ``days_deployed`` counts the distinct
days with a deployment and ``week_deployed`` is 1 if any.  Then **Daily** if the
median of ``days_deployed`` over the weeks is ≥ 3, else **Weekly** if the median
of ``week_deployed`` is ≥ 1 (most weeks have a deploy), else **Monthly** if the
median over the week rows of their month's ``SUM(week_deployed)`` is ≥ 1, else
**Yearly**.  Medians are ``PERCENTILE_CONT(…, 0.5)`` (linear interpolation,
what pandas' ``median`` does).

**Change lead time.**  For every (deployment, change) pair,
``TIMESTAMP_DIFF(deploy.time_created, change.time_created, MINUTE)`` — whole
minutes, truncated — and the median over the pairs *ignoring values ≤ 0*
(fourkeys: "Ignore automated pushes": a commit made by the deploy automation
itself has no lead time worth the name).  Reported in hours.

**Change failure rate.**  Deployments that caused an incident ÷ deployments
(the definition in DORA's reports).  fourkeys' SQL computes
``SUM(IF(incident, 1, 0)) / COUNT(DISTINCT deploy_id)`` over the join of
deployments × their changes × incidents, which counts a deployment twice when
two of its changes (or two incidents) point at it, and drops deployments that
shipped no change from the denominator; ``change_failure_rate(...,
method="fourkeys")`` reproduces that exactly, for comparison.

**Failed deployment recovery time** (the 2024 report's name for time to
restore).  ``time_resolved − time_created`` per incident, median.  fourkeys takes
``TIMESTAMP_DIFF(…, HOUR)`` — whole hours — before the median, which turns every
restore under an hour into 0; labkit reports the exact median in hours as the
metric and keeps the whole-hour median for fourkeys' bucket.

fourkeys' own buckets follow the 2019 report (lead time and recovery: "One
day", "One week", "One month", "Six months", "One year", with a month of 730
hours; fail rate: "0-15%", "16-45%", "46-60%").  The tier labkit reports is the
nearest DORA **2024** cluster on all four metrics (``labkit.delivery.tiers``).

Differences from fourkeys, deliberately: the window is the run's observation
window ``[start, end)`` rather than "the last three months up to today"
(fourkeys also starts its day list the day *after* its first event); times are
virtual seconds since ``labkit.core.clock``'s epoch (2026-01-01T00:00:00Z, a
Thursday), mapped to calendar days for the week/month buckets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from labkit.delivery.tiers import Classification, Clusters, classify
from labkit.core.events import EventLog

DAY = 86400.0
HOUR = 3600.0
MONTH_H = 730.0
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)

# The event vocabulary the delivery models record and the tables are built from.
CHANGE = ("team", "ChangeCommitted")
DEPLOYED = ("delivery", "Deployed")
INCIDENT_OPENED = ("oncall", "IncidentOpened")
INCIDENT_RESOLVED = ("oncall", "IncidentResolved")


@dataclass
class FourKeysTables:
    """fourkeys' three tables as DataFrames (times in virtual seconds)."""

    changes: pd.DataFrame
    deployments: pd.DataFrame
    incidents: pd.DataFrame

    @classmethod
    def from_records(
        cls,
        changes: Iterable[Mapping[str, Any]] = (),
        deployments: Iterable[Mapping[str, Any]] = (),
        incidents: Iterable[Mapping[str, Any]] = (),
    ) -> "FourKeysTables":
        ch = pd.DataFrame(list(changes), columns=["change_id", "time_created", "service"])
        dep = pd.DataFrame(list(deployments), columns=["deploy_id", "time_created", "service", "changes", "rollback"])
        inc = pd.DataFrame(list(incidents), columns=["incident_id", "time_created", "time_resolved", "service", "changes"])
        for df in (ch, dep, inc):
            df["time_created"] = df["time_created"].astype(float)
        inc["time_resolved"] = inc["time_resolved"].astype(float)
        dep["changes"] = dep["changes"].apply(lambda v: list(v) if isinstance(v, (list, tuple)) else [])
        dep["rollback"] = dep["rollback"].fillna(False).astype(bool)
        inc["changes"] = inc["changes"].apply(lambda v: list(v) if isinstance(v, (list, tuple)) else [])
        return cls(ch, dep, inc)


def tables_from_log(log: EventLog | Iterable[Any], *, service: str | None = None) -> FourKeysTables:
    """Build the three tables from the delivery models' records in ``log``."""
    changes, deploys, opened, resolved = [], [], {}, {}
    for e in log:
        key = (e.component, e.event)
        d = e.detail
        if service is not None and d.get("service") not in (None, service):
            continue
        if key == CHANGE:
            changes.append({"change_id": e.revision, "time_created": e.time, "service": d.get("service", "")})
        elif key == DEPLOYED:
            deploys.append({"deploy_id": e.revision, "time_created": e.time, "service": d.get("service", ""),
                            "changes": list(d.get("changes") or []), "rollback": bool(d.get("rollback", False))})
        elif key == INCIDENT_OPENED:
            opened[d["incident"]] = {"incident_id": d["incident"], "time_created": e.time,
                                     "service": d.get("service", ""), "changes": list(d.get("changes") or [])}
        elif key == INCIDENT_RESOLVED:
            resolved[d["incident"]] = e.time
    incidents = [dict(v, time_resolved=resolved.get(k, math.nan)) for k, v in opened.items()]
    return FourKeysTables.from_records(changes, deploys, incidents)


# ---------------------------------------------------------------------- helpers

def _median(values: Sequence[float] | pd.Series) -> float | None:
    s = pd.Series(values, dtype=float).dropna()
    return None if s.empty else float(s.median())


def calendar_day(t: float) -> datetime:
    """The calendar date (UTC midnight) of virtual time ``t``."""
    return EPOCH + timedelta(days=math.floor(t / DAY))


def week_start(day: datetime) -> datetime:
    """BigQuery ``TIMESTAMP_TRUNC(day, WEEK)``: the preceding Sunday (or the day itself)."""
    return day - timedelta(days=(day.weekday() + 1) % 7)


def whole_units(delta_s: float, unit_s: float) -> int:
    """``TIMESTAMP_DIFF`` in ``unit_s``: whole units, truncated toward zero."""
    return int(math.trunc(delta_s / unit_s))


# ---------------------------------------------------------------------- the keys

def lead_times(tables: FourKeysTables) -> pd.DataFrame:
    """Every (deployment, change) pair with its lead time in whole minutes (fourkeys' join)."""
    dep = tables.deployments[["deploy_id", "time_created", "changes"]].explode("changes").dropna(subset=["changes"])
    dep = dep.rename(columns={"time_created": "deploy_time", "changes": "change_id"})
    merged = dep.merge(tables.changes[["change_id", "time_created"]], on="change_id", how="left")
    merged["minutes"] = [
        whole_units(d - c, 60.0) if not math.isnan(c) else math.nan
        for d, c in zip(merged["deploy_time"], merged["time_created"])
    ]
    return merged


def lead_time_median_h(tables: FourKeysTables) -> float | None:
    """Median lead time in hours over pairs with a positive whole-minute lead time."""
    m = lead_times(tables)["minutes"]
    m = m[m > 0]
    med = _median(m)
    return None if med is None else med / 60.0


def deploys_per_day(tables: FourKeysTables, start: float, end: float) -> float:
    days = (end - start) / DAY
    return float(len(tables.deployments)) / days if days > 0 else math.nan


def deployment_frequency_bucket(deploy_times: Iterable[float], start: float, end: float) -> str:
    """fourkeys' Daily / Weekly / Monthly / Yearly bucket (see the module docstring)."""
    first = calendar_day(start)
    last = calendar_day(end - 1e-9) if end > start else first
    days = []
    d = first
    while d <= last:
        days.append(d)
        d += timedelta(days=1)
    deployed_days = {calendar_day(t) for t in deploy_times}
    weeks: dict[datetime, dict[str, int]] = {}
    for day in days:
        w = week_start(day)
        row = weeks.setdefault(w, {"week_deployed": 0, "days_deployed": 0})
        if day in deployed_days:
            row["week_deployed"] = 1
            row["days_deployed"] += 1
    if not weeks:
        return "Yearly"
    frame = pd.DataFrame([{"week": w, **v} for w, v in sorted(weeks.items())])
    frame["month"] = [(w.year, w.month) for w in frame["week"]]
    frame["monthly_deploys"] = frame.groupby("month")["week_deployed"].transform("sum")
    if frame["days_deployed"].median() >= 3:
        return "Daily"
    if frame["week_deployed"].median() >= 1:
        return "Weekly"
    if frame["monthly_deploys"].median() >= 1:
        return "Monthly"
    return "Yearly"


def change_failure_rate(tables: FourKeysTables, *, method: str = "deployments") -> float | None:
    """Deployments that caused an incident ÷ deployments (or fourkeys' exact SQL, ``method="fourkeys"``)."""
    dep = tables.deployments
    if method == "deployments":
        if dep.empty:
            return None
        bad = {c for cs in tables.incidents["changes"] for c in cs}
        failed = sum(1 for cs in dep["changes"] if any(c in bad for c in cs))
        return failed / len(dep)
    if method == "fourkeys":
        pairs = dep[["deploy_id", "changes"]].explode("changes").dropna(subset=["changes"])
        if pairs.empty:
            return None
        inc = tables.incidents[["incident_id", "changes"]].explode("changes").dropna(subset=["changes"])
        inc = inc.rename(columns={"changes": "change"})
        joined = pairs.merge(inc, left_on="changes", right_on="change", how="left")
        hits = int(joined["incident_id"].notna().sum())
        return hits / pairs["deploy_id"].nunique()
    raise ValueError(f"unknown method {method!r}")


def recovery_times_h(tables: FourKeysTables) -> pd.Series:
    """Resolved − created per resolved incident, in hours (exact)."""
    inc = tables.incidents.dropna(subset=["time_resolved"])
    return (inc["time_resolved"] - inc["time_created"]) / HOUR


def recovery_median_h(tables: FourKeysTables, *, whole_hours: bool = False) -> float | None:
    """Median recovery time in hours; ``whole_hours`` truncates each first, as fourkeys does."""
    r = recovery_times_h(tables)
    if whole_hours:
        r = r.apply(lambda h: float(math.trunc(h)))
    return _median(r)


def time_bucket(hours: float | None) -> str:
    """fourkeys' bucket for a median lead or recovery time in hours (2019 report)."""
    if hours is None:
        return "None"
    if hours < 24:
        return "One day"
    if hours < 168:
        return "One week"
    if hours < MONTH_H:
        return "One month"
    if hours < MONTH_H * 6:
        return "Six months"
    return "One year"


def failure_rate_bucket(rate: float | None) -> str:
    """fourkeys' change-fail-rate bucket."""
    if rate is None:
        return "None"
    if rate <= 0.15:
        return "0-15%"
    if rate < 0.46:
        return "16-45%"
    return "46-60%"


@dataclass
class FourKeys:
    """The four keys of one run, with fourkeys' buckets and the distributions behind the medians."""

    start: float
    end: float
    deployments: int
    deploys_per_day: float
    deployment_frequency_bucket: str
    lead_time_median_h: float | None
    lead_time_bucket: str
    change_failure_rate: float | None
    change_failure_rate_fourkeys: float | None
    change_failure_rate_bucket: str
    recovery_median_h: float | None
    recovery_bucket: str
    incidents: int
    lead_times_h: list[float] = field(default_factory=list)
    recovery_times_h: list[float] = field(default_factory=list)
    daily_deploys: list[int] = field(default_factory=list)

    def classify(self, clusters: Clusters | None = None) -> Classification:
        """Nearest DORA 2024 cluster on all four metrics."""
        return classify(lead_time_h=self.lead_time_median_h, deploys_per_day=self.deploys_per_day,
                        change_failure_rate=self.change_failure_rate, recovery_h=self.recovery_median_h,
                        clusters=clusters)


def four_keys(tables: FourKeysTables, *, start: float, end: float) -> FourKeys:
    """All four keys over the window ``[start, end)`` (virtual seconds)."""
    dep = tables.deployments
    dep = dep[(dep["time_created"] >= start) & (dep["time_created"] < end)]
    inc = tables.incidents
    inc = inc[(inc["time_created"] >= start) & (inc["time_created"] < end)]
    t = FourKeysTables(tables.changes, dep.reset_index(drop=True), inc.reset_index(drop=True))
    lt = lead_times(t)["minutes"]
    lt = lt[lt > 0] / 60.0
    rec = recovery_times_h(t)
    cfr = change_failure_rate(t)
    n_days = max(1, int(math.ceil((end - start) / DAY)))
    counts = [0] * n_days
    for tm in dep["time_created"]:
        i = int((tm - start) // DAY)
        if 0 <= i < n_days:
            counts[i] += 1
    lead_med = lead_time_median_h(t)
    rec_med = recovery_median_h(t)
    return FourKeys(
        start=start, end=end, deployments=len(dep),
        deploys_per_day=deploys_per_day(t, start, end),
        deployment_frequency_bucket=deployment_frequency_bucket(dep["time_created"], start, end),
        lead_time_median_h=lead_med, lead_time_bucket=time_bucket(lead_med),
        change_failure_rate=cfr, change_failure_rate_fourkeys=change_failure_rate(t, method="fourkeys"),
        change_failure_rate_bucket=failure_rate_bucket(cfr),
        recovery_median_h=rec_med, recovery_bucket=time_bucket(recovery_median_h(t, whole_hours=True)),
        incidents=len(inc),
        lead_times_h=[float(x) for x in lt], recovery_times_h=[float(x) for x in rec.dropna()],
        daily_deploys=counts,
    )
