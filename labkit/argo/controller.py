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

Assembly
--------
``ArgoSystem`` is the wiring, not a service the controllers call back into.
It builds the collaborators once and hands each controller only the ones it
uses, as Argo CD's ``NewApplicationController`` does:

* ``settings`` (``labkit.argo.settings``) — namespace, ``ArgoTimings``,
  ``EngineTimings``, seeded random streams, the ignore rules of ``argocd-cm``;
* ``destinations`` (``labkit.argo.destinations``) — the cluster registry;
* ``cache`` (``labkit.argo.cluster_cache``) — the live-state cache of every
  destination, which reports changes to tracked objects back here;
* ``repo_server`` (``labkit.argo.repo_server``);
* ``app_client`` (``labkit.argo.appclient``) — Applications in the management
  cluster, as the application controller writes them;
* ``log`` — the event recorder.

It keeps what only an assembly can: the controllers by key (``apps``,
``appsets``), the watches of the management cluster that create and drive
them, the periodic resync, the webhook, and the user actions below.  The
controller modules import none of this module, so the dependency runs one way:
``controller`` → ``app_controller`` / ``appset`` → the collaborators.  The
former service methods ``destination`` (the resource tree) and ``system_rules``
(the explorer) remain as one-line delegations.

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
from dataclasses import replace
from typing import Any, Iterable

import simpy

from labkit.argo.api import (API_VERSION, APPLICATION_KIND, APPLICATIONSET_KIND, RESOURCES_FINALIZER,
                             ApplicationSpec, ListGenerator, parse_application, parse_applicationset)
from labkit.argo.app_controller import COMPONENT, HARD, LATEST, RESYNC, AppController
from labkit.argo.appclient import AppClient
from labkit.argo.appset import AppSetController, generate
from labkit.argo.cluster_cache import ClusterCache
from labkit.argo.crds import argo_crds
from labkit.argo.destinations import IN_CLUSTER, IN_CLUSTER_SERVER, Destinations
from labkit.argo.diff import system_ignore_rules
from labkit.argo.repo_server import RepoServer
from labkit.argo.settings import ARGOCD_CM, ArgoTimings, Settings
from labkit.argo.sync import DELETION_APPROVED_ANNOTATION
from labkit.core.clock import timestamp
from labkit.core.cluster import Cluster
from labkit.engine.apply import EngineTimings
from labkit.core.errors import ApiError, LabkitError
from labkit.core.events import EventLog

__all__ = ["ArgoSystem", "ArgoTimings", "IN_CLUSTER", "IN_CLUSTER_SERVER"]


def _setting(name: str, doc: str) -> property:
    """An ``ArgoSystem`` attribute that reads and writes ``Settings.<name>`` (one place holds each setting)."""
    return property(lambda self: getattr(self.settings, name),
                    lambda self, value: setattr(self.settings, name, value), doc=doc)


class ArgoSystem:
    """Argo CD over a management cluster and any number of destination clusters (see module docstring)."""

    namespace = _setting("namespace", "The namespace Argo CD runs in and reconciles Applications of.")
    seed = _setting("seed", "The seed of every random stream (``rng``).")
    timings = _setting("timings", "``ArgoTimings``: the durations of Argo's own work.")
    engine_timings = _setting("engine_timings", "``EngineTimings``: the cost of one API request.")
    automated_retry_limit = _setting("automated_retry_limit",
                                     "The retry limit of automated operations whose Application sets none.")

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
        self.settings = Settings(mgmt, self.log, namespace=namespace, seed=seed, timings=timings or ArgoTimings(),
                                 engine_timings=engine_timings or EngineTimings(),
                                 automated_retry_limit=automated_retry_limit)
        self.repo_server = RepoServer()
        self.destinations = Destinations(env)
        self.cache = ClusterCache(self.destinations, self._on_managed_change)
        self.app_client = AppClient(mgmt)
        self.apps: dict[tuple[str, str], AppController] = {}
        self.appsets: dict[tuple[str, str], AppSetController] = {}
        self._app_markers: dict[tuple[str, str], tuple] = {}
        self._resync_rng = self.rng("resync")
        self.started = False
        self.add_cluster(IN_CLUSTER, IN_CLUSTER_SERVER, mgmt)

    # ------------------------------------------------------------------ set-up

    def rng(self, stream: str) -> random.Random:
        return self.settings.rng(stream)

    def add_cluster(self, name: str, server: str, cluster: Cluster, *, labels: dict[str, str] | None = None,
                    annotations: dict[str, str] | None = None) -> None:
        """Register a destination cluster (an Argo cluster secret: name, server URL, labels)."""
        self.destinations.add(name, server, cluster, labels=labels, annotations=annotations)
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
        static = [g for g in spec.generators if isinstance(g, ListGenerator)]
        if not static:
            return
        try:
            generate(replace(spec, generators=tuple(static)), clusters=self.destinations,
                     repo_server=self.repo_server, namespace=self.namespace)
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
                                      "annotations": {DELETION_APPROVED_ANNOTATION: timestamp(self.env.now)}}},
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
            self.apps[key] = AppController(self.env, ns, name, client=self.app_client, settings=self.settings,
                                           destinations=self.destinations, cache=self.cache,
                                           repo_server=self.repo_server, log=self.log, on_gone=self.forget_app)
            return
        old = self._app_markers.get(key)
        self._app_markers[key] = marker
        if old is None or marker[:3] != old[:3] or (refresh and refresh != old[3]):
            ctrl.request_refresh(LATEST)

    def _on_appset_event(self, event_type: str, obj: dict) -> None:
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
            self.appsets[key] = AppSetController(self.env, ns, name, md.get("generation"), mgmt=self.mgmt,
                                                 settings=self.settings, destinations=self.destinations,
                                                 repo_server=self.repo_server, log=self.log,
                                                 on_gone=self._forget_appset)
            return
        if md.get("generation") != ctrl.generation:
            ctrl.generation = md.get("generation")
            ctrl.request()

    def forget_app(self, ctrl: AppController) -> None:
        """An Application's loop ended (it was deleted): drop its controller, unless a new one replaced it."""
        key = (ctrl.namespace, ctrl.name)
        if self.apps.get(key) is ctrl:
            del self.apps[key]
        self._app_markers.pop(key, None)

    def _forget_appset(self, ctrl: AppSetController) -> None:
        self.appsets.pop((ctrl.namespace, ctrl.name), None)

    def _on_managed_change(self, app: str) -> None:
        """The cluster cache saw a change to an object tracked by ``app``: re-drive its controller."""
        ctrl = self.apps.get((self.namespace, app))
        if ctrl is not None:
            ctrl.on_resource_event()

    def _resync(self) -> Any:
        t = self.timings
        while True:
            yield self.env.timeout(t.reconciliation)
            for key in sorted(self.apps):
                jitter = self._resync_rng.uniform(0, t.reconciliation_jitter) if t.reconciliation_jitter > 0 else 0.0
                self.apps[key].request_refresh(RESYNC, after=jitter)

    # ------------------------------------------------------------------ the former services, delegated
    # The controllers are given their collaborators directly; these two are what the resource tree
    # (argo/tree.py) and the explorer still ask ArgoSystem for.

    def destination(self, spec: ApplicationSpec) -> tuple[str, Any]:
        return self.destinations.destination(spec)

    def system_rules(self) -> list:
        return self.settings.ignore_rules()
