"""The change-stream generator: working-time arithmetic, defect probabilities, reproducibility."""
import pytest

from labkit.delivery.changes import DAY, HOUR, TeamConfig, WorkCalendar, fix_for, generate
from labkit.delivery.distributions import Dist
from labkit.core.errors import LabkitError

CAL = WorkCalendar()  # 09:00-17:00, Monday-Friday; virtual day 0 is Thursday 2026-01-01


def test_working_time_arithmetic():
    assert CAL.next_working(0) == 9 * HOUR  # Thursday 00:00 -> 09:00
    assert CAL.add(0, 8 * HOUR) == 17 * HOUR  # a full Thursday
    assert CAL.add(0, 9 * HOUR) == DAY + 10 * HOUR  # ... and one hour of Friday
    friday_4pm = DAY + 16 * HOUR
    assert CAL.add(friday_4pm, 2 * HOUR) == 4 * DAY + 10 * HOUR  # one hour Friday, one hour Monday
    assert not CAL.is_working(2 * DAY + 12 * HOUR)  # Saturday noon
    assert CAL.is_working(4 * DAY + 12 * HOUR)  # Monday noon
    assert CAL.weekday(0) == 3 and CAL.weekday(4 * DAY) == 0


def test_defect_probability_depends_on_size_and_review():
    cfg = TeamConfig(defect_base=0.05, size_lines=Dist.lognormal(80, 1.0), defect_size_exponent=0.5,
                     unreviewed_factor=2.5, defect_max=0.6)
    assert cfg.defect_probability(80, True) == pytest.approx(0.05)  # a median-size reviewed change
    assert cfg.defect_probability(320, True) == pytest.approx(0.10)  # 4x the size: sqrt(4) = 2x
    assert cfg.defect_probability(320, False) == pytest.approx(0.25)  # unreviewed: x2.5
    assert cfg.defect_probability(80 * 10000, False) == pytest.approx(0.6)  # capped


def test_same_seed_same_stream_and_services_are_independent():
    a = generate(TeamConfig(services=3, days=20), seed=7)
    b = generate(TeamConfig(services=3, days=20), seed=7)
    assert [(c.id, c.merged, c.defective) for c in a] == [(c.id, c.merged, c.defective) for c in b]
    five = generate(TeamConfig(services=5, days=20), seed=7)
    first3 = [c for c in five if c.service in {"svc-00", "svc-01", "svc-02"}]
    assert [(c.id, c.merged) for c in first3] == [(c.id, c.merged) for c in a]
    assert generate(TeamConfig(services=3, days=20), seed=8).changes != a.changes


def test_stream_shape():
    s = generate(TeamConfig(services=4, days=60, changes_per_service_day=1.0, review_probability=1.0), seed=1)
    assert all(c.merged < 60 * DAY for c in s)
    assert all(c.commits and all(t <= c.opened for _, t in c.commits) for c in s)
    assert all(c.reviewed and c.merged > c.opened for c in s)
    assert all(CAL.is_working(c.opened) for c in s)  # arrivals happen in working time
    assert [c.merged for c in s] == sorted(c.merged for c in s)
    # ~1 PR per working day per service: 60 days hold 42 or 43 working days
    per_service = len(s) / 4
    assert 30 < per_service < 56


def test_fix_is_the_same_in_both_models_and_after_the_restore():
    s = generate(TeamConfig(services=2, days=30, defect_base=0.5), seed=3)
    bad = next(c for c in s if c.defective)
    f1, f2 = fix_for(s, bad, 10 * DAY), fix_for(s, bad, 10 * DAY)
    assert (f1.id, f1.merged, f1.defective) == (f2.id, f2.merged, f2.defective)
    assert f1.fix_of == bad.id and f1.opened >= 10 * DAY
    assert all(t >= 10 * DAY for _, t in f1.commits)


def test_team_from_data():
    cfg = TeamConfig.from_data({"services": 5, "days": 30, "review_time": {"lognormal": {"median": 3600, "sigma": 0.5}},
                                "work_hours": [8, 16], "workdays": [0, 1, 2, 3]})
    assert cfg.services == 5 and cfg.calendar.start_h == 8 and cfg.calendar.workdays == (0, 1, 2, 3)
    with pytest.raises(LabkitError, match="team.defect_base"):
        TeamConfig.from_data({"defect_base": 2})
    with pytest.raises(LabkitError, match="team"):
        TeamConfig.from_data({"sevices": 5})
