"""A CI system as SimPy processes: a runner pool, a queue, pipelines of stages.

This is the engine room of the push model and the first half of the pull model.
What it models, and why each part matters for delivery times:

**The runner pool** is a ``simpy.Resource`` with ``runners`` slots (GitHub
Actions self-hosted runners, GitLab runners, Jenkins executors).  A pipeline
holds one runner from its first stage to its last.  When every runner is busy
the pipeline *waits in the queue* — FIFO, as CI schedulers do — and that wait is
recorded (``PipelineStarted`` carries ``queue_wait``).

**Background load.**  The pool is shared with other teams.  Their jobs arrive as
a Poisson process and hold a runner for a drawn duration; the offered load is
stated as a utilisation ``rho = arrival rate x mean job duration / runners``.
Queueing theory (and this simulation) says what happens as ``rho`` approaches 1:
the mean wait grows like ``rho / (1 - rho)`` and its tail grows faster.  A
rollback that is "a new pipeline run" joins the same queue, so a saturated CI
turns an 8-minute rollback into a 40-minute one.  Nothing in the code says so;
it comes out of the queue.

**Pipelines** are a list of named stages (checkout, build, test, publish,
deploy ...), each with a seeded duration distribution (lognormal by default:
durations are positive and right-skewed) and a failure probability (a flaky
test, a registry hiccup).  Before the first stage the job pays the *trigger
latency* (the git host's webhook to the CI scheduler) and the *runner start-up*
(a fresh VM or pod per job).  A failed stage fails the pipeline; a person
notices and re-runs it after ``rerun_delay`` (``run_with_retries``), which puts
the pipeline back in the queue.

**The deploy stage** of the push model is supplied by the caller as a
generator (``labkit.delivery.push``): it applies manifests to the cluster with
the CI runner's credentials and waits for the rollout; the runner is held the
whole time, as ``kubectl rollout status`` in a CI job holds it.

Every step is an event in the run's ``EventLog`` under component ``ci``:
``PipelineQueued``, ``PipelineStarted`` (``queue_wait``), ``StageSucceeded`` /
``StageFailed`` (``stage``, ``started``, ``duration``), ``PipelineSucceeded`` /
``PipelineFailed``; background jobs record ``BackgroundJob`` only when asked
(``record_background=True``), so a 90-day run does not drown in them.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Generator, Mapping, Sequence

import simpy

from labkit.core import clock as clocks
from labkit.delivery.distributions import Dist
from labkit.core.errors import LabkitError
from labkit.core.events import EventLog

COMPONENT = "ci"

#: A deploy step: a generator run inside the deploy stage; returns ``(ok, detail)``.
DeployStep = Callable[[], Generator[Any, Any, "tuple[bool, dict[str, Any]]"]]


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: a duration distribution and a failure probability."""

    name: str
    duration: Dist
    failure_rate: float = 0.0

    @classmethod
    def from_data(cls, name: str, data: Mapping[str, Any], *, field_prefix: str = "ci.stages") -> "Stage":
        where = f"{field_prefix}.{name}"
        if not isinstance(data, Mapping) or "duration" not in data:
            raise LabkitError("a stage needs a 'duration' distribution", field=where)
        rate = data.get("failure_rate", 0.0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise LabkitError(f"failure_rate must be a probability in [0, 1], got {rate!r}", field=f"{where}.failure_rate")
        return cls(name, Dist.parse(data["duration"], field=f"{where}.duration"), float(rate))


def default_stages() -> dict[str, Stage]:
    """A typical container pipeline on shared runners (medians in seconds).

    checkout ~30 s, build ~4 min (image build with a warm layer cache),
    test ~5 min (unit + integration; 2 % flaky), publish ~45 s (push the image),
    deploy ~15 s of tooling before the rollout wait (kubectl, auth), and
    update-manifests ~10 s (the pull model's "write the tag to git" job).
    """
    return {
        "checkout": Stage("checkout", Dist.lognormal(30, 0.3)),
        "build": Stage("build", Dist.lognormal(240, 0.35)),
        "test": Stage("test", Dist.lognormal(300, 0.4), 0.02),
        "publish": Stage("publish", Dist.lognormal(45, 0.3)),
        "deploy": Stage("deploy", Dist.lognormal(15, 0.3)),
        "update-manifests": Stage("update-manifests", Dist.lognormal(10, 0.3)),
    }


@dataclass(frozen=True)
class CIConfig:
    """The CI system's shape: runner pool, latencies, stages and background load."""

    runners: int = 4
    trigger_latency: Dist = Dist.lognormal(5, 0.5)
    runner_startup: Dist = Dist.lognormal(20, 0.4)
    stages: Mapping[str, Stage] = field(default_factory=default_stages)
    #: Utilisation offered by other teams' jobs (0 = the pool is ours alone).
    background_utilisation: float = 0.0
    background_job: Dist = Dist.lognormal(480, 0.6)
    #: How long a person takes to notice a red pipeline and press re-run.
    rerun_delay: Dist = Dist.lognormal(180, 0.6)
    max_attempts: int = 3

    def stage(self, name: str) -> Stage:
        try:
            return self.stages[name]
        except KeyError:
            raise LabkitError(f"unknown CI stage '{name}' (known: {', '.join(self.stages)})", field="ci.stages") from None

    def background_rate(self) -> float:
        """Background job arrivals per second that offer ``background_utilisation``."""
        if self.background_utilisation <= 0:
            return 0.0
        return self.background_utilisation * self.runners / self.background_job.mean()

    def with_overrides(self, **kw: Any) -> "CIConfig":
        return replace(self, **kw)

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> "CIConfig":
        """Read ``ci:`` from a scenario YAML (every key optional)."""
        data = dict(data or {})
        base = cls()
        stages = dict(base.stages)
        for name, sd in (data.pop("stages", None) or {}).items():
            stages[name] = Stage.from_data(name, sd)
        kw: dict[str, Any] = {"stages": stages}
        for key in ("trigger_latency", "runner_startup", "background_job", "rerun_delay"):
            if key in data:
                kw[key] = Dist.parse(data.pop(key), field=f"ci.{key}")
        for key, typ in (("runners", int), ("max_attempts", int), ("background_utilisation", float)):
            if key in data:
                v = data.pop(key)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    raise LabkitError(f"expected a non-negative number, got {v!r}", field=f"ci.{key}")
                kw[key] = typ(v)
        if data:
            raise LabkitError(f"unknown keys {sorted(data)}", field="ci")
        if kw.get("runners", base.runners) < 1:
            raise LabkitError("at least one runner is needed", field="ci.runners")
        return replace(base, **kw)


@dataclass
class StageRun:
    name: str
    started: float
    duration: float
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineRun:
    """What one pipeline attempt did, in virtual seconds."""

    id: str
    pipeline: str
    queued: float
    started: float = float("nan")
    finished: float = float("nan")
    ok: bool = False
    stages: list[StageRun] = field(default_factory=list)
    attempt: int = 1
    failed_stage: str | None = None

    @property
    def queue_wait(self) -> float:
        return self.started - self.queued

    @property
    def duration(self) -> float:
        return self.finished - self.queued


class CISystem:
    """A shared CI service (runner pool + queue) on a SimPy clock; see the module docstring."""

    def __init__(
        self,
        env: simpy.Environment,
        config: CIConfig | None = None,
        *,
        log: EventLog | None = None,
        seed: int = 0,
        name: str = "ci",
        record_background: bool = False,
    ):
        self.env = env
        self.config = config or CIConfig()
        self.log = log if log is not None else EventLog(lambda: env.now)
        self.seed = seed
        self.name = name
        self.runners = simpy.Resource(env, capacity=self.config.runners)
        self.record_background = record_background
        self._rng_stage = clocks.rng_for(seed, f"{name}:stages")
        self._rng_fail = clocks.rng_for(seed, f"{name}:failures")
        self._rng_latency = clocks.rng_for(seed, f"{name}:latency")
        self._rng_bg = clocks.rng_for(seed, f"{name}:background")
        self._ids = itertools.count(1)
        self.runs: list[PipelineRun] = []
        self.background_started = 0

    # ------------------------------------------------------------------ load

    def start_background_load(self, *, until: float | None = None) -> None:
        """Start other teams' jobs (Poisson arrivals offering ``background_utilisation``)."""
        rate = self.config.background_rate()
        if rate > 0:
            self.env.process(self._background(rate, until))

    def _background(self, rate: float, until: float | None):
        rng = self._rng_bg
        while True:
            yield self.env.timeout(rng.expovariate(rate))
            if until is not None and self.env.now >= until:
                return
            self.background_started += 1
            self.env.process(self._background_job(self.config.background_job.draw(rng)))

    def _background_job(self, hold: float):
        t0 = self.env.now
        with self.runners.request() as req:
            yield req
            wait = self.env.now - t0
            yield self.env.timeout(hold)
        if self.record_background:
            self.log.record(COMPONENT, "BackgroundJob", detail={"queue_wait": wait, "duration": hold})

    # ------------------------------------------------------------------ pipelines

    def run(
        self,
        pipeline: str,
        stages: Sequence[str],
        *,
        deploy: DeployStep | None = None,
        subject: str = "",
        revision: str = "",
        attempt: int = 1,
        detail: Mapping[str, Any] | None = None,
    ) -> Generator[Any, Any, PipelineRun]:
        """One pipeline attempt (a generator: ``run = yield from ci.run(...)``)."""
        env = self.env
        cfg = self.config
        specs = [cfg.stage(s) for s in stages]
        run = PipelineRun(id=f"{self.name}-{next(self._ids)}", pipeline=pipeline, queued=env.now, attempt=attempt)
        self.runs.append(run)
        extra = dict(detail or {})
        self.log.record(COMPONENT, "PipelineQueued", subject, revision,
                        {"run": run.id, "pipeline": pipeline, "attempt": attempt, **extra})
        yield env.timeout(cfg.trigger_latency.draw(self._rng_latency))
        with self.runners.request() as req:
            yield req
            run.started = env.now
            self.log.record(COMPONENT, "PipelineStarted", subject, revision,
                            {"run": run.id, "pipeline": pipeline, "queue_wait": run.started - run.queued,
                             "busy": self.runners.count, "queued": len(self.runners.queue)})
            yield env.timeout(cfg.runner_startup.draw(self._rng_latency))
            ok = True
            for spec in specs:
                t0 = env.now
                yield env.timeout(spec.duration.draw(self._rng_stage))
                stage_ok = spec.failure_rate <= 0 or self._rng_fail.random() >= spec.failure_rate
                sdetail: dict[str, Any] = {}
                if stage_ok and spec.name == "deploy" and deploy is not None:
                    stage_ok, sdetail = yield from deploy()
                sr = StageRun(spec.name, t0, env.now - t0, stage_ok, sdetail)
                run.stages.append(sr)
                self.log.record(COMPONENT, "StageSucceeded" if stage_ok else "StageFailed", subject, revision,
                                {"run": run.id, "pipeline": pipeline, "stage": spec.name, "started": t0,
                                 "duration": sr.duration, **{k: v for k, v in sdetail.items() if k != "objects"}})
                if not stage_ok:
                    ok = False
                    run.failed_stage = spec.name
                    break
        run.finished = env.now
        run.ok = ok
        self.log.record(COMPONENT, "PipelineSucceeded" if ok else "PipelineFailed", subject, revision,
                        {"run": run.id, "pipeline": pipeline, "attempt": attempt, "queue_wait": run.queue_wait,
                         "duration": run.duration, "failed_stage": run.failed_stage, **extra})
        return run

    def run_with_retries(
        self,
        pipeline: str,
        stages: Sequence[str],
        *,
        deploy: DeployStep | None = None,
        subject: str = "",
        revision: str = "",
        max_attempts: int | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Generator[Any, Any, list[PipelineRun]]:
        """Run until green, a person re-running a red pipeline after ``rerun_delay``; returns every attempt."""
        attempts = max_attempts or self.config.max_attempts
        out: list[PipelineRun] = []
        for n in range(1, attempts + 1):
            run = yield from self.run(pipeline, stages, deploy=deploy, subject=subject, revision=revision,
                                      attempt=n, detail=detail)
            out.append(run)
            if run.ok or n == attempts:
                break
            yield self.env.timeout(self.config.rerun_delay.draw(self._rng_latency))
        return out


def queue_waits(log: EventLog, *, pipeline: str | None = None) -> list[float]:
    """Queue waits of every pipeline that started (from the event log)."""
    return [e.detail["queue_wait"] for e in log.filter(component=COMPONENT, event="PipelineStarted")
            if pipeline is None or e.detail.get("pipeline") == pipeline]

