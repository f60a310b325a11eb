"""``AppLab``: one application, one real repository, one simulated cluster, reconciled by Flux *or* Argo CD.

``FleetLab`` (``labkit.scenarios.lab``) is the sample fleet as ``flux
bootstrap`` leaves it: several environments, Flux only.  The scenarios that
compare the two dialects on the same mechanism — the HPA fighting
``replicas:`` in git, a StatefulSet whose volumeClaimTemplates cannot change,
an operator's custom resource pruned from git — need something smaller and
dialect-neutral, and the Argo-only scenarios (migrations, fleet) need an Argo
counterpart of ``FleetLab``.  ``AppLab`` is both:

* one virtual clock (a SimPy environment) and **one event log** shared by the
  repository, the API server, the simulator's controllers and the GitOps
  controllers, so a metric is a filter over one log;
* one real git repository (``labkit.gitops.repo.ManifestRepo``: a bare
  "GitHub" plus in-process commits), served at ``REPO_URL``;
* one ``SimCluster`` with the simulator's workload controllers (Deployment,
  ReplicaSet, kubelet, HPA, Job, StatefulSet, PV) on by default, fed by the
  lab's image ``registry`` and ``load`` model;
* **either** a ``FluxSystem`` (source- and kustomize-controller) **or** an
  ``ArgoSystem`` (application, ApplicationSet and repo server) installed in
  that cluster, with the git host's push webhook wired to it (a webhook is the
  production set-up both projects recommend; ``webhook=False`` leaves polling
  alone).

What is reconciled is described once, dialect-neutrally, by a ``Target``
(name, path in the repository, destination namespace, prune, and the
dialect-specific knobs: Flux's ``interval`` and ``spec.ignore``, Argo's
``selfHeal``, ``syncOptions`` and ``ignoreDifferences``).  ``deploy(target)``
turns it into the real YAML of the chosen dialect — a ``GitRepository`` plus a
``Kustomization``, or an ``Application`` — validates it as that dialect's API
would and applies it (``kubectl apply`` by the platform team).  Re-deploying a
changed ``Target`` is how a scenario changes the GitOps object itself (adding
``spec.ignore`` or ``RespectIgnoreDifferences=true``).

``state(name)`` reads the outcome back the same way for both: whether the last
reconcile succeeded, the revision it applied, and the message the dialect puts
where a user looks — Flux's ``Ready`` condition message, or Argo's operation
message followed by the failed resources' messages, as ``argocd app get``
prints them.  ``sync_now(name)`` is ``flux reconcile kustomization`` or
``argocd app sync``.

The lab never decides an outcome: everything a scenario measures comes from
the controllers acting on what is in git and in the cluster.

``cluster`` (the notebooks' parameter, ``labkit.scenarios.backend``) other than
``sim`` puts the lab on a real cluster: the wall clock, a ``KubeCluster`` bound to
it (so Argo CD, Flux and in-process operators get watch events), seen through a
``NamespacedCluster`` (the lab's namespaces carry a unique prefix and are deleted by
``close()``), the dialect's CRDs applied and waited for before it is installed, and
no modelled durations for git, builds or webhooks (they take their own wall time).
The cluster's own controllers and KWOK's kubelets replace the simulator's; there is
no simulated ``registry`` or ``load`` there (a scenario that needs its load model plays
it through KWOK's per-pod CPU usage with ``labkit.kube.loaddriver.LoadDriver``, as
hpa-conflict does).
"""
from __future__ import annotations

import tempfile
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd
import yaml

from labkit.core import clock as clocks
from labkit.engine.apply import EngineTimings
from labkit.core.errors import LabkitError
from labkit.core.events import EventLog
from labkit.gitops.repo import ManifestRepo
from labkit.sim.cluster import SimCluster
from labkit.sim.load import LoadModel
from labkit.sim.registry import ImageRegistry
from labkit.sim.timings import Timings
from labkit.scenarios import backend as targets
from labkit.scenarios.isolation import RUN_LABEL, NamespacedCluster
from labkit.scenarios.lab import REAL_ENGINE_TIMINGS, REAL_FLUX_TIMINGS, REAL_POLL_INTERVAL, LabClock

__all__ = ["AppLab", "Target", "SyncState", "DIALECTS", "REPO_URL", "WEBHOOK_TOKEN", "check_dialect"]

DIALECTS = ("flux", "argo")
REPO_URL = "https://github.com/labkit/app"
WEBHOOK_TOKEN = "labkit-webhook-token"
FLUX_NS = "flux-system"
ARGO_NS = "argocd"
IN_CLUSTER = "https://kubernetes.default.svc"
KS_API = "kustomize.toolkit.fluxcd.io/v1"
SRC_API = "source.toolkit.fluxcd.io/v1"


def check_dialect(dialect: str) -> str:
    """``dialect`` if it is ``flux`` or ``argo``; a ``LabkitError`` naming the parameter otherwise."""
    if dialect not in DIALECTS:
        raise LabkitError(f"unknown dialect {dialect!r}: choose one of {', '.join(DIALECTS)}", field="dialect")
    return dialect


@dataclass(frozen=True)
class Target:
    """What one GitOps object reconciles, in terms both dialects understand (see module docstring).

    ``ignore`` holds Flux ``spec.ignore`` rules (``{"paths": [...], "target": {...}}``);
    ``ignore_differences`` holds Argo ``spec.ignoreDifferences`` entries.  Each is
    only valid for its own dialect: ``AppLab.deploy`` refuses the other one.
    """

    name: str
    path: str
    namespace: str = "default"
    prune: bool = True
    # Flux
    interval: str = "10m"
    wait: bool = False
    timeout: str | None = None
    ignore: tuple[Mapping[str, Any], ...] = ()
    # Argo
    self_heal: bool = True
    automated: bool = True
    sync_options: tuple[str, ...] = ()
    ignore_differences: tuple[Mapping[str, Any], ...] = ()
    retry_limit: int | None = None

    def with_(self, **changes: Any) -> "Target":
        return replace(self, **changes)


@dataclass
class SyncState:
    """The outcome of the last reconcile of one target, read the same way for both dialects."""

    ok: bool | None  # None: nothing finished yet
    revision: str
    message: str
    phase: str = ""  # Flux: Ready reason; Argo: operation phase
    sync_status: str = ""  # Argo: Synced / OutOfSync; Flux: ''
    detail: dict[str, Any] = field(default_factory=dict)


class AppLab(LabClock):
    """One repository, one simulated cluster, Flux or Argo CD on one clock (see module docstring)."""

    def __init__(
        self,
        dialect: str,
        *,
        seed: int = 0,
        workdir: str | Path | None = None,
        registry: ImageRegistry | None = None,
        load: LoadModel | None = None,
        sim_timings: Timings | None = None,
        controllers: bool = True,
        webhook: bool = True,
        argo_timings: Any = None,
        flux_timings: Any = None,
        engine_timings: EngineTimings | None = None,
        repo_url: str = REPO_URL,
        source_interval: str = "1m",
        cluster: str = "sim",
    ):
        self.dialect = check_dialect(dialect)
        self.seed = seed
        self.target = targets.resolve(cluster)
        self.real = self.target is not None
        self.kube: Any = None
        self.env = clocks.realtime() if self.real else clocks.virtual()
        self.log = EventLog(lambda: self.env.now)
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="labkit-app-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.repo = ManifestRepo(self.workdir / "repo", log=self.log, name="app", url=repo_url)
        self.source_interval = source_interval
        self.cluster: Any
        if self.real:
            self.registry = None  # KWOK's stages decide which images pull
            self.kube = self.target.connect(env=self.env)  # bound to the clock: watch events for the controllers
            if self.dialect == "flux":
                from labkit.flux.crds import flux_crds as crds
            else:
                from labkit.argo.crds import argo_crds as crds
            try:
                targets.ensure_kinds(self.kube, crds())
            except BaseException:
                self.kube.close()
                raise
            self.cluster = NamespacedCluster(self.kube, targets.new_prefix(self.dialect), run_id=targets.run_id(),
                                             name=self.target.name, log=self.log, env=self.env)
            flux_timings = flux_timings or REAL_FLUX_TIMINGS
            engine_timings = engine_timings or REAL_ENGINE_TIMINGS
            if argo_timings is None:
                from labkit.argo import ArgoTimings

                argo_timings = ArgoTimings.fixed(git=0.0, generate=0.0, webhook=0.0)
        else:
            self.registry = registry if registry is not None else ImageRegistry()
            self.cluster = SimCluster(seed=seed, name="sim", env=self.env, log=self.log, registry=self.registry,
                                      load=load if load is not None else LoadModel(seed=seed), timings=sim_timings,
                                      controllers=controllers)
        self._cluster_scoped: list[tuple[str, str, str]] = []  # (apiVersion, kind, name) the lab created
        self.targets: dict[str, Target] = {}
        self.flux: Any = None
        self.argo: Any = None
        if self.dialect == "flux":
            from labkit.flux.system import FluxSystem

            self.flux = FluxSystem(self.cluster, self.env, log=self.log, seed=seed, timings=flux_timings,
                                   engine_timings=engine_timings, workdir=self.workdir / "flux",
                                   **({"poll_interval": REAL_POLL_INTERVAL} if self.real else {}))
            self.flux.install()
            self.flux.add_remote(repo_url, self.repo)
            if webhook:
                self.flux.enable_webhook(self.repo, token=WEBHOOK_TOKEN)
        else:
            from labkit.argo import ArgoSystem

            self.argo = ArgoSystem(self.cluster, self.env, log=self.log, seed=seed, timings=argo_timings,
                                   engine_timings=engine_timings)
            self.argo.add_repo(self.repo, repo_url)
            self.argo.install()
            if webhook:
                self.argo.enable_webhook(self.repo)
        self._source_applied = False

    # ------------------------------------------------------------------ git

    def commit(self, files: Mapping[str, str | None], message: str, *, author: str = "alice") -> str:
        """Commit and push ``files`` (path → text, or None to delete) at the current virtual time."""
        changes = {p: (textwrap.dedent(t).lstrip() if isinstance(t, str) else None) for p, t in files.items()}
        return self.repo.commit(changes, message=message, author=author, when=self.env.now)

    # ------------------------------------------------------------------ GitOps objects

    def manifests(self, target: Target) -> list[dict[str, Any]]:
        """The dialect's YAML for ``target``: GitRepository + Kustomization, or an Application."""
        if self.dialect == "flux":
            if target.ignore_differences or target.sync_options:
                raise LabkitError("ignoreDifferences and syncOptions are Argo CD settings; the Flux dialect uses "
                                  "spec.ignore and kustomize.toolkit.fluxcd.io annotations", field="dialect")
            source = {"apiVersion": SRC_API, "kind": "GitRepository",
                      "metadata": {"name": "app", "namespace": FLUX_NS},
                      "spec": {"interval": self.source_interval, "url": self.repo.url, "ref": {"branch": "main"}}}
            spec: dict[str, Any] = {"interval": target.interval, "sourceRef": {"kind": "GitRepository", "name": "app"},
                                    "path": f"./{target.path}", "prune": target.prune, "wait": target.wait}
            if target.timeout:
                spec["timeout"] = target.timeout
            if target.ignore:
                spec["ignore"] = [dict(r) for r in target.ignore]
            ks = {"apiVersion": KS_API, "kind": "Kustomization",
                  "metadata": {"name": target.name, "namespace": FLUX_NS}, "spec": spec}
            return [source, ks]
        if target.ignore:
            raise LabkitError("spec.ignore is a Flux Kustomization setting; the Argo CD dialect uses ignoreDifferences "
                              "with RespectIgnoreDifferences=true", field="dialect")
        policy: dict[str, Any] = {}
        if target.automated:
            policy["automated"] = {"prune": target.prune, "selfHeal": target.self_heal}
        if target.sync_options:
            policy["syncOptions"] = list(target.sync_options)
        if target.retry_limit is not None:
            policy["retry"] = {"limit": target.retry_limit}
        spec = {"project": "default",
                "source": {"repoURL": self.repo.url, "targetRevision": "HEAD", "path": target.path},
                "destination": {"server": IN_CLUSTER, "namespace": target.namespace}}
        if policy:
            spec["syncPolicy"] = policy
        if target.ignore_differences:
            spec["ignoreDifferences"] = [dict(r) for r in target.ignore_differences]
        app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
               "metadata": {"name": target.name, "namespace": ARGO_NS}, "spec": spec}
        return [app]

    def deploy(self, target: Target) -> None:
        """Apply the GitOps object(s) for ``target`` (again, after a change: the platform team's ``kubectl apply``)."""
        docs = self.manifests(target)
        if self.dialect == "flux":
            self.flux.apply(docs, file=f"clusters/sim/{target.name}.yaml")
        else:
            self.argo.apply(docs, file=f"argocd/{target.name}.yaml")
        self.targets[target.name] = target

    def sync_now(self, name: str) -> None:
        """``flux reconcile kustomization <name>`` / ``argocd app sync <name>``."""
        if self.dialect == "flux":
            self.flux.request_reconcile("Kustomization", name)
        else:
            self.argo.sync(name)

    def gitops_object(self, name: str) -> dict[str, Any] | None:
        """The live Kustomization / Application."""
        if self.dialect == "flux":
            return self.cluster.get(KS_API, "Kustomization", name, FLUX_NS)
        return self.argo.app(name)

    def state(self, name: str) -> SyncState:
        """How the last reconcile of ``name`` went (see module docstring)."""
        obj = self.gitops_object(name) or {}
        status = obj.get("status") or {}
        if self.dialect == "flux":
            ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
            if ready is None:
                return SyncState(None, "", "")
            ok = {"True": True, "False": False}.get(ready.get("status"))
            return SyncState(ok, status.get("lastAppliedRevision", ""), ready.get("message", ""),
                             phase=ready.get("reason", ""), detail={"lastAttemptedRevision":
                                                                     status.get("lastAttemptedRevision", "")})
        op = status.get("operationState") or {}
        sync = status.get("sync") or {}
        if not op:
            return SyncState(None, "", "", sync_status=sync.get("status", ""))
        phase = op.get("phase", "")
        msgs = [op.get("message", "")]
        for r in (op.get("syncResult") or {}).get("resources") or []:
            if r.get("status") in ("SyncFailed",) or r.get("hookPhase") in ("Failed", "Error"):
                msgs.append(f"{r.get('kind')}/{r.get('name')}: {r.get('message', '')}")
        ok = {"Succeeded": True, "Failed": False, "Error": False}.get(phase)
        return SyncState(ok, (op.get("syncResult") or {}).get("revision", ""), "\n".join(m for m in msgs if m),
                         phase=phase, sync_status=sync.get("status", ""),
                         detail={"health": (status.get("health") or {}).get("status", "")})

    def field_manager(self) -> str:
        """The field manager the dialect writes managed objects with."""
        return "kustomize-controller" if self.dialect == "flux" else "argocd-controller"

    # ------------------------------------------------------------------ reading the run

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.cluster.get(api_version, kind, name, namespace)

    def frame(self) -> pd.DataFrame:
        """The whole event log as a DataFrame."""
        return self.log.to_frame()

    def events(self, *, component: str | Iterable[str] | None = None, event: str | Iterable[str] | None = None,
               object: str | None = None, since: float | None = None) -> list:
        return self.log.filter(component=component, event=event, object=object, since=since)

    def provide_cluster_scoped(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create a cluster-scoped object for this lab (a pre-provisioned volume), labelled with the run, deleted by ``close``."""
        obj = dict(obj)
        md = obj.setdefault("metadata", {})
        md.setdefault("labels", {})[RUN_LABEL] = targets.run_id()
        out = self.cluster.apply(obj, field_manager="labkit-admin")
        self._cluster_scoped.append((obj["apiVersion"], obj["kind"], md["name"]))
        return out

    def close(self) -> None:
        """Close the repository; on a real cluster delete the lab's namespaces and objects, and disconnect."""
        try:
            if self.kube is not None:
                self.cluster.cleanup()
                for api_version, kind, name in self._cluster_scoped:
                    try:
                        self.kube.delete(api_version, kind, name)
                    except Exception:  # noqa: BLE001 - best effort: the run's label lets `provision` retry
                        pass
        finally:
            if self.kube is not None:
                self.kube.close()
                self.kube = None
        self.repo.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def yaml_docs(*docs: Mapping[str, Any]) -> str:
    """Several objects as one multi-document YAML text (what a developer commits)."""
    return "---\n".join(yaml.safe_dump(dict(d), sort_keys=False) for d in docs)
