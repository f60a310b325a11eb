"""``ArgoSystem``: Argo CD's application and ApplicationSet controllers over clusters behind the seam.

This is the Argo CD dialect's front end, what installing Argo CD into a
*management* cluster gives you: the ``argocd`` namespace, the
``Application`` / ``ApplicationSet`` / ``AppProject`` CRDs, an ``argocd-cm``
ConfigMap, and the controllers:

* **argocd-application-controller** — one reconcile loop per Application
  (``labkit.argo.app_controller``): refreshes (compare git with the cluster),
  automated sync with self-heal and retries, sync operations with phases,
  waves and hooks (``labkit.argo.sync``), cascading deletion;
* **argocd-repo-server** — revision resolution and manifest generation with
  Argo's caching (``labkit.argo.repo_server``);
* **argocd-applicationset-controller** — generators and templates
  (``labkit.argo.appset``);
* the **webhook** endpoint of argocd-server (``POST /api/webhook``).

Clusters
--------
The management cluster is registered as ``in-cluster`` with server
``https://kubernetes.default.svc``, as Argo does.  More destinations are added
with ``add_cluster(name, server, cluster, labels=...)`` — the equivalent of an
Argo cluster secret, whose labels the cluster generator selects on.  Every
cluster must run on the same SimPy environment (one clock for the whole lab).
An Application names its destination by ``server`` or by ``name``.

How it is driven
----------------
Applications and ApplicationSets live in the management cluster as the YAML
from Argo's docs, applied with ``apply()`` (validated first: a mistake is one
``LabkitError`` naming the file and the field, and nothing is applied).  The
controllers learn about them through the cluster's ``watch`` and re-read them
on every reconcile.  Managed objects in the destination clusters are watched
per kind as soon as an Application targets that kind (list, then watch, as an
informer starts); the watch stream feeds a live-object cache — Argo's *cluster
cache* — that comparisons read instead of calling the API server, and a change
to an object carrying an Application's tracking id re-drives that Application
(a refresh, or the next step of its running sync).  Cached objects carry no
``managedFields``; the few comparisons that need field ownership
(``managedFieldsManagers``) read through the API.  A cluster without ``watch``
(a real one through ``KubeCluster``) is simply read through the API, and
running syncs poll it every ``operation_poll`` seconds.  A global resync requests a refresh of
every Application every ``timeout.reconciliation`` (120 s) plus a per-app
jitter drawn from a seeded stream (up to ``timeout.reconciliation.jitter``,
60 s).

Time
----
``ArgoTimings`` holds every duration: ``git_ls_remote`` and
``manifest_generate`` (seeded uniform ranges; a manifest cache hit costs
nothing), the resync interval and jitter, ``sync_wave_delay`` (2 s,
``ARGOCD_SYNC_WAVE_DELAY``), the self-heal back-off and cooldown, webhook
delivery, and the ApplicationSet requeue (180 s).  ``ArgoTimings.fixed()`` makes
them all deterministic for tests that assert exact times.  API requests cost
``EngineTimings.api_call`` each.

Reading the results
-------------------
``app(name)`` returns the live Application (with ``status``), ``status(name)``
just the status; every stage is in the event log under the components
``argocd-application-controller``, ``argocd-applicationset-controller`` and
``argocd-server`` (``Refreshed``, ``OperationStarted``, ``ResourceApplied``,
``HookCreated``, ``HookCompleted``, ``Pruned``, ``OperationCompleted``,
``AutoSyncSkipped`` ...), next to the API server's own ``Created`` /
``Updated`` / ``Deleted`` records.
"""
from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable

import simpy

from labkit import clock as clocks
from labkit.argo.api import (API_VERSION, APPLICATION_KIND, APPLICATIONSET_KIND, RESOURCES_FINALIZER,
                             ApplicationSpec, parse_application, parse_applicationset)
from labkit.argo.app_controller import COMPONENT, HARD, LATEST, RESYNC, STATUS_MANAGER, AppController
from labkit.argo.apply import dry_run_object
from labkit.argo.crds import argo_crds
from labkit.argo.diff import system_ignore_rules
from labkit.argo.repo_server import RepoServer
from labkit.argo.sync import DELETION_APPROVED_ANNOTATION
from labkit.argo.tracking import app_of
from labkit.cluster import Cluster
from labkit.engine.apply import EngineTimings
from labkit.errors import ApiError, LabkitError, TemporaryError
from labkit.events import EventLog

__all__ = ["ArgoSystem", "ArgoTimings", "IN_CLUSTER", "IN_CLUSTER_SERVER"]

IN_CLUSTER = "in-cluster"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
ARGOCD_CM = "argocd-cm"


@dataclass
class ArgoTimings:
    """Durations (seconds) of Argo CD's own work in virtual time; ranges are seeded uniform draws."""

    reconciliation: float = 120.0  # timeout.reconciliation
    reconciliation_jitter: float = 60.0  # timeout.reconciliation.jitter
    git_ls_remote: tuple[float, float] = (0.2, 0.8)
    manifest_generate: tuple[float, float] = (0.5, 2.0)  # repo-server cache miss
    sync_wave_delay: float = 2.0  # ARGOCD_SYNC_WAVE_DELAY
    operation_poll: float = 3.0  # re-check of a running operation when no watch event arrives
    self_heal_backoff: tuple[float, float, float] = (2.0, 3.0, 300.0)  # timeout, factor, cap
    self_heal_cooldown: float = 330.0
    webhook_delivery: tuple[float, float] = (0.5, 2.0)
    appset_requeue: float = 180.0  # git generators' default requeueAfterSeconds

    def draw(self, rng: random.Random, name: str) -> float:
        lo, hi = getattr(self, name)
        return lo if lo == hi else rng.uniform(lo, hi)

    @classmethod
    def fixed(cls, *, git: float = 0.0, generate: float = 0.0, webhook: float = 1.0, jitter: float = 0.0,
              **overrides: Any) -> "ArgoTimings":
        """Deterministic durations for tests: fixed git / manifest / webhook times and no resync jitter."""
        t = cls(git_ls_remote=(git, git), manifest_generate=(generate, generate),
                webhook_delivery=(webhook, webhook), reconciliation_jitter=jitter)
        return replace(t, **overrides)


@dataclass
class _ClusterEntry:
    name: str
    server: str
    cluster: Any
    labels: dict[str, str]
    annotations: dict[str, str]


class ArgoSystem:
    """Argo CD over a management cluster and any number of destination clusters (see module docstring)."""

    def __init__(
        self,
        mgmt: Cluster,
        env: simpy.Environment | None = None,
        *,
        log: EventLog | None = None,
        seed: int = 0,
        timings: ArgoTimings | None = None,
        engine_timings: EngineTimings | None = None,
        namespace: str = "argocd",
        automated_retry_limit: int = 5,
    ):
        env = env if env is not None else getattr(mgmt, "env", None)
        if env is None:
            raise LabkitError("ArgoSystem needs a SimPy environment (pass env=, or a cluster with .env)", field="env")
        self.mgmt = mgmt
        self.env = env
        self.log = log if log is not None else getattr(mgmt, "log", None) or EventLog(lambda: env.now)
        self.seed = seed
        self.timings = timings or ArgoTimings()
        self.engine_timings = engine_timings or EngineTimings()
        self.namespace = namespace
        self.automated_retry_limit = automated_retry_limit
        self.repo_server = RepoServer()
        self.clusters: dict[str, _ClusterEntry] = {}
        self.apps: dict[tuple[str, str], AppController] = {}
        self.appsets: dict[tuple[str, str], Any] = {}
        self.verified: dict[Any, str] = {}
        self._namespaced: dict[tuple[str, str, str], bool] = {}
        self._watched: set[tuple[str, str, str]] = set()
        self._live: dict[str, dict[tuple[str, str, str, str], dict]] = {}
        # (cluster, app) -> {cache key: apiVersion} of cached objects whose tracking id names that app
        self._tracked: dict[tuple[str, str], dict[tuple[str, str, str, str], str]] = {}
        self._cached_kinds: set[tuple[str, str, str]] = set()
        self._app_markers: dict[tuple[str, str], tuple] = {}
        self._rules_cache: tuple[str, list] = ("", [])
        self._resync_rng = self.rng("resync")
        self.started = False
        self.add_cluster(IN_CLUSTER, IN_CLUSTER_SERVER, mgmt)

    # ------------------------------------------------------------------ set-up

    def rng(self, stream: str) -> random.Random:
        return clocks.rng_for(self.seed, f"argo:{stream}")

    def add_cluster(self, name: str, server: str, cluster: Cluster, *, labels: dict[str, str] | None = None,
                    annotations: dict[str, str] | None = None) -> None:
        """Register a destination cluster (an Argo cluster secret: name, server URL, labels)."""
        cenv = getattr(cluster, "env", None)
        if cenv is not None and cenv is not self.env:
            raise LabkitError(f"cluster {name!r} runs on another SimPy environment: build every SimCluster "
                              "with env=<the shared environment>", field="cluster")
        for other in self.clusters.values():
            if other.server == server and other.name != name:
                raise LabkitError(f"server {server} is already registered as cluster {other.name!r}", field="server")
        self.clusters[name] = _ClusterEntry(name, server, cluster, dict(labels or {}), dict(annotations or {}))
        for ctrl in list(self.appsets.values()):
            ctrl.request()

    def add_repo(self, repo: Any, url: str | None = None) -> str:
        """Serve a ``labkit.gitops.repo.ManifestRepo`` at ``url`` (default: the repo's own URL); returns the URL."""
        u = url or repo.url
        self.repo_server.add(u, repo)
        return u

    def install(self) -> None:
        """Create the argocd namespace, the CRDs and argocd-cm in the management cluster, then start."""
        self.mgmt.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}},
                        field_manager="argocd-install")
        for crd in argo_crds():
            self.mgmt.apply(crd, field_manager="argocd-install")
        if self.mgmt.get("v1", "ConfigMap", ARGOCD_CM, self.namespace) is None:
            self.mgmt.apply({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": ARGOCD_CM, "namespace": self.namespace,
                                          "labels": {"app.kubernetes.io/part-of": "argocd"}}},
                            field_manager="argocd-install")
        self.start()

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        watch = getattr(self.mgmt, "watch", None)
        if not callable(watch):
            raise LabkitError("ArgoSystem needs a cluster with watch() (the simulator) as its management cluster",
                              field="mgmt")
        watch(API_VERSION, APPLICATION_KIND, self._on_app_event)
        watch(API_VERSION, APPLICATIONSET_KIND, self._on_appset_event)
        for obj in self.mgmt.list(API_VERSION, APPLICATION_KIND, self.namespace):
            self._on_app_event("ADDED", obj)
        for obj in self.mgmt.list(API_VERSION, APPLICATIONSET_KIND, self.namespace):
            self._on_appset_event("ADDED", obj)
        self.env.process(self._resync())

    # ------------------------------------------------------------------ user actions

    def apply(self, manifests: str | dict | Iterable[dict], *, file: str | None = None,
              field_manager: str = "kubectl") -> list[dict]:
        """Validate and apply Argo objects (YAML text, a dict or a list) to the management cluster.

        Applications and ApplicationSets are validated as ``labkit.argo.api``
        reads them; ``argocd-cm`` is checked for valid ignore customizations.
        Everything is validated before anything is applied.
        """
        if isinstance(manifests, str):
            from labkit.gitops.render import parse_manifests

            # one line naming the file, line and column (and refusing repeated keys, as the API server would)
            docs = [d for d in parse_manifests(manifests, source=file or "<string>") if d]
        elif isinstance(manifests, dict):
            docs = [copy.deepcopy(manifests)]
        else:
            docs = [copy.deepcopy(d) for d in manifests]
        for d in docs:
            if not isinstance(d, dict):
                raise LabkitError("every document must be a Kubernetes object", file=file)
            kind = d.get("kind")
            if kind == APPLICATION_KIND:
                parse_application(d, file, default_namespace=self.namespace)
            elif kind == APPLICATIONSET_KIND:
                self._check_static_templates(parse_applicationset(d, file, default_namespace=self.namespace), file)
            elif kind == "ConfigMap" and (d.get("metadata") or {}).get("name") == ARGOCD_CM:
                system_ignore_rules(d)
            if kind in (APPLICATION_KIND, APPLICATIONSET_KIND):
                md = d.setdefault("metadata", {})
                md.setdefault("namespace", self.namespace)
                if md["namespace"] != self.namespace:
                    raise LabkitError(f'{kind}s are only reconciled in namespace "{self.namespace}"', file=file,
                                      field="metadata.namespace")
        out = []
        for d in docs:
            try:
                out.append(self.mgmt.apply(d, field_manager=field_manager, force=True))
            except ApiError as err:
                raise LabkitError(err.message, file=file) from None
        return out

    def _check_static_templates(self, spec: Any, file: str | None) -> None:
        """Render the template for every ``list`` generator element now, so a template error names the file.

        The parameters of a list generator are in the ApplicationSet itself; a
        template that cannot be rendered with them (``missingkey=error``, an
        invalid generated Application) would otherwise only surface later as the
        ApplicationSet's ``ErrorOccurred`` condition, naming the object but not
        the file.  Generators that read git or the cluster list are rendered by
        the controller, as in Argo.
        """
        from dataclasses import replace as _replace

        from labkit.argo.api import ListGenerator
        from labkit.argo.appset import generate

        static = [g for g in spec.generators if isinstance(g, ListGenerator)]
        if not static:
            return
        try:
            generate(self, _replace(spec, generators=tuple(static)))
        except LabkitError as err:
            raise LabkitError(err.detail, file=file, field=err.field) from None

    def app(self, name: str) -> dict | None:
        """The live Application (spec and status) from the management cluster."""
        return self.mgmt.get(API_VERSION, APPLICATION_KIND, name, self.namespace)

    def status(self, name: str) -> dict:
        return dict((self.app(name) or {}).get("status") or {})

    def app_names(self) -> list[str]:
        return sorted(n for (ns, n) in self.apps)

    def controller(self, name: str) -> AppController:
        ctrl = self.apps.get((self.namespace, name))
        if ctrl is None:
            raise LabkitError(f"application {name!r} not found in namespace {self.namespace}", field="name")
        return ctrl

    def refresh(self, name: str, *, hard: bool = False) -> None:
        """Request a refresh now (``argocd app get --refresh`` / ``--hard-refresh``)."""
        self.controller(name).request_refresh(HARD if hard else LATEST)

    def sync(self, name: str, *, revision: str | None = None, prune: bool = False,
             resources: list[dict[str, str]] | None = None, sync_options: Iterable[str] = (),
             user: str = "admin") -> None:
        """Start a manual sync operation (``argocd app sync``); LabkitError if one is already running."""
        ctrl = self.controller(name)
        obj = self.app(name)
        spec = parse_application(obj, f"{APPLICATION_KIND}/{self.namespace}/{name}", default_namespace=self.namespace)
        op: dict[str, Any] = {"sync": {"revision": revision or "", "prune": prune, "syncOptions": list(sync_options)},
                              "initiatedBy": {"username": user}}
        if resources:
            op["sync"]["resources"] = resources
        if spec.sync_policy.retry is not None:
            op["_retry"] = spec.sync_policy.retry
        self.log.record(COMPONENT, "OperationStarted", ctrl.key, detail={"message": f"Initiated sync by {user}"})
        ctrl.start_operation(op)

    def confirm_prune(self, name: str) -> None:
        """Approve pending ``Prune=confirm`` deletions (the UI's "Confirm Pruning")."""
        self.mgmt.apply({"apiVersion": API_VERSION, "kind": APPLICATION_KIND,
                         "metadata": {"name": name, "namespace": self.namespace,
                                      "annotations": {DELETION_APPROVED_ANNOTATION: clocks.timestamp(self.env.now)}}},
                        field_manager="argocd-server", force=True)
        ctrl = self.apps.get((self.namespace, name))
        if ctrl is not None:
            ctrl.on_resource_event()

    def delete_app(self, name: str, *, cascade: bool = True) -> None:
        """``argocd app delete``: with cascade the resources finalizer is set first, so resources go too."""
        obj = self.app(name)
        if obj is None:
            raise LabkitError(f"application {name!r} not found", field="name")
        fins = list((obj.get("metadata") or {}).get("finalizers") or [])
        has = any(f.startswith(RESOURCES_FINALIZER) for f in fins)
        if cascade and not has:
            fins.append(RESOURCES_FINALIZER)
        elif not cascade and has:
            fins = [f for f in fins if not f.startswith(RESOURCES_FINALIZER)]
        if fins != list((obj.get("metadata") or {}).get("finalizers") or []):
            upd = json.loads(json.dumps(obj))
            upd["metadata"]["finalizers"] = fins
            upd["metadata"].pop("managedFields", None)
            self.mgmt.update(upd, field_manager="argocd-server")
        self.mgmt.delete(API_VERSION, APPLICATION_KIND, name, self.namespace)

    def run(self, until: float | simpy.Event | None = None) -> None:
        self.env.run(until=until)

    def advance(self, seconds: float) -> None:
        self.env.run(until=self.env.now + seconds)

    # ------------------------------------------------------------------ webhook

    def enable_webhook(self, repo: Any, *, secret: str | None = None) -> Any:
        """Deliver pushes of ``repo`` to argocd-server's ``/api/webhook`` (HMAC-checked when ``secret`` is set)."""
        from labkit.gitops.webhook import WebhookReceiver, sign

        rng = self.rng("webhook")
        receiver = None
        if secret:
            receiver = WebhookReceiver(secret, self.log, name="argocd-server", namespace=self.namespace,
                                       component="argocd-server")
            receiver.subscribe(lambda d: self._on_webhook(d.payload))

        def deliver(body: bytes) -> Any:
            yield self.env.timeout(self.timings.draw(rng, "webhook_delivery"))
            if receiver is not None:
                headers = {"X-Hub-Signature-256": sign(body, secret or ""), "X-GitHub-Event": "push"}
                receiver.receive(headers, body)
            else:
                payload = json.loads(body)
                self.log.record("argocd-server", "WebhookReceived", f"Webhook/{self.namespace}/argocd-server",
                                revision=payload.get("after", ""), detail={"ref": payload.get("ref", "")})
                self._on_webhook(payload)

        def on_push(event: Any) -> None:
            payload = dict(getattr(event, "payload", None) or event)
            self.env.process(deliver(json.dumps(payload).encode()))

        repo.on_push(on_push)
        return receiver

    def _on_webhook(self, payload: dict) -> None:
        ref = str(payload.get("ref") or "")
        clone = str(((payload.get("repository") or {}).get("clone_url")) or "")
        urls = {u for u, r in self.repo_server._repos.items() if u == clone.rstrip("/") or getattr(r, "url", None) == clone}
        if not urls:
            return
        branch = ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else ""
        tag = ref[len("refs/tags/"):] if ref.startswith("refs/tags/") else ""
        for (ns, name), ctrl in sorted(self.apps.items()):
            try:
                obj = self.app(name)
            except ApiError:  # cannot tell what it follows: refresh it, which costs one ls-remote at most
                ctrl.request_refresh(LATEST)
                continue
            src = ((obj or {}).get("spec") or {}).get("source") or {}
            if src.get("repoURL", "").rstrip("/") not in urls:
                continue
            rev = src.get("targetRevision") or "HEAD"
            repo = self.repo_server.repo(src["repoURL"])
            follows = repo.default_branch if rev == "HEAD" else rev
            if (branch and follows == branch) or (tag and rev == tag):
                self.log.record("argocd-server", "WebhookRefresh", ctrl.key, revision=payload.get("after", ""),
                                detail={"ref": ref})
                ctrl.request_refresh(LATEST)
        for ctrl in list(self.appsets.values()):
            if ctrl.uses_repo(urls):
                ctrl.request()

    # ------------------------------------------------------------------ watches and dispatch

    def _on_app_event(self, event_type: str, obj: dict) -> None:
        md = obj.get("metadata") or {}
        ns, name = md.get("namespace") or "", md.get("name") or ""
        if ns != self.namespace:
            return
        key = (ns, name)
        ctrl = self.apps.get(key)
        if event_type == "DELETED":
            if ctrl is not None:
                ctrl.request_refresh(LATEST)
            self._app_markers.pop(key, None)
            return
        refresh = (md.get("annotations") or {}).get("argocd.argoproj.io/refresh") or ""
        marker = (md.get("generation"), bool(md.get("deletionTimestamp")), tuple(md.get("finalizers") or ()), refresh)
        if ctrl is None or ctrl.gone:
            self._app_markers[key] = marker
            self.apps[key] = AppController(self, ns, name)
            return
        old = self._app_markers.get(key)
        self._app_markers[key] = marker
        if old is None or marker[:3] != old[:3] or (refresh and refresh != old[3]):
            ctrl.request_refresh(LATEST)

    def _on_appset_event(self, event_type: str, obj: dict) -> None:
        from labkit.argo.appset import AppSetController

        md = obj.get("metadata") or {}
        ns, name = md.get("namespace") or "", md.get("name") or ""
        if ns != self.namespace:
            return
        key = (ns, name)
        ctrl = self.appsets.get(key)
        if event_type == "DELETED":
            if ctrl is not None:
                ctrl.request()
            return
        if ctrl is None or ctrl.gone:
            self.appsets[key] = AppSetController(self, ns, name, md.get("generation"))
            return
        if md.get("generation") != ctrl.generation:
            ctrl.generation = md.get("generation")
            ctrl.request()

    def forget_app(self, ctrl: AppController) -> None:
        key = (ctrl.namespace, ctrl.name)
        if self.apps.get(key) is ctrl:
            del self.apps[key]
        self._app_markers.pop(key, None)

    def ensure_watches(self, cluster_name: str, kinds: Iterable[tuple[str, str]]) -> None:
        entry = self.clusters.get(cluster_name)
        if entry is None:
            return
        watch = getattr(entry.cluster, "watch", None)
        if not callable(watch):
            return
        for api_version, kind in kinds:
            wk = (cluster_name, api_version, kind)
            if wk in self._watched:
                continue
            try:
                watch(api_version, kind, lambda t, o, cn=cluster_name: self._on_resource_event(cn, t, o))
            except ApiError:
                continue  # kind not served yet (its CRD comes with the sync): try again next refresh
            self._watched.add(wk)
            group = api_version.split("/")[0] if "/" in api_version else ""
            cache = self._live.setdefault(cluster_name, {})
            try:
                for o in entry.cluster.list(api_version, kind):  # list, then watch: an informer's start
                    md = o.get("metadata") or {}
                    o["metadata"].pop("managedFields", None)
                    ckey = (group, kind, md.get("namespace") or "", md.get("name") or "")
                    self._index(cluster_name, ckey, cache.get(ckey), o)
                    cache[ckey] = o
            except ApiError:
                continue
            self._cached_kinds.add((cluster_name, group, kind))

    def _on_resource_event(self, cluster_name: str, event_type: str, obj: dict) -> None:
        md = obj.get("metadata") or {}
        av = obj.get("apiVersion") or ""
        key = (av.split("/")[0] if "/" in av else "", obj.get("kind") or "", md.get("namespace") or "",
               md.get("name") or "")
        cache = self._live.setdefault(cluster_name, {})
        if event_type == "DELETED":
            self._index(cluster_name, key, cache.pop(key, None), None)
        else:
            self._index(cluster_name, key, cache.get(key), obj)
            cache[key] = obj
        app = app_of(obj)
        if not app:
            return
        ctrl = self.apps.get((self.namespace, app))
        if ctrl is not None:
            ctrl.on_resource_event()

    def _index(self, cluster_name: str, key: tuple[str, str, str, str], old: dict | None, new: dict | None) -> None:
        old_app, new_app = app_of(old), app_of(new)
        if old_app and old_app != new_app:
            self._tracked.get((cluster_name, old_app), {}).pop(key, None)
        if new_app:
            self._tracked.setdefault((cluster_name, new_app), {})[key] = new.get("apiVersion") or ""  # type: ignore[union-attr]

    def tracked(self, cluster_name: str, app: str) -> list[tuple[str, tuple[str, str, str, str]]]:
        """``(apiVersion, key)`` of every cached live object whose tracking id names ``app``.

        Argo's cluster cache finds an Application's managed objects by their
        tracking id, not only through the Application's ``status.resources``: an
        object created by an operation after the refresh that last listed it
        (a retried sync of an older revision, a status write that failed) is still
        found, compared, and pruned when git no longer has it.
        """
        return [(av, key) for key, av in sorted(self._tracked.get((cluster_name, app), {}).items())]

    def _resync(self) -> Any:
        t = self.timings
        while True:
            yield self.env.timeout(t.reconciliation)
            for key in sorted(self.apps):
                jitter = self._resync_rng.uniform(0, t.reconciliation_jitter) if t.reconciliation_jitter > 0 else 0.0
                self.apps[key].request_refresh(RESYNC, after=jitter)

    # ------------------------------------------------------------------ services for the controllers

    def destination(self, spec: ApplicationSpec) -> tuple[str, Any]:
        d = spec.destination
        if d.name:
            entry = self.clusters.get(d.name)
            if entry is None:
                raise LabkitError(f"unable to find destination server: there are no clusters with this name: {d.name}",
                                  field="spec.destination.name")
            return entry.name, entry.cluster
        for entry in self.clusters.values():
            if entry.server.rstrip("/") == d.server.rstrip("/"):
                return entry.name, entry.cluster
        raise LabkitError(f"application destination server '{d.server}' and namespace '{d.namespace}' do not match "
                          "any of the allowed destinations in project 'default'", field="spec.destination.server")

    def server_of(self, cluster_name: str) -> str:
        entry = self.clusters.get(cluster_name)
        return entry.server if entry else ""

    def namespaced(self, cluster_name: str, api_version: str, kind: str, objs: Iterable[dict] | None = None) -> bool:
        group = api_version.split("/")[0] if "/" in api_version else ""
        key = (cluster_name, group, kind)
        hit = self._namespaced.get(key)
        if hit is not None:
            return hit
        cluster = self.clusters[cluster_name].cluster
        try:
            value = bool(cluster.is_namespaced(api_version, kind))
        except ApiError as err:
            if err.reason != "NotFound":  # discovery failed (5xx, 429, timeout): not an answer, try again later
                raise TemporaryError(message=f"failed to discover the scope of {kind}: {err.message}",
                                     reason=err.reason) from None
            for o in objs or ():
                if o.get("kind") == "CustomResourceDefinition":
                    spec = o.get("spec") or {}
                    if spec.get("group") == group and (spec.get("names") or {}).get("kind") == kind:
                        return spec.get("scope", "Namespaced") == "Namespaced"
            return True
        self._namespaced[key] = value
        return value

    def live_getter(self, cluster_name: str) -> Callable[..., dict | None]:
        """Argo's cluster cache: live objects of watched kinds from the watch stream, others from the API.

        Objects from the cache are shared and read-only, and carry no
        ``managedFields`` (the watch delivers the stored object): callers that need
        field ownership pass ``managed=True`` and get a fresh read.
        """
        cluster = self.clusters[cluster_name].cluster
        cache = self._live.get(cluster_name, {})
        kinds = self._cached_kinds

        def get(api_version: str, kind: str, name: str, namespace: str | None = None, *, managed: bool = False):
            group = api_version.split("/")[0] if "/" in api_version else ""
            if not managed and (cluster_name, group, kind) in kinds:
                obj = cache.get((group, kind, namespace or "", name))
                if obj is not None and obj.get("apiVersion") != api_version:
                    obj = dict(obj, apiVersion=api_version)
                return obj
            return cluster.get(api_version, kind, name, namespace)
        return get

    def dry_runner(self, cluster: Any) -> Callable[[dict], dict]:
        return lambda obj: dry_run_object(cluster, obj)

    def system_rules(self) -> list:
        cm = self.mgmt.get("v1", "ConfigMap", ARGOCD_CM, self.namespace)
        rv = ((cm or {}).get("metadata") or {}).get("resourceVersion", "")
        if rv != self._rules_cache[0]:
            try:
                rules = system_ignore_rules(cm)
            except LabkitError as err:
                self.log.record(COMPONENT, "SettingsError", f"ConfigMap/{self.namespace}/{ARGOCD_CM}",
                                detail={"message": str(err)})
                rules = []
            self._rules_cache = (rv, rules)
        return self._rules_cache[1]

    def write_app_status(self, namespace: str, name: str, status: dict) -> None:
        try:
            self.mgmt.patch_status(API_VERSION, APPLICATION_KIND, name, namespace, status, field_manager=STATUS_MANAGER)
        except ApiError as err:
            if err.reason != "NotFound":
                raise

    def clear_annotation(self, obj: dict, key: str) -> None:
        md = obj.get("metadata") or {}
        live = self.mgmt.get(obj["apiVersion"], obj["kind"], md["name"], md.get("namespace"))
        if live is None:
            return
        ann = (live["metadata"].get("annotations") or {})
        if key not in ann:
            return
        live["metadata"]["annotations"] = {k: v for k, v in ann.items() if k != key}
        live["metadata"].pop("managedFields", None)
        live.pop("status", None)
        try:
            self.mgmt.update(live, field_manager=STATUS_MANAGER)
        except ApiError:
            pass

    def remove_finalizers(self, obj: dict, finalizers: list[str]) -> None:
        md = obj.get("metadata") or {}
        live = self.mgmt.get(obj["apiVersion"], obj["kind"], md["name"], md.get("namespace"))
        if live is None:
            return
        live["metadata"]["finalizers"] = [f for f in live["metadata"].get("finalizers") or [] if f not in finalizers]
        live["metadata"].pop("managedFields", None)
        self.mgmt.update(live, field_manager=STATUS_MANAGER)
