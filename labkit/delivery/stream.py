"""Ninety days of one team's changes through the push model or the pull model.

``run_stream(stream, model)`` plays a ``ChangeStream`` (``labkit.delivery.changes``)
through one delivery model on one virtual clock and returns the event log and
the DORA four keys computed from it.  The same stream fed to both models is the
push-vs-pull comparison.

What is simulated, process by process
=====================================

**Shared by both models.**  Each merged PR records its commits
(``team``/``ChangeCommitted``, at their commit times) and the merge, then
triggers a CI pipeline for the merge commit on a runner pool shared by every
service and, at ``ci.background_utilisation``, by other teams
(``labkit.delivery.ci``).  A build contains every change of the service merged
up to its trigger, except changes reverted after an incident.  When a
deployment ships a defective change, monitoring opens an incident after the
change's ``detection_delay`` — if the defect is still running then
(``oncall``/``IncidentOpened``).  The service is frozen (no new releases);
after ``triage`` the on-call engineer rolls back to the last deployed release
without the defect, and the defective PR is reverted in the application repo.
The incident is resolved when the rollback's rollout completes
(``IncidentResolved``).  The PR's author then prepares a fix (``fix_for``), which
enters the stream like any change.

**Push.**  The pipeline is checkout → build → test → publish → deploy.  The
deploy stage holds the service's deploy lock (a resource group: one deploy per
service at a time), skips itself when a newer build is already live, applies,
and waits for the rollout.  Rollback is a rollback pipeline (full, or checkout
+ deploy with ``push_skip_build``) that queues with everyone else.

**Pull.**  The pipeline stops at publish.  The tag reaches the configuration
repository (one repository for all services, one GitRepository, one
Kustomization per service, as ``flux bootstrap`` lays it out) either through an
``update-manifests`` CI job (``tag_path="ci-commit"``) or through image
automation (``"image-automation"``): the service's ImageRepository scans on its
``image_scan_interval``, the ImagePolicy selects the newest build, and the one
ImageUpdateAutomation commits it.  source-controller fetches on its poll
interval (±5 % jitter) or on a webhook; every new artifact wakes *every*
Kustomization of the source, and kustomize-controller works through them with
``concurrent`` workers (build + plan for each, apply + rollout + health check
for the changed ones) — so a busy repository delays a service's deploy behind
its neighbours' no-op reconciles.  Rollback is a revert commit pushed by the
on-call engineer (after ``revert_review`` if a review is required), picked up
the same way.

Fidelity, stated plainly
========================

This is a process-level model of the pipeline, the git host and the
controllers.  The pieces whose *content* matters are modelled for real in the
other modules and tested there (the Flux reconcile on real git and kustomize,
the marker rewriting, the rollout in the simulator).  Here, for speed over
thousands of deployments:

* rollout durations are drawn from ``RolloutModel`` calibrations — real
  rollouts measured in the embedded simulator for this Deployment shape (a new
  image, and a rollback to an image the node already has);
* commits to the configuration repository are recorded as git events with
  content-derived SHAs instead of being written as git objects;
* periodic reconciles that find nothing to do (Kustomization ``interval``
  without a new revision) are not simulated: by the engine's design they write
  nothing and change no outcome;
* ImageRepository scans are strictly periodic from a random phase and only
  scans that find a new tag are recorded.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

import simpy

from labkit.core import clock as clocks
from labkit.delivery import dora
from labkit.delivery.changes import Change, ChangeStream, fix_for
from labkit.delivery.ci import CIConfig, CISystem
from labkit.delivery.distributions import Dist
from labkit.delivery.fixture import ServiceSpec
from labkit.delivery.image_automation import ImageTimings
from labkit.delivery.push import FULL_PIPELINE, rollback_stages
from labkit.delivery.rollout import RolloutModel
from labkit.engine.apply import EngineTimings
from labkit.core.errors import LabkitError
from labkit.core.events import EventLog
from labkit.flux.system import FluxTimings

PULL_CI = ("checkout", "build", "test", "publish")
TAG_PATHS = ("ci-commit", "image-automation")


@dataclass(frozen=True)
class StreamConfig:
    """The organisation's delivery set-up (shared by both models unless marked)."""

    ci: CIConfig = field(default_factory=lambda: CIConfig(runners=12, background_utilisation=0.3))
    service: ServiceSpec = field(default_factory=ServiceSpec)
    sim_timings: Any = None
    calibration_samples: int = 30
    triage: Dist = Dist.lognormal(600.0, 0.6)
    human_action: Dist = Dist.lognormal(40.0, 0.5)
    objects_per_service: int = 3
    health_poll: float = 2.0
    # push
    push_skip_build: bool = False
    # pull
    tag_path: str = "ci-commit"
    poll_interval: float = 60.0
    webhook: bool = True
    image_scan_interval: float = 60.0
    revert_review: Dist | None = None
    concurrent: int = 4
    flux_timings: FluxTimings = field(default_factory=FluxTimings)
    engine_timings: EngineTimings = field(default_factory=EngineTimings)

    def with_(self, **changes: Any) -> "StreamConfig":
        return replace(self, **changes)


@dataclass
class _Incident:
    id: str
    service: str
    changes: list[Change]
    opened: float
    resolved: float | None = None


@dataclass
class _Service:
    name: str
    merged: list[Change] = field(default_factory=list)
    reverted: set[str] = field(default_factory=set)
    builds: dict[int, frozenset[str]] = field(default_factory=dict)
    n_builds: int = 0
    live_build: int = 0
    live: frozenset[str] = frozenset()
    deployed: set[str] = field(default_factory=set)
    history: list[int] = field(default_factory=list)  # deployed builds, oldest first
    incident: _Incident | None = None
    thaw: simpy.Event | None = None
    lock: simpy.Resource | None = None
    # pull
    git_build: int = 0
    applied_build: int = 0


@dataclass
class StreamResult:
    model: str
    log: EventLog
    keys: dora.FourKeys
    horizon: float
    stats: dict[str, Any] = field(default_factory=dict)

    def tables(self) -> dora.FourKeysTables:
        return dora.tables_from_log(self.log)


class _Org:
    """The simulation of one model over the stream (see the module docstring)."""

    def __init__(self, stream: ChangeStream, model: str, config: StreamConfig, seed: int):
        if model not in ("push", "pull"):
            raise LabkitError(f"model must be 'push' or 'pull', got {model!r}", field="model")
        if config.tag_path not in TAG_PATHS:
            raise LabkitError(f"tag_path must be one of {TAG_PATHS}, got {config.tag_path!r}", field="tag_path")
        self.stream = stream
        self.model = model
        self.cfg = config
        self.seed = seed
        self.env = clocks.virtual()
        self.log = EventLog(lambda: self.env.now)
        self.ci = CISystem(self.env, config.ci, log=self.log, seed=seed)
        self.rollout_new = RolloutModel.calibrate(config.service, samples=config.calibration_samples, seed=seed,
                                                  sim_timings=config.sim_timings)
        self.rollout_cached = RolloutModel.calibrate(config.service, samples=config.calibration_samples, seed=seed,
                                                     sim_timings=config.sim_timings, cached=True)
        self.rng_rollout = clocks.rng_for(seed, "stream:rollout")
        self.rng_human = clocks.rng_for(seed, "stream:oncall")
        self.rng_flux = clocks.rng_for(seed, "stream:flux")
        self.services = {s: _Service(s) for s in stream.services}
        for svc in self.services.values():
            svc.lock = simpy.Resource(self.env, capacity=1)
            svc.builds[0] = frozenset()
            svc.history.append(0)
        self.incidents: list[_Incident] = []
        self.deploy_seq = 0
        self.stats: dict[str, Any] = {"frozen_retries": 0, "outdated_skips": 0, "artifacts": 0, "fixes": 0}
        if model == "pull":
            self._init_pull()

    # ------------------------------------------------------------------ changes and builds

    def start(self) -> None:
        self.ci.start_background_load(until=self.stream.horizon)
        for ch in self.stream:
            self.env.process(self._change(ch))

    def _change(self, ch: Change):
        yield self.env.timeout(max(0.0, ch.merged - self.env.now))
        svc = self.services[ch.service]
        for cid, t in ch.commits:
            self.log.record("team", "ChangeCommitted", f"Change/{ch.service}/{ch.id}", cid,
                            {"service": ch.service, "pr": ch.id}, time=t)
        self.log.record("team", "ChangeMerged", f"Change/{ch.service}/{ch.id}", ch.id,
                        {"service": ch.service, "reviewed": ch.reviewed, "size": round(ch.size, 1),
                         "commits": len(ch.commits), "latent_defect": ch.defective, "fix_of": ch.fix_of})
        svc.merged.append(ch)
        if self.model == "push":
            yield from self._push_change(svc, ch)
        else:
            yield from self._pull_change(svc, ch)

    def _build(self, svc: _Service) -> int:
        """A build of the service's main branch now: every merged, unreverted change."""
        svc.n_builds += 1
        svc.builds[svc.n_builds] = frozenset(c.id for c in svc.merged if c.id not in svc.reverted)
        return svc.n_builds

    def _commits(self, svc: _Service, ids: Iterable[str]) -> list[str]:
        by_id = {c.id: c for c in svc.merged}
        return [cid for i in sorted(ids) for cid in by_id[i].commit_ids]

    def _wait_thaw(self, svc: _Service):
        while svc.thaw is not None:
            self.stats["frozen_retries"] += 1
            yield svc.thaw

    # ------------------------------------------------------------------ deployments and incidents

    def _deployed(self, svc: _Service, build: int, *, rollback: bool, controller: str) -> None:
        content = svc.builds[build]
        new = sorted(content - svc.deployed)
        svc.deployed |= content
        svc.live, svc.live_build = content, build
        svc.history.append(build)
        self.deploy_seq += 1
        dep_id = f"{self.model}-{self.deploy_seq}"
        self.log.record("delivery", "Deployed", f"Deployment/{svc.name}/{svc.name}", dep_id,
                        {"service": svc.name, "model": self.model, "build": build, "rollback": rollback,
                         "changes": self._commits(svc, new), "prs": new, "by": controller})
        by_id = {c.id: c for c in svc.merged}
        for cid in new:
            ch = by_id[cid]
            if ch.defective:
                self.env.process(self._detect(svc, ch))

    def _detect(self, svc: _Service, ch: Change):
        yield self.env.timeout(ch.detection_delay)
        if ch.id not in svc.live:
            return  # rolled back (or reverted) before anyone noticed
        if svc.incident is not None:
            if ch not in svc.incident.changes:
                svc.incident.changes.append(ch)
            return
        inc = _Incident(f"INC-{len(self.incidents) + 1}", svc.name, [ch], self.env.now)
        self.incidents.append(inc)
        svc.incident = inc
        svc.thaw = self.env.event()
        self.log.record("oncall", "IncidentOpened", f"Incident/{svc.name}/{inc.id}", "",
                        {"incident": inc.id, "service": svc.name, "changes": list(ch.commit_ids), "pr": ch.id})
        self.env.process(self._respond(svc, inc))

    def _target(self, svc: _Service, inc: _Incident) -> int:
        bad = {c.id for c in inc.changes}
        for b in reversed(svc.history):
            if not (svc.builds[b] & bad):
                return b
        return 0

    def _respond(self, svc: _Service, inc: _Incident):
        env = self.env
        yield env.timeout(self.cfg.triage.draw(self.rng_human))
        self.log.record("oncall", "RollbackStarted", f"Incident/{svc.name}/{inc.id}", "",
                        {"incident": inc.id, "service": svc.name, "model": self.model})
        target = self._target(svc, inc)
        if self.model == "push":
            yield from self._push_rollback(svc, target)
        else:
            yield from self._pull_rollback(svc, target)
        while svc.live & {c.id for c in inc.changes}:  # a defect joined the incident after the target was chosen
            target = self._target(svc, inc)
            if self.model == "push":
                yield from self._push_rollback(svc, target)
            else:
                yield from self._pull_rollback(svc, target)
        svc.reverted |= {c.id for c in inc.changes}
        inc.resolved = env.now
        self.log.record("oncall", "IncidentResolved", f"Incident/{svc.name}/{inc.id}", "",
                        {"incident": inc.id, "service": svc.name, "duration": env.now - inc.opened})
        svc.incident = None
        thaw, svc.thaw = svc.thaw, None
        if thaw is not None:
            thaw.succeed()
        for ch in inc.changes:
            fix = fix_for(self.stream, ch, env.now)
            if fix.merged < self.stream.horizon:
                self.stats["fixes"] += 1
                env.process(self._change(fix))

    def _rollout(self, *, cached: bool) -> float:
        d = (self.rollout_cached if cached else self.rollout_new).draw(self.rng_rollout)
        poll = self.cfg.health_poll
        return math.ceil(d / poll) * poll if poll > 0 else d

    def _apply_time(self) -> float:
        return 2 * self.cfg.objects_per_service * self.cfg.engine_timings.api_call

    # ------------------------------------------------------------------ push

    def _push_change(self, svc: _Service, ch: Change):
        while True:
            yield from self._wait_thaw(svc)
            build = self._build(svc)
            result: dict[str, str] = {}
            runs = yield from self.ci.run_with_retries(
                "deploy", FULL_PIPELINE, deploy=self._push_step(svc, build, result, rollback=False),
                subject=f"Deployment/{svc.name}/{svc.name}", revision=f"build-{build}",
                detail={"service": svc.name, "pr": ch.id})
            if result.get("outcome") == "frozen":
                continue  # blocked by the freeze: run again once the incident is resolved
            return runs

    def _push_step(self, svc: _Service, build: int, result: dict[str, str], *, rollback: bool):
        env = self.env

        def step():
            with svc.lock.request() as req:
                yield req
                if not rollback and svc.thaw is not None:
                    result["outcome"] = "frozen"  # the stage skips itself; the change is rebuilt after the thaw
                    return True, {"skipped": "deploy freeze: open incident"}
                if not rollback and build < svc.live_build:
                    self.stats["outdated_skips"] += 1
                    result["outcome"] = "outdated"
                    return True, {"skipped": "a newer build is live"}
                yield env.timeout(self._apply_time())
                yield env.timeout(self._rollout(cached=rollback))
                self._deployed(svc, build, rollback=rollback, controller="ci-deployer")
                result["outcome"] = "deployed"
                return True, {"build": build}

        return step

    def _push_rollback(self, svc: _Service, target: int):
        yield self.env.timeout(self.cfg.human_action.draw(self.rng_human))
        while True:
            result: dict[str, str] = {}
            yield from self.ci.run_with_retries(
                "rollback", rollback_stages(self.cfg.push_skip_build),
                deploy=self._push_step(svc, target, result, rollback=True),
                subject=f"Deployment/{svc.name}/{svc.name}", revision=f"build-{target}",
                detail={"service": svc.name}, max_attempts=10)
            if result.get("outcome") == "deployed":
                return

    # ------------------------------------------------------------------ pull

    def _init_pull(self) -> None:
        env, cfg = self.env, self.cfg
        self.git_seq = 0
        self.artifact: dict[str, int] = {s: 0 for s in self.services}
        self.fetch_wake = env.event()
        self.ks_workers = simpy.Resource(env, capacity=cfg.concurrent)
        self.automation = simpy.Resource(env, capacity=1)
        self.published: dict[str, list[int]] = {s: [] for s in self.services}  # builds pushed to the registry
        self.image_timings = ImageTimings()
        phase = clocks.rng_for(self.seed, "stream:image-scan-phase")
        self.scan_phase = {s: phase.uniform(0, cfg.image_scan_interval) for s in self.services}
        env.process(self._source_loop())

    def _git_commit(self, svc: _Service, build: int, *, author: str, message: str) -> None:
        svc.git_build = build
        self.git_seq += 1
        sha = hashlib.sha1(f"{self.seed}:{self.git_seq}:{svc.name}:{build}".encode()).hexdigest()
        self.log.record("git", "Pushed", "", sha, {"service": svc.name, "build": build, "pusher": author,
                                                   "message": message})
        if self.cfg.webhook:
            self.env.process(self._webhook())

    def _webhook(self):
        yield self.env.timeout(self.cfg.flux_timings.draw(self.rng_flux, "webhook_delivery"))
        self.log.record("webhook", "WebhookReceived", "Receiver/flux-system/github-receiver")
        if not self.fetch_wake.triggered:
            self.fetch_wake.succeed()

    def _pull_change(self, svc: _Service, ch: Change):
        env = self.env
        while True:
            yield from self._wait_thaw(svc)
            build = self._build(svc)
            runs = yield from self.ci.run_with_retries(
                "build", PULL_CI, subject=f"Deployment/{svc.name}/{svc.name}", revision=f"build-{build}",
                detail={"service": svc.name, "pr": ch.id})
            if not runs[-1].ok:
                return
            if svc.builds[build] & svc.reverted:
                continue  # built before the incident's revert: build main again
            self.published[svc.name].append(build)
            if self.cfg.tag_path == "image-automation":
                yield from self._image_automation(svc)
                return
            t0 = env.now
            with self.ci.runners.request() as req:  # the update-manifests job
                yield req
                yield env.timeout(self.cfg.ci.stage("update-manifests").duration.draw(self.rng_flux))
            self.log.record("ci", "StageSucceeded", f"Deployment/{svc.name}/{svc.name}", f"build-{build}",
                            {"pipeline": "update-manifests", "stage": "update-manifests", "started": t0,
                             "duration": env.now - t0, "service": svc.name})
            yield from self._wait_thaw(svc)
            if svc.builds[build] & svc.reverted:
                continue
            if build > svc.git_build:
                self._git_commit(svc, build, author="ci-bot", message=f"{svc.name}: set image build-{build}")
            return

    def _newest_image(self, svc: _Service) -> int:
        """What the ImagePolicy selects: the newest published build still in the registry.

        After an incident the team deletes the tags that contain the reverted change
        (or pins the policy): otherwise the automation would put the defect straight
        back, the classic image-automation rollback trap.
        """
        for b in reversed(self.published[svc.name]):
            if not (svc.builds[b] & svc.reverted):
                return b
        return 0

    def _image_automation(self, svc: _Service):
        env, cfg = self.env, self.cfg
        interval = cfg.image_scan_interval
        phase = self.scan_phase[svc.name]
        k = math.ceil((env.now - phase) / interval) if env.now > phase else 0
        yield env.timeout(max(0.0, phase + k * interval - env.now) + self.image_timings.scan.draw(self.rng_flux))
        newest = self._newest_image(svc)
        self.log.record("image-reflector-controller", "LatestImageChanged", f"ImagePolicy/flux-system/{svc.name}",
                        f"build-{newest}", {"service": svc.name})
        yield from self._wait_thaw(svc)  # the on-call suspends the automation during an incident
        with self.automation.request() as req:
            yield req
            yield env.timeout(self.image_timings.automation_run.draw(self.rng_flux))
            newest = self._newest_image(svc)
            if newest > svc.git_build and svc.thaw is None:
                self.log.record("image-automation-controller", "Pushed", "ImageUpdateAutomation/flux-system/flux-system",
                                "", {"service": svc.name, "build": newest})
                self._git_commit(svc, newest, author="fluxcdbot", message="Update from image update automation")

    def _source_loop(self):
        env, cfg = self.env, self.cfg
        jitter = cfg.flux_timings.interval_jitter
        fetched: dict[str, int] = dict(self.artifact)
        while True:
            delay = cfg.poll_interval * (1 + self.rng_flux.uniform(-jitter, jitter)) if jitter else cfg.poll_interval
            wake = self.fetch_wake
            yield env.timeout(delay) | wake
            if wake.triggered:
                self.fetch_wake = env.event()
            yield env.timeout(cfg.flux_timings.draw(self.rng_flux, "git_fetch"))
            snapshot = {s: svc.git_build for s, svc in self.services.items()}
            if snapshot == fetched:
                continue
            changed = [s for s in snapshot if snapshot[s] != fetched[s]]
            fetched = snapshot
            self.stats["artifacts"] += 1
            self.log.record("source-controller", "NewArtifact", "GitRepository/flux-system/flux-system", "",
                            {"changed": changed})
            order = list(self.services)
            self.rng_flux.shuffle(order)
            for s in order:  # every Kustomization of the source wakes up
                env.process(self._reconcile(self.services[s], snapshot[s]))

    def _reconcile(self, svc: _Service, build: int):
        env, cfg = self.env, self.cfg
        with self.ks_workers.request() as req:
            yield req
            yield env.timeout(cfg.flux_timings.draw(self.rng_flux, "build") + self._apply_time())
            if build == svc.applied_build or build != svc.git_build:
                return  # nothing changed for this Kustomization, or a newer revision supersedes it
            with svc.lock.request() as one:  # one reconcile of an object at a time
                yield one
                if build != svc.git_build:
                    return
                svc.applied_build = build
                rollback = build in svc.history and build < svc.live_build
                yield env.timeout(self._rollout(cached=rollback))
                self.log.record("kustomize-controller", "ReconciliationSucceeded",
                                f"Kustomization/flux-system/{svc.name}", f"build-{build}", {"service": svc.name})
                self._deployed(svc, build, rollback=rollback, controller="kustomize-controller")

    def _pull_rollback(self, svc: _Service, target: int):
        env = self.env
        yield env.timeout(self.cfg.human_action.draw(self.rng_human))
        if self.cfg.revert_review is not None:
            yield env.timeout(self.cfg.revert_review.draw(self.rng_human))
        self._git_commit(svc, target, author="oncall", message=f"Revert {svc.name} to build-{target}")
        while svc.live_build != target:
            yield env.timeout(self.cfg.health_poll)


def run_stream(stream: ChangeStream, model: str, config: StreamConfig | None = None, *, seed: int | None = None
               ) -> StreamResult:
    """Play ``stream`` through ``model`` ("push" or "pull"); returns the log and the four keys."""
    cfg = config or StreamConfig()
    org = _Org(stream, model, cfg, stream.seed if seed is None else seed)
    org.start()
    org.env.run(until=stream.horizon)
    tables = dora.tables_from_log(org.log)
    keys = dora.four_keys(tables, start=0.0, end=stream.horizon)
    stats = dict(org.stats)
    stats["incidents"] = len(org.incidents)
    stats["pipelines"] = len(org.ci.runs)
    stats["events"] = len(org.log)
    return StreamResult(model, org.log, keys, stream.horizon, stats)
