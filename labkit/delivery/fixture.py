"""One service's manifest repository, built once with real git and real kustomize.

``ServiceFixture`` is what every rollback run shares.  It holds:

* a real ``ManifestRepo`` (bare remote, GitPython) with the service's kustomize
  tree under ``apps/<name>/`` — a Namespace, a Deployment with a readiness probe,
  a Service, and a ``kustomization.yaml`` whose ``images:`` entry carries Flux's
  image-policy marker — and three commits: the **good** release, the **bad**
  release (``kustomize edit set image`` to the defective tag) and the
  **revert** (a real ``git revert`` of the bad commit);
* the manifests of each revision, rendered once with real kustomize through a
  ``labkit.gitops.render.Renderer`` that every run's Flux shares
  (``FluxSystem.renderer``): a revision's render never changes, so the cache is
  keyed by commit and the push pipeline applies the very same objects;
* the revisions' trees exported once (``ManifestRepo.export``), which is what
  source-controller stores as artifacts.

Fixtures are cached per ``ServiceSpec`` for the life of the process, so a sweep
over readiness delays builds one repository per value, not one per run.
"""
from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from labkit.gitops.render import Renderer
from labkit.gitops.repo import ManifestRepo

_FIXTURES: dict["ServiceSpec", "ServiceFixture"] = {}
_ROOT: Path | None = None


@dataclass(frozen=True)
class ServiceSpec:
    """The service whose rollback is measured."""

    name: str = "web"
    image: str = "registry.local/web"
    replicas: int = 3
    readiness_delay: float = 10.0  # readinessProbe.initialDelaySeconds
    readiness_period: float = 5.0  # readinessProbe.periodSeconds
    good_tag: str = "v1"
    bad_tag: str = "v2"
    progress_deadline: int = 600

    @property
    def path(self) -> str:
        return f"apps/{self.name}"

    @property
    def good_image(self) -> str:
        return f"{self.image}:{self.good_tag}"

    @property
    def bad_image(self) -> str:
        return f"{self.image}:{self.bad_tag}"


def manifests(spec: ServiceSpec) -> dict[str, str]:
    """The service's kustomize tree (path -> text) at the good release."""
    labels = {"app": spec.name}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": spec.name, "labels": labels},
        "spec": {"replicas": spec.replicas, "progressDeadlineSeconds": spec.progress_deadline,
                 "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{
                                  "name": "app", "image": spec.image, "ports": [{"containerPort": 8080}],
                                  "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                                     "initialDelaySeconds": int(spec.readiness_delay),
                                                     "periodSeconds": int(spec.readiness_period)}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": spec.name},
               "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}}
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.name}}
    kustomization = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"namespace: {spec.name}\n"
        "resources:\n  - namespace.yaml\n  - deployment.yaml\n  - service.yaml\n"
        "images:\n"
        f"  - name: {spec.image}\n"
        f"    newTag: {spec.good_tag} # {{\"$imagepolicy\": \"flux-system:{spec.name}:tag\"}}\n"
    )
    base = spec.path
    return {
        f"{base}/namespace.yaml": yaml.safe_dump(namespace, sort_keys=False),
        f"{base}/deployment.yaml": yaml.safe_dump(deployment, sort_keys=False),
        f"{base}/service.yaml": yaml.safe_dump(service, sort_keys=False),
        f"{base}/kustomization.yaml": kustomization,
    }


def _root() -> Path:
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="labkit-delivery-"))
        atexit.register(shutil.rmtree, _ROOT, True)
    return _ROOT


class ServiceFixture:
    """The repository, its three revisions and their renders (see the module docstring)."""

    def __init__(self, spec: ServiceSpec, root: Path):
        self.spec = spec
        self.root = root
        self.repo = ManifestRepo(root / "repo", name=f"{spec.name}-config")
        self.good = self.repo.commit(manifests(spec), message=f"{spec.name}: release {spec.good_tag}",
                                     author="alice", when=0)
        self.bad = self.repo.set_image(spec.path, spec.image, spec.bad_tag, author="bob", when=60,
                                       message=f"{spec.name}: release {spec.bad_tag}")
        self.revert = self.repo.revert(self.bad, "oncall", when=120)
        self.workdir = root / "flux"
        self.workdir.mkdir(parents=True, exist_ok=True)
        #: Shared by every run's FluxSystem: renders keyed by commit.
        self.renderer = Renderer()
        self._objects: dict[str, list[dict]] = {}
        #: sha -> exported tree (what source-controller stores as the artifact).
        self.exports: dict[str, Path] = {}
        for sha in (self.good, self.bad, self.revert):
            self.exports[sha] = self.repo.export(sha)
            self._objects[sha] = self.renderer.render(f"./{spec.path}", root=self.exports[sha], key=sha)

    @classmethod
    def get(cls, spec: ServiceSpec | None = None) -> "ServiceFixture":
        """The cached fixture of ``spec`` (built on first use)."""
        spec = spec or ServiceSpec()
        fx = _FIXTURES.get(spec)
        if fx is None:
            fx = _FIXTURES[spec] = cls(spec, _root() / f"fixture-{len(_FIXTURES)}")
        return fx

    def objects(self, sha: str) -> list[dict]:
        """Fresh copies of the rendered objects of a revision."""
        return json.loads(json.dumps(self._objects[sha if sha in self._objects else self.repo.resolve(sha)]))

    def image_of(self, sha: str) -> str:
        for o in self._objects[sha if sha in self._objects else self.repo.resolve(sha)]:
            if o["kind"] == "Deployment":
                return o["spec"]["template"]["spec"]["containers"][0]["image"]
        raise KeyError(sha)

