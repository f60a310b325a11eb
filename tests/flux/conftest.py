import textwrap
from pathlib import Path

import pytest

from labkit.engine.apply import EngineTimings
from labkit.flux.system import FluxSystem, FluxTimings
from labkit.gitops.repo import ManifestRepo
from labkit.sim import SimCluster

URL = "https://github.com/labkit/fleet"


class FluxLab:
    """A SimCluster + a real git repo + FluxSystem with fixed timings (fetch 1 s, build 0.5 s, webhook 1 s, API 0 s)."""

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

    def source(self, interval="1m", **extra) -> None:
        self.flux.apply({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                         "metadata": {"name": "fleet", "namespace": "flux-system"},
                         "spec": {"interval": interval, "url": URL, "ref": {"branch": "main"}, **extra}})

    def kustomization(self, name="apps", path="./apps", interval="10m", prune=True, **extra) -> None:
        self.flux.apply({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                         "metadata": {"name": name, "namespace": "flux-system"},
                         "spec": {"interval": interval, "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                                  "path": path, "prune": prune, **extra}})

    def ks(self, name="apps") -> dict:
        return self.cluster.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", name, "flux-system")

    def ready(self, name="apps") -> dict:
        for c in (self.ks(name).get("status") or {}).get("conditions") or []:
            if c["type"] == "Ready":
                return c
        return {}

    def events(self, event: str, component: str = "kustomize-controller", obj: str | None = None):
        return [e for e in self.log.filter(component=component, event=event) if obj is None or e.object == obj]

    def run(self, until: float) -> None:
        self.cluster.run(until=until)


def cm(name: str, ns: str = "default", **data) -> str:
    body = "".join(f"  {k}: \"{v}\"\n" for k, v in data.items())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n{body}"


@pytest.fixture
def make_lab(tmp_path):
    def make(files: dict[str, str], controllers: bool = False) -> FluxLab:
        return FluxLab(tmp_path, files, controllers)
    return make
