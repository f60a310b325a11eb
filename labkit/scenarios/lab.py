"""``FleetLab``: the sample fleet wired end to end, the starting point of the Flux scenarios.

A lab is one virtual clock shared by everything, one real manifest repository
seeded from the project's ``clusters/`` tree (``https://github.com/labkit/fleet``
as the URL the bootstrap objects name), and one simulated cluster per
environment (``staging``, ``prod``), each running its own ``FluxSystem``
bootstrapped exactly as ``flux bootstrap`` leaves a cluster: the
``flux-system`` GitRepository and Kustomization from
``clusters/<env>/flux-system/gotk-sync.yaml``, which then reconcile everything
else under ``clusters/<env>/`` from git — including the ``apps`` Kustomization
that deploys podinfo.

Each cluster keeps its own event log (its objects have the same names in every
environment); the repository's events (commits, pushes) go to ``lab.git_log``.
``frame()`` joins them into one DataFrame with a ``cluster`` column, from which
the scenarios derive every metric.

``cluster`` (the notebooks' parameter) picks where the environments live
(``labkit.scenarios.backend``).  ``sim`` is the above.  Anything else is a real
cluster: the lab's clock is the wall clock, each environment is a
``NamespacedCluster`` — a namespace-prefixed slice of the one real cluster (staging
and prod side by side, isolated from every other run) — and the cluster's own
controllers and KWOK's kubelets roll the Deployments out.  The Flux CRDs are applied
and waited for before Flux is installed (a real API server serves a new CRD a moment
after it is created), Flux's modelled durations are zero (fetching and building take
their own wall time), the controllers watch the API server (events delivered on the
lab's clock; ``poll_interval`` is the fallback when a backend cannot watch), and
``close()`` deletes the lab's namespaces.  The simulated image registry does not
exist there: which images pull is KWOK's decision (tags matching
``labkit.kube.stages.DEFAULT_MISSING_TAG_PATTERN``, e.g. ``missing-6.5.99``, fail).
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd
import yaml

from labkit.core import clock as clocks
from labkit.engine.apply import EngineTimings
from labkit.core.events import EventLog
from labkit.flux.system import FluxSystem, FluxTimings
from labkit.gitops.repo import ManifestRepo
from labkit.sim.cluster import SimCluster
from labkit.sim.registry import ImageRegistry
from labkit.sim.timings import Timings
from labkit.scenarios import backend as targets
from labkit.scenarios.isolation import NamespacedCluster

REPO_URL = "https://github.com/labkit/fleet"
PODINFO = "ghcr.io/stefanprodan/podinfo"
PODINFO_TAGS = ("6.5.0", "6.5.1", "6.5.2", "6.5.3", "6.5.4", "6.6.0")
WEBHOOK_TOKEN = "labkit-webhook-token"
#: On a real cluster: no modelled durations (the work takes its own wall time), API polls of one second.
REAL_FLUX_TIMINGS = FluxTimings.fixed(git_fetch=0.0, build=0.0, webhook_delivery=0.0)
REAL_ENGINE_TIMINGS = EngineTimings(api_call=0.0, poll_interval=1.0)
REAL_POLL_INTERVAL = 1.0


def resync(env) -> None:
    """Let a wall-clock environment's time stand still over a pause (the notebook doing something else).

    ``RealtimeEnvironment`` maps its time to the wall clock from where it started, so after a
    pause it would fire every overdue timer at once to catch up.  Re-anchoring at ``env.now``
    makes the pause invisible to the lab's clock instead (``sync()`` would re-anchor at the
    initial time).  No-op for virtual time.
    """
    if hasattr(env, "real_start"):
        import time

        env.env_start = env.now
        env.real_start = time.monotonic()


def image_of(deployment: dict[str, Any] | None) -> str | None:
    """The image of a Deployment's first container (None without a Deployment)."""
    if deployment is None:
        return None
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def clusters_dir() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "clusters"


def default_registry(tags: Iterable[str] = PODINFO_TAGS) -> ImageRegistry:
    """A strict registry: podinfo's released tags exist, anything else is ErrImagePull."""
    reg = ImageRegistry(strict=True)
    reg.add(PODINFO, list(tags))
    return reg


class LabClock:
    """The clock of a lab (``FleetLab``, ``AppLab``): ``now``, ``run``, ``advance``, ``run_until``.

    On a real cluster the wall-clock environment is re-anchored (``resync``) before each run,
    so a pause between notebook cells is not raced through afterwards.
    """

    env: Any

    @property
    def now(self) -> float:
        return self.env.now

    def run(self, until: float) -> None:
        """Advance the clock to ``until`` (absolute seconds); a time already past is a no-op."""
        if until > self.env.now:
            resync(self.env)
            self.env.run(until=until)

    def advance(self, seconds: float) -> None:
        self.run(self.env.now + seconds)

    def run_until(self, predicate: Callable[[], bool], *, timeout: float, step: float = 1.0) -> float | None:
        """Advance in ``step``s until ``predicate()`` holds; the time it held, or None at ``timeout``."""
        deadline = self.env.now + timeout
        resync(self.env)
        while self.env.now < deadline:
            if predicate():
                return self.env.now
            self.env.run(until=min(self.env.now + step, deadline))
        return self.env.now if predicate() else None


class FleetLab(LabClock):
    """The sample fleet on one clock (see module docstring)."""

    def __init__(
        self,
        *,
        seed: int = 0,
        environments: Iterable[str] = ("staging",),
        workdir: str | Path | None = None,
        webhook: bool = False,
        source_interval: str | None = None,
        apps_interval: str | None = None,
        registry: ImageRegistry | None = None,
        flux_timings: FluxTimings | None = None,
        engine_timings: EngineTimings | None = None,
        sim_timings: Timings | None = None,
        cluster: str = "sim",
        poll_interval: float = REAL_POLL_INTERVAL,
    ):
        self.seed = seed
        self.target = targets.resolve(cluster)
        self.real = self.target is not None
        self.kube = None
        self.env = clocks.realtime() if self.real else clocks.virtual()
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="labkit-lab-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.git_log = EventLog(lambda: self.env.now)
        self.repo = ManifestRepo(self.workdir / "repo", log=self.git_log, url=REPO_URL)
        self.repo.seed(clusters_dir(), when=0, exclude=["README.md", "kind", "controlplane"])
        self.clusters: dict[str, Any] = {}
        self.flux: dict[str, FluxSystem] = {}
        flux_kw: dict[str, Any] = {}
        if self.real:
            self.registry = None  # KWOK's stages decide which images pull
            self.kube = self.target.connect(env=self.env)  # bound to the clock: Flux watches instead of polling
            flux_timings = flux_timings or REAL_FLUX_TIMINGS
            engine_timings = engine_timings or REAL_ENGINE_TIMINGS
            flux_kw["poll_interval"] = poll_interval
        else:
            self.registry = registry or default_registry()
        try:
            self._bootstrap(environments, seed, webhook, source_interval, apps_interval, sim_timings, flux_timings,
                            engine_timings, flux_kw)
        except BaseException:
            if self.kube is not None:  # a half-built lab on a real cluster leaves nothing behind
                self.close()
            raise

    def _bootstrap(self, environments: Iterable[str], seed: int, webhook: bool, source_interval: str | None,
                   apps_interval: str | None, sim_timings: Timings | None, flux_timings: FluxTimings | None,
                   engine_timings: EngineTimings | None, flux_kw: dict[str, Any]) -> None:
        if self.real:
            from labkit.flux.crds import flux_crds

            targets.ensure_kinds(self.kube, flux_crds())
        for i, name in enumerate(environments):
            log = EventLog(lambda: self.env.now)
            if self.real:
                cluster = NamespacedCluster(self.kube, targets.new_prefix(name), run_id=targets.run_id(), name=name,
                                            log=log, env=self.env)
            else:
                cluster = SimCluster(seed=seed * 100 + i, name=name, env=self.env, log=log, registry=self.registry,
                                     timings=sim_timings)
            self.clusters[name] = cluster
            flux = FluxSystem(cluster, self.env, log=log, seed=seed * 100 + i, timings=flux_timings,
                              engine_timings=engine_timings, workdir=self.workdir / f"flux-{name}", **flux_kw)
            flux.install()
            flux.add_remote(REPO_URL, self.repo)
            if webhook:
                flux.enable_webhook(self.repo, token=WEBHOOK_TOKEN)
            if source_interval:
                # in git, not only in the bootstrap apply: the flux-system Kustomization re-applies
                # gotk-sync.yaml from git and would put git's interval back after its first run
                self.set_interval_in_git(f"{name}/flux-system/gotk-sync.yaml", "GitRepository", source_interval)
            if apps_interval:
                self.set_interval_in_git(f"{name}/apps.yaml", "Kustomization", apps_interval)
            docs = [d for d in yaml.safe_load_all(self.repo.read(f"{name}/flux-system/gotk-sync.yaml")) if d]
            flux.apply(docs, file=f"{name}/flux-system/gotk-sync.yaml")
            self.flux[name] = flux

    # ------------------------------------------------------------------ git

    def set_interval_in_git(self, path: str, kind: str, interval: str) -> str | None:
        """The platform team sets ``spec.interval`` of the ``kind`` object in ``path`` and commits it."""
        return self.set_duration_in_git(path, kind, "interval", interval)

    def set_duration_in_git(self, path: str, kind: str, key: str, value: str) -> str | None:
        """The platform team sets the duration ``spec.<key>`` of the ``kind`` object in ``path`` and commits it.

        Returns the commit, or None when git already has that duration (no commit: the
        repository's history stays the sample fleet's own).
        """
        from labkit.core.duration import parse_duration

        text = self.repo.read(path)
        parts = text.split("\n---\n")
        for i, part in enumerate(parts):
            doc = yaml.safe_load(part) if part.strip() else None
            if not isinstance(doc, dict) or doc.get("kind") != kind:
                continue
            current = (doc.get("spec") or {}).get(key)
            if current is not None and parse_duration(str(current)) == parse_duration(value, field=key):
                return None
            line = re.compile(rf"(?m)^(\s+{re.escape(key)}:\s*).*$")
            if current is None or not line.search(part):
                raise ValueError(f"no spec.{key} in the {kind} of {path}")
            parts[i] = line.sub(lambda m: m.group(1) + value, part, count=1)
            return self.repo.commit({path: "\n---\n".join(parts)}, message=f"{path}: {kind} {key} {value}",
                                    author="platform", when=self.env.now)
        raise ValueError(f"no {kind} in {path}")

    def overlay(self, environment: str) -> str:
        return f"apps/podinfo/{environment}"

    def set_image(self, environment: str, tag: str, *, author: str = "alice", message: str | None = None) -> str:
        return self.repo.set_image(self.overlay(environment), PODINFO, tag, author=author, when=self.env.now,
                                   message=message or f"podinfo {environment}: {tag}")

    # ------------------------------------------------------------------ state

    def cluster(self, environment: str = "staging") -> Any:
        return self.clusters[environment]

    def deployment(self, environment: str = "staging") -> dict[str, Any] | None:
        return self.clusters[environment].get("apps/v1", "Deployment", "podinfo", f"podinfo-{environment}")

    def image(self, environment: str = "staging") -> str | None:
        return image_of(self.deployment(environment))

    def kustomization(self, environment: str = "staging", name: str = "apps") -> dict[str, Any] | None:
        return self.clusters[environment].get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", name, "flux-system")

    def ready(self, environment: str = "staging", name: str = "apps") -> dict[str, Any]:
        ks = self.kustomization(environment, name) or {}
        for c in (ks.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready":
                return c
        return {}

    def applied_revision(self, environment: str = "staging", name: str = "apps") -> str:
        return ((self.kustomization(environment, name) or {}).get("status") or {}).get("lastAppliedRevision", "")

    def frame(self) -> pd.DataFrame:
        """Every cluster's event log plus the git log, as one DataFrame with a ``cluster`` column."""
        parts = []
        for name, cluster in self.clusters.items():
            df = cluster.log.to_frame()
            df.insert(0, "cluster", name)
            parts.append(df)
        g = self.git_log.to_frame()
        g.insert(0, "cluster", "git")
        parts.append(g)
        return pd.concat(parts, ignore_index=True).sort_values("time", kind="stable").reset_index(drop=True)

    def close(self) -> None:
        """Close the repository; on a real cluster delete the lab's namespaces and disconnect."""
        try:
            if self.kube is not None:
                for cluster in self.clusters.values():
                    cluster.cleanup()
        finally:
            if self.kube is not None:
                self.kube.close()
                self.kube = None
            self.repo.close()
