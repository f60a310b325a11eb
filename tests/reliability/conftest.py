"""Fixtures of the reliability suite: a Flux lab whose cluster, git remote and renderer can fail.

``FaultLab`` is ``tests/flux/conftest.py``'s ``FluxLab`` with the fault seam in
place: Flux talks to ``FaultyCluster(AuditCluster(SimCluster))``, fetches
through a ``FaultyRemote`` and renders through a ``FaultyRenderer``, all driven
by one ``FaultPlan`` (``lab.plan``; empty until a test adds rules).  Timings
are fixed — git fetch 1 s, build 0.5 s, API calls 0 s, no jitter — so the
expected times in the tests follow from the rules under test.

Hypothesis profiles: ``ci`` (the default; a few hundred examples over the
property tests in about a minute) and ``soak`` (many more examples; select it
with ``HYPOTHESIS_PROFILE=soak`` and run the ``soak``-marked tests with
``pytest -m soak`` or ``LABKIT_SOAK=1``).
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from labkit.core.clock import rng_for
from labkit.engine.apply import EngineTimings
from labkit.faults import AuditCluster, Fault, FaultPlan, FaultyCluster, FaultyRemote, FaultyRenderer
from labkit.flux.system import FluxSystem, FluxTimings
from labkit.gitops.repo import ManifestRepo
from labkit.sim import SimCluster

URL = "https://github.com/labkit/fleet"

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("soak", deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

def pytest_terminal_summary(terminalreporter: "pytest.TerminalReporter", exitstatus: int, config: pytest.Config) -> None:
    from tests.reliability.counts import RUN_COUNTS

    if RUN_COUNTS:
        terminalreporter.write_sep("-", "reliability suite: what ran")
        for key in sorted(RUN_COUNTS):
            terminalreporter.write_line(f"{key}: {RUN_COUNTS[key]}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long property/soak runs (pytest -m soak, or LABKIT_SOAK=1)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``soak`` tests run only when asked for: ``-m soak`` or ``LABKIT_SOAK=1``."""
    if os.environ.get("LABKIT_SOAK") == "1" or "soak" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="soak run: use pytest -m soak or LABKIT_SOAK=1")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


def cm(name: str, ns: str = "default", **data: str) -> str:
    body = "".join(f"  {k}: \"{v}\"\n" for k, v in data.items())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n{body}"


class FaultLab:
    """SimCluster + real git + FluxSystem, with every seam wrapped for fault injection."""

    def __init__(self, tmp: Path, files: dict[str, str], *, controllers: bool = False, seed: int = 1,
                 renderer: object | None = None, max_retry_delay: float = 900.0):
        self.sim = SimCluster(seed=seed, controllers=controllers)
        self.env = self.sim.env
        self.log = self.sim.log
        self.plan = FaultPlan(log=self.log)
        self.audit = AuditCluster(self.sim)
        self.cluster = FaultyCluster(self.audit, self.plan, rng_for(seed, "faults:api"))
        src = tmp / "seed"
        for rel, text in files.items():
            p = src / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(textwrap.dedent(text))
        self.repo = ManifestRepo(tmp / "repo", log=self.log, url=URL)
        self.repo.seed(src, when=0)
        self.remote = FaultyRemote(self.repo, self.plan, rng_for(seed, "faults:git"), env=self.env)
        self.flux = FluxSystem(self.cluster, self.env, log=self.log, seed=seed, timings=FluxTimings.fixed(),
                               engine_timings=EngineTimings(api_call=0.0, poll_interval=2.0), workdir=tmp / "flux",
                               max_retry_delay=max_retry_delay)
        if renderer is not None:
            self.flux.renderer = renderer
        self.flux.renderer = FaultyRenderer(self.flux.renderer, self.plan, rng_for(seed, "faults:render"), env=self.env)
        self.flux.install()
        self.flux.add_remote(URL, self.remote)

    def fault(self, kind: str, **kw: object) -> Fault:
        f = Fault(kind, **kw)  # type: ignore[arg-type]
        self.plan.add(f)
        return f

    def source(self, interval: str = "1m", **extra: object) -> None:
        self.flux.apply({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                         "metadata": {"name": "fleet", "namespace": "flux-system"},
                         "spec": {"interval": interval, "url": URL, "ref": {"branch": "main"}, **extra}})

    def kustomization(self, name: str = "apps", path: str = "./apps", interval: str = "10m", prune: bool = True,
                      **extra: object) -> None:
        self.flux.apply({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                         "metadata": {"name": name, "namespace": "flux-system"},
                         "spec": {"interval": interval, "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                                  "path": path, "prune": prune, **extra}})

    def ks(self, name: str = "apps") -> dict:
        return self.sim.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", name, "flux-system")

    def gitrepo(self, name: str = "fleet") -> dict:
        return self.sim.get("source.toolkit.fluxcd.io/v1", "GitRepository", name, "flux-system")

    def ready(self, name: str = "apps", obj: dict | None = None) -> dict:
        obj = obj if obj is not None else self.ks(name)
        for c in (obj.get("status") or {}).get("conditions") or []:
            if c["type"] == "Ready":
                return c
        return {}

    def inventory(self, name: str = "apps") -> list[str]:
        return [e["id"] for e in ((self.ks(name).get("status") or {}).get("inventory") or {}).get("entries") or []]

    def events(self, event: str, component: str = "kustomize-controller", obj: str | None = None) -> list:
        return [e for e in self.log.filter(component=component, event=event) if obj is None or e.object == obj]

    def times(self, event: str, component: str = "kustomize-controller") -> list[float]:
        return [e.time for e in self.events(event, component)]

    def data(self, name: str, ns: str = "default") -> dict | None:
        obj = self.sim.get("v1", "ConfigMap", name, ns)
        return None if obj is None else obj.get("data")

    def run(self, until: float) -> None:
        self.sim.run(until=until)


@pytest.fixture
def make_lab(tmp_path: Path):
    def make(files: dict[str, str], **kw: object) -> FaultLab:
        return FaultLab(tmp_path, files, **kw)  # type: ignore[arg-type]
    return make


class ArgoFaultLab:
    """SimCluster + real git + ArgoSystem, with the cluster, the git remote and manifest generation faultable.

    The management cluster is the destination (``in-cluster``); Applications
    are automated (prune + self-heal) Directory sources; timings are fixed:
    git and manifest generation 0 s, webhook delivery 1 s, no resync jitter,
    ``timeout.reconciliation`` 120 s, API calls 0 s.
    """

    def __init__(self, tmp: Path, files: dict[str, str], *, seed: int = 1, webhook: bool = True):
        from labkit.argo import ArgoSystem, ArgoTimings

        self.sim = SimCluster(seed=seed, controllers=False)
        self.env = self.sim.env
        self.log = self.sim.log
        self.plan = FaultPlan(log=self.log)
        self.audit = AuditCluster(self.sim)
        self.cluster = FaultyCluster(self.audit, self.plan, rng_for(seed, "faults:api"))
        src = tmp / "seed"
        for rel, text in files.items():
            p = src / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(textwrap.dedent(text))
        self.repo = ManifestRepo(tmp / "repo", log=self.log, url=URL)
        self.repo.seed(src, when=0)
        self.remote = FaultyRemote(self.repo, self.plan, rng_for(seed, "faults:git"), env=self.env)
        self.argo = ArgoSystem(self.cluster, self.env, log=self.log, seed=seed, timings=ArgoTimings.fixed(),
                               engine_timings=EngineTimings(api_call=0.0))
        self.argo.repo_server.gate = FaultyRenderer(None, self.plan, rng_for(seed, "faults:render"), env=self.env).gate
        self.argo.add_repo(self.remote, URL)
        if webhook:
            self.argo.enable_webhook(self.remote)
        self.argo.install()

    def fault(self, kind: str, **kw: object) -> Fault:
        f = Fault(kind, **kw)  # type: ignore[arg-type]
        self.plan.add(f)
        return f

    def application(self, name: str = "apps", path: str = "apps", *, self_heal: bool = True,
                    retry: dict | None = None) -> None:
        policy: dict = {"automated": {"prune": True, "selfHeal": self_heal}}
        if retry is not None:
            policy["retry"] = retry
        self.argo.apply({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                         "metadata": {"name": name, "namespace": "argocd"},
                         "spec": {"project": "default",
                                  "source": {"repoURL": URL, "targetRevision": "HEAD", "path": path},
                                  "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
                                  "syncPolicy": policy}}, file=f"argocd/{name}.yaml")

    def status(self, name: str = "apps") -> dict:
        return (self.sim.get("argoproj.io/v1alpha1", "Application", name, "argocd") or {}).get("status") or {}

    def conditions(self, name: str = "apps") -> dict[str, str]:
        return {c["type"]: c["message"] for c in self.status(name).get("conditions") or []}

    def events(self, event: str, component: str = "argocd-application-controller") -> list:
        return self.log.filter(component=component, event=event)

    def times(self, event: str, component: str = "argocd-application-controller") -> list[float]:
        return [e.time for e in self.events(event, component)]

    def data(self, name: str, ns: str = "default") -> dict | None:
        obj = self.sim.get("v1", "ConfigMap", name, ns)
        return None if obj is None else obj.get("data")

    def commit(self, files: dict[str, str | None], at: float) -> str:
        """Commit and push at virtual time ``at`` (the clock is run up to it first)."""
        if at > self.env.now:
            self.sim.run(until=at)
        return self.repo.commit(files, message="change", author="alice", when=at)

    def run(self, until: float) -> None:
        self.sim.run(until=until)


@pytest.fixture
def make_argo_lab(tmp_path: Path):
    def make(files: dict[str, str], **kw: object) -> ArgoFaultLab:
        return ArgoFaultLab(tmp_path, files, **kw)  # type: ignore[arg-type]
    return make
