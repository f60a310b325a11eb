"""Drift outcomes follow from Flux's interval, SSA ownership and what is in git."""
from labkit.core.duration import parse_duration
from labkit.scenarios import drift


def test_drift_correction_reverts_within_one_interval():
    r = drift.run_drift(seed=5, drift_correction=True, interval="5m")
    m = r.metrics()
    # the next periodic run starts within 5 min (+ build ≤ 1.2 s) of the edit; samples every 10 s
    assert m["hotfix_reverted_after_s"] is not None
    assert 0 < m["hotfix_reverted_after_s"] <= parse_duration("5m") + 10 + 2
    assert m["hotfix_lost_on_next_deploy"] is True


def test_suspended_kustomization_keeps_hotfix_reports_drift_and_next_deploy_reverts_it():
    r = drift.run_drift(seed=5, drift_correction=False, report_every_s=600)
    m = r.metrics()
    assert m["hotfix_reverted_after_s"] is None
    assert m["drift_reported"] is True
    assert all("resources.limits.memory" in rep["drift"] for rep in r.reports)
    during = r.samples[(r.samples.time > r.marks["hotfix"] + 10) & (r.samples.time < r.marks["deploy"])]
    assert (during.limit == drift.HOTFIX_LIMIT).all()
    assert m["hotfix_lost_on_next_deploy"] is True


def test_committed_hotfix_survives_the_next_deploy():
    r = drift.run_drift(seed=5, drift_correction=False, commit_hotfix=True)
    assert r.metrics()["hotfix_lost_on_next_deploy"] is False
    assert drift.memory_limit(r.lab) == drift.HOTFIX_LIMIT
