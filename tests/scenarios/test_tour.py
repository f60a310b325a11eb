"""The tour's outcomes follow from the mechanisms: poll interval, webhook delivery, dry-run comparison."""
import pytest

from labkit.scenarios import tour


@pytest.fixture(scope="module")
def result():
    return tour.run_tour(seed=3, poll_interval_s=120.0, commits=4)


def test_every_commit_is_applied_and_ready(result):
    assert len(result.traces) == 8
    assert all(t.applied is not None and t.ready is not None for t in result.traces)
    assert all(t.ready >= t.applied > t.fetched >= t.committed for t in result.traces)


def test_polling_waits_at_most_one_interval_for_the_fetch(result):
    for t in result.traces:
        if t.mode == "poll":
            # the fetch finishes within one poll interval (+ jitter 5% + the fetch itself, ≤ 2 s)
            assert t.fetched - t.committed <= 120 * 1.05 + 2.0


def test_webhook_beats_polling(result):
    m = result.metrics()
    # delivery (≤ 2 s) + fetch (≤ 2 s) + build (≤ 1.2 s) + API calls bound the webhook path
    assert m["commit_to_applied_s_webhook"] < 6.0
    assert m["commit_to_applied_s_poll"] > m["commit_to_applied_s_webhook"]


def test_noop_reconcile_writes_nothing(result):
    assert result.noop["writes"] == 0
    assert result.noop["unchanged"] >= 3  # namespace, service, deployment all unchanged


def test_timeline_has_the_five_steps_in_order(result):
    stages = list(result.timeline.stage)
    assert stages[:2] == ["commit", "webhook"]
    assert [s for s in stages if s in tour.STAGES] == ["fetch", "build", "plan", "apply", "prune", "health"]
    starts = result.timeline.set_index("stage").start
    assert starts["fetch"] <= starts["build"] <= starts["apply"] <= starts["health"]
