"""The sample fleet tree under clusters/: every overlay and cluster entry point renders with kustomize."""
from __future__ import annotations

from pathlib import Path

import pytest

from labkit.gitops import ManifestRepo, Renderer, render

from gitops_support import CLUSTERS, IMAGE

ENVIRONMENTS = {"staging": 2, "prod": 3}


def by_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


@pytest.mark.parametrize("env, replicas", ENVIRONMENTS.items())
def test_overlay_renders(env: str, replicas: int):
    objs = render(f"apps/podinfo/{env}", root=CLUSTERS)
    assert sorted(o["kind"] for o in objs) == ["Deployment", "Namespace", "Service"]
    ns = f"podinfo-{env}"
    assert by_kind(objs, "Namespace")[0]["metadata"]["name"] == ns
    deploy = by_kind(objs, "Deployment")[0]
    svc = by_kind(objs, "Service")[0]
    assert deploy["metadata"]["namespace"] == svc["metadata"]["namespace"] == ns
    assert deploy["spec"]["replicas"] == replicas
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{IMAGE}:6.5.0"
    assert container["resources"]["requests"]["cpu"] == "100m"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert svc["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]


def test_overlays_declare_the_image_entry():
    import yaml

    for env in ENVIRONMENTS:
        k = yaml.safe_load((CLUSTERS / "apps" / "podinfo" / env / "kustomization.yaml").read_text())
        assert k["images"] == [{"name": IMAGE, "newTag": "6.5.0"}]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cluster_entry_point_renders_flux_bootstrap_objects(env: str):
    objs = render(env, root=CLUSTERS)  # no kustomization.yaml: Flux's generated one
    assert not (CLUSTERS / env / "kustomization.yaml").exists()
    repo = next(o for o in objs if o["kind"] == "GitRepository")
    assert repo["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert repo["metadata"] == {"name": "flux-system", "namespace": "flux-system"}
    assert repo["spec"]["interval"] == "1m0s"
    assert repo["spec"]["ref"] == {"branch": "main"}
    assert repo["spec"]["url"].startswith("https://")

    kss = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Kustomization"}
    assert set(kss) == {"flux-system", "apps"}
    assert all(k["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1" for k in kss.values())
    assert kss["flux-system"]["spec"]["path"] == f"./{env}"
    apps = kss["apps"]["spec"]
    assert apps["interval"] == "10m0s"
    assert apps["prune"] is True and apps["wait"] is True
    assert apps["timeout"] == "5m0s"
    assert apps["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
    assert apps["path"] == f"./apps/podinfo/{env}"
    assert (CLUSTERS / apps["path"]).is_dir()


def test_seeded_fleet_renders_from_an_exported_revision(tmp_path: Path):
    repo = ManifestRepo(tmp_path / "fleet")
    sha = repo.seed(CLUSTERS, exclude=["README.md", "kind"])
    root = repo.export(sha)
    renderer = Renderer()
    for env in ENVIRONMENTS:
        assert len(renderer.render(f"./apps/podinfo/{env}", root=root, key=sha)) == 3
        assert len(renderer.render(f"./{env}", root=root, key=sha)) == 3
    repo.close()
