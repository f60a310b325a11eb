"""The CI model: stages, failures and retries, and the queue in front of the runner pool."""
import statistics

import pytest

from labkit.core import clock
from labkit.delivery.ci import CIConfig, CISystem, Stage, queue_waits
from labkit.delivery.distributions import Dist
from labkit.core.errors import LabkitError
from labkit.core.events import EventLog


def fixed_config(**kw) -> CIConfig:
    stages = {"checkout": Stage("checkout", Dist.fixed(30)), "build": Stage("build", Dist.fixed(240)),
              "test": Stage("test", Dist.fixed(300)), "publish": Stage("publish", Dist.fixed(45)),
              "deploy": Stage("deploy", Dist.fixed(15))}
    base = dict(runners=1, trigger_latency=Dist.fixed(5), runner_startup=Dist.fixed(20), stages=stages,
                rerun_delay=Dist.fixed(180))
    base.update(kw)
    return CIConfig(**base)


def test_queue_wait_with_one_runner():
    env = clock.virtual()
    log = EventLog(lambda: env.now)
    ci = CISystem(env, fixed_config(), log=log)
    runs = []

    def trigger():
        r = yield from ci.run("deploy", ["checkout", "build", "test", "publish"])
        runs.append(r)

    for _ in range(3):
        env.process(trigger())
    env.run()
    # each job holds the runner for startup 20 + 30 + 240 + 300 + 45 = 635 s; all three arrive at 5 s
    assert [r.started for r in runs] == [5, 640, 1275]
    assert [r.finished for r in runs] == [640, 1275, 1910]
    assert queue_waits(log) == [5, 640, 1275]  # measured from the trigger at t = 0 (5 s trigger latency)
    assert [r.queue_wait for r in runs] == [5, 640, 1275]


def test_deploy_step_runs_inside_the_deploy_stage():
    env = clock.virtual()
    ci = CISystem(env, fixed_config())
    seen = {}

    def deploy():
        seen["start"] = env.now
        yield env.timeout(42)
        return True, {"rollout": 42.0}

    out = {}

    def go():
        out["run"] = yield from ci.run("rollback", ["checkout", "deploy"], deploy=deploy)

    env.process(go())
    env.run()
    # trigger 5 + startup 20 + checkout 30 + the deploy stage's own 15 s of tooling, then the rollout
    assert seen["start"] == 5 + 20 + 30 + 15
    run = out["run"]
    assert run.ok and run.finished == 5 + 20 + 30 + 15 + 42
    assert run.stages[-1].name == "deploy" and run.stages[-1].duration == 57


def test_failed_stage_is_rerun_after_the_delay():
    cfg = fixed_config(stages={"checkout": Stage("checkout", Dist.fixed(30)),
                               "test": Stage("test", Dist.fixed(300), failure_rate=1.0)}, max_attempts=2)
    env = clock.virtual()
    log = EventLog(lambda: env.now)
    ci = CISystem(env, cfg, log=log)
    out = {}

    def go():
        out["runs"] = yield from ci.run_with_retries("deploy", ["checkout", "test"])

    env.process(go())
    env.run()
    runs = out["runs"]
    assert [r.ok for r in runs] == [False, False]
    assert runs[0].failed_stage == "test"
    # second attempt is queued 180 s after the first failed at 5 + 20 + 30 + 300 = 355
    assert runs[1].queued == 355 + 180
    assert len(log.filter(event="PipelineFailed")) == 2


def test_background_load_makes_queues():
    def mean_wait(util: float) -> float:
        waits = []
        for seed in range(6):
            env = clock.virtual()
            log = EventLog(lambda: env.now)
            cfg = CIConfig(runners=2, background_utilisation=util)
            ci = CISystem(env, cfg, log=log, seed=seed)
            ci.start_background_load()

            def ours():
                for _ in range(10):
                    yield env.timeout(1800)
                    env.process(ci.run("deploy", ["checkout"]))

            env.process(ours())
            env.run(until=20000)
            waits += queue_waits(log)
        return statistics.mean(waits)

    idle, busy, saturated = mean_wait(0.0), mean_wait(0.6), mean_wait(0.95)
    assert idle < busy < saturated
    assert saturated > 300  # at 95 % utilisation the queue, not the pipeline, dominates


def test_background_rate_offers_the_utilisation():
    cfg = CIConfig(runners=4, background_utilisation=0.5, background_job=Dist.fixed(600))
    assert cfg.background_rate() == pytest.approx(0.5 * 4 / 600)


def test_config_from_data_names_bad_fields():
    cfg = CIConfig.from_data({"runners": 3, "stages": {"build": {"duration": {"lognormal": {"median": 100, "sigma": 0.2}},
                                                                 "failure_rate": 0.1}}})
    assert cfg.runners == 3 and cfg.stage("build").failure_rate == 0.1
    assert cfg.stage("build").duration == Dist.lognormal(100, 0.2)
    with pytest.raises(LabkitError, match="ci.stages.build.failure_rate"):
        CIConfig.from_data({"stages": {"build": {"duration": 5, "failure_rate": 2}}})
    with pytest.raises(LabkitError, match="ci"):
        CIConfig.from_data({"runnerz": 3})
    with pytest.raises(LabkitError, match="unknown CI stage"):
        CIConfig().stage("lint")
