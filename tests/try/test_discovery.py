"""Discovery and reconcile: Flux roots and dependsOn, plain kustomize overlays, --path, Argo CD objects."""
from __future__ import annotations

import pytest

from labkit.tryrepo import discovery as disc_mod
from labkit.tryrepo.discovery import argo_available

from .repos import GIT_SOURCE, deployment, dedent, flux_ks, kustomization, namespace, write

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n  k: v\n"


def _fleet(root):
    """A bootstrap (flux-system, path ./clusters/dev) applying infra, and apps that dependsOn infra."""
    return write(root, {
        "clusters/dev/flux-system/kustomization.yaml": "resources:\n  - gotk-sync.yaml\n",
        "clusters/dev/flux-system/gotk-sync.yaml": dedent(GIT_SOURCE) + "---\n" +
        dedent(flux_ks("flux-system", "./clusters/dev", wait=False)),
        "clusters/dev/infra.yaml": flux_ks("infra", "./infra"),
        "clusters/dev/apps.yaml": flux_ks("apps", "./apps/web", depends_on=["infra"]),
        "infra/kustomization.yaml": kustomization("web", "namespace.yaml", "config.yaml"),
        "infra/namespace.yaml": namespace("web"),
        "infra/config.yaml": CM.format(name="shared", ns="web"),
        "apps/web/kustomization.yaml": "namespace: web\nresources:\n  - deployment.yaml\n",
        "apps/web/deployment.yaml": deployment("web"),
    })


def test_flux_bootstrap_is_the_root_and_depends_on_orders_the_reconcile(tmp_path, tryit):
    res = tryit(_fleet(tmp_path / "repo"), history=0)
    [target] = res.discovery.targets
    assert [r.ref for r in target.roots] == ["Kustomization/flux-system/flux-system"]
    assert target.name == "clusters-dev"
    units = {u.name: u for u in res.report.units}
    assert {n: u.status for n, u in units.items()} == {"flux-system": "Ready", "infra": "Ready", "apps": "Ready"}
    assert units["apps"].depends_on == ["flux-system/infra"]
    # apps waited for infra: its first attempt was refused with DependencyNotReady, it became Ready after infra
    log = res.runs[target.name].log
    waited = log.first(component="kustomize-controller", event="DependencyNotReady",
                       object="Kustomization/flux-system/apps")
    assert waited is not None and waited.time < units["infra"].ready_at
    assert units["apps"].ready_at > units["infra"].ready_at
    created = {o.key: o.created_at for o in res.report.objects}
    assert created["Deployment/web/web"] > units["infra"].ready_at > created["ConfigMap/web/shared"]
    edges = {(e.source, e.kind, e.dest) for e in res.report.edges if e.kind != "step"}
    assert edges == {("Kustomization/flux-system/flux-system", "applies", "Kustomization/flux-system/infra"),
                     ("Kustomization/flux-system/flux-system", "applies", "Kustomization/flux-system/apps"),
                     ("Kustomization/flux-system/infra", "dependsOn", "Kustomization/flux-system/apps")}
    infra_steps = [(s.label, s.objects) for s in res.report.apply_order if s.unit == "Kustomization/flux-system/infra"]
    assert infra_steps == [("stage 0: cluster definitions", ["Namespace/web"]),
                           ("stage 2: resources", ["ConfigMap/web/shared"])]


def test_a_failing_dependency_blocks_its_dependant(tmp_path, tryit):
    root = _fleet(tmp_path / "repo")
    res = tryit(root, history=0, missing_images=["ghcr.io/acme/web:1.4.2"],
                paths=[])
    units = {u.name: u for u in res.report.units}
    assert units["apps"].status == "Failed" and units["apps"].reason == "HealthCheckFailed"
    # now make infra fail instead: apps never gets past DependencyNotReady
    write(root, {"infra/config.yaml": None, "infra/kustomization.yaml":
                 kustomization("web", "namespace.yaml", "blocker.yaml"),
                 "infra/blocker.yaml": deployment("blocker", image="ghcr.io/acme/blocker:9.9.9").replace(
                     "name: blocker\n", "name: blocker\n      namespace: web\n", 1)})
    res = tryit(root, history=0, missing_images=["ghcr.io/acme/blocker:9.9.9"])
    units = {u.name: u for u in res.report.units}
    assert units["infra"].status == "Failed"
    assert (units["apps"].status, units["apps"].reason) == ("Waiting", "DependencyNotReady")
    dep = next(o for o in res.report.objects if o.key == "Deployment/web/web")
    assert dep.outcome == "not-applied" and "DependencyNotReady" not in dep.message
    assert "dependency 'flux-system/infra' is not ready" in dep.message


def test_plain_kustomize_overlays_are_the_entry_points_not_their_base(tmp_path, tryit):
    root = write(tmp_path / "repo", {
        "base/kustomization.yaml": "resources:\n  - deployment.yaml\n",
        "base/deployment.yaml": deployment("web"),
        "staging/kustomization.yaml": kustomization("web-staging", "namespace.yaml", "../base"),
        "staging/namespace.yaml": namespace("web-staging"),
        "prod/kustomization.yaml": kustomization("web-prod", "namespace.yaml", "../base"),
        "prod/namespace.yaml": namespace("web-prod"),
    })
    res = tryit(root, history=0)
    [target] = res.discovery.targets  # no collision: one cluster, both overlays
    assert sorted(u.path for u in target.roots) == ["prod", "staging"]
    assert {u.name for u in res.report.units} == {"try-prod", "try-staging"}
    assert {o.key: o.outcome for o in res.report.objects if o.kind == "Deployment"} == {
        "Deployment/web-prod/web": "healthy", "Deployment/web-staging/web": "healthy"}
    dep = next(o for o in res.report.objects if o.key == "Deployment/web-prod/web")
    assert (dep.file, dep.line) == ("base/deployment.yaml", 1)


def test_colliding_overlays_get_a_cluster_each_and_path_selects_one(tmp_path, tryit):
    root = write(tmp_path / "repo", {
        "a/kustomization.yaml": "resources:\n  - cm.yaml\n", "a/cm.yaml": CM.format(name="same", ns="default"),
        "b/kustomization.yaml": "resources:\n  - cm.yaml\n", "b/cm.yaml": CM.format(name="same", ns="default"),
    })
    res = tryit(root, history=0)
    assert sorted(t.name for t in res.discovery.targets) == ["a", "b"]
    only = tryit(root, history=0, paths=["b"])
    [t] = only.discovery.targets
    assert [u.path for u in t.units] == ["b"]


def test_path_on_a_bootstrap_directory_reuses_flux_system(tmp_path, tryit):
    res = tryit(_fleet(tmp_path / "repo"), history=0, paths=["clusters/dev"])
    names = sorted(u.name for u in res.report.units)
    assert names == ["apps", "flux-system", "infra"]
    assert next(u for u in res.report.units if u.name == "flux-system").synthesized


def test_foreign_source_is_listed_not_reconciled(tmp_path, tryit):
    other = dedent(GIT_SOURCE).replace("name: flux-system", "name: podinfo")
    other = other.replace("acme/fleet", "stefanprodan/podinfo")
    root = _fleet(tmp_path / "repo")
    write(root, {"clusters/dev/podinfo.yaml": other + "---\n" + dedent(flux_ks("podinfo", "./kustomize")).replace(
        "name: flux-system", "name: podinfo")})
    res = tryit(root, history=0)
    [(unit, why)] = [(u["unit"], u["why"]) for u in res.report.unreconciled]
    assert unit == "Kustomization/flux-system/podinfo"
    assert "https://github.com/stefanprodan/podinfo" in why and "cannot be fetched" in why
    # in the simulated cluster it fails the way it would when the URL is unreachable
    pod = next(u for u in res.report.units if u.name == "podinfo")
    assert pod.status in ("Failed", "Waiting")


def test_argo_objects_without_the_argo_package_are_listed_with_a_note(tmp_path, tryit, monkeypatch):
    monkeypatch.setattr(disc_mod, "argo_available", lambda: False)
    root = write(tmp_path / "repo", {"argocd/web.yaml": _APP, "apps/web/deploy.yaml": deployment("web")})
    res = tryit(root, history=0)
    assert res.discovery.targets == []
    [u] = res.report.unreconciled
    assert u["unit"] == "Application/argocd/web" and "labkit.argo is not importable" in u["why"]
    assert (u["file"], u["line"]) == ("argocd/web.yaml", 1)


_APP = """
    apiVersion: argoproj.io/v1alpha1
    kind: Application
    metadata:
      name: web
      namespace: argocd
    spec:
      project: default
      source:
        repoURL: https://github.com/acme/apps.git
        targetRevision: main
        path: apps/web
      destination:
        server: https://kubernetes.default.svc
        namespace: web
      syncPolicy:
        automated: {prune: true}
        syncOptions: [CreateNamespace=true]
"""


@pytest.mark.skipif(not argo_available(), reason="labkit.argo not importable")
def test_argo_application_is_synced_with_hooks_and_waves(tmp_path, tryit):
    hook = """
        apiVersion: batch/v1
        kind: Job
        metadata:
          name: db-migrate
          annotations:
            argocd.argoproj.io/hook: PreSync
        spec:
          backoffLimit: 0
          template:
            spec:
              restartPolicy: Never
              containers:
                - name: migrate
                  image: ghcr.io/acme/migrate:3.1.0
    """
    wave = deployment("web").replace("  name: web\n", "  name: web\n      annotations:\n"
                                     "        argocd.argoproj.io/sync-wave: \"1\"\n", 1)
    root = write(tmp_path / "repo", {"argocd/web.yaml": _APP, "apps/web/hook.yaml": hook,
                                     "apps/web/deploy.yaml": wave,
                                     "apps/web/cm.yaml": CM.format(name="web", ns="web")})
    res = tryit(root, history=0)
    [u] = res.report.units
    assert (u.ref, u.status, u.health) == ("Application/argocd/web", "Synced", "Healthy")
    steps = [(s.label, s.objects) for s in res.report.apply_order]
    assert steps == [("PreSync wave 0 (hooks)", ["Job/db-migrate"]), ("Sync wave 0", ["ConfigMap/web/web"]),
                     ("Sync wave 1", ["Deployment/web"])]
    created = {o.key: o.created_at for o in res.report.objects}
    done = {o.key: o.ready_at for o in res.report.objects}
    assert done["Job/web/db-migrate"] <= created["ConfigMap/web/web"] < created["Deployment/web/web"]
    assert u.ready_at >= done["Deployment/web/web"]


@pytest.mark.skipif(not argo_available(), reason="labkit.argo not importable")
def test_applicationset_git_directories_generates_and_reconciles_each_app(tmp_path, tryit):
    appset = """
        apiVersion: argoproj.io/v1alpha1
        kind: ApplicationSet
        metadata:
          name: services
          namespace: argocd
        spec:
          generators:
            - git:
                repoURL: https://github.com/acme/apps.git
                revision: HEAD
                directories:
                  - path: services/*
          template:
            metadata:
              name: '{{path.basename}}'
            spec:
              project: default
              source:
                repoURL: https://github.com/acme/apps.git
                targetRevision: HEAD
                path: '{{path}}'
              destination:
                server: https://kubernetes.default.svc
                namespace: '{{path.basename}}'
              syncPolicy:
                automated: {}
                syncOptions: [CreateNamespace=true]
    """
    files = {"argocd/services.yaml": appset}
    for svc in ("billing", "orders"):
        files[f"services/{svc}/deploy.yaml"] = deployment(svc)
    res = tryit(write(tmp_path / "repo", files), history=0)
    units = {u.ref: u for u in res.report.units}
    assert units["ApplicationSet/argocd/services"].message == "generated 2 Application(s)"
    for svc in ("billing", "orders"):
        app = units[f"Application/argocd/{svc}"]
        assert (app.status, app.health) == ("Synced", "Healthy")
        dep = next(o for o in res.report.objects if o.key == f"Deployment/{svc}/{svc}")
        assert dep.outcome == "healthy" and (dep.file, dep.line) == (f"services/{svc}/deploy.yaml", 1)
    edges = {(e.source, e.dest) for e in res.report.edges if e.kind == "applies"}
    assert edges == {("ApplicationSet/argocd/services", "Application/argocd/billing"),
                     ("ApplicationSet/argocd/services", "Application/argocd/orders")}


def test_ref_reconciles_an_earlier_commit_and_the_working_tree_is_the_default(tmp_path, tryit):
    from .repos import git_repo

    root = tmp_path / "repo"
    files = {"app/kustomization.yaml": kustomization("app", "namespace.yaml", "deployment.yaml"),
             "app/namespace.yaml": namespace("app"), "app/deployment.yaml": deployment("web", replicas=1)}
    first, second = git_repo(root, [("one replica", files),
                                    ("three", {"app/deployment.yaml": deployment("web", replicas=3)})])
    write(root, {"app/deployment.yaml": deployment("web", replicas=5)})  # uncommitted
    ready = lambda res: next(o.message for o in res.report.objects if o.kind == "Deployment")  # noqa: E731
    old = tryit(root, ref=first, history=0)
    assert (old.report.revision, old.report.dirty) == (first, False)
    assert ready(old) == "Deployment is available. Replicas: 1"
    assert ready(tryit(root, ref="main", history=0)) == "Deployment is available. Replicas: 3"
    now = tryit(root, history=0)
    assert now.report.dirty and now.report.label == "worktree"
    assert ready(now) == "Deployment is available. Replicas: 5"
    assert (root / "app" / "kustomization.yaml").exists() and not (root / "kustomization.yaml").exists()


def test_plain_directory_is_rendered_the_flux_way_without_touching_the_users_tree(tmp_path, tryit):
    root = write(tmp_path / "repo", {"manifests/ns.yaml": namespace("plain"),
                                     "manifests/cm.yaml": CM.format(name="c", ns="plain"),
                                     "README.md": "not yaml\n"})
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    res = tryit(root, history=0)
    [u] = res.report.units
    assert (u.name, u.path, u.status) == ("try-root", "./", "Ready")
    assert {o.key for o in res.report.objects} == {"Namespace/plain", "ConfigMap/plain/c"}
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == before


def test_same_seed_same_run_and_the_seed_changes_the_timings(tmp_path, tryit):
    root = _fleet(tmp_path / "repo")
    times = lambda res: [(o.key, o.created_at, o.ready_at) for o in res.report.objects]  # noqa: E731
    a, b = tryit(root, history=0, seed=7), tryit(root, history=0, seed=7)
    assert times(a) == times(b)
    assert times(tryit(root, history=0, seed=8)) != times(a)
