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
it has one (the simulator) or by polling (a real cluster).  Each object gets its
own reconcile loop as a SimPy process, and a controller-wide worker pool
(``--concurrent``, 4 by default) bounds how many run at once.

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
"""
from __future__ import annotations

import json
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import simpy
import yaml

from labkit import clock as clocks
from labkit.cluster import Cluster
from labkit.engine.apply import EngineTimings
from labkit.errors import ApiError, LabkitError
from labkit.events import EventLog
from labkit.flux import kustomize as ks_mod
from labkit.flux import source as src_mod
from labkit.flux.api import GitRepositorySpec, KustomizationSpec, parse_flux_object
from labkit.flux.crds import flux_crds

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
        self._render_cache: dict[tuple[str, str], list[dict]] = {}
        self._loops: dict[str, Any] = {}
        self._wakes: dict[str, simpy.Event] = {}
        self._seen: dict[str, tuple[Any, Any]] = {}
        self.reconcilers: dict[str, Any] = {}
        self.workers = {
            src_mod.KIND: simpy.Resource(env, capacity=concurrent),
            ks_mod.KIND: simpy.Resource(env, capacity=concurrent),
        }
        self.poll_interval = poll_interval
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
                for obj in self.cluster.list(api_version, kind):
                    key = self._key(obj)
                    seen.add(key)
                    self._on_event("ADDED" if key not in self._loops else "MODIFIED", obj)
                for key in [k for k in self._loops if k.startswith(kind + "/") and k not in seen]:
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
        if key not in self._loops:
            self._seen[key] = marker
            self._wakes[key] = self.env.event()
            ns, name = md.get("namespace", ""), md["name"]
            rec = (src_mod.GitRepositoryReconciler if obj["kind"] == src_mod.KIND else ks_mod.KustomizationReconciler)(self, ns, name)
            self.reconcilers[key] = rec
            self._loops[key] = self.env.process(self._loop(key, obj["kind"], obj["apiVersion"], rec))
            return
        if self._seen.get(key) != marker:
            self._seen[key] = marker
            self.wake(key)

    def wake(self, key: str) -> None:
        ev = self._wakes.get(key)
        if ev is not None and not ev.triggered:
            ev.succeed()

    def _loop(self, key: str, kind: str, api_version: str, rec: Any):
        delay: float | None = 0.0
        _, ns, name = key.split("/", 2)
        while True:
            wake = self._wakes[key]
            if delay is None:
                yield wake
            elif delay > 0:
                yield self.env.timeout(delay) | wake
            if wake.triggered:
                self._wakes[key] = self.env.event()
            obj = self.cluster.get(api_version, kind, name, ns)
            if obj is None:
                self._loops.pop(key, None)
                self._wakes.pop(key, None)
                self.reconcilers.pop(key, None)
                self.log.record("flux", "Forgotten", key)
                return
            with self.workers[kind].request() as req:
                yield req
                delay = yield from rec.reconcile(obj)

    # ------------------------------------------------------------------ services for reconcilers

    def write_status(self, api_version: str, kind: str, name: str, namespace: str, status: dict) -> None:
        manager = "source-controller" if kind == src_mod.KIND else "kustomize-controller"
        try:
            self.cluster.patch_status(api_version, kind, name, namespace, status, field_manager=manager)
        except ApiError as err:
            if err.reason != "NotFound":
                raise

    def artifact_path(self, namespace: str, name: str, sha: str) -> Path:
        p = src_mod.artifact_dir(self.workdir, namespace, name, sha)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def artifact_for(self, kind: str, namespace: str, name: str) -> tuple[str, Path] | None:
        if kind != src_mod.KIND:
            return None
        obj = self.cluster.get(src_mod.API_VERSION, kind, name, namespace)
        art = ((obj or {}).get("status") or {}).get("artifact")
        if not art:
            return None
        revision = art["revision"]
        sha = revision.rsplit(":", 1)[-1]
        path = src_mod.artifact_dir(self.workdir, namespace, name, sha)
        return (revision, path) if path.exists() else None

    def source_changed(self, namespace: str, name: str) -> None:
        """Wake every Kustomization whose sourceRef is this GitRepository."""
        for key, rec in list(self.reconcilers.items()):
            if not key.startswith(ks_mod.KIND + "/"):
                continue
            obj = self.cluster.get(ks_mod.API_VERSION, ks_mod.KIND, rec.name, rec.namespace)
            ref = ((obj or {}).get("spec") or {}).get("sourceRef") or {}
            if ref.get("kind") == src_mod.KIND and ref.get("name") == name and (ref.get("namespace") or rec.namespace) == namespace:
                self.wake(key)

    def render(self, root: Path, path: str, revision: str) -> list[dict]:
        """Real kustomize build of ``path`` inside the artifact ``root`` (cached per revision and path)."""
        from labkit.gitops.render import render_path

        key = (revision, path)
        cached = self._render_cache.get(key)
        if cached is None:
            cached = render_path(root, path)
            self._render_cache[key] = cached
        return json.loads(json.dumps(cached))

    def substitute(self, objects: list[dict], post_build: Any, namespace: str) -> list[dict]:
        from labkit.gitops.substitute import collect_variables, substitute

        sources = []
        for ref in post_build.substitute_from:
            api_kind = ref.kind
            obj = self.cluster.get("v1", api_kind, ref.name, namespace)
            if obj is None:
                if ref.optional:
                    continue
                raise LabkitError(f"substitute from '{api_kind}/{ref.name}' failed: "
                                  f"{api_kind.lower()}s \"{ref.name}\" not found")
            sources.append(obj)
        variables = collect_variables(dict(post_build.substitute), sources)
        return substitute(objects, variables, strict=True)

    # ------------------------------------------------------------------ user actions

    def request_reconcile(self, kind: str, name: str, namespace: str = FLUX_NAMESPACE) -> str:
        """Annotate with ``reconcile.fluxcd.io/requestedAt`` (what ``flux reconcile`` does)."""
        api_version = src_mod.API_VERSION if kind == src_mod.KIND else ks_mod.API_VERSION
        stamp = f"{self.timestamp()}#{self.env.now:.3f}"
        patch = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace,
                                                                        "annotations": {REQUESTED_AT: stamp}}}
        self.cluster.apply(patch, field_manager="flux-client-side-apply", force=True)
        return stamp

    def enable_webhook(self, repo: Any, url: str, *, token: str) -> Any:
        """Deliver pushes of ``repo`` to a signature-checking receiver that refreshes GitRepositories of ``url``."""
        from labkit.gitops.webhook import WebhookReceiver, sign

        receiver = WebhookReceiver(token, self.log)
        rng = self.rng("webhook")

        def on_payload(payload: dict) -> None:
            for key, rec in list(self.reconcilers.items()):
                if not key.startswith(src_mod.KIND + "/"):
                    continue
                obj = self.cluster.get(src_mod.API_VERSION, src_mod.KIND, rec.name, rec.namespace)
                if obj and (obj.get("spec") or {}).get("url") == url:
                    self.request_reconcile(src_mod.KIND, rec.name, rec.namespace)

        receiver.subscribe(on_payload)

        def deliver(body: bytes) -> Any:
            yield self.env.timeout(self.timings.draw(rng, "webhook_delivery"))
            headers = {"X-Hub-Signature-256": sign(body, token), "X-GitHub-Event": "push"}
            receiver.receive(headers, body)

        def on_push(event: dict) -> None:
            body = json.dumps({"ref": f"refs/heads/{event.get('branch', 'main')}", "after": event.get("sha", ""),
                               "repository": {"url": url}}).encode()
            self.env.process(deliver(body))

        repo.on_push(on_push)
        return receiver
