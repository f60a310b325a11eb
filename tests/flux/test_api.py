"""Flux object parsing.  The YAML documents are copied verbatim from Flux's docs
(fluxcd/source-controller ``docs/spec/v1/gitrepositories.md``, fluxcd/kustomize-controller
``docs/spec/v1/kustomizations.md``); defaults and validation follow the CRD types
(``api/v1/gitrepository_types.go``, ``api/v1/kustomization_types.go`` incl. ``GetTimeout``)."""
from __future__ import annotations

import pytest
import yaml

from labkit.engine.normalize import IgnoreRule, Selector
from labkit.core.errors import LabkitError
from labkit.flux.api import (
    KUSTOMIZE_API_VERSION,
    SOURCE_API_VERSION,
    CrossNamespaceSourceReference,
    DependencyReference,
    GitRepositoryRef,
    GitRepositorySpec,
    HealthCheckReference,
    KustomizationSpec,
    LocalObjectReference,
    SubstituteReference,
    parse_flux_object,
)

# ----------------------------------------------------------------- verbatim from the docs

PODINFO = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: podinfo
  namespace: default
spec:
  interval: 5m
  url: https://github.com/stefanprodan/podinfo
  ref:
    branch: master
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: podinfo
  namespace: default
spec:
  interval: 10m
  targetNamespace: default
  sourceRef:
    kind: GitRepository
    name: podinfo
  path: "./kustomize"
  prune: true
  timeout: 1m
"""

GITREPO_EXAMPLE = """\
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: podinfo
  namespace: default
spec:
  interval: 5m0s
  url: https://github.com/stefanprodan/podinfo
  ref:
    branch: master
"""

GITREPO_VERIFY = """\
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: podinfo
  namespace: default
spec:
  interval: 1m
  url: https://github.com/stefanprodan/podinfo
  ref:
    branch: master
  verify:
    mode: HEAD
    secretRef:
      name: pgp-public-keys
"""

HEALTHCHECK_BACKEND = """\
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: backend
  namespace: default
spec:
  interval: 5m
  prune: true
  sourceRef:
    kind: GitRepository
    name: webapp
  healthChecks:
    - apiVersion: apps/v1
      kind: Deployment
      name: backend
      namespace: dev
"""

HELMRELEASE_CHECKS = """\
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: webapp
  namespace: default
spec:
  interval: 15m
  path: "./releases/"
  prune: true
  sourceRef:
    kind: GitRepository
    name: webapp
  healthChecks:
    - apiVersion: helm.toolkit.fluxcd.io/v2
      kind: HelmRelease
      name: frontend
      namespace: dev
    - apiVersion: helm.toolkit.fluxcd.io/v2
      kind: HelmRelease
      name: backend
      namespace: dev
  timeout: 5m
"""

DEPENDS_ON = """\
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: cert-manager
  namespace: flux-system
spec:
  interval: 5m
  path: "./cert-manager/controller"
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  healthChecks:
    - apiVersion: apps/v1
      kind: Deployment
      name: cert-manager
      namespace: cert-manager
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: certs
  namespace: flux-system
spec:
  dependsOn:
    - name: cert-manager
  interval: 5m
  path: "./cert-manager/certs"
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""

SEALED_SECRETS = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: sealed-secrets
  namespace: flux-system
spec:
  interval: 5m
  path: ./path/to/sealed/secrets
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  timeout: 1m
  wait: true # Tells the controller to wait for all resources to be ready by performing health checks.
  healthCheckExprs:
    - apiVersion: bitnami.com/v1alpha1
      kind: SealedSecret
      failed: status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'False')
      current: status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'True')
"""

# The docs' cross-namespace example omits the required prune field.
CROSS_NAMESPACE = """\
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: webapp
  namespace: apps
spec:
  interval: 5m
  path: "./deploy"
  sourceRef:
    kind: GitRepository
    name: webapp
    namespace: shared
"""


def docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


def test_podinfo_example():
    repo_obj, ks_obj = docs(PODINFO)
    repo = GitRepositorySpec.from_obj(repo_obj, "podinfo.yaml")
    assert repo.name == "podinfo" and repo.namespace == "default"
    assert repo.url == "https://github.com/stefanprodan/podinfo"
    assert repo.interval == 300.0
    assert repo.timeout == 60.0  # +kubebuilder:default="60s"
    assert repo.ref == GitRepositoryRef(branch="master")
    assert repo.ref.resolved == ("branch", "master")
    assert repo.suspend is False and repo.secret_ref is None and repo.ignore is None

    ks = KustomizationSpec.from_obj(ks_obj, "podinfo.yaml")
    assert ks.interval == 600.0
    assert ks.target_namespace == "default"
    assert ks.source_ref == CrossNamespaceSourceReference("GitRepository", "podinfo", "default")
    assert ks.path == "./kustomize"
    assert ks.prune is True
    assert ks.timeout == 60.0 and ks.timeout_spec == 60.0
    assert ks.retry_interval == 600.0 and ks.retry_interval_spec is None
    assert ks.wait is False and ks.force is False and ks.suspend is False
    assert ks.health_checks == () and ks.depends_on == () and ks.ignore == ()


def test_gitrepository_examples():
    repo = GitRepositorySpec.from_obj(docs(GITREPO_EXAMPLE)[0])
    assert repo.interval == 300.0
    verified = GitRepositorySpec.from_obj(docs(GITREPO_VERIFY)[0])
    assert verified.interval == 60.0
    assert verified.extra == {"verify": {"mode": "HEAD", "secretRef": {"name": "pgp-public-keys"}}}


def test_healthchecks_example():
    ks = KustomizationSpec.from_obj(docs(HEALTHCHECK_BACKEND)[0])
    assert ks.health_checks == (HealthCheckReference("Deployment", "backend", "apps/v1", "dev"),)
    assert ks.path == "./"
    # GetTimeout: interval - 30s when timeout is unset
    assert ks.timeout == 270.0 and ks.timeout_spec is None


def test_helmrelease_healthchecks_example():
    ks = KustomizationSpec.from_obj(docs(HELMRELEASE_CHECKS)[0])
    assert [h.name for h in ks.health_checks] == ["frontend", "backend"]
    assert ks.health_checks[0].api_version == "helm.toolkit.fluxcd.io/v2"
    assert ks.timeout == 300.0


def test_depends_on_example_defaults_namespace():
    _, certs = [KustomizationSpec.from_obj(d) for d in docs(DEPENDS_ON)]
    assert certs.depends_on == (DependencyReference("cert-manager", "flux-system"),)
    assert certs.source_ref.namespace == "flux-system"


def test_sealed_secrets_example_keeps_unmodelled_fields():
    ks = KustomizationSpec.from_obj(docs(SEALED_SECRETS)[0])
    assert ks.wait is True
    assert ks.extra["healthCheckExprs"][0]["kind"] == "SealedSecret"


def test_cross_namespace_example_without_prune_is_rejected():
    with pytest.raises(LabkitError) as exc:
        KustomizationSpec.from_obj(docs(CROSS_NAMESPACE)[0], "apps.yaml")
    assert str(exc.value) == "apps.yaml: spec.prune: required field missing"


# ----------------------------------------------------------------- defaults and derived values


def ks(**spec):
    base = {"interval": "10m", "prune": False, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}
    base.update(spec)
    return {"apiVersion": KUSTOMIZE_API_VERSION, "kind": "Kustomization", "metadata": {"name": "apps", "namespace": "flux-system"}, "spec": base}


def repo(**spec):
    base = {"interval": "1m", "url": "https://github.com/org/fleet"}
    base.update(spec)
    return {"apiVersion": SOURCE_API_VERSION, "kind": "GitRepository", "metadata": {"name": "fleet", "namespace": "flux-system"}, "spec": base}


@pytest.mark.parametrize(
    "spec, timeout",
    [
        ({"interval": "10m"}, 570.0),
        ({"interval": "1m"}, 30.0),
        ({"interval": "30s"}, 30.0),
        ({"interval": "10m", "timeout": "2m"}, 120.0),
        ({"interval": "10m", "timeout": "10s"}, 30.0),
    ],
)
def test_kustomization_timeout_follows_get_timeout(spec, timeout):
    assert KustomizationSpec.from_obj(ks(**spec)).timeout == timeout


def test_retry_interval():
    assert KustomizationSpec.from_obj(ks()).retry_interval == 600.0
    k = KustomizationSpec.from_obj(ks(retryInterval="2m"))
    assert k.retry_interval == 120.0 and k.retry_interval_spec == 120.0


def test_post_build_and_decryption():
    k = KustomizationSpec.from_obj(
        ks(
            postBuild={
                "substitute": {"cluster_env": "prod", "cluster_region": "eu-central-1"},
                "substituteFrom": [
                    {"kind": "ConfigMap", "name": "cluster-vars", "optional": True},
                    {"kind": "Secret", "name": "cluster-secret-vars"},
                ],
            },
            decryption={"provider": "sops", "secretRef": {"name": "sops-age"}},
            force=True,
            suspend=True,
            wait=True,
        )
    )
    assert k.post_build is not None
    assert k.post_build.substitute == {"cluster_env": "prod", "cluster_region": "eu-central-1"}
    assert k.post_build.substitute_from == (
        SubstituteReference("ConfigMap", "cluster-vars", True),
        SubstituteReference("Secret", "cluster-secret-vars", False),
    )
    assert k.decryption is not None and k.decryption.provider == "sops"
    assert k.decryption.secret_ref == LocalObjectReference("sops-age")
    assert (k.force, k.suspend, k.wait) == (True, True, True)


def test_ignore_rules_upstream_form_and_shorthand():
    k = KustomizationSpec.from_obj(
        ks(
            ignore=[
                {"paths": ["/spec/replicas"], "target": {"kind": "Deployment", "labelSelector": "app=web"}},
                {"paths": ["/data/a", "/data/b"]},
                "/metadata/annotations/example.com~1owner",
            ]
        )
    )
    assert k.ignore == (
        IgnoreRule(("/spec/replicas",), Selector(kind="Deployment", label_selector="app=web")),
        IgnoreRule(("/data/a", "/data/b")),
        IgnoreRule(("/metadata/annotations/example.com~1owner",)),
    )


def test_git_ref_precedence():
    assert GitRepositorySpec.from_obj(repo(ref={"branch": "main", "tag": "v1"})).ref.resolved == ("tag", "v1")
    assert GitRepositorySpec.from_obj(repo(ref={"tag": "v1", "semver": ">=1.0"})).ref.resolved == ("semver", ">=1.0")
    assert GitRepositorySpec.from_obj(repo(ref={"semver": ">=1.0", "name": "refs/heads/x"})).ref.resolved == ("name", "refs/heads/x")
    assert GitRepositorySpec.from_obj(repo(ref={"branch": "main", "commit": "abc"})).ref.resolved == ("commit", "abc")
    assert GitRepositorySpec.from_obj(repo()).ref.resolved == ("branch", "master")


def test_git_repository_optional_fields():
    r = GitRepositorySpec.from_obj(
        repo(url="file:///tmp/remote.git", timeout="1m30s", secretRef={"name": "auth"}, ignore="/*\n!/deploy\n", suspend=True)
    )
    assert r.url == "file:///tmp/remote.git"
    assert r.timeout == 90.0 and r.secret_ref == LocalObjectReference("auth")
    assert r.ignore == "/*\n!/deploy\n" and r.suspend is True


def test_missing_namespace_defaults_to_default():
    obj = repo()
    del obj["metadata"]["namespace"]
    assert GitRepositorySpec.from_obj(obj).namespace == "default"


def test_parse_flux_object_dispatch():
    assert isinstance(parse_flux_object(repo()), GitRepositorySpec)
    assert isinstance(parse_flux_object(ks()), KustomizationSpec)
    with pytest.raises(LabkitError) as exc:
        parse_flux_object({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease"}, "hr.yaml")
    assert str(exc.value).startswith('hr.yaml: kind: unsupported Flux kind "HelmRelease"')


# ----------------------------------------------------------------- error paths


def kerr(obj, file="ks.yaml"):
    with pytest.raises(LabkitError) as exc:
        KustomizationSpec.from_obj(obj, file)
    return str(exc.value)


def gerr(obj, file="repo.yaml"):
    with pytest.raises(LabkitError) as exc:
        GitRepositorySpec.from_obj(obj, file)
    return str(exc.value)


def without(obj, key):
    del obj["spec"][key]
    return obj


def test_kustomization_errors():
    assert kerr(without(ks(), "interval")) == "ks.yaml: spec.interval: required field missing"
    assert kerr(ks(interval="1x")) == 'ks.yaml: spec.interval: invalid duration "1x": must match ^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$'
    assert kerr(ks(interval=60)).startswith("ks.yaml: spec.interval: invalid duration 60")
    assert kerr(ks(timeout="1d")).startswith('ks.yaml: spec.timeout: invalid duration "1d"')
    assert kerr(ks(retryInterval="-1m")).startswith('ks.yaml: spec.retryInterval: invalid duration "-1m"')
    assert kerr(without(ks(), "prune")) == "ks.yaml: spec.prune: required field missing"
    assert kerr(ks(prune="yes")) == 'ks.yaml: spec.prune: must be a boolean, got "yes"'
    assert kerr(ks(wait="true")) == 'ks.yaml: spec.wait: must be a boolean, got "true"'
    assert kerr(without(ks(), "sourceRef")) == "ks.yaml: spec.sourceRef: required field missing"
    assert kerr(ks(sourceRef={"kind": "HelmRepository", "name": "x"})) == (
        'ks.yaml: spec.sourceRef.kind: unsupported value "HelmRepository": supported values: '
        "OCIRepository, GitRepository, Bucket, ExternalArtifact"
    )
    assert kerr(ks(sourceRef={"kind": "GitRepository"})) == "ks.yaml: spec.sourceRef.name: required field missing"
    assert kerr(ks(healthChecks=[{"kind": "Deployment"}])) == "ks.yaml: spec.healthChecks[0].name: required field missing"
    assert kerr(ks(healthChecks={"kind": "Deployment"})) == "ks.yaml: spec.healthChecks: must be a list, got an object"
    assert kerr(ks(dependsOn=[{"namespace": "x"}])) == "ks.yaml: spec.dependsOn[0].name: required field missing"
    assert kerr(ks(targetNamespace="")) == "ks.yaml: spec.targetNamespace: must be between 1 and 63 characters long"
    assert kerr(ks(path=3)) == "ks.yaml: spec.path: must be a string, got 3"
    assert kerr(ks(intervl="5m")) == "ks.yaml: spec.intervl: unknown field"


def test_kustomization_post_build_errors():
    assert kerr(ks(postBuild={"substitute": {"replicas": 3}})) == (
        "ks.yaml: spec.postBuild.substitute.replicas: must be a string, got 3 (quote numbers and booleans)"
    )
    assert kerr(ks(postBuild={"substitute": {"bad-name": "x"}})).startswith(
        "ks.yaml: spec.postBuild.substitute.bad-name: 'bad-name' var name is invalid"
    )
    assert kerr(ks(postBuild={"substituteFrom": [{"kind": "Deployment", "name": "x"}]})) == (
        'ks.yaml: spec.postBuild.substituteFrom[0].kind: unsupported value "Deployment": supported values: Secret, ConfigMap'
    )
    assert kerr(ks(decryption={"provider": "vault"})) == (
        'ks.yaml: spec.decryption.provider: unsupported value "vault": supported values: sops'
    )
    assert kerr(ks(decryption={"secretRef": {"name": "k"}})) == "ks.yaml: spec.decryption.provider: required field missing"


def test_kustomization_ignore_errors():
    assert kerr(ks(ignore=["spec/replicas"])) == 'ks.yaml: spec.ignore[0]: invalid JSON pointer "spec/replicas": must start with "/"'
    assert kerr(ks(ignore=[{"paths": ["/ok", "bad"]}])) == 'ks.yaml: spec.ignore[0].paths[1]: invalid JSON pointer "bad": must start with "/"'
    assert kerr(ks(ignore=[{"target": {"kind": "Deployment"}}])) == "ks.yaml: spec.ignore[0].paths: required field missing"
    assert kerr(ks(ignore=[{"paths": ["/a"], "target": {"kind": "("}}])).startswith("ks.yaml: spec.ignore[0].target.kind: invalid regular expression")
    assert kerr(ks(ignore="/spec/replicas")) == 'ks.yaml: spec.ignore: must be a list, got "/spec/replicas"'


def test_header_errors():
    bad_version = ks()
    bad_version["apiVersion"] = "kustomize.toolkit.fluxcd.io/v1beta1"
    assert kerr(bad_version) == (
        'ks.yaml: apiVersion: unsupported apiVersion "kustomize.toolkit.fluxcd.io/v1beta1" for Kustomization: '
        "supported: kustomize.toolkit.fluxcd.io/v1"
    )
    wrong_kind = ks()
    wrong_kind["kind"] = "GitRepository"
    assert kerr(wrong_kind) == 'ks.yaml: kind: expected "Kustomization", got "GitRepository"'
    no_name = ks()
    del no_name["metadata"]["name"]
    assert kerr(no_name) == "ks.yaml: metadata.name: required field missing"
    no_spec = ks()
    del no_spec["spec"]
    assert kerr(no_spec) == "ks.yaml: spec: required field missing"
    with pytest.raises(LabkitError):
        KustomizationSpec.from_obj(["not", "a", "map"], "ks.yaml")  # type: ignore[arg-type]


def test_gitrepository_errors():
    assert gerr(without(repo(), "url")) == "repo.yaml: spec.url: required field missing"
    assert gerr(repo(url="git@github.com:org/fleet.git")).startswith('repo.yaml: spec.url: invalid value "git@github.com:org/fleet.git"')
    assert gerr(without(repo(), "interval")) == "repo.yaml: spec.interval: required field missing"
    assert gerr(repo(interval="1x")).startswith('repo.yaml: spec.interval: invalid duration "1x"')
    assert gerr(repo(timeout="1h")) == 'repo.yaml: spec.timeout: invalid duration "1h": must match ^([0-9]+(\\.[0-9]+)?(ms|s|m))+$'
    assert gerr(repo(ref={"branch": 1})) == "repo.yaml: spec.ref.branch: must be a string, got 1"
    assert gerr(repo(ref={"brnach": "main"})) == "repo.yaml: spec.ref.brnach: unknown field"
    assert gerr(repo(secretRef={})) == "repo.yaml: spec.secretRef.name: required field missing"
    assert gerr(repo(ignore=["*.md"])) == "repo.yaml: spec.ignore: must be a string (.gitignore patterns), got a list"
    assert gerr(repo(suspend="no")) == 'repo.yaml: spec.suspend: must be a boolean, got "no"'
    bad = repo()
    bad["apiVersion"] = "source.toolkit.fluxcd.io/v1beta2"
    assert gerr(bad).startswith('repo.yaml: apiVersion: unsupported apiVersion "source.toolkit.fluxcd.io/v1beta2" for GitRepository')
