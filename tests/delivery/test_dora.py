"""The four keys on a small fixed event log, every expected value worked out by hand."""
import math

import pytest

from labkit.delivery import dora
from labkit.core.events import EventLog

H = 3600.0
DAY = 86400.0


def fixed_log() -> EventLog:
    """Six commits, four deployments, three incidents (times in seconds from 2026-01-01T00:00Z)."""
    log = EventLog()
    for cid, t in [("c1", 0), ("c2", 600), ("c3", 3000), ("c4", 7200), ("c5", 7230), ("c6", 10000)]:
        log.record("team", "ChangeCommitted", revision=cid, detail={"service": "web"}, time=t)
    deploys = [("d1", 3600, ["c1", "c2", "c3"]), ("d2", 7260, ["c4", "c5"]), ("d3", 9000, ["c6"]),
               ("d4", 90000, [])]
    for did, t, changes in deploys:
        log.record("delivery", "Deployed", revision=did, detail={"service": "web", "changes": changes,
                                                                "rollback": not changes}, time=t)
    incidents = [("i1", 5000, 1800, ["c2"]), ("i2", 8000, 7200, ["c4", "c5"]), ("i3", 20000, 5 * H + 1200, ["c6"])]
    for iid, t, dur, changes in incidents:
        log.record("oncall", "IncidentOpened", detail={"incident": iid, "service": "web", "changes": changes}, time=t)
        log.record("oncall", "IncidentResolved", detail={"incident": iid, "service": "web"}, time=t + dur)
    return log


def test_tables_from_log():
    t = dora.tables_from_log(fixed_log())
    assert list(t.changes.change_id) == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert list(t.deployments.deploy_id) == ["d1", "d2", "d3", "d4"]
    assert list(t.deployments.rollback) == [False, False, False, True]
    assert list(t.incidents.incident_id) == ["i1", "i2", "i3"]
    assert list(t.incidents.time_resolved) == [6800.0, 15200.0, 20000 + 5 * H + 1200]


def test_lead_time_whole_minutes_and_non_positive_ignored():
    t = dora.tables_from_log(fixed_log())
    minutes = dict(zip(dora.lead_times(t).change_id, dora.lead_times(t).minutes))
    # d1 at 3600 s: c1 60 min, c2 50 min, c3 10 min; d2 at 7260 s: c4 60 s = 1 min,
    # c5 30 s truncates to 0 min; d3 at 9000 s: c6 committed at 10000 s, -1000 s -> -16 min (truncated toward 0)
    assert minutes == {"c1": 60, "c2": 50, "c3": 10, "c4": 1, "c5": 0, "c6": -16}
    # positive values 60, 50, 10, 1 -> median (10 + 50) / 2 = 30 min = 0.5 h; c5 (0) and c6 (<0) ignored
    assert dora.lead_time_median_h(t) == pytest.approx(0.5)


def test_change_failure_rate_definitions():
    t = dora.tables_from_log(fixed_log())
    # d1 (via c2), d2 (via c4 and c5) and d3 (via c6) caused incidents; d4 did not: 3 / 4
    assert dora.change_failure_rate(t) == pytest.approx(0.75)
    # fourkeys' SQL: rows of deployments x changes x incidents with an incident: d1/c2, d2/c4, d2/c5, d3/c6 = 4;
    # divided by the distinct deployments that have changes (d4 has none and drops out of the join): 3
    assert dora.change_failure_rate(t, method="fourkeys") == pytest.approx(4 / 3)


def test_recovery_median_exact_and_whole_hours():
    t = dora.tables_from_log(fixed_log())
    # durations 0.5 h, 2 h, 5 h 20 min -> median 2 h
    assert dora.recovery_median_h(t) == pytest.approx(2.0)
    # fourkeys truncates each to whole hours first: 0, 2, 5 -> median 2
    assert dora.recovery_median_h(t, whole_hours=True) == pytest.approx(2.0)
    assert sorted(dora.recovery_times_h(t)) == pytest.approx([0.5, 2.0, 5 + 1 / 3])


def test_four_keys_over_a_window():
    k = dora.four_keys(dora.tables_from_log(fixed_log()), start=0, end=2 * DAY)
    assert k.deployments == 4
    assert k.deploys_per_day == pytest.approx(2.0)  # 4 deploys over 2 days
    assert k.daily_deploys == [3, 1]  # d1, d2, d3 on day 0; d4 at 90000 s on day 1
    assert k.lead_time_median_h == pytest.approx(0.5)
    assert k.lead_time_bucket == "One day"
    assert k.change_failure_rate == pytest.approx(0.75)
    assert k.change_failure_rate_bucket == "46-60%"  # 0.75 is not < 0.46
    assert k.recovery_median_h == pytest.approx(2.0)
    assert k.incidents == 3
    # only deployments inside the window count: [0, 1 day) keeps d1..d3 and all three incidents
    k1 = dora.four_keys(dora.tables_from_log(fixed_log()), start=0, end=DAY)
    assert k1.deployments == 3
    assert k1.change_failure_rate == pytest.approx(1.0)


def days(*ds: int) -> list[float]:
    return [d * DAY + 12 * H for d in ds]  # noon of each day


# 2026-01-01 is a Thursday, so day 3 is Sunday 2026-01-04 and days 3..30 are four whole weeks (Sun..Sat).
WEEKS = (3 * DAY, 31 * DAY)


@pytest.mark.parametrize("deploy_days, bucket", [
    # Mon, Tue, Wed of each of the four weeks: days_deployed = 3 in every week -> median 3 >= 3 -> Daily
    ([4, 5, 6, 11, 12, 13, 18, 19, 20, 25, 26, 27], "Daily"),
    # Mon and Thu of each week: 2 days a week (not daily) but every week has one -> Weekly
    ([4, 7, 11, 14, 18, 21, 25, 28], "Weekly"),
    # weeks 1 and 3 only: week_deployed 1, 0, 1, 0 -> median 0.5 < 1; all four weeks start in January,
    # so each row's monthly_deploys is 2 -> median 2 >= 1 -> Monthly
    ([4, 18], "Monthly"),
    # a single deploy still makes January's sum 1 in every row -> Monthly
    ([10], "Monthly"),
    ([], "Yearly"),
])
def test_deployment_frequency_buckets(deploy_days, bucket):
    assert dora.deployment_frequency_bucket(days(*deploy_days), *WEEKS) == bucket


def test_frequency_bucket_weeks_start_on_sunday():
    # Window Thu 2026-01-01 .. Wed 2026-01-07 spans two BigQuery weeks: Sun 2025-12-28 (Thu-Sat: 3 days)
    # and Sun 2026-01-04 (Sun-Wed). Deploys on Jan 1, 2, 3: days_deployed = [3, 0] -> median 1.5 (not Daily);
    # week_deployed = [1, 0] -> median 0.5 (not Weekly); the first week belongs to December (sum 1), the
    # second to January (sum 0): monthly rows [1, 0] -> median 0.5 (not Monthly) -> Yearly.
    assert dora.deployment_frequency_bucket(days(0, 1, 2), 0, 7 * DAY) == "Yearly"


def test_calendar_helpers():
    assert dora.calendar_day(0).isoformat().startswith("2026-01-01")
    assert dora.week_start(dora.calendar_day(0)).isoformat().startswith("2025-12-28")
    assert dora.week_start(dora.calendar_day(3 * DAY)).isoformat().startswith("2026-01-04")
    assert dora.whole_units(-61, 60) == -1 and dora.whole_units(119, 60) == 1


def test_time_and_rate_buckets():
    assert [dora.time_bucket(h) for h in (23.9, 24, 167, 729, 4379, 4380)] == [
        "One day", "One week", "One week", "One month", "Six months", "One year"]
    assert [dora.failure_rate_bucket(r) for r in (0.15, 0.16, 0.459, 0.46)] == ["0-15%", "16-45%", "16-45%", "46-60%"]
    assert dora.time_bucket(None) == "None"


def test_empty_tables():
    t = dora.FourKeysTables.from_records()
    assert dora.lead_time_median_h(t) is None
    assert dora.change_failure_rate(t) is None
    assert dora.recovery_median_h(t) is None
    k = dora.four_keys(t, start=0, end=DAY)
    assert k.deployments == 0 and k.deployment_frequency_bucket == "Yearly"
    assert math.isclose(k.deploys_per_day, 0.0)
