"""Random commit / live-edit / fault sequences, run end to end against the Flux dialect.

This is the engine room of the reliability property tests and of
``benchmarks/bench_soak.py``.  A ``SoakCase`` is a small, fully explicit story:

* an **initial** set of objects in git, each assigned to one of two
  Kustomizations (``a`` reconciles ``./a``, ``b`` reconciles ``./b``; one
  GitRepository feeds both);
* a sequence of **steps**, each after a gap of virtual seconds: a git
  ``Commit`` of ``Put`` (add, modify, or move an object to the other
  Kustomization; optionally marked ``kustomize.toolkit.fluxcd.io/prune:
  disabled``) and ``Remove`` changes; a ``LiveEdit`` by another field manager
  (``drift``: kubectl-edit a field git sets; ``delete``: kubectl delete;
  ``strip``: remove the owner labels, i.e. somebody takes the object over;
  ``protect``: annotate it ``prune: disabled`` live); or a ``Foreign`` object
  created by hand, optionally with copied owner labels (argo-cd #15472's
  trap), which no controller may ever delete;
* a set of **faults** (``labkit.faults.plan.Fault``) over time windows: API
  errors and slow responses at the ``Cluster`` seam, git remote outages and
  corrupt refs, kustomize timeouts.

``FluxSoakLab.run(case)`` builds a fresh world for it — ``SimCluster`` (virtual
time, no workload controllers: the properties are about the GitOps engine, and
Deployments need no Pods for that), ``AuditCluster`` and ``FaultyCluster`` on
top of it, a real git repository (``ManifestRepo``) behind a ``FaultyRemote``,
and ``FluxSystem`` with fixed timings (fetch 1 s, build 0.5 s, API latency 0) —
and plays the story.  When the last step is done and the last fault window has
closed it stops the fault plan, lets the system settle for one source interval
plus one Kustomization interval (plus a few seconds of fetch and build), and
checks the invariants of ``labkit.faults.invariants``; then it runs one more
Kustomization interval with nothing changing and checks that it wrote nothing.
The result (``SoakResult``) carries the violations and the metrics the
benchmark tabulates: when the cluster was back in sync, how many reconciles,
failures and back-offs it took, and how many faults fired.

Rendering
---------

``renderer="kustomize"`` runs the real ``kubectl kustomize`` for every new
revision (about 0.1 s per render).  ``renderer="inline"`` uses
``InlineRenderer``, an in-process stand-in that returns what kustomize returns
for a flat directory of plain manifests (the only shape a soak repository
has): every object of every ``.yaml`` file, in lexical file order, with the
same confinement check.  A differential test keeps the two in agreement, and
the property suite runs part of its examples with each, so most examples are
cheap while real kustomize stays in the loop.

Everything is seeded: the same case and seed give the same run, event for event.
"""
from __future__ import annotations

import base64
import json
import os
import random
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Union

import yaml

from labkit.core.clock import rng_for
from labkit.engine.apply import EngineTimings
from labkit.core.errors import LabkitError
from labkit.core.events import key_of
from labkit.faults import invariants as inv
from labkit.faults.cluster import AuditCluster, FaultyCluster
from labkit.faults.git import FaultyRemote
from labkit.faults.plan import API_KINDS, FAULT_KINDS, Fault, FaultPlan
from labkit.faults.render import FaultyRenderer
from labkit.flux.policy import NAME_LABEL, NAMESPACE_LABEL, PRUNE_ANNOTATION
from labkit.gitops.render import (KUSTOMIZATION_FILES, BuildError, ManifestError, Renderer, confine,
                                  parse_manifests)

__all__ = [
    "APPS",
    "UNIVERSE",
    "Put",
    "Remove",
    "Commit",
    "LiveEdit",
    "Foreign",
    "Step",
    "SoakCase",
    "SoakConfig",
    "SoakResult",
    "FluxSoakLab",
    "InlineRenderer",
    "manifest",
    "secret_value",
    "random_case",
    "run_case",
]

URL = "https://git.example.com/labkit/soak"
NAMESPACE = "default"
FLUX_NS = "flux-system"
APPS = ("a", "b")
#: The objects a soak repository can hold: (apiVersion, kind, name).
UNIVERSE: tuple[tuple[str, str, str], ...] = (
    ("v1", "ConfigMap", "cm-0"),
    ("v1", "ConfigMap", "cm-1"),
    ("v1", "ConfigMap", "cm-2"),
    ("apps/v1", "Deployment", "web-0"),
    ("apps/v1", "Deployment", "web-1"),
    ("v1", "Service", "svc-0"),
    ("v1", "Service", "svc-1"),
    ("v1", "Secret", "sec-0"),
    ("v1", "Secret", "sec-1"),
)
KINDS = (("v1", "ConfigMap"), ("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "Secret"))
LIVE_EDITS = ("drift", "delete", "strip", "protect")


# ------------------------------------------------------------------ the story

@dataclass(frozen=True)
class Put:
    """Git: add object ``obj`` (index into ``UNIVERSE``) under ``home``, or give it a new version there."""

    obj: int
    home: str
    protected: bool = False


@dataclass(frozen=True)
class Remove:
    """Git: delete object ``obj``'s file (no-op if absent)."""

    obj: int


@dataclass(frozen=True)
class Commit:
    changes: tuple[Union[Put, Remove], ...]


@dataclass(frozen=True)
class LiveEdit:
    """Another field manager changes object ``obj`` in the cluster (no-op if it does not exist)."""

    obj: int
    op: str  # drift | delete | strip | protect


@dataclass(frozen=True)
class Foreign:
    """Somebody creates ConfigMap ``foreign-<index>`` by hand (never in git)."""

    index: int
    copy_labels: bool = False


@dataclass(frozen=True)
class Step:
    gap: float
    action: Union[Commit, LiveEdit, Foreign]


@dataclass(frozen=True)
class SoakCase:
    initial: tuple[Put, ...]
    steps: tuple[Step, ...]
    faults: tuple[Fault, ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class SoakConfig:
    """Intervals of the soak world (seconds) and which renderer builds the revisions."""

    source_interval: int = 60
    ks_interval: int = 120
    retry_interval: int = 30
    max_retry_delay: float = 60.0
    renderer: str = "inline"  # inline | kustomize
    start: float = 5.0  # the first step's gaps count from here

    @property
    def settle(self) -> float:
        """After the faults stop: one source interval + one Kustomization interval + fetch/build slack."""
        return self.source_interval + self.ks_interval + 10.0


@dataclass
class SoakResult:
    violations: list[str]
    metrics: dict[str, Any]
    case: SoakCase

    @property
    def ok(self) -> bool:
        return not self.violations


# ------------------------------------------------------------------ manifests

def secret_value(name: str, version: int) -> str:
    """The recognisable plaintext of a soak Secret (what the leak checks grep for)."""
    return f"s3cr3t-{name}-v{version}-do-not-log"


def manifest(index: int, version: int, protected: bool = False) -> dict[str, Any]:
    """Object ``UNIVERSE[index]`` at ``version`` as git holds it."""
    api_version, kind, name = UNIVERSE[index]
    md: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "soak"}}
    if protected:
        md["annotations"] = {PRUNE_ANNOTATION: "disabled"}
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": md}
    if kind == "ConfigMap":
        obj["data"] = {"version": str(version), f"key-{version % 3}": f"value-{version}"}
    elif kind == "Secret":
        obj["type"] = "Opaque"
        obj["data"] = {"password": base64.b64encode(secret_value(name, version).encode()).decode()}
    elif kind == "Service":
        obj["spec"] = {"selector": {"app": name},
                       "ports": [{"name": "http", "port": 80 + version % 3, "targetPort": 8080, "protocol": "TCP"}]}
    elif kind == "Deployment":
        obj["spec"] = {"replicas": 1 + version % 3, "selector": {"matchLabels": {"app": name}},
                       "template": {"metadata": {"labels": {"app": name}},
                                    "spec": {"containers": [{"name": "app", "image": f"registry.local/{name}:1.{version}"}]}}}
    return obj


def anchor(app: str) -> dict[str, Any]:
    """Every Kustomization's directory always holds one ConfigMap, so the path never disappears from git."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"anchor-{app}", "namespace": NAMESPACE}, "data": {"app": app}}


def _path(index: int, home: str) -> str:
    _, kind, name = UNIVERSE[index]
    return f"{home}/{kind.lower()}-{name}.yaml"


_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _dump(obj: Mapping[str, Any]) -> str:
    return yaml.dump(dict(obj), Dumper=_Dumper, sort_keys=False, default_flow_style=False)


# ------------------------------------------------------------------ renderer

class InlineRenderer:
    """In-process stand-in for ``labkit.gitops.render.Renderer`` over flat directories of plain manifests.

    Returns every object of every ``.yaml``/``.yml`` file under the directory
    (lexical order, sub-directories included), which is what Flux's generated
    kustomization makes kustomize return for such a directory.  Confinement is
    the real ``confine``; a directory with its own kustomization file, or Flux
    build overrides, are refused (use the real ``Renderer`` for those).  Results
    are cached per ``key`` like ``Renderer`` does.
    """

    def __init__(self, *, timeout: float = 30.0, max_entries: int = 256):
        self.timeout = timeout
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple[str, str, str], tuple[list[str], str]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def render_documents(self, directory: str | os.PathLike[str], *, root: Any = None, key: str | None = None,
                         overrides: Mapping[str, Any] | None = None) -> list[str]:
        return list(self._entry(directory, root, key, overrides)[0])

    def render(self, directory: str | os.PathLike[str], *, root: Any = None, key: str | None = None,
               overrides: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return json.loads(self._entry(directory, root, key, overrides)[1])

    def _entry(self, directory: str | os.PathLike[str], root: Any, key: str | None,
               overrides: Mapping[str, Any] | None) -> tuple[list[str], str]:
        if overrides and any(overrides.get(k) for k in ("targetNamespace", "namePrefix", "nameSuffix", "patches",
                                                         "components", "images")):
            raise LabkitError("InlineRenderer does not apply Flux build overrides", field="spec")
        display = os.fspath(directory)
        ck = (key or "", os.fspath(root) if root is not None else "", os.path.normpath(display))
        if key is not None and ck in self._cache:
            self._cache.move_to_end(ck)
            self.hits += 1
            return self._cache[ck]
        self.misses += 1
        target = str(confine(root, directory)) if root is not None else os.path.abspath(display)
        docs: list[str] = []
        objects: list[dict[str, Any]] = []
        for dirpath, dirnames, filenames in os.walk(target):
            dirnames.sort()
            if any(n in KUSTOMIZATION_FILES for n in filenames):
                raise LabkitError("InlineRenderer renders plain directories only", file=display)
            for name in sorted(filenames):
                if os.path.splitext(name)[1] not in (".yaml", ".yml"):
                    continue
                full = os.path.join(dirpath, name)
                try:
                    with open(full, encoding="utf-8") as fh:
                        objs = parse_manifests(fh.read(), source=full)
                except (ManifestError, UnicodeDecodeError) as exc:
                    raise BuildError(display, f"failed to decode Kubernetes YAML from {full}: {exc}") from None
                objects.extend(objs)
                docs.extend(json.dumps(o) for o in objs)  # JSON is YAML: one document per object
        entry = (docs, json.dumps(objects))
        if key is not None:
            self._cache[ck] = entry
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return entry

    def clear(self) -> None:
        self._cache.clear()


# ------------------------------------------------------------------ the lab

class SoakWorld:
    """What every soak lab stands on, whatever the dialect: one simulated cluster behind the fault
    seam (``FaultyCluster(AuditCluster(sim))``), one git repository behind a ``FaultyRemote``,
    one ``FaultPlan`` from the case, every random stream seeded from ``case.seed``."""

    workdir: Path

    def _build_world(self, case: SoakCase) -> None:
        from labkit.gitops.repo import ManifestRepo
        from labkit.sim import SimCluster

        seed = case.seed
        self.sim = SimCluster(seed=seed, controllers=False)
        self.env = self.sim.env
        self.log = self.sim.log
        self.plan = FaultPlan(case.faults, log=self.log)
        self.audit = AuditCluster(self.sim)
        self.cluster = FaultyCluster(self.audit, self.plan, rng_for(seed, "faults:api"))
        self.repo = ManifestRepo(self.workdir / "repo", log=self.log, url=URL)
        self.remote = FaultyRemote(self.repo, self.plan, rng_for(seed, "faults:git"), env=self.env)


class FluxSoakLab(SoakWorld):
    """One soak world (see the module docstring); ``run(case)`` plays a case once."""

    def __init__(self, workdir: str | os.PathLike[str], config: SoakConfig | None = None):
        self.workdir = Path(workdir)
        self.config = config or SoakConfig()

    def _build(self, case: SoakCase) -> None:
        from labkit.flux.system import FluxSystem, FluxTimings

        cfg = self.config
        seed = case.seed
        self._build_world(case)
        self.flux = FluxSystem(self.cluster, self.env, log=self.log, seed=seed, timings=FluxTimings.fixed(),
                               engine_timings=EngineTimings(api_call=0.0, poll_interval=2.0),
                               workdir=self.workdir / "flux", max_retry_delay=cfg.max_retry_delay)
        inner = Renderer() if cfg.renderer == "kustomize" else InlineRenderer()
        self.flux.renderer = FaultyRenderer(inner, self.plan, rng_for(seed, "faults:render"), env=self.env)
        self.desired: dict[int, Put] = {}
        self.versions: dict[int, int] = {}
        self.secrets: set[str] = set()
        self.foreign: list[dict[str, Any]] = []
        self.changes: list[float] = []
        self.commits = 0
        self.live_edits = 0

    # -------------------------------------------------------------- git

    def _put(self, put: Put) -> None:
        version = self.versions.get(put.obj, 0) + 1
        self.versions[put.obj] = version
        self.desired[put.obj] = put
        _, kind, name = UNIVERSE[put.obj]
        if kind == "Secret":
            self.secrets.add(secret_value(name, version))

    def tree(self) -> dict[str, str]:
        """The soak objects' files as git should hold them now (path -> YAML text)."""
        return {_path(i, p.home): _dump(manifest(i, self.versions[i], p.protected)) for i, p in self.desired.items()}

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
        self.changes.append(when)

    def desired_objects(self) -> dict[str, list[dict[str, Any]]]:
        """What git assigns to each Kustomization now (the anchors included)."""
        out: dict[str, list[dict[str, Any]]] = {app: [anchor(app)] for app in APPS}
        for index, put in sorted(self.desired.items()):
            out[put.home].append(manifest(index, self.versions[index], put.protected))
        return out

    # -------------------------------------------------------------- live edits

    def _live_edit(self, edit: LiveEdit) -> None:
        api_version, kind, name = UNIVERSE[edit.obj]
        if self.sim.get(api_version, kind, name, NAMESPACE) is None:
            return
        if edit.op == "delete":
            self.sim.delete(api_version, kind, name, NAMESPACE)
        else:
            def mutate(o: dict[str, Any]) -> None:
                md = o["metadata"]
                if edit.op == "strip":
                    for k in (NAME_LABEL, NAMESPACE_LABEL):
                        (md.get("labels") or {}).pop(k, None)
                elif edit.op == "protect":
                    md.setdefault("annotations", {})[PRUNE_ANNOTATION] = "disabled"
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
        self.changes.append(self.env.now)

    def _foreign(self, f: Foreign) -> None:
        labels = {"team": "platform"}
        if f.copy_labels:
            labels.update({NAME_LABEL: "a", NAMESPACE_LABEL: FLUX_NS})
        obj = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": f"foreign-{f.index}", "namespace": NAMESPACE, "labels": labels},
               "data": {"owner": "a human"}}
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
        self.flux.install()
        self.flux.add_remote(URL, self.remote)
        self.flux.apply({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                         "metadata": {"name": "soak", "namespace": FLUX_NS},
                         "spec": {"interval": f"{cfg.source_interval}s", "url": URL, "ref": {"branch": "main"}}})
        for app in APPS:
            self.flux.apply({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                             "metadata": {"name": app, "namespace": FLUX_NS},
                             "spec": {"interval": f"{cfg.ks_interval}s", "retryInterval": f"{cfg.retry_interval}s",
                                      "sourceRef": {"kind": "GitRepository", "name": "soak"},
                                      "path": f"./{app}", "prune": True}})
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
        # a slow response charges its latency when the engine next yields, so calls made just before the
        # faults stop can still be paying it afterwards: at most one stage's calls, ~2 per object + status
        slow = max((f.latency for f in self.plan.faults if f.kind == "slow"), default=0.0)
        quiet = max(t, self.plan.quiet_after() + slow * (2 * (len(UNIVERSE) + len(APPS)) + 4))
        if quiet > self.env.now:
            self.sim.run(until=quiet)
        self.plan.stop()
        checked_at = quiet + cfg.settle
        self.sim.run(until=checked_at)
        violations = self.check()
        # one more Kustomization interval with nothing changing: nothing may be written
        quiet_end = checked_at + cfg.ks_interval + 5.0
        self.sim.run(until=quiet_end)
        managed = {key_of(o) for objs in self.desired_objects().values() for o in objs}
        violations += inv.quiet_writes(self.log, checked_at + 1e-9, managed, until=quiet_end)
        metrics = self.metrics(last_change, quiet, checked_at)
        return SoakResult(violations, metrics, case)

    def check(self) -> list[str]:
        """Every invariant of ``labkit.faults.invariants`` at this moment."""
        from labkit.flux import conditions as C
        from labkit.flux.kustomize import API_VERSION, KIND

        dialect = inv.FluxDialect(self.sim, APPS, FLUX_NS)
        desired = self.desired_objects()
        head = f"main@sha1:{self.repo.head()}"
        out: list[str] = []
        for app in APPS:
            ks = self.sim.get(API_VERSION, KIND, app, FLUX_NS) or {}
            ready = C.get_condition(ks, C.READY) or {}
            applied = (ks.get("status") or {}).get("lastAppliedRevision")
            if ready.get("status") != "True" or applied != head:
                out.append(f"ready: Kustomization {app} is not Ready at {head}: "
                           f"{ready.get('reason')}: {ready.get('message')} (lastAppliedRevision {applied})")
        out += inv.converged(self.sim, desired, dialect)
        deletes = self.audit.deletes()
        out += inv.deletes_were_owned(deletes, dialect)
        out += inv.protected_survived(deletes, dialect)
        out += inv.foreign_survived(self.sim, self.foreign)
        out += inv.inventory_matches(desired, dialect)
        out += inv.no_orphans(self.sim, KINDS, dialect, APPS, namespace=NAMESPACE,
                              exempt={key_of(o) for o in self.foreign})
        out += inv.no_secret_leaks(self.secrets, log=self.log, statuses=dialect.statuses())
        return out

    def metrics(self, last_change: float, quiet: float, checked_at: float) -> dict[str, Any]:
        """Convergence times and reconcile counts of this run, from the event log."""
        head = f"main@sha1:{self.repo.head()}"
        in_sync: list[float] = []
        for app in APPS:
            key = f"Kustomization/{FLUX_NS}/{app}"
            times = [e.time for e in self.log.filter(component="kustomize-controller", event="ReconciliationSucceeded",
                                                     object=key, since=last_change) if e.revision == head]
            in_sync.append(min(times) if times else float("nan"))
        converged_at = max(in_sync)
        ks = self.log.filter(component="kustomize-controller")
        src = self.log.filter(component="source-controller")
        return {
            "last_change": last_change,
            "faults_stop": quiet,
            "converged_at": converged_at,
            "since_last_change": converged_at - last_change,
            "after_faults_stop": max(0.0, converged_at - quiet),
            "reconciles": sum(e.event in ("ReconciliationSucceeded", "ReconciliationFailed") for e in ks),
            "failed_reconciles": sum(e.event == "ReconciliationFailed" for e in ks),
            "backoffs": sum(e.event == "ReconcileError" for e in ks + src),
            "fetch_failures": sum(e.event == "GitOperationFailed" for e in src),
            "faults": len(self.plan.journal),
            "faults_by_kind": self.plan.counts(),
            "commits": self.commits,
            "live_edits": self.live_edits,
            "api_writes": len([w for w in self.audit.writes if w.ok]),
        }


def scratch_dir() -> str | None:
    """``/dev/shm`` when it is a writable directory (git's many small files are cheap there), else the default."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def run_case(case: SoakCase, config: SoakConfig | None = None, workdir: str | os.PathLike[str] | None = None) -> SoakResult:
    """Play ``case`` in a fresh ``FluxSoakLab`` (in a temporary directory unless ``workdir`` is given)."""
    if workdir is not None:
        return FluxSoakLab(workdir, config).run(case)
    with tempfile.TemporaryDirectory(prefix="labkit-soak-", dir=scratch_dir()) as tmp:
        return FluxSoakLab(tmp, config).run(case)


# ------------------------------------------------------------------ random cases (no hypothesis)

GAPS = (0.0, 5.0, 30.0, 90.0, 200.0)


def random_fault(rng: random.Random, horizon: float) -> Fault:
    """One fault rule with a window inside ``[0, horizon]``."""
    kind = rng.choice(FAULT_KINDS)
    start = rng.uniform(0, horizon)
    end = start + rng.choice((10.0, 60.0, 180.0, 400.0))
    kw: dict[str, Any] = {}
    if kind == "slow":
        kw["latency"] = rng.choice((0.2, 1.0, 5.0))
    if kind == "throttle":
        kw["retry_after"] = rng.choice((1.0, 10.0))
    if kind == "timeout":
        kw["lost_response"] = rng.random() < 0.5
    if kind in ("internal", "unavailable", "throttle", "conflict", "timeout", "slow") and rng.random() < 0.5:
        kw["verbs"] = (rng.choice(("get", "apply", "delete", "patch_status", "list")),)
    if kind in API_KINDS:
        r = rng.random()
        if r < 0.25:  # narrow faults make partial progress: some objects or controllers work, others fail
            kw["kinds"] = (rng.choice(("Kustomization", "GitRepository", "ConfigMap", "Deployment", "Service",
                                       "Secret")),)
        elif r < 0.5:
            kw["names"] = (rng.choice([n for _, _, n in UNIVERSE]),)
    return Fault(kind, rate=rng.choice((0.3, 0.6, 1.0)), start=start, end=end, **kw)


def random_case(rng: random.Random, *, max_steps: int = 6, max_faults: int = 3, seed: int | None = None) -> SoakCase:
    """A random ``SoakCase`` drawn from ``rng`` (the benchmark's generator; the tests use hypothesis)."""
    n = len(UNIVERSE)

    def put() -> Put:
        return Put(rng.randrange(n), rng.choice(APPS), rng.random() < 0.2)

    initial = tuple(put() for _ in range(rng.randint(1, 4)))
    steps = []
    for _ in range(rng.randint(1, max_steps)):
        r = rng.random()
        if r < 0.55:
            changes = tuple(put() if rng.random() < 0.6 else Remove(rng.randrange(n))
                            for _ in range(rng.randint(1, 3)))
            action: Any = Commit(changes)
        elif r < 0.9:
            action = LiveEdit(rng.randrange(n), rng.choice(LIVE_EDITS))
        else:
            action = Foreign(rng.randrange(2), rng.random() < 0.5)
        steps.append(Step(rng.choice(GAPS), action))
    horizon = sum(s.gap for s in steps) + 60.0
    faults = tuple(random_fault(rng, horizon) for _ in range(rng.randint(0, max_faults)))
    return SoakCase(initial, tuple(steps), faults, seed if seed is not None else rng.randrange(2**31))
