"""``FluxSystem``: Flux's controllers running against any cluster behind the seam.

This is the Flux dialect's front end, what ``flux install`` / ``flux bootstrap``
put in a cluster: the toolkit CRDs, the ``flux-system`` namespace, and two
controllers —

* **source-controller** (``labkit.flux.source``): fetches each ``GitRepository``
  on its interval (with jitter) or when asked, and stores artifacts;
* **kustomize-controller** (``labkit.flux.kustomize``): reconciles each
  ``Kustomization`` from its source's artifact through the engine's stages.

Flux objects live in the cluster as the YAML from Flux's docs, applied with
``apply()`` (validated first, so a typo is one clear error naming the file and
field).  The controllers learn about them through the backend's ``watch`` when
it has one (the simulator) or by polling (a real cluster).  Each controller
runs on the reconcile driver (``labkit.core.workqueue``) with the per-key
policy: each object gets its own reconcile loop, and a controller-wide limit
(``--concurrent``, 4 by default) bounds how many reconciles run at once.

Triggers, as in Flux: the object's interval (``interval`` after success,
``retryInterval`` after failure); a change of ``metadata.generation``; a new
``reconcile.fluxcd.io/requestedAt`` annotation (``request_reconcile``, what
``flux reconcile`` and a webhook ``Receiver`` do); and, for Kustomizations, a new
artifact of their source.

Webhooks (``enable_webhook``): a push to the remote is delivered to the
receiver as an HMAC-signed payload after a seeded network delay; the receiver
verifies it and annotates every GitRepository with that URL, so the commit is
fetched at once instead of at the next poll.

Git remotes are real repositories (``labkit.gitops.repo``) registered by URL.
Time comes from the environment (virtual in the simulator, wall time against a
real cluster) and every random draw from a seeded stream.

Errors and requeues, as controller-runtime does them.  A reconcile that fails in
one of its stages (build, plan, apply, prune, health — including a transient API
error in the middle of an apply) reports ``Ready=False`` with the stage's reason
and asks to come back after ``retryInterval``: that is kustomize-controller's
``RequeueAfter: obj.GetRetryInterval()``.  An API error *outside* the stages —
reading the object or its source, writing its status — is a returned error in
controller-runtime terms: the driver backs the object off exponentially,
``min_retry_delay * 2**failures`` capped at ``max_retry_delay`` (Flux's
``--min-retry-delay=750ms`` and ``--max-retry-delay=15m``), or after the server's
``Retry-After`` when that is longer, and its ``on_error`` hook here logs
``ReconcileError`` and writes ``Ready=False`` (reason ``ReconciliationFailed``)
when it can.  A successful return resets the back-off (``Forget``).  No API
error ever escapes a reconcile loop: one failing object never stops the
controllers.
"""
from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import simpy
import yaml

from labkit.core import clock as clocks
from labkit.core.cluster import Cluster
from labkit.core.workqueue import Driver, PerKey, RateLimiter
from labkit.engine.apply import EngineTimings, seam_latency
from labkit.core.errors import ApiError, LabkitError
from labkit.core.events import EventLog
from labkit.flux import kustomize as ks_mod
from labkit.flux import source as src_mod
from labkit.flux.api import GitRepositorySpec, KustomizationSpec, parse_flux_object
from labkit.flux.build import build_objects
from labkit.flux.crds import flux_crds
from labkit.gitops.render import Renderer

FLUX_NAMESPACE = "flux-system"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


@dataclass
class FluxTimings:
    """Seeded durations (seconds, uniform ranges) of Flux's own work in virtual time."""

    git_fetch: tuple[float, float] = (0.8, 2.0)  # ls-remote + shallow clone
    build: tuple[float, float] = (0.3, 1.2)  # kustomize build + substitution
    webhook_delivery: tuple[float, float] = (0.5, 2.0)  # git host -> receiver
    interval_jitter: float = 0.05  # source-controller --interval-jitter-percentage 5

    def draw(self, rng: random.Random, name: str) -> float:
        lo, hi = getattr(self, name)
        return lo if lo == hi else rng.uniform(lo, hi)

    @classmethod
    def fixed(cls, git_fetch: float = 1.0, build: float = 0.5, webhook_delivery: float = 1.0) -> "FluxTimings":
        """Deterministic durations, for tests that assert exact times."""
        return cls((git_fetch, git_fetch), (build, build), (webhook_delivery, webhook_delivery), 0.0)


class FluxSystem:
    """Flux's source- and kustomize-controllers over a ``Cluster`` (see module docstring)."""

    def __init__(
        self,
        cluster: Cluster,
        env: simpy.Environment,
        *,
        log: EventLog | None = None,
        seed: int = 0,
        timings: FluxTimings | None = None,
        engine_timings: EngineTimings | None = None,
        workdir: str | Path | None = None,
        concurrent: int = 4,
        poll_interval: float = 5.0,
        min_retry_delay: float = 0.75,
        max_retry_delay: float = 900.0,
    ):
        self.cluster = cluster
        self.env = env
        self.log = log if log is not None else EventLog(lambda: env.now)
        self.seed = seed
        self.timings = timings or FluxTimings()
        self.engine_timings = engine_timings or EngineTimings()
        self.interval_jitter = self.timings.interval_jitter
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="labkit-flux-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self._remotes: dict[str, Any] = {}
        self._artifacts: dict[tuple[str, str, str], Path] = {}
        self.renderer = Renderer()
        self._seen: dict[str, tuple[Any, Any]] = {}
        self.reconcilers: dict[str, Any] = {}
        self.poll_interval = poll_interval
        #: one reconcile driver per controller: a loop per object, ``concurrent`` reconciles at once
        self.drivers = {kind: Driver(env, self._reconcile, policy=PerKey(limit=concurrent), retryable=(ApiError,), read=self._read,
                                     on_gone=self._gone, on_error=self._requeue_error, settle=self._settle,
                                     limiter=RateLimiter(min_retry_delay, max_retry_delay, honour_retry_after=True))
                        for kind in (src_mod.KIND, ks_mod.KIND)}
        self.started = False

    # ------------------------------------------------------------------ set-up

    def rng(self, stream: str) -> random.Random:
        return clocks.rng_for(self.seed, f"flux:{stream}")

    def timestamp(self) -> str:
        return clocks.timestamp(self.env.now)

    def install(self) -> None:
        """Install the CRDs and the flux-system namespace, then start the controllers."""
        self.cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": FLUX_NAMESPACE}},
                           field_manager="flux")
        for crd in flux_crds():
            self.cluster.apply(crd, field_manager="flux")
        self.start()

    def add_remote(self, url: str, repo: Any) -> None:
        """Serve ``repo`` (a ``labkit.gitops.repo.ManifestRepo``) at ``url`` for GitRepository objects."""
        self._remotes[url] = repo

    def git_remote(self, url: str) -> Any:
        repo = self._remotes.get(url)
        if repo is None:
            raise LabkitError(f"unable to clone '{url}': repository not found")
        return repo

    def apply(self, manifests: str | dict | Iterable[dict], *, file: str | None = None,
              field_manager: str = "kubectl") -> list[dict]:
        """Validate and apply Flux objects (YAML text, one dict or a list), as ``kubectl apply`` would."""
        if isinstance(manifests, str):
            try:
                docs = [d for d in yaml.safe_load_all(manifests) if d]
            except yaml.YAMLError as err:
                raise LabkitError(f"invalid YAML: {err}", file=file) from None
        elif isinstance(manifests, dict):
            docs = [manifests]
        else:
            docs = list(manifests)
        for d in docs:
            if d.get("kind") in (src_mod.KIND, ks_mod.KIND):
                parse_flux_object(d, file)
        out = []
        for d in docs:
            try:
                out.append(self.cluster.apply(d, field_manager=field_manager))
            except ApiError as err:
                raise LabkitError(err.message, file=file) from None
        return out

    # ------------------------------------------------------------------ dispatch

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        watch = getattr(self.cluster, "watch", None)
        if callable(watch):
            for api_version, kind in ((src_mod.API_VERSION, src_mod.KIND), (ks_mod.API_VERSION, ks_mod.KIND)):
                watch(api_version, kind, self._on_event)
                for obj in self.cluster.list(api_version, kind):
                    self._on_event("ADDED", obj)
        else:
            self.env.process(self._poll())

    def _poll(self):
        while True:
            for api_version, kind in ((src_mod.API_VERSION, src_mod.KIND), (ks_mod.API_VERSION, ks_mod.KIND)):
                seen = set()
                try:
                    objs = self.cluster.list(api_version, kind)
                except ApiError as err:
                    self.log.record("flux", "ListFailed", kind, detail={"reason": err.reason, "message": err.message})
                    continue  # try again on the next poll; forget nothing on a failed list
                driver = self.drivers[kind]
                for obj in objs:
                    key = self._key(obj)
                    seen.add(key)
                    self._on_event("ADDED" if key not in driver else "MODIFIED", obj)
                for key in [k for k in driver.keys() if k not in seen]:
                    self.wake(key)
            yield self.env.timeout(self.poll_interval)

    @staticmethod
    def _key(obj: dict) -> str:
        md = obj["metadata"]
        return f"{obj['kind']}/{md.get('namespace', '')}/{md['name']}"

    def _on_event(self, event_type: str, obj: dict) -> None:
        key = self._key(obj)
        md = obj["metadata"]
        marker = (md.get("generation"), (md.get("annotations") or {}).get(REQUESTED_AT))
        if event_type == "DELETED":
            self.wake(key)
            return
        driver = self.drivers[obj["kind"]]
        if key not in driver:
            self._seen[key] = marker
            ns, name = md.get("namespace", ""), md["name"]
            rec = (src_mod.GitRepositoryReconciler if obj["kind"] == src_mod.KIND else ks_mod.KustomizationReconciler)(self, ns, name)
            self.reconcilers[key] = rec
            driver.add(key)
            return
        if self._seen.get(key) != marker:
            self._seen[key] = marker
            driver.add(key)

    def wake(self, key: str) -> None:
        """Reconcile the object with this key now (if it has a loop; a forgotten key stays forgotten)."""
        driver = self.drivers.get(key.split("/", 1)[0])
        if driver is not None and key in driver:
            driver.add(key)

    # the driver's hooks (labkit.core.workqueue): read the object, reconcile it, report a returned error

    def _read(self, key: str) -> dict | None:
        kind, ns, name = key.split("/", 2)
        api_version = src_mod.API_VERSION if kind == src_mod.KIND else ks_mod.API_VERSION
        return self.cluster.get(api_version, kind, name, ns)

    def _reconcile(self, key: str, obj: dict) -> Any:
        return self.reconcilers[key].reconcile(obj)

    def _gone(self, key: str) -> None:
        self.reconcilers.pop(key, None)
        self.log.record("flux", "Forgotten", key)

    def _settle(self, _key: str):
        extra = seam_latency(self.cluster)
        if extra > 0:  # slow API calls that no engine stage has accounted for yet
            yield self.env.timeout(extra)

    def _requeue_error(self, key: str, err: BaseException, delay: float | None, obj: dict | None) -> None:
        """A returned error: log it and report it on the object if possible (the driver backs off)."""
        kind = key.split("/", 1)[0]
        component = "source-controller" if kind == src_mod.KIND else "kustomize-controller"
        self.log.record(component, "ReconcileError", key,
                        detail={"reason": err.reason, "code": err.code, "message": err.message,  # type: ignore[attr-defined]
                                "failures": self.drivers[kind].limiter.failures(key), "retry_in": delay})
        report = getattr(self.reconcilers.get(key), "report_error", None)
        if obj is not None and callable(report):
            try:
                report(obj, err, delay)
            except ApiError:
                pass  # the API is still failing: the log has it, the next attempt will report

    # ------------------------------------------------------------------ services for reconcilers

    def write_status(self, api_version: str, kind: str, name: str, namespace: str, status: dict) -> None:
        manager = "source-controller" if kind == src_mod.KIND else "kustomize-controller"
        try:
            self.cluster.patch_status(api_version, kind, name, namespace, status, field_manager=manager)
        except ApiError as err:
            if err.reason != "NotFound":
                raise

    def store_artifact(self, namespace: str, name: str, sha: str, path: Path) -> None:
        self._artifacts[(namespace, name, sha)] = path

    def artifact_for(self, kind: str, namespace: str, name: str) -> tuple[str, str, Path] | None:
        """``(revision, sha, path)`` of a source's current artifact, or None."""
        if kind != src_mod.KIND:
            return None
        obj = self.cluster.get(src_mod.API_VERSION, kind, name, namespace)
        art = ((obj or {}).get("status") or {}).get("artifact")
        if not art:
            return None
        revision = art["revision"]
        sha = revision.rsplit(":", 1)[-1]
        path = self._artifacts.get((namespace, name, sha))
        return (revision, sha, path) if path is not None else None

    def source_changed(self, namespace: str, name: str) -> None:
        """Wake every Kustomization whose sourceRef is this GitRepository.

        A Kustomization that cannot be read (API error) is woken anyway: a
        spurious reconcile costs a dry-run, a missed one delays the new revision
        by a whole interval.
        """
        for key, rec in list(self.reconcilers.items()):
            if not key.startswith(ks_mod.KIND + "/"):
                continue
            try:
                obj = self.cluster.get(ks_mod.API_VERSION, ks_mod.KIND, rec.name, rec.namespace)
            except ApiError:
                self.wake(key)
                continue
            ref = ((obj or {}).get("spec") or {}).get("sourceRef") or {}
            if ref.get("kind") == src_mod.KIND and ref.get("name") == name and (ref.get("namespace") or rec.namespace) == namespace:
                self.wake(key)

    # ------------------------------------------------------------------ user actions

    def diff(self, name: str, namespace: str = FLUX_NAMESPACE) -> Any:
        """What ``flux diff kustomization`` shows: the plan of the current artifact against live state.

        Builds the Kustomization's current source artifact and dry-runs it
        (``labkit.engine.plan``); nothing is written.  Entries ``configured`` list
        the drifted paths.  Raises ``LabkitError`` if it cannot be built.
        """
        from labkit.engine.plan import plan

        obj = self.cluster.get(ks_mod.API_VERSION, ks_mod.KIND, name, namespace)
        if obj is None:
            raise LabkitError(f"Kustomization {namespace}/{name} not found")
        spec = KustomizationSpec.from_obj(obj)
        src = spec.source_ref
        artifact = self.artifact_for(src.kind, src.namespace or namespace, src.name)
        if artifact is None:
            raise LabkitError(f"Kustomization {namespace}/{name}: source artifact not found")
        _, sha, root = artifact
        objects = build_objects(self.renderer, self.cluster, root, obj.get("spec") or {}, sha, name, namespace,
                                spec.post_build)
        return plan(self.cluster, objects, field_manager=ks_mod.FIELD_MANAGER, ignore=list(spec.ignore),
                    policy=ks_mod.FLUX_POLICY)

    def request_reconcile(self, kind: str, name: str, namespace: str = FLUX_NAMESPACE) -> str:
        """Annotate with ``reconcile.fluxcd.io/requestedAt`` (what ``flux reconcile`` does)."""
        api_version = src_mod.API_VERSION if kind == src_mod.KIND else ks_mod.API_VERSION
        stamp = f"{self.timestamp()}#{self.env.now:.3f}"
        patch = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace,
                                                                        "annotations": {REQUESTED_AT: stamp}}}
        self.cluster.apply(patch, field_manager="flux-client-side-apply", force=True)
        return stamp

    def enable_webhook(self, repo: Any, *, token: str, url: str | None = None) -> Any:
        """Deliver pushes of ``repo`` to a signature-checking receiver that refreshes its GitRepositories.

        The git host signs each push payload (HMAC-SHA256, ``X-Hub-Signature-256``)
        and delivers it after a seeded network delay; the receiver verifies it and
        annotates every GitRepository whose ``spec.url`` is the repository's URL.
        """
        from labkit.gitops.webhook import WebhookReceiver, github_delivery

        url = url or repo.url
        receiver = WebhookReceiver(token, self.log)
        rng = self.rng("webhook")

        def on_delivery(_delivery: Any) -> None:
            for key, rec in list(self.reconcilers.items()):
                if not key.startswith(src_mod.KIND + "/"):
                    continue
                try:
                    obj = self.cluster.get(src_mod.API_VERSION, src_mod.KIND, rec.name, rec.namespace)
                    if obj and (obj.get("spec") or {}).get("url") == url:
                        self.request_reconcile(src_mod.KIND, rec.name, rec.namespace)
                except ApiError as err:  # the receiver answers 500; the source's poll interval still applies
                    self.log.record("webhook", "WebhookDispatchFailed", key,
                                    detail={"reason": err.reason, "message": err.message})

        receiver.subscribe(on_delivery)

        def deliver(headers: dict, body: bytes) -> Any:
            yield self.env.timeout(self.timings.draw(rng, "webhook_delivery"))
            receiver.receive(headers, body, time=self.env.now)

        def on_push(event: Any) -> None:
            headers, body = github_delivery(event.payload, token)
            self.env.process(deliver(headers, body))

        repo.on_push(on_push)
        return receiver
