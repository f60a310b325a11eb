"""Shared fixtures for the secrets tests: a Flux lab on real git, and small key sizes for speed."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from labkit.engine.apply import EngineTimings
from labkit.flux.system import FluxSystem, FluxTimings
from labkit.gitops.repo import ManifestRepo
from labkit.sim import SimCluster

URL = "https://github.com/labkit/fleet"
KS_API = "kustomize.toolkit.fluxcd.io/v1"


class FluxLab:
    """A SimCluster + a real git repo + FluxSystem with fixed timings (fetch 1 s, build 0.5 s, API 0 s)."""

    def __init__(self, tmp: Path, files: dict[str, str], controllers: bool = False):
        self.cluster = SimCluster(seed=1, controllers=controllers)
        self.env = self.cluster.env
        self.log = self.cluster.log
        seed = tmp / "seed"
        for rel, text in files.items():
            p = seed / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(textwrap.dedent(text))
        self.repo = ManifestRepo(tmp / "repo", log=self.log, url=URL)
        self.repo.seed(seed, when=0)
        self.flux = FluxSystem(self.cluster, self.env, log=self.log, seed=1, timings=FluxTimings.fixed(),
                               engine_timings=EngineTimings(api_call=0.0, poll_interval=2.0), workdir=tmp / "flux")
        self.flux.install()
        self.flux.add_remote(URL, self.repo)
        self.flux.apply({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                         "metadata": {"name": "fleet", "namespace": "flux-system"},
                         "spec": {"interval": "1m", "url": URL, "ref": {"branch": "main"}}})

    def kustomization(self, name: str = "apps", path: str = "./apps", **extra) -> None:
        self.flux.apply({"apiVersion": KS_API, "kind": "Kustomization",
                         "metadata": {"name": name, "namespace": "flux-system"},
                         "spec": {"interval": "10m", "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                                  "path": path, "prune": True, **extra}})

    def ready(self, name: str = "apps") -> dict:
        ks = self.cluster.get(KS_API, "Kustomization", name, "flux-system") or {}
        for c in (ks.get("status") or {}).get("conditions") or []:
            if c["type"] == "Ready":
                return c
        return {}

    def run(self, until: float) -> None:
        self.cluster.run(until=until)


@pytest.fixture
def flux_lab(tmp_path):
    labs = []

    def make(files: dict[str, str], controllers: bool = False) -> FluxLab:
        lab = FluxLab(tmp_path, files, controllers)
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.repo.close()
