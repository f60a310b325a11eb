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
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

from labkit import clock as clocks
from labkit.engine.apply import EngineTimings
from labkit.events import EventLog
from labkit.flux.system import FluxSystem, FluxTimings
from labkit.gitops.repo import ManifestRepo
from labkit.sim.cluster import SimCluster
from labkit.sim.registry import ImageRegistry
from labkit.sim.timings import Timings

REPO_URL = "https://github.com/labkit/fleet"
PODINFO = "ghcr.io/stefanprodan/podinfo"
PODINFO_TAGS = ("6.5.0", "6.5.1", "6.5.2", "6.5.3", "6.5.4", "6.6.0")
WEBHOOK_TOKEN = "labkit-webhook-token"


def clusters_dir() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "clusters"


def default_registry(tags: Iterable[str] = PODINFO_TAGS) -> ImageRegistry:
    """A strict registry: podinfo's released tags exist, anything else is ErrImagePull."""
    reg = ImageRegistry(strict=True)
    reg.add(PODINFO, list(tags))
    return reg


class FleetLab:
    """The sample fleet on one clock (see module docstring)."""

    def __init__(
        self,
        *,
        seed: int = 0,
        environments: Iterable[str] = ("staging",),
        workdir: str | Path | None = None,
        webhook: bool = False,
        source_interval: str | None = None,
        registry: ImageRegistry | None = None,
        flux_timings: FluxTimings | None = None,
        engine_timings: EngineTimings | None = None,
        sim_timings: Timings | None = None,
    ):
        self.seed = seed
        self.env = clocks.virtual()
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="labkit-lab-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.git_log = EventLog(lambda: self.env.now)
        self.repo = ManifestRepo(self.workdir / "repo", log=self.git_log, url=REPO_URL)
        self.repo.seed(clusters_dir(), when=0, exclude=["README.md", "kind", "controlplane"])
        self.registry = registry or default_registry()
        self.clusters: dict[str, SimCluster] = {}
        self.flux: dict[str, FluxSystem] = {}
        for i, name in enumerate(environments):
            log = EventLog(lambda: self.env.now)
            cluster = SimCluster(seed=seed * 100 + i, name=name, env=self.env, log=log, registry=self.registry,
                                 timings=sim_timings)
            flux = FluxSystem(cluster, self.env, log=log, seed=seed * 100 + i, timings=flux_timings,
                              engine_timings=engine_timings, workdir=self.workdir / f"flux-{name}")
            flux.install()
            flux.add_remote(REPO_URL, self.repo)
            if webhook:
                flux.enable_webhook(self.repo, token=WEBHOOK_TOKEN)
            docs = [d for d in yaml.safe_load_all(self.repo.read(f"{name}/flux-system/gotk-sync.yaml")) if d]
            if source_interval:
                for d in docs:
                    if d["kind"] == "GitRepository":
                        d["spec"]["interval"] = source_interval
            flux.apply(docs, file=f"{name}/flux-system/gotk-sync.yaml")
            self.clusters[name] = cluster
            self.flux[name] = flux

    # ------------------------------------------------------------------ time

    @property
    def now(self) -> float:
        return self.env.now

    def run(self, until: float) -> None:
        self.env.run(until=until)

    def advance(self, seconds: float) -> None:
        self.env.run(until=self.env.now + seconds)

    def run_until(self, predicate, *, timeout: float, step: float = 1.0) -> float | None:
        """Advance in ``step``s until ``predicate()`` holds; the time it held, or None at ``timeout``."""
        deadline = self.env.now + timeout
        while self.env.now < deadline:
            if predicate():
                return self.env.now
            self.env.run(until=min(self.env.now + step, deadline))
        return self.env.now if predicate() else None

    # ------------------------------------------------------------------ git

    def overlay(self, environment: str) -> str:
        return f"apps/podinfo/{environment}"

    def set_image(self, environment: str, tag: str, *, author: str = "alice", message: str | None = None) -> str:
        return self.repo.set_image(self.overlay(environment), PODINFO, tag, author=author, when=self.env.now,
                                   message=message or f"podinfo {environment}: {tag}")

    # ------------------------------------------------------------------ state

    def cluster(self, environment: str = "staging") -> SimCluster:
        return self.clusters[environment]

    def deployment(self, environment: str = "staging") -> dict[str, Any] | None:
        return self.clusters[environment].get("apps/v1", "Deployment", "podinfo", f"podinfo-{environment}")

    def image(self, environment: str = "staging") -> str | None:
        dep = self.deployment(environment)
        if dep is None:
            return None
        return dep["spec"]["template"]["spec"]["containers"][0]["image"]

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
        self.repo.close()
