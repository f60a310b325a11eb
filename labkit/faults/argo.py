"""The Argo CD half of the reliability machinery: ``ArgoDialect`` and ``ArgoSoakLab``.

``labkit.faults.soak`` plays random stories of commits, live edits by other
managers and injected faults against the Flux dialect.  This module plays the
*same* stories (``SoakCase`` and its steps are reused unchanged) against the
Argo CD dialect, and checks the same promises with Argo's definitions:

ownership
    the ``argocd.argoproj.io/tracking-id`` annotation
    (``<app>:<group>/<kind>:<namespace>/<name>``, ``labkit.argo.tracking``);
    a delete is only ever allowed on an object whose tracking id names *that
    object itself* — an id copied onto another object (argo-cd #15472's trap)
    does not count;
protection
    ``argocd.argoproj.io/sync-options: Prune=false`` (never pruned; the
    Application stays OutOfSync, as Argo documents) and ``Delete=false``;
inventory
    the Application's ``status.resources``.  Argo keeps listing a resource
    that git dropped but that may not be pruned (``requiresPruning: true``),
    so the expected inventory is git's objects *plus* the live objects that
    still carry the Application's own tracking id and are protected;
in sync
    every Application compared at git's head, ``Synced`` (``OutOfSync`` only
    when a protected object awaits pruning), no ``ComparisonError``, no
    operation running.

The world
=========

``ArgoSoakLab.run(case)`` builds: a ``SimCluster`` (no workload controllers)
behind ``AuditCluster`` and ``FaultyCluster`` — the management cluster *is*
the destination (``in-cluster``), so Application status writes and managed
objects share the faulty seam, as they do in a real cluster; a real git
repository (``ManifestRepo``) behind a ``FaultyRemote``, served by the
repo-server; the repo-server's manifest generation gated by a
``FaultyRenderer`` (``render-timeout`` is a generation outliving the
controller's deadline).  Two Applications ``a`` and ``b`` (Directory sources
``./a`` and ``./b``, automated sync with prune and self-heal, retry
``limit: -1`` with Argo's default back-off 5 s × 2 up to 3 m) reconcile it,
with fixed timings (git and manifest generation 0 s, webhook 1 s, no resync
jitter) and the push webhook on.

Why ``limit: -1``: Argo does not retry an automated sync of a revision whose
last attempt failed (``Failed last sync attempt to [<sha>]``) until a new
commit arrives, so with a finite retry limit a long enough outage leaves the
Application parked on purpose.  Unlimited retries are the documented way to
ride out transient failures, and what the convergence property needs;
``tests/reliability/test_argo_faults.py`` checks the finite case separately.

After the story and the last fault window, the plan is stopped and the run
waits ``settle`` seconds — the longest retry back-off (3 m) plus the self-heal
back-off cap (300 s) plus one reconciliation interval (120 s) plus slack —
then checks every invariant, then runs one more reconciliation interval with
nothing changing and checks that nothing was written to a managed object.
"""
from __future__ import annotations

import base64
import math
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from labkit.argo.fleetrepo import FLEET_NS, applicationset_yaml, service_files, service_name
from labkit.core.cluster import Cluster, Obj
from labkit.core.clock import rng_for
from labkit.engine.apply import EngineTimings
from labkit.engine.inventory import ObjectId
from labkit.core.events import key_of
from labkit.faults import invariants as inv
from labkit.faults.cluster import AuditCluster, FaultyCluster, SeamWrite
from labkit.faults.git import FaultyRemote
from labkit.faults.plan import Fault, FaultPlan
from labkit.faults.render import FaultyRenderer
from labkit.faults.soak import (APPS, KINDS, NAMESPACE, UNIVERSE, Commit, Foreign, LiveEdit, Put, SoakCase, SoakResult,
                                SoakWorld, _dump, anchor, manifest, random_case, scratch_dir, secret_value)

__all__ = [
    "ARGO_NS",
    "SYNC_OPTIONS",
    "ArgoDialect",
    "ArgoSoakConfig",
    "ArgoSoakLab",
    "argo_manifest",
    "deletes_named_themselves",
    "run_argo_case",
    "FleetFaultResult",
    "fleet_fault_plan",
    "run_fleet_under_faults",
    "random_argo_case",
]

URL = "https://git.example.com/labkit/soak"
ARGO_NS = "argocd"
APP_API = "argoproj.io/v1alpha1"
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
IN_CLUSTER = "https://kubernetes.default.svc"


def _sync_options(annotations: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in str(annotations.get(SYNC_OPTIONS) or "").split(","):
        k, sep, v = item.strip().partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


class ArgoDialect:
    """``labkit.faults.invariants.Dialect`` for Argo CD Applications (see the module docstring)."""

    name = "argo"

    def __init__(self, cluster: Cluster, apps: Iterable[str], namespace: str = ARGO_NS):
        self.cluster = cluster
        self.apps = list(apps)
        self.namespace = namespace

    def owner_of(self, labels: Mapping[str, str], annotations: Mapping[str, str]) -> str | None:
        from labkit.argo.tracking import app_of

        return app_of({"metadata": {"annotations": dict(annotations)}})

    def owns(self, app: str, labels: Mapping[str, str], annotations: Mapping[str, str]) -> bool:
        return self.owner_of(labels, annotations) == app

    def protected(self, labels: Mapping[str, str], annotations: Mapping[str, str]) -> bool:
        opts = _sync_options(annotations)
        return opts.get("Prune") == "false" or opts.get("Delete") == "false"

    def application(self, app: str) -> Obj | None:
        return self.cluster.get(APP_API, "Application", app, self.namespace)

    def inventory(self, app: str) -> set[str] | None:
        obj = self.application(app)
        resources = ((obj or {}).get("status") or {}).get("resources")
        if resources is None:
            return None
        return {str(ObjectId(r.get("namespace") or "", r.get("name") or "", r.get("group") or "", r.get("kind") or ""))
                for r in resources}

    def statuses(self) -> list[Obj]:
        out = []
        for app in self.apps:
            obj = self.application(app)
            if obj is not None:
                out.append(obj.get("status") or {})
        return out


def deletes_named_themselves(deletes: Iterable[SeamWrite]) -> list[str]:
    """Every delete hit an object whose tracking id names *that* object (not an id copied from another)."""
    from labkit.argo.tracking import TRACKING_ANNOTATION, parse_tracking_id
    from labkit.core.errors import LabkitError

    out = []
    for w in deletes:
        value = w.annotations.get(TRACKING_ANNOTATION, "")
        kind, _, rest = w.object.partition("/")
        ns, _, name = rest.rpartition("/")
        try:
            tid = parse_tracking_id(value)
        except LabkitError:
            out.append(f"deletes_named_themselves: {w.object} was deleted at t={w.time:g} without a tracking id")
            continue
        if (tid.kind, tid.namespace, tid.name) != (kind, ns, name):
            out.append(f"deletes_named_themselves: {w.object} was deleted at t={w.time:g} with the tracking id "
                       f"of another object ({value})")
    return out


def argo_manifest(index: int, version: int, protected: bool = False) -> dict[str, Any]:
    """Object ``UNIVERSE[index]`` at ``version`` as git holds it, ``Prune=false`` when ``protected``."""
    obj = manifest(index, version, False)
    if protected:
        obj["metadata"]["annotations"] = {SYNC_OPTIONS: "Prune=false"}
    return obj


def _path(index: int, home: str) -> str:
    _, kind, name = UNIVERSE[index]
    return f"{home}/{kind.lower()}-{name}.yaml"


@dataclass(frozen=True)
class ArgoSoakConfig:
    """Timings of the Argo soak world (seconds)."""

    reconciliation: float = 120.0  # timeout.reconciliation (no jitter)
    retry_max: float = 180.0  # retry backoff maxDuration (3m, Argo's default)
    self_heal_cap: float = 300.0  # --self-heal-backoff-cap-seconds
    start: float = 5.0
    retry_limit: int = -1

    @property
    def settle(self) -> float:
        """After the faults stop: the longest retry wait + the self-heal cap + one reconciliation interval + slack."""
        return self.retry_max + self.self_heal_cap + self.reconciliation + 30.0


class ArgoSoakLab(SoakWorld):
    """One Argo soak world (see the module docstring); ``run(case)`` plays a ``SoakCase`` once."""

    def __init__(self, workdir: str | os.PathLike[str], config: ArgoSoakConfig | None = None):
        self.workdir = Path(workdir)
        self.config = config or ArgoSoakConfig()

    # -------------------------------------------------------------- building

    def _build(self, case: SoakCase) -> None:
        from labkit.argo import ArgoSystem, ArgoTimings

        cfg = self.config
        seed = case.seed
        self._build_world(case)
        timings = ArgoTimings.fixed(reconciliation=cfg.reconciliation)
        self.argo = ArgoSystem(self.cluster, self.env, log=self.log, seed=seed, timings=timings,
                               engine_timings=EngineTimings(api_call=0.0, poll_interval=2.0))
        self.renderer = FaultyRenderer(None, self.plan, rng_for(seed, "faults:render"), env=self.env)
        self.argo.repo_server.gate = self.renderer.gate
        self.desired: dict[int, Put] = {}
        self.versions: dict[int, int] = {}
        self.secrets: set[str] = set()
        self.foreign: list[dict[str, Any]] = []
        self.commits = 0
        self.live_edits = 0

    def application(self, app: str) -> dict[str, Any]:
        return {"apiVersion": APP_API, "kind": "Application", "metadata": {"name": app, "namespace": ARGO_NS},
                "spec": {"project": "default",
                         "source": {"repoURL": URL, "targetRevision": "HEAD", "path": app},
                         "destination": {"server": IN_CLUSTER, "namespace": NAMESPACE},
                         "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                                        "retry": {"limit": self.config.retry_limit,
                                                  "backoff": {"duration": "5s", "factor": 2,
                                                              "maxDuration": f"{self.config.retry_max:g}s"}}}}}

    # -------------------------------------------------------------- git

    def _put(self, put: Put) -> None:
        version = self.versions.get(put.obj, 0) + 1
        self.versions[put.obj] = version
        self.desired[put.obj] = put
        _, kind, name = UNIVERSE[put.obj]
        if kind == "Secret":
            self.secrets.add(secret_value(name, version))

    def tree(self) -> dict[str, str]:
        return {_path(i, p.home): _dump(argo_manifest(i, self.versions[i], p.protected))
                for i, p in self.desired.items()}

    def _commit(self, commit: Commit, when: float) -> None:
        from labkit.gitops.repo import NothingToCommit

        before = self.tree()
        for ch in commit.changes:
            if isinstance(ch, Put):
                self._put(ch)
            else:
                self.desired.pop(ch.obj, None)
        after = self.tree()
        files: dict[str, str | None] = {p: t for p, t in after.items() if before.get(p) != t}
        files.update({p: None for p in before if p not in after})
        if not files:
            return
        try:
            self.repo.commit(files, message=f"soak change at {when:g}", author="alice", when=when)
        except NothingToCommit:
            return
        self.commits += 1

    def desired_objects(self) -> dict[str, list[dict[str, Any]]]:
        """What git assigns to each Application now (the anchors included)."""
        out: dict[str, list[dict[str, Any]]] = {app: [anchor(app)] for app in APPS}
        for index, put in sorted(self.desired.items()):
            out[put.home].append(argo_manifest(index, self.versions[index], put.protected))
        return out

    # -------------------------------------------------------------- live edits

    def _live_edit(self, edit: LiveEdit) -> None:
        from labkit.argo.tracking import TRACKING_ANNOTATION

        api_version, kind, name = UNIVERSE[edit.obj]
        if self.sim.get(api_version, kind, name, NAMESPACE) is None:
            return
        if edit.op == "delete":
            self.sim.delete(api_version, kind, name, NAMESPACE)
        else:
            def mutate(o: dict[str, Any]) -> None:
                md = o["metadata"]
                if edit.op == "strip":  # somebody takes the object over: Argo's mark goes
                    (md.get("annotations") or {}).pop(TRACKING_ANNOTATION, None)
                elif edit.op == "protect":
                    md.setdefault("annotations", {})[SYNC_OPTIONS] = "Prune=false"
                elif kind == "ConfigMap":
                    o.setdefault("data", {})["version"] = "hotfix"
                elif kind == "Secret":
                    o.setdefault("data", {})["password"] = base64.b64encode(b"hotfix").decode()
                elif kind == "Service":
                    o["spec"]["ports"][0]["port"] = 9999
                elif kind == "Deployment":
                    o["spec"]["replicas"] = 7
            self.sim.kubectl_edit(api_version, kind, name, NAMESPACE, mutate)
        self.live_edits += 1

    def _foreign(self, f: Foreign) -> None:
        from labkit.argo.tracking import TRACKING_ANNOTATION

        md: dict[str, Any] = {"name": f"foreign-{f.index}", "namespace": NAMESPACE, "labels": {"team": "platform"}}
        if f.copy_labels:  # an operator copied metadata from a managed object, tracking id included (#15472)
            md["annotations"] = {TRACKING_ANNOTATION: f"a:/ConfigMap:{NAMESPACE}/anchor-a"}
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {"owner": "a human"}}
        self.sim.apply(obj, field_manager="kubectl")
        if all(key_of(o) != key_of(obj) for o in self.foreign):
            self.foreign.append(obj)

    # -------------------------------------------------------------- running

    def run(self, case: SoakCase) -> SoakResult:
        cfg = self.config
        self._build(case)
        for put in case.initial:
            self._put(put)
        seed_files = {f"{app}/anchor.yaml": _dump(anchor(app)) for app in APPS}
        seed_files.update(self.tree())
        seed_dir = self.workdir / "seed"
        for rel, text in seed_files.items():
            p = seed_dir / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        self.repo.seed(seed_dir, when=0)
        self.plan.stop()  # no faults while installing
        self.argo.add_repo(self.remote, URL)
        self.argo.enable_webhook(self.remote)
        self.argo.install()
        for app in APPS:
            self.argo.apply(self.application(app), file=f"argocd/{app}.yaml")
        self.plan.resume()
        t = cfg.start
        self.sim.run(until=t)
        for step in case.steps:
            t += step.gap
            if t > self.env.now:
                self.sim.run(until=t)
            a = step.action
            if isinstance(a, Commit):
                self._commit(a, t)
            elif isinstance(a, LiveEdit):
                self._live_edit(a)
            else:
                self._foreign(a)
        last_change = t
        slow = max((f.latency for f in self.plan.faults if f.kind == "slow"), default=0.0)
        quiet = max(t, self.plan.quiet_after() + slow * (2 * (len(UNIVERSE) + len(APPS)) + 4))
        if math.isinf(quiet):
            raise ValueError("an open-ended fault never stops: give every rule an end")
        if quiet > self.env.now:
            self.sim.run(until=quiet)
        self.plan.stop()
        checked_at = quiet + cfg.settle
        self.sim.run(until=checked_at)
        violations = self.check()
        quiet_end = checked_at + cfg.reconciliation + 5.0
        self.sim.run(until=quiet_end)
        violations += inv.quiet_writes(self.log, checked_at + 1e-9, self.managed_keys(), until=quiet_end)
        return SoakResult(violations, self.metrics(last_change, quiet, checked_at), case)

    # -------------------------------------------------------------- checking

    def leftovers(self, app: str) -> list[dict[str, Any]]:
        """Live objects git no longer assigns to ``app`` that still carry its own tracking id and are protected."""
        from labkit.argo.tracking import owns

        want = {key_of(o) for o in self.desired_objects()[app]}
        dialect = ArgoDialect(self.sim, APPS)
        out = []
        for api_version, kind in KINDS:
            for live in self.sim.list(api_version, kind, NAMESPACE):
                md = live.get("metadata") or {}
                if key_of(live) in want or not owns(app, live):
                    continue
                if dialect.protected(md.get("labels") or {}, md.get("annotations") or {}):
                    out.append(live)
        return out

    def managed_keys(self) -> set[str]:
        keys = {key_of(o) for objs in self.desired_objects().values() for o in objs}
        for app in APPS:
            keys |= {key_of(o) for o in self.leftovers(app)}
        return keys

    def check(self) -> list[str]:
        """Every invariant, with Argo's definitions (see the module docstring)."""
        dialect = ArgoDialect(self.sim, APPS)
        desired = self.desired_objects()
        head = self.repo.head()
        out: list[str] = []
        expected_inventory: dict[str, list[dict[str, Any]]] = {}
        for app in APPS:
            st = (dialect.application(app) or {}).get("status") or {}
            sync = st.get("sync") or {}
            left = self.leftovers(app)
            want = "OutOfSync" if left else "Synced"
            op = st.get("operationState") or {}
            errors = [c for c in st.get("conditions") or [] if c.get("type") in ("ComparisonError", "InvalidSpecError")]
            if sync.get("revision") != head or sync.get("status") != want or errors or op.get("phase") == "Running":
                out.append(f"in_sync: Application {app} is {sync.get('status')} at {sync.get('revision')} (want {want} "
                           f"at {head}); operation {op.get('phase')}: {op.get('message')}; conditions {errors}")
            expected_inventory[app] = desired[app] + left
        out += inv.converged(self.sim, desired, dialect)
        deletes = self.audit.deletes()
        out += inv.deletes_were_owned(deletes, dialect)
        out += deletes_named_themselves(deletes)
        out += inv.protected_survived(deletes, dialect)
        out += inv.foreign_survived(self.sim, self.foreign)
        out += inv.inventory_matches(expected_inventory, dialect)
        out += inv.no_orphans(self.sim, KINDS, dialect, APPS, namespace=NAMESPACE,
                              exempt={key_of(o) for o in self.foreign})
        out += inv.no_secret_leaks(self.secrets, log=self.log, statuses=dialect.statuses())
        return out

    def metrics(self, last_change: float, quiet: float, checked_at: float) -> dict[str, Any]:
        """Convergence time and operation counts of this run, from the event log."""
        head = self.repo.head()
        comp = "argocd-application-controller"
        in_sync = []
        for app in APPS:
            refreshed = [e for e in self.log.filter(component=comp, event="Refreshed", object=f"Application/{ARGO_NS}/{app}")
                         if e.time >= last_change]
            t = float("nan")
            for e in refreshed:  # the start of the final run of in-sync refreshes at head
                ok = e.revision == head and e.detail.get("sync") == "Synced"
                if ok and math.isnan(t):
                    t = e.time
                elif not ok:
                    t = float("nan")
            in_sync.append(t)
        converged_at = max(in_sync)
        ops = self.log.filter(component=comp, event="OperationCompleted")
        return {
            "last_change": last_change,
            "faults_stop": quiet,
            "converged_at": converged_at,
            "since_last_change": converged_at - last_change,
            "after_faults_stop": max(0.0, converged_at - quiet) if not math.isnan(converged_at) else float("nan"),
            "operations": len(ops),
            "failed_operations": sum(e.detail.get("phase") != "Succeeded" for e in ops),
            "retries": len(self.log.filter(component=comp, event="OperationRetrying")),
            "comparison_errors": len(self.log.filter(component=comp, event="ComparisonError")),
            "backoffs": len(self.log.filter(component=comp, event="ReconcileError")),
            "faults": len(self.plan.journal),
            "faults_by_kind": self.plan.counts(),
            "commits": self.commits,
            "live_edits": self.live_edits,
            "api_writes": len([w for w in self.audit.writes if w.ok]),
        }


def run_argo_case(case: SoakCase, config: ArgoSoakConfig | None = None,
                  workdir: str | os.PathLike[str] | None = None) -> SoakResult:
    """Play ``case`` in a fresh ``ArgoSoakLab`` (in a temporary directory unless ``workdir`` is given)."""
    if workdir is not None:
        return ArgoSoakLab(workdir, config).run(case)
    with tempfile.TemporaryDirectory(prefix="labkit-argo-soak-", dir=scratch_dir()) as tmp:
        return ArgoSoakLab(tmp, config).run(case)


_FLUX_KINDS = {"Kustomization": "Application", "GitRepository": "Application"}


def random_argo_case(rng: random.Random, *, max_steps: int = 6, max_faults: int = 3, seed: int | None = None) -> SoakCase:
    """``labkit.faults.soak.random_case`` with the Flux object kinds of its fault filters mapped to Argo's."""
    case = random_case(rng, max_steps=max_steps, max_faults=max_faults, seed=seed)
    faults: list[Fault] = []
    for f in case.faults:
        if f.kinds and any(k in _FLUX_KINDS for k in f.kinds):
            from dataclasses import replace

            f = replace(f, kinds=tuple(_FLUX_KINDS.get(k, k) for k in f.kinds))
        faults.append(f)
    return SoakCase(case.initial, case.steps, tuple(faults), case.seed)


# ------------------------------------------------------------------ the fleet under a fault rate

@dataclass
class FleetFaultResult:
    """One fleet run: when every Application was in sync, and what the faults did."""

    services: int
    fault_rate: float
    converged_at: float | None  # virtual seconds from applying the ApplicationSet
    wall_s: float
    lost: list[str]  # objects git wants that are missing or differ at the end
    wrongly_deleted: list[str]  # deletes of objects git still wanted
    faults: int
    faults_by_kind: dict[str, int]
    operations: int
    retries: int
    statuses_in_sync: int = 0  # Applications whose status says Synced at head one resync after the faults stop
    #: virtual seconds until every object was first live as git has it (the operations that applied them may
    #: still be retrying: one failed call in an attempt fails the attempt, and the retry waits up to 3 m)
    objects_converged_at: float | None = None

    @property
    def ok(self) -> bool:
        return (self.converged_at is not None and not self.lost and not self.wrongly_deleted
                and self.statuses_in_sync == self.services)


def fleet_fault_plan(rate: float, *, log: Any = None) -> FaultPlan:
    """Every API fault kind and both git fault kinds, open-ended, so that a call fails with probability ``rate``.

    The plan asks its rules in order and each draws independently, so with
    ``n`` rules of rate ``r`` a call fails with ``1 - (1 - r)^n``: ``r`` is
    chosen to make that ``rate`` (per API call; per git fetch for the git rules).
    """
    from labkit.faults.plan import API_KINDS, GIT_KINDS

    plan = FaultPlan(log=log)
    if rate <= 0:
        return plan
    r_api = 1 - (1 - rate) ** (1 / len(API_KINDS))
    r_git = 1 - (1 - rate) ** (1 / len(GIT_KINDS))
    for kind in API_KINDS:
        kw: dict[str, Any] = {}
        if kind == "slow":
            kw["latency"] = 1.0
        if kind == "throttle":
            kw["retry_after"] = 2.0
        if kind == "timeout":
            kw["lost_response"] = True
        plan.add(Fault(kind, rate=r_api, **kw))
    for kind in GIT_KINDS:
        plan.add(Fault(kind, rate=r_git))
    return plan


def run_fleet_under_faults(services: int = 200, fault_rate: float = 0.1, *, seed: int = 0,
                           timeout: float = 7200.0, workdir: str | os.PathLike[str] | None = None) -> FleetFaultResult:
    """The fleet scenario's ApplicationSet over ``services`` services, with every call failing at ``fault_rate``.

    The repository is ``labkit.argo.fleetrepo``'s (``services/<svc>/`` with a
    Deployment, a Service and a ConfigMap each; one ApplicationSet, git
    directories generator, automated sync with prune).  The Applications retry
    without limit (``retry.limit: -1``, 5 s × 2 up to 3 m): under a steady fault
    rate a finite limit parks some of them on a failed revision, as Argo does.
    The faults do not stop: the fleet has converged when every Application's
    controller has completed a successful sync of head and every object is live
    as git has it (checked every 5 virtual seconds; the live *status* of some
    Application always lags at this rate, because 10 % of status writes fail).
    Then the faults stop, one resync later every status must say Synced at head,
    and the audit journal says whether any object git wanted was ever deleted.
    """
    import time as _time

    from labkit.argo import ArgoSystem, ArgoTimings
    from labkit.gitops.repo import ManifestRepo
    from labkit.sim import SimCluster

    def body(tmp: Path) -> FleetFaultResult:
        sim = SimCluster(seed=seed, controllers=False)
        env, log = sim.env, sim.log
        plan = fleet_fault_plan(fault_rate, log=log)
        audit = AuditCluster(sim)
        cluster = FaultyCluster(audit, plan, rng_for(seed, "faults:api"))
        repo = ManifestRepo(tmp / "repo", log=log, url="https://github.com/labkit/fleet")
        files: dict[str, str] = {}
        names = [service_name(i) for i in range(services)]
        for n in names:
            files.update(service_files(f"services/{n}", n))
        repo.commit(files, message=f"fleet: {services} services", author="platform", when=0)
        remote = FaultyRemote(repo, plan, rng_for(seed, "faults:git"), env=env)
        argo = ArgoSystem(cluster, env, log=log, seed=seed, timings=ArgoTimings(),
                          engine_timings=EngineTimings())
        plan.stop()
        argo.add_repo(remote, repo.url)
        argo.enable_webhook(remote)
        argo.install()
        appset = applicationset_yaml("services", repo.url, "services/*")
        appset["spec"]["template"]["spec"]["syncPolicy"]["retry"] = {
            "limit": -1, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}
        plan.resume()
        wanted = {n: service_files(f"services/{n}", n) for n in names}
        desired = []
        for n in names:
            for text in wanted[n].values():
                import yaml as _yaml

                obj = _yaml.safe_load(text)
                obj["metadata"]["namespace"] = FLEET_NS
                desired.append(obj)
        t0 = _time.perf_counter()
        start = env.now
        while True:  # the ApplicationSet is applied by a person: they retry until the API server takes it
            try:
                cluster.apply(appset, field_manager="kubectl", force=True)
                break
            except Exception:  # noqa: BLE001 - an injected ApiError; the person tries again a second later
                env.run(until=env.now + 1.0)
        head = repo.head()

        synced_apps: set[str] = set()
        seen = {"t": -1.0}

        def converged() -> bool:
            # the controllers' own record (a status write can fail at this rate, so the live status lags):
            # every Application completed a sync of head, and every object is live as git has it
            for e in log.filter(component="argocd-application-controller", event="OperationCompleted",
                                since=seen["t"] + 1e-9):
                if e.revision == head and e.detail.get("phase") == "Succeeded":
                    synced_apps.add(e.object)
            seen["t"] = env.now
            return len(synced_apps) >= services and not _missing(first_only=True)

        def statuses_in_sync() -> int:
            n = 0
            for a in sim.list(APP_API, "Application", ARGO_NS):
                st = a.get("status") or {}
                n += (st.get("sync") or {}).get("status") == "Synced" and (st.get("sync") or {}).get("revision") == head
            return n

        def _missing(first_only: bool = False) -> list[str]:
            out: list[str] = []
            for obj in desired:
                if first_only and out:
                    break
                md = obj["metadata"]
                live = sim.get(obj["apiVersion"], obj["kind"], md["name"], md["namespace"])
                if live is None:
                    out.append(key_of(obj))
                elif inv.missing_fields({k: v for k, v in obj.items() if k != "metadata"},
                                        {k: v for k, v in live.items() if k != "metadata"}):
                    out.append(key_of(obj))
            return out

        done: float | None = None
        objects_done: float | None = None
        while env.now - start < timeout:  # checked every 5 virtual seconds (the figures' resolution)
            env.run(until=env.now + 5.0)
            if objects_done is None and not _missing(first_only=True):
                objects_done = env.now - start
            if converged():
                done = env.now - start
                break
        wall = _time.perf_counter() - t0
        # then the faults stop: within two resync ticks (a comparison younger than 120 s is skipped once;
        # 60 s jitter) every status must say so too
        plan.stop()
        env.run(until=env.now + 305.0)
        in_sync = statuses_in_sync()
        wanted_keys = {key_of(o) for o in desired}
        wrongly = sorted({w.object for w in audit.deletes() if w.object in wanted_keys})
        comp = "argocd-application-controller"
        return FleetFaultResult(services, fault_rate, done, wall, _missing(), wrongly, len(plan.journal),
                                plan.counts(), len(log.filter(component=comp, event="OperationCompleted")),
                                len(log.filter(component=comp, event="OperationRetrying")), in_sync, objects_done)

    if workdir is not None:
        return body(Path(workdir))
    with tempfile.TemporaryDirectory(prefix="labkit-fleet-faults-", dir=scratch_dir()) as tmp:
        return body(Path(tmp))
