"""Time to restore after a bad release: push re-run versus ``git revert`` + reconcile.

One *run* replays one incident on a fresh simulated cluster with its own seed:

1. at ``t = 0`` the bad release goes out the model's own way — the push
   model's deploy stage applies it as ``ci-deployer``; in the pull model Flux
   reconciles the bad commit — and rolls out in the simulator.  The node has run
   the good release before, so its image is in the node's cache;
2. the on-call engineer decides to roll back once the bad release is fully
   out, ``decision_at`` seconds have passed (push with a loaded CI: after
   ``ci_warmup``, the hours other teams' jobs have been filling the queue) and a
   further offset drawn uniformly over one poll interval — an incident is not in
   step with the controller's poll timer.  The clock for *time to restore*
   starts here; detection and triage are the change stream's business
   (``labkit.delivery.stream``);
3. after ``human_action`` (opening the CI page and pressing re-run, or typing
   ``git revert`` and pushing) the model's rollback path runs:

   * **push** — a rollback pipeline joins the CI queue (shared with other
     teams' jobs at ``ci.background_utilisation``), waits for a runner, runs its
     stages (``labkit.delivery.push.rollback_stages``: the full pipeline, or
     checkout + deploy with ``skip_build``), re-running after ``rerun_delay``
     if a flaky stage fails, and its deploy stage applies the good manifests and
     waits for the rollout;
   * **pull** — the revert commit (a real ``git revert`` made once by the
     fixture) is pushed; optionally a reviewer approves it first
     (``revert_review``); the webhook or the next poll of the GitRepository
     brings it to source-controller; the Kustomization builds, applies and
     health-checks it;

4. the service is **restored** when the Deployment, watched through the
   ``Cluster`` seam, runs the good image and is Current (every replica updated
   and available, the rollout complete).  ``restore_s = restored − decision``.

Nothing in this module states a duration: each part comes from the mechanism
that produces it (queueing for a runner, lognormal stage durations, poll timer
and jitter, webhook delivery, kustomize-controller's stages, the Deployment
controller's surge and the kubelet's readiness probes).  ``monte_carlo`` runs
many seeds; ``sweep`` varies one parameter.
"""
from __future__ import annotations

import math
import multiprocessing
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Generator, Iterable, Sequence

import pandas as pd
import simpy

from labkit.core import clock as clocks
from labkit.delivery.ci import CIConfig, CISystem
from labkit.delivery.distributions import Dist
from labkit.delivery.fixture import ServiceFixture, ServiceSpec
from labkit.delivery.pull import PullConfig, PullController
from labkit.delivery.push import FIELD_MANAGER, deploy_step, rollback_stages
from labkit.engine.apply import EngineTimings
from labkit.core.errors import LabkitError
from labkit.core.events import EventLog
from labkit.flux.system import FluxTimings
from labkit.core.health import kstatus

COMPONENT = "delivery"


@dataclass(frozen=True)
class RollbackParams:
    """Everything one rollback run depends on (see the module docstring)."""

    service: ServiceSpec = field(default_factory=ServiceSpec)
    sim_timings: Any = None  # labkit.sim.timings.Timings; None = the simulator's defaults
    decision_at: float = 300.0  # earliest decision; never before the bad release is fully out
    ci_warmup: float = 4 * 3600.0  # push: other teams' jobs have been filling the CI queue for 4 hours
    human_action: Dist = Dist.lognormal(40.0, 0.5)
    horizon: float = 4 * 3600.0  # give up this long after the decision
    # push
    ci: CIConfig = field(default_factory=CIConfig)
    skip_build: bool = False
    rollout_timeout: float = 600.0
    # pull
    poll_interval: float = 60.0
    webhook: bool = True
    revert_review: Dist | None = None
    kustomization_interval: float = 600.0
    flux_timings: FluxTimings = field(default_factory=FluxTimings)
    engine_timings: EngineTimings = field(default_factory=EngineTimings)

    def with_(self, **changes: Any) -> "RollbackParams":
        return replace(self, **changes)

    def decision_offset(self, rng: Any) -> float:
        """A uniform offset over one poll interval: incidents do not happen in step with the poll timer.

        Without it every run would decide at the same phase of the GitRepository's poll
        schedule (the bad release itself was fetched on a tick), and the wait for the
        next poll would be the same in every run instead of uniform over the interval.
        """
        return rng.uniform(0.0, self.poll_interval)

    def push_decision_at(self) -> float:
        """The push run's decision time: after the CI warm-up when other teams load the pool."""
        return max(self.decision_at, self.ci_warmup) if self.ci.background_utilisation > 0 else self.decision_at

    def pull_config(self) -> PullConfig:
        return PullConfig(poll_interval=self.poll_interval, webhook=self.webhook,
                          kustomization_interval=self.kustomization_interval,
                          flux_timings=self.flux_timings, engine_timings=self.engine_timings)


@dataclass
class RollbackResult:
    model: str
    seed: int
    decision_at: float
    restored_at: float | None
    breakdown: dict[str, float] = field(default_factory=dict)
    log: EventLog | None = None

    @property
    def restore_s(self) -> float | None:
        return None if self.restored_at is None or math.isnan(self.decision_at) else self.restored_at - self.decision_at

    def row(self) -> dict[str, Any]:
        return {"model": self.model, "seed": self.seed, "restore_s": self.restore_s, **self.breakdown}


# ---------------------------------------------------------------------- the cluster and the observer

def _cluster(seed: int, params: RollbackParams, env: simpy.Environment, log: EventLog) -> Any:
    from labkit.sim import SimCluster
    from labkit.sim.registry import ImageRegistry

    spec = params.service
    registry = ImageRegistry()
    registry.add(spec.image, [spec.good_tag, spec.bad_tag])
    cluster = SimCluster(seed=seed, env=env, log=log, registry=registry, timings=params.sim_timings)
    kubelet = getattr(cluster, "kubelet", None)
    if kubelet is not None and isinstance(getattr(kubelet, "images", None), dict):
        kubelet.images[spec.good_image] = 0.0  # the good release ran on this node before the bad one
    return cluster


class RolloutWatch:
    """Watches the service's Deployment through the seam: when the bad release is out, when the good one is back."""

    def __init__(self, cluster: Any, env: simpy.Environment, log: EventLog, spec: ServiceSpec):
        self.env, self.log, self.spec = env, log, spec
        self.bad_out = env.event()
        self.restored = env.event()
        self.decision: float | None = None
        cluster.watch("apps/v1", "Deployment", self._on_change)

    def _on_change(self, event_type: str, obj: dict) -> None:
        if event_type == "DELETED" or self.restored.triggered:
            return
        md = obj.get("metadata") or {}
        spec = self.spec
        if md.get("name") != spec.name or md.get("namespace") != spec.name:
            return
        image = (obj["spec"]["template"]["spec"].get("containers") or [{}])[0].get("image")
        if image == spec.bad_image and not self.bad_out.triggered and kstatus(obj).status == "Current":
            self.bad_out.succeed(self.env.now)
        elif image == spec.good_image and self.decision is not None and kstatus(obj).status == "Current":
            self.log.record(COMPONENT, "Restored", f"Deployment/{spec.name}/{spec.name}", "",
                            {"image": spec.good_image, "since_decision": self.env.now - self.decision})
            self.restored.succeed(self.env.now)

    def decide(self, earliest: float, offset: float = 0.0) -> Generator[Any, Any, float]:
        """Decide ``offset`` seconds after the bad release is fully out and ``earliest`` has passed."""
        yield self.bad_out
        if self.env.now < earliest:
            yield self.env.timeout(earliest - self.env.now)
        if offset > 0:
            yield self.env.timeout(offset)
        self.decision = self.env.now
        self.log.record("oncall", "RollbackDecided", f"Deployment/{self.spec.name}/{self.spec.name}")
        return self.decision

    def finish(self, horizon: float) -> float | None:
        """Run until restored (or ``horizon`` seconds after the decision); the restore time or None."""
        env = self.env
        while self.decision is None and env.peek() < float("inf"):
            env.step()
        if self.decision is None:
            return None
        limit = self.decision + horizon
        if env.now < limit:
            env.run(until=simpy.AnyOf(env, [self.restored, env.timeout(limit - env.now)]))
        return self.restored.value if self.restored.triggered else None


# ---------------------------------------------------------------------- push

def run_push(seed: int, params: RollbackParams | None = None, *, keep_log: bool = False) -> RollbackResult:
    """One push-model rollback (see the module docstring)."""
    p = params or RollbackParams()
    fx = ServiceFixture.get(p.service)
    env = clocks.virtual()
    log = EventLog(lambda: env.now)
    cluster = _cluster(seed, p, env, log)
    watch = RolloutWatch(cluster, env, log, p.service)
    ci = CISystem(env, p.ci, log=log, seed=seed)
    ci.start_background_load()
    env.process(deploy_step(env, cluster, fx.objects(fx.bad), engine_timings=p.engine_timings,
                            rollout_timeout=p.rollout_timeout)())
    human = clocks.rng_for(seed, "oncall")

    def rollback():
        yield from watch.decide(p.push_decision_at(), p.decision_offset(human))
        yield env.timeout(p.human_action.draw(human))
        step = deploy_step(env, cluster, fx.objects(fx.good), field_manager=FIELD_MANAGER,
                           engine_timings=p.engine_timings, rollout_timeout=p.rollout_timeout)
        yield from ci.run_with_retries("rollback", rollback_stages(p.skip_build), deploy=step,
                                       subject=f"Deployment/{p.service.name}/{p.service.name}",
                                       revision=p.service.good_tag)

    proc = env.process(rollback())
    restored = watch.finish(p.horizon)
    if restored is not None and not proc.triggered:  # let the pipeline see the rollout and finish
        env.run(until=simpy.AnyOf(env, [proc, env.timeout(p.rollout_timeout)]))
    mine = [r for r in ci.runs if r.pipeline == "rollback"]
    breakdown: dict[str, float] = {"attempts": float(len(mine))}
    if mine:
        breakdown["queue_wait_s"] = sum(r.queue_wait for r in mine if r.started == r.started)  # NaN: never started
        for sr in mine[-1].stages:
            breakdown[f"{sr.name}_s"] = sr.duration
    return RollbackResult("push", seed, watch.decision or math.nan, restored, breakdown, log if keep_log else None)


# ---------------------------------------------------------------------- pull

def run_pull(seed: int, params: RollbackParams | None = None, *, keep_log: bool = False) -> RollbackResult:
    """One pull-model rollback (see the module docstring)."""
    p = params or RollbackParams()
    fx = ServiceFixture.get(p.service)
    env = clocks.virtual()
    log = EventLog(lambda: env.now)
    cluster = _cluster(seed, p, env, log)
    watch = RolloutWatch(cluster, env, log, p.service)
    pull = PullController(cluster, env, fx, head=fx.bad, config=p.pull_config(), log=log, seed=seed)
    human = clocks.rng_for(seed, "oncall")
    marks: dict[str, float] = {}

    def rollback():
        yield from watch.decide(p.decision_at, p.decision_offset(human))
        yield env.timeout(p.human_action.draw(human))
        if p.revert_review is not None:
            yield env.timeout(p.revert_review.draw(human))
        marks["pushed"] = env.now
        pull.push(fx.revert, pusher="oncall", message=f'Revert "{p.service.name}: release {p.service.bad_tag}"')

    env.process(rollback())
    restored = watch.finish(p.horizon)
    breakdown: dict[str, float] = {}
    if "pushed" in marks and watch.decision is not None:
        breakdown["push_s"] = marks["pushed"] - watch.decision
        revert = f"main@sha1:{fx.revert}"
        fetched = [e.time for e in log.filter(component="source-controller", event="NewArtifact")
                   if e.revision == revert]
        if fetched:
            breakdown["to_fetch_s"] = fetched[0] - marks["pushed"]
            if restored is not None:
                breakdown["fetch_to_restored_s"] = restored - fetched[0]
    return RollbackResult("pull", seed, watch.decision or math.nan, restored, breakdown, log if keep_log else None)


RUNNERS: dict[str, Callable[..., RollbackResult]] = {"push": run_push, "pull": run_pull}


# ---------------------------------------------------------------------- many runs

def _rows(task: tuple[str, list[int], RollbackParams]) -> list[dict[str, Any]]:
    model, seeds, params = task
    run = RUNNERS[model]
    return [run(s, params).row() for s in seeds]


def default_workers(runs: int) -> int:
    """Worker processes for ``runs`` runs: every core (at most 4) for 32 runs or more, else 1."""
    return min(os.cpu_count() or 1, 4) if runs >= 32 else 1


def monte_carlo(model: str, seeds: Iterable[int], params: RollbackParams | None = None, *,
                workers: int | None = None) -> pd.DataFrame:
    """One row per seed: ``model, seed, restore_s`` and the model's breakdown.

    Runs are independent (one seed, one cluster each), so they are spread over
    ``workers`` forked processes (``default_workers`` when None); the fixture is
    built first, in this process, so the workers never touch git or kustomize.
    The rows are the same whatever the number of workers.
    """
    if model not in RUNNERS:
        raise LabkitError(f"model must be one of {sorted(RUNNERS)}, got {model!r}", field="model")
    seeds = list(seeds)
    p = params or RollbackParams()
    ServiceFixture.get(p.service)
    n = default_workers(len(seeds)) if workers is None else max(1, int(workers))
    if n <= 1 or len(seeds) < 2:
        rows = _rows((model, seeds, p))
    else:
        ctx = multiprocessing.get_context("fork")
        chunks = [seeds[i::n] for i in range(n)]
        with ctx.Pool(n) as pool:
            parts = pool.map(_rows, [(model, c, p) for c in chunks if c])
        order = {s: i for i, s in enumerate(seeds)}
        rows = sorted((r for part in parts for r in part), key=lambda r: order[r["seed"]])
    return pd.DataFrame(rows)


def percentile(values: Sequence[float] | pd.Series, q: float) -> float | None:
    s = pd.Series(values, dtype=float).dropna()
    return None if s.empty else float(s.quantile(q))


def sweep(model: str, param: str, values: Sequence[Any], seeds: Sequence[int],
          params: RollbackParams | None = None, *, build: Callable[[RollbackParams, Any], RollbackParams] | None = None,
          workers: int | None = None) -> pd.DataFrame:
    """Monte Carlo for each value of one parameter; ``build(params, value)`` for nested ones (e.g. CI load)."""
    base = params or RollbackParams()
    frames = []
    for v in values:
        p = build(base, v) if build else replace(base, **{param: v})
        df = monte_carlo(model, seeds, p, workers=workers)
        df[param] = v
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def with_ci_load(params: RollbackParams, utilisation: float) -> RollbackParams:
    """``params`` with the CI pool's background utilisation set (for ``sweep``)."""
    return replace(params, ci=replace(params.ci, background_utilisation=float(utilisation)))


def with_readiness(params: RollbackParams, delay: float) -> RollbackParams:
    """``params`` with the readiness probe's initial delay set (for ``sweep``)."""
    return replace(params, service=replace(params.service, readiness_delay=float(delay)))

