"""Promotion outcomes emerge from health checks, the registry and the bot's gate."""
import pytest

from labkit.scenarios import promotion
from labkit.scenarios.lab import PODINFO


@pytest.fixture(scope="module")
def result():
    return promotion.run_promotion(seed=2, good_tag="6.5.2", bad_tag="7.0.0-nope", observe_s=600)


def test_good_tag_promoted_bad_tag_blocked(result):
    m = result.metrics()
    assert m["prod_image"] == f"{PODINFO}:6.5.2"
    assert m["staging_image"] == f"{PODINFO}:6.5.2"
    assert m["bad_tag_caught_in_staging"] is True
    assert m["prod_changed_by_bad_tag"] is False
    assert [p["tag"] for p in result.bot.promoted] == ["6.5.2"]


def test_bad_tag_blocked_after_the_health_timeout(result):
    blocked = result.bot.blocked[0]
    # apps.yaml: timeout 5m; the bot polls every 10 s
    assert 300 <= blocked["time"] - result.marks["bad_commit"] <= 300 + 30
    assert "timeout waiting for" in blocked["reason"]


def test_old_replicaset_kept_serving_during_the_bad_rollout(result):
    mon = result.monitor.frame()
    during = mon[(mon.environment == "staging") & (mon.time > result.marks["bad_commit"] + 30)
                 & (mon.time < result.marks["revert"])]
    assert (during.tag == "7.0.0-nope").all()
    assert (during.ready == 2).all()  # replicas 2 in the staging overlay, maxUnavailable 0


def test_deploy_record_is_the_git_log_of_the_prod_overlay(result):
    rec = result.record_frame()
    assert list(rec.author) == ["promotion-bot", "labkit"]
    assert rec.message.iloc[0] == "Promote podinfo 6.5.2 to prod"
