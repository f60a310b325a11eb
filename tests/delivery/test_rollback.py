"""Rollback on the simulator: the push re-run and git revert + reconcile, and which way their medians move."""
import statistics

import pytest

from labkit.core import clock
from labkit.delivery.ci import CIConfig
from labkit.delivery.distributions import Dist
from labkit.delivery.fixture import ServiceFixture, ServiceSpec
from labkit.delivery.push import FIELD_MANAGER, deploy_step
from labkit.delivery.rollback import RollbackParams, monte_carlo, run_pull, run_push, with_ci_load
from labkit.flux.system import FluxTimings

SEEDS = range(8)


def test_fixture_has_real_revert():
    fx = ServiceFixture.get(ServiceSpec())
    assert fx.image_of(fx.good) == "registry.local/web:v1"
    assert fx.image_of(fx.bad) == "registry.local/web:v2"
    assert fx.image_of(fx.revert) == "registry.local/web:v1"
    msg = fx.repo.git.commit(fx.revert).message
    assert msg.startswith('Revert "web: release v2"') and fx.bad in msg
    assert fx.repo.git.commit(fx.revert).parents[0].hexsha == fx.bad


def test_push_deploys_with_the_ci_credential():
    from labkit.sim import SimCluster
    from labkit.sim.registry import ImageRegistry

    fx = ServiceFixture.get(ServiceSpec())
    env = clock.virtual()
    cluster = SimCluster(seed=1, env=env, registry=ImageRegistry().add("registry.local/web", ["v1", "v2"]))
    out = {}

    def go():
        out["r"] = yield from deploy_step(env, cluster, fx.objects(fx.good))()

    env.process(go())
    env.run(until=600)
    ok, detail = out["r"]
    assert ok and detail["rollout"] > 0
    dep = cluster.get("apps/v1", "Deployment", "web", "web")
    assert {m["manager"] for m in dep["metadata"]["managedFields"]} >= {FIELD_MANAGER}


def test_pull_with_webhook_timeline():
    p = RollbackParams(webhook=True, human_action=Dist.fixed(40), flux_timings=FluxTimings.fixed())
    r = run_pull(3, p, keep_log=True)
    log = r.log
    decided = log.first(event="RollbackDecided").time
    pushed = [e for e in log.filter(component="git", event="Pushed") if e.time >= decided]
    received = log.filter(component="webhook", event="WebhookReceived")
    fetched = [e for e in log.filter(component="source-controller", event="NewArtifact") if e.time >= decided]
    restored = log.first(component="delivery", event="Restored")
    # the on-call engineer pushes the revert 40 s after deciding; the webhook arrives 1 s later; the
    # fetch takes 1 s
    assert pushed[0].time == pytest.approx(decided + 40)
    assert received[0].time == pytest.approx(decided + 41)
    assert fetched[0].time == pytest.approx(decided + 42)
    assert restored.time > fetched[0].time
    assert r.restore_s == pytest.approx(restored.time - decided)
    assert r.breakdown["push_s"] == pytest.approx(40)


def test_pull_with_polling_waits_for_the_next_poll():
    p = RollbackParams(webhook=False, poll_interval=120, human_action=Dist.fixed(40), flux_timings=FluxTimings.fixed())
    for seed in (1, 2):
        r = run_pull(seed, p, keep_log=True)
        wait = r.breakdown["to_fetch_s"]
        # the revert is fetched by the next poll: after the push, at most one interval (no jitter) plus the fetch
        assert 1.0 <= wait <= 120 + 1.0
        assert not r.log.filter(component="webhook")


def test_runs_are_reproducible():
    assert run_pull(5).restore_s == run_pull(5).restore_s
    assert run_push(5).restore_s == run_push(5).restore_s


def test_pull_median_grows_with_the_poll_interval():
    fast = monte_carlo("pull", SEEDS, RollbackParams(webhook=False, poll_interval=30), workers=1)
    slow = monte_carlo("pull", SEEDS, RollbackParams(webhook=False, poll_interval=600), workers=1)
    hook = monte_carlo("pull", SEEDS, RollbackParams(webhook=True, poll_interval=600), workers=1)
    assert slow.restore_s.median() > fast.restore_s.median() + 100
    assert hook.restore_s.median() < slow.restore_s.median()
    # with a webhook the poll interval no longer matters: the wait for the fetch is the delivery + fetch
    assert hook.to_fetch_s.max() < 10


def test_push_median_grows_with_ci_load():
    base = RollbackParams(ci=CIConfig(runners=2))
    idle = monte_carlo("push", SEEDS, base, workers=1)
    busy = monte_carlo("push", SEEDS, with_ci_load(base, 0.9), workers=1)
    assert busy.restore_s.median() > idle.restore_s.median()
    assert busy.queue_wait_s.mean() > idle.queue_wait_s.mean() + 60
    # the push rollback re-runs the pipeline, so it is never faster than its build and test stages
    assert (idle.restore_s > idle.build_s + idle.test_s).all()


def test_push_skip_build_is_faster():
    full = monte_carlo("push", SEEDS, RollbackParams(), workers=1)
    quick = monte_carlo("push", SEEDS, RollbackParams(skip_build=True), workers=1)
    assert statistics.median(quick.restore_s) < statistics.median(full.restore_s)


def test_parallel_rows_equal_serial_rows():
    a = monte_carlo("pull", range(4), workers=1)
    b = monte_carlo("pull", range(4), workers=2)
    assert list(a.restore_s) == list(b.restore_s)
