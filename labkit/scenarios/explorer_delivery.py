"""Explorer drivers for the delivery scenarios (rollback, push-vs-pull) and for secrets (no Jupyter here).

**Rollback and push-vs-pull** measure delivery over many seeded runs
(``labkit.delivery.rollback``: one incident per run; ``labkit.delivery.stream``:
90 days of changes, its rollouts calibrated in the simulator).  Their explorer
puts one service under a participant's hands in **both models at once**, on one
virtual clock, built from the same parts the runs are built from, with the
study's own parameters (``RollbackParams`` — the service, CI, poll interval,
webhook, timings):

* the **push world**: a ``SimCluster`` that a shared ``CISystem`` deploys into
  — checkout, build, test, publish, then the deploy stage's server-side apply as
  ``ci-deployer`` and a wait for the rollout (``labkit.delivery.push.deploy_step``);
* the **pull world**: a ``SimCluster`` reconciled by Flux from the service's
  real repository (``labkit.delivery.pull.PullController`` over the cached
  ``ServiceFixture``): CI stops at publish and commits the tag; a rollback is
  ``git revert`` pushed to the branch, no CI.

Controls: release the bad version (v2) both ways, roll back both ways, a
``kubectl set image`` hand-rollback in both clusters (the pull world's next
reconcile takes it back; nothing notices it in the push world), the webhook,
and other teams' CI load.  The views show one world each, with the same panels
as every explorer; the status block times each model from the click to the
Deployment running the intended image and Current.

**Secrets** keeps the scenario's world alive (``run_secrets(keep=True)``): both
clusters of the 65-day run (``prod`` and the rebuilt one), Flux, the
sealed-secrets controller, the secrets manager.  Controls: commit a plaintext
Secret (the guard refuses it, naming the file and field), seal a new secret and
commit it, rotate a value in the secrets manager, take the manager down, and
``flux reconcile``.  Secret values are never shown: Secrets list their keys,
plan rows under ``data`` / ``stringData`` are hidden.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from typing import Any, Mapping

import yaml

from labkit.core.events import EventLog
from labkit.core.health import kstatus
from labkit.scenarios import explorer_panels as P
from labkit.scenarios.explorer_labs import (Control, Driver, FluxTarget, Toggle, WebhookSwitch, _ignore_errors,
                                            _status_line, workload_html)

__all__ = ["DeliveryDriver", "SecretsDriver", "PushTarget"]


def _image(obj: Mapping[str, Any]) -> str | None:
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [{}]
    return containers[0].get("image")


class _Head:
    """``repo.head()`` for a ``TimedRemote``, whose ``head`` is a property."""

    def __init__(self, remote: Any):
        self.remote = remote
        self.url = remote.url

    def head(self) -> str:
        return self.remote.head

    def export(self, sha: str) -> Any:
        return self.remote.export(sha)


class PushTarget:
    """The push model's "GitOps object": the CI pipeline, and what re-running its deploy would change."""

    dialect = "push"
    applier = "ci-deployer"

    def __init__(self, driver: "DeliveryDriver"):
        self.d = driver

    def label(self) -> str:
        return "CI pipeline"

    def revisions(self) -> dict[str, str]:
        runs = self.d.ci.runs
        last_ok = next((r for r in reversed(runs) if r.ok), None)
        return {"git": self.d.pushed_tag, "artifact": self.d.pushed_tag,
                "attempted": self.d.pushed_tag, "applied": self.d.deployed_tag if last_ok else ""}

    def ready_line(self) -> str:
        runs = self.d.ci.runs
        if not runs:
            return "no pipeline has run yet"
        r = runs[-1]
        if r.finished is None:
            state = "waiting for a runner" if r.started is None else "running"
        else:
            state = "succeeded" if r.ok else f"failed at {r.failed_stage}"
        return f"last pipeline {r.pipeline} ({r.id}): {state}"

    def conditions(self) -> list[tuple[str, Any]]:
        return []

    def plan(self) -> tuple[str, list[P.ObjectPlan]]:
        d = self.d
        objs = d.fx.objects(d.last_push_sha)
        header = ("<div>The push model has <b>no reconcile</b>: nothing compares what the pipeline deployed with "
                  "the cluster until the next pipeline runs. Below: what re-running the last deploy "
                  f"(<code>{P.esc(d.deployed_tag)}</code>, server-side apply as <code>ci-deployer</code>) would "
                  "change now.</div>")
        plans = []
        for o in objs:
            md = o.get("metadata") or {}
            ns = md.get("namespace") or d.spec.name if o.get("kind") != "Namespace" else None
            live = _ignore_errors(lambda: d.clusters["push"].get(o["apiVersion"], o["kind"], md["name"], ns))
            subject = f"{o['kind']}/{ns}/{md['name']}" if ns else f"{o['kind']}/{md['name']}"
            if live is None:
                plans.append(P.ObjectPlan(subject, "created"))
                continue
            body = dict(o, metadata=dict(md, namespace=ns) if ns else md)
            after = _ignore_errors(lambda: d.clusters["push"].apply(body, field_manager=self.applier, force=True,
                                                                      dry_run=True))
            rows = P.field_plan(live, after, body, applier=self.applier) if after is not None else []
            plans.append(P.ObjectPlan(subject, "configured" if [r for r in rows if r.kind != "kept"] else "unchanged",
                                      rows))
        return header, plans


class DeliveryDriver(Driver):
    """One service in both delivery models on one clock (see the module docstring)."""

    title = "Push versus pull, one service"

    def __init__(self, params: Any, *, seed: int = 0, scenario: str = "rollback"):
        from labkit.core import clock as clocks
        from labkit.delivery.ci import CISystem
        from labkit.delivery.fixture import ServiceFixture
        from labkit.delivery.pull import PullController
        from labkit.delivery.rollback import _cluster

        self.params = p = params
        self.scenario = scenario
        self.spec = p.service
        self.fx = ServiceFixture.get(p.service)
        self.env = clocks.virtual()
        env = self.env
        self.logs_ = {"pull": EventLog(lambda: env.now), "push": EventLog(lambda: env.now)}
        self.ci_log = EventLog(lambda: env.now)
        self.clusters = {w: _cluster(seed + i, p, env, self.logs_[w]) for i, w in enumerate(("pull", "push"))}
        self.ci = CISystem(env, p.ci, log=self.ci_log, seed=seed)
        self.ci.start_background_load()
        self.pull = PullController(self.clusters["pull"], env, self.fx, head=self.fx.good, config=p.pull_config(),
                                   log=self.logs_["pull"], seed=seed)
        self.remote = _Head(self.pull.remote)
        self.webhook = WebhookSwitch(self.pull.remote, self._enable_webhook)
        self.pushed_tag = self.spec.good_tag
        self.deployed_tag = self.spec.good_tag
        self.last_push_sha = self.fx.good
        self._busy = False
        self.timing: dict[str, dict[str, Any]] = {}
        self.title = ("Rollback: pipeline re-run versus git revert, one service" if scenario == "rollback"
                      else "Push versus pull: one service through both models")
        # the good release is out in both worlds before the participant arrives
        env.process(self._deploy(self.fx.good, "initial deploy", ("checkout", "deploy")))
        for world in ("pull", "push"):
            self._watch(world)
        env.run(until=env.now + 180)
        super().__init__()
        self.views = ["pull", "push"]
        self.view = "pull"
        c = Control
        self.controls = [
            c("release", f"release {self.spec.bad_tag} (bad) both ways", self.release_bad, "warning",
              "push: the pipeline builds and deploys it; pull: CI publishes and commits the tag, Flux applies it"),
            c("rollback", "roll back both ways", self.rollback, "primary",
              f"push: re-run the pipeline for {self.spec.good_tag}; pull: git revert of the bad commit, pushed"),
            c("hand", f"kubectl set image {self.spec.good_tag} (both)", self.hand_rollback, "danger",
              "a person rolls back by hand in both clusters (manager kubectl-set)"),
            c("reconcile", "flux reconcile (pull)", self.reconcile, "info"),
        ]
        self.toggles = [
            Toggle("webhook", "webhook (pull)", lambda: self.webhook.on, self.set_webhook,
                   "the git host tells Flux about a push; off: Flux finds it at its next poll"),
            Toggle("load", "CI busy (other teams)", lambda: self._busy, self.set_load,
                   "other teams' jobs keep the CI runners 95 % busy"),
        ]
        self.attach()

    @classmethod
    def for_study(cls, study: Any, *, scenario: str = "rollback", seed: int = 0) -> "DeliveryDriver":
        from labkit.delivery.rollback import RollbackParams

        params = getattr(study, "params", None)
        if params is None:  # a push-vs-pull study: its organisation's set-up, as rollback parameters
            cfg = study.config
            params = RollbackParams(service=cfg.service, sim_timings=cfg.sim_timings, ci=cfg.ci,
                                    skip_build=cfg.push_skip_build, poll_interval=cfg.poll_interval,
                                    webhook=cfg.webhook, flux_timings=cfg.flux_timings,
                                    engine_timings=cfg.engine_timings)
            scenario = "push-vs-pull"
        return cls(params, seed=seed, scenario=scenario)

    # ---------------------------------------------------------------- the two worlds
    def _enable_webhook(self) -> None:
        from labkit.delivery.pull import WEBHOOK_TOKEN

        self.pull.flux.enable_webhook(self.pull.remote, token=WEBHOOK_TOKEN, url=self.pull.remote.url)

    def _watch(self, world: str) -> None:
        spec = self.spec

        def on_change(event_type: str, obj: dict) -> None:
            md = obj.get("metadata") or {}
            if event_type == "DELETED" or md.get("name") != spec.name or md.get("namespace") != spec.name:
                return
            t = self.timing.get(world)
            if not t or t.get("done") is not None:
                return
            if _image(obj) == t["image"] and kstatus(obj).status == "Current":
                t["done"] = self.env.now

        self.clusters[world].watch("apps/v1", "Deployment", on_change)

    def _start_timer(self, what: str, image: str) -> None:
        for world in ("pull", "push"):
            self.timing[world] = {"what": what, "since": self.env.now, "image": image, "done": None}
            dep = self._deployment(world)
            if dep is not None and _image(dep) == image and kstatus(dep).status == "Current":
                self.timing[world]["done"] = self.env.now  # already there

    def _deploy(self, sha: str, pipeline: str, stages: tuple[str, ...]) -> Any:
        from labkit.delivery.push import deploy_step

        step = deploy_step(self.env, self.clusters["push"], self.fx.objects(sha),
                           engine_timings=self.params.engine_timings, rollout_timeout=self.params.rollout_timeout)
        tag = self.fx.image_of(sha).rsplit(":", 1)[-1]
        self.pushed_tag, self.last_push_sha = tag, sha
        runs = yield from self.ci.run_with_retries(pipeline, stages, deploy=step,
                                                   subject=f"Deployment/{self.spec.name}/{self.spec.name}",
                                                   revision=tag)
        if runs and runs[-1].ok:
            self.deployed_tag = tag

    def _pull_release(self, sha: str) -> Any:
        """Pull model release: CI builds, tests, publishes, then commits the tag (tag_path ci-commit)."""
        tag = self.fx.image_of(sha).rsplit(":", 1)[-1]
        runs = yield from self.ci.run_with_retries("release (pull)", ("checkout", "build", "test", "publish"),
                                                   subject=f"Repository/{self.spec.name}-config", revision=tag)
        if runs and runs[-1].ok:
            self.pull.push(sha, pusher="ci", message=f"{self.spec.name}: release {tag}")

    def release_bad(self) -> str:
        from labkit.delivery.push import FULL_PIPELINE

        fx = self.fx
        self.env.process(self._deploy(fx.bad, "release", FULL_PIPELINE))
        self.env.process(self._pull_release(fx.bad))
        self._start_timer(f"release {self.spec.bad_tag}", self.spec.bad_image)
        self.note(f"release {self.spec.bad_tag}")
        return (f"release {self.spec.bad_tag}: the push pipeline (checkout → build → test → publish → deploy) and the "
                "pull pipeline (… → publish, then a commit of the tag) are queued on the shared CI")

    def rollback(self) -> str:
        from labkit.delivery.push import rollback_stages

        fx = self.fx
        self.env.process(self._deploy(fx.good, "rollback", rollback_stages(self.params.skip_build)))
        self.pull.push(fx.revert, pusher="oncall", message=f'Revert "{self.spec.name}: release {self.spec.bad_tag}"')
        self._start_timer(f"rollback to {self.spec.good_tag}", self.spec.good_image)
        self.note("rollback both ways")
        return ("rollback: push re-runs the pipeline for the previous release (it queues for a runner); pull pushed "
                f"git revert {fx.revert[:7]} — Flux hears of it from the webhook or its next poll")

    def hand_rollback(self) -> str:
        image = self.spec.good_image
        if all(_image(self._deployment(w) or {}) == image for w in ("pull", "push")):
            return f"both clusters already run {image}: release {self.spec.bad_tag} first"

        def mutate(obj: dict) -> None:
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = image

        for world in ("pull", "push"):
            try:
                self.clusters[world].kubectl_edit("apps/v1", "Deployment", self.spec.name, self.spec.name, mutate,
                                                  field_manager="kubectl-set")
            except Exception as err:  # noqa: BLE001
                return f"kubectl set image failed: {err}"
        self._start_timer("kubectl set image", image)
        self.note("kubectl set image (both)")
        return (f"kubectl set image deployment/{self.spec.name} app={image} in both clusters: in the pull world git "
                "still says otherwise")

    def reconcile(self) -> str:
        text = self.target("pull").sync_now()
        self.note(text)
        return text

    def set_load(self, value: bool) -> str:
        self._busy = value
        if value:
            self.ci.config = replace(self.ci.config, background_utilisation=0.95)

            def feeder() -> Any:
                while self._busy:
                    self.ci.start_background_load(until=self.env.now + 60.0)
                    yield self.env.timeout(60.0)
            self.env.process(feeder())
        text = ("CI busy: other teams' jobs now keep the runners 95 % busy" if value
                else "CI load off: no new background jobs (running ones finish)")
        self.note(text.split(":")[0])
        return text

    # ---------------------------------------------------------------- clock, logs, panels
    def now(self) -> float:
        return self.env.now

    def run_clock(self, seconds: float) -> None:
        self.env.run(until=self.env.now + seconds)

    def logs(self) -> dict[str, list[EventLog]]:
        return {"pull": [self.logs_["pull"], self.ci_log], "push": [self.logs_["push"], self.ci_log]}

    def target(self, world: str | None = None) -> Any:
        world = world or self.view
        if world == "pull":
            return FluxTarget(self.pull.flux, self.spec.name, self.remote)
        return PushTarget(self)

    def _deployment(self, world: str) -> dict | None:
        return _ignore_errors(lambda: self.clusters[world].get("apps/v1", "Deployment", self.spec.name,
                                                               self.spec.name))

    def status(self) -> str:
        parts = []
        for world in ("pull", "push"):
            t = self.timing.get(world)
            if not t:
                continue
            if t["done"] is not None:
                parts.append(f"{world}: {t['what']} done in {t['done'] - t['since']:,.1f} s")
            else:
                parts.append(f"{world}: {t['what']} running for {self.env.now - t['since']:,.1f} s")
        busy = self.ci.runners.count
        queued = len(self.ci.runners.queue)
        extra = f"CI runners busy {busy}/{self.ci.config.runners}, queued {queued}. " + "; ".join(parts)
        return _status_line(self.now(), self.target(), self._deployment(self.view),
                            self.webhook.on if self.view == "pull" else None, extra=extra)

    def live(self) -> str:
        return workload_html(self.clusters[self.view], [self.spec.name])

    def conditions(self) -> list[tuple[str, Mapping[str, Any] | None]]:
        out = list(self.target().conditions())
        return out + [(f"Deployment/{self.spec.name}", self._deployment(self.view))]

    def owners(self) -> list[tuple[str, Mapping[str, Any] | None]]:
        return [(f"Deployment {self.spec.name}/{self.spec.name} ({self.view} world)", self._deployment(self.view))]


# ------------------------------------------------------------------ secrets

class SecretsDriver(Driver):
    """The secrets scenario's clusters after the 65-day run (see the module docstring)."""

    title = "Secrets the GitOps way"

    def __init__(self, result: Any):
        world = result.world
        if world is None:
            raise ValueError("run_secrets(keep=True) keeps the simulation for the explorer")
        self.w = world
        self.result = result
        self._n = 0
        super().__init__()
        self.views = list(world.clusters)
        self.view = self.views[0]
        self.webhook = WebhookSwitch(world.repo)
        c = Control
        self.controls = [
            c("plaintext", "git commit: plaintext Secret", self.commit_plaintext, "danger",
              "try to commit a Secret with a value in it: the guard refuses before anything reaches git"),
            c("seal", "seal a new secret + commit", self.seal_and_commit, "success",
              "kubeseal with the controller's current certificate, commit the SealedSecret"),
            c("rotate", "rotate payments in the secrets manager", self.rotate, "primary",
              "a new AWSCURRENT version; the ExternalSecret follows at its next refresh, no commit"),
            c("reconcile", "flux reconcile", self.reconcile, "info"),
        ]
        self.toggles = [
            Toggle("store", "secrets manager reachable", lambda: bool(self.w.manager.available), self.set_store,
                   "off: the secrets manager is unreachable (an outage)"),
            Toggle("webhook", "webhook", lambda: self.webhook.on, self.set_webhook, "the git host's push webhook"),
        ]
        self.prewarm.follow(world.repo, world.flux.values())
        self.attach()

    def now(self) -> float:
        return self.w.env.now

    def run_clock(self, seconds: float) -> None:
        self.w.env.run(until=self.w.env.now + seconds)

    def logs(self) -> dict[str, list[EventLog]]:
        return {v: [c.log, self.w.git_log] for v, c in self.w.clusters.items()}

    def targets(self) -> list[FluxTarget]:
        flux = self.w.flux[self.view]
        out = [FluxTarget(flux, "apps", self.w.repo)]
        if flux.cluster.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "secrets", "flux-system"):
            out.append(FluxTarget(flux, "secrets", self.w.repo))
        return out

    def _committed(self, sha: str, text: str) -> str:
        self.note(text)
        return f"{text} — commit {sha[:7]}"

    def commit_plaintext(self) -> str:
        from labkit.secrets import guard

        self._n += 1
        value = hashlib.sha256(f"explorer-{self._n}-{self.now()}".encode()).hexdigest()[:20]
        secret = {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": f"api-key-{self._n}", "namespace": "shop"}, "stringData": {"key": value}}
        try:
            sha = self.w.grepo.commit({f"apps/api-key-{self._n}.yaml": yaml.safe_dump(secret, sort_keys=False)},
                                      message="add api key", author="participant", when=self.now())
        except guard.PlaintextSecretRefused as err:
            self.note("plaintext commit refused")
            return f"refused before commit: {err}"
        return self._committed(sha, "git commit: plaintext Secret (the guard let it through!)")

    def seal_and_commit(self) -> str:
        from labkit.secrets import sealed

        ctl = self.w.sealed[self.view]
        self._n += 1
        name = f"token-{self._n}"
        value = hashlib.sha256(f"sealed-{self._n}-{self.now()}".encode()).hexdigest()[:24]
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "shop"},
                  "stringData": {"token": value}}
        sealed_obj = sealed.seal(secret, ctl.fetch_cert())
        repo = self.w.repo
        kfile = yaml.safe_load(repo.read("apps/kustomization.yaml"))
        kfile["resources"].append(f"{name}-sealed.yaml")
        sha = self.w.grepo.commit({f"apps/{name}-sealed.yaml": yaml.safe_dump(sealed_obj, sort_keys=False),
                                   "apps/kustomization.yaml": yaml.safe_dump(kfile, sort_keys=False)},
                                  message=f"shop: sealed {name}", author="participant", when=self.now())
        return self._committed(sha, f"kubeseal + git commit: SealedSecret {name} (sealed with {self.view}'s "
                                    "current key)")

    def rotate(self) -> str:
        self._n += 1
        value = base64.b32encode(hashlib.sha256(f"rot-{self._n}-{self.now()}".encode()).digest()).decode()[:24]
        try:
            vid = self.w.manager.rotate("prod/payments", {"api-key": value})
        except Exception as err:  # noqa: BLE001
            return f"rotation failed: {err}"
        self.note("rotate prod/payments")
        return (f"secrets manager: prod/payments has a new AWSCURRENT version ({vid[:8]}); the ExternalSecret "
                f"refreshes every {self.w.refresh_interval}")

    def reconcile(self) -> str:
        text = "; ".join(t.sync_now() for t in self.targets())
        self.note("flux reconcile")
        return text

    def set_store(self, value: bool) -> str:
        self.w.manager.available = bool(value)
        text = "secrets manager reachable again" if value else "secrets manager outage: every call fails"
        self.note(text)
        return text

    def status(self) -> str:
        t = self.targets()[0]
        cluster = self.w.clusters[self.view]
        rows = []
        for ss in _ignore_errors(lambda: cluster.list("bitnami.com/v1alpha1", "SealedSecret", "shop"), []) or []:
            cond = next((c for c in (ss.get("status") or {}).get("conditions") or [] if c.get("type") == "Synced"), {})
            rows.append(f"{ss['metadata']['name']}: Synced={cond.get('status', '?')}")
        extra = "SealedSecrets — " + ("; ".join(rows) or "none")
        return _status_line(self.now(), t, None, self.webhook.on, extra=extra, show_workload=False)

    def plan(self) -> tuple[str, list[P.ObjectPlan], str]:
        headers, plans = [], []
        for t in self.targets():
            h, p = t.plan()
            headers.append(h)
            plans.extend(p)
        return "".join(headers), plans, "kustomize-controller"

    def live(self) -> str:
        cluster = self.w.clusters[self.view]
        rows = []
        for api, kind in (("bitnami.com/v1alpha1", "SealedSecret"), ("external-secrets.io/v1beta1", "ExternalSecret")):
            for o in _ignore_errors(lambda a=api, k=kind: cluster.list(a, k, "shop"), []) or []:
                conds = (o.get("status") or {}).get("conditions") or []
                rows.append([f"{kind}/{o['metadata']['name']}",
                             "; ".join(f"{c.get('type')}={c.get('status')} {c.get('reason', '')}" for c in conds)])
        extra = P.table(["object", "conditions"], rows) if rows else ""
        return workload_html(cluster, ["shop"]) + extra

    def conditions(self) -> list[tuple[str, Mapping[str, Any] | None]]:
        cluster = self.w.clusters[self.view]
        out: list[tuple[str, Any]] = []
        for t in self.targets():
            out += t.conditions()
        for api, kind in (("bitnami.com/v1alpha1", "SealedSecret"), ("external-secrets.io/v1beta1", "ExternalSecret")):
            for o in _ignore_errors(lambda a=api, k=kind: cluster.list(a, k, "shop"), []) or []:
                out.append((f"{kind}/{o['metadata']['name']}", o))
        return out

    def owners(self) -> list[tuple[str, Mapping[str, Any] | None]]:
        cluster = self.w.clusters[self.view]
        out = []
        for o in _ignore_errors(lambda: cluster.list("v1", "Secret", "shop"), []) or []:
            out.append((f"Secret shop/{o['metadata']['name']}", o))
        return out[:4]

