"""App-of-apps: an Application whose path holds Applications; deletion cascades through resources finalizers."""
from tests.argo.argo_support import configmap

APP = "argoproj.io/v1alpha1"


def child(lab, name):
    return (f"apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: argocd\n"
            f"  finalizers:\n  - resources-finalizer.argocd.argoproj.io\nspec:\n  project: default\n  source:\n"
            f"    repoURL: {lab.url}\n    targetRevision: HEAD\n    path: apps/{name}\n  destination:\n"
            f"    server: https://kubernetes.default.svc\n    namespace: default\n  syncPolicy:\n    automated: {{}}\n")


def _setup(lab, finalizer=True):
    lab.commit({"root/web.yaml": child(lab, "web"), "root/api.yaml": child(lab, "api"),
                "apps/web/c.yaml": configmap("web-config"), "apps/api/c.yaml": configmap("api-config")}, when=0)
    lab.argo.apply(lab.app_yaml("root", "root", auto={"prune": True}, namespace="argocd", finalizer=finalizer),
                   file="root.yaml")
    lab.env.run(until=30)


def test_children_are_created_and_synced(lab):
    _setup(lab)
    assert sorted(a["metadata"]["name"] for a in lab.mgmt.list(APP, "Application", "argocd")) == ["api", "root", "web"]
    assert lab.mgmt.get("v1", "ConfigMap", "web-config", "default") is not None
    root = lab.argo.status("root")
    assert root["sync"]["status"] == "Synced"
    assert sorted(r["name"] for r in root["resources"]) == ["api", "web"]
    assert lab.argo.status("web")["sync"]["status"] == "Synced"


def test_cascading_delete_removes_children_and_their_resources(lab):
    _setup(lab)
    lab.argo.delete_app("root")
    lab.env.run(until=60)
    assert lab.mgmt.list(APP, "Application", "argocd") == []
    assert lab.mgmt.get("v1", "ConfigMap", "web-config", "default") is None
    assert lab.mgmt.get("v1", "ConfigMap", "api-config", "default") is None
    deleted = {e.object: e.time for e in lab.events("api", "Deleted")}
    # the children's resources go before the children, and the children before the root
    assert deleted["ConfigMap/default/web-config"] <= deleted["Application/argocd/web"] <= deleted["Application/argocd/root"]


def test_non_cascading_delete_leaves_everything_running(lab):
    _setup(lab, finalizer=False)
    lab.argo.delete_app("root", cascade=False)
    lab.env.run(until=60)
    names = sorted(a["metadata"]["name"] for a in lab.mgmt.list(APP, "Application", "argocd"))
    assert names == ["api", "web"]
    assert lab.mgmt.get("v1", "ConfigMap", "web-config", "default") is not None


def test_delete_false_resources_survive_a_cascade(lab):
    lab.commit({"app/a.yaml": configmap("a"),
                "app/db.yaml": configmap("db", annotations={"argocd.argoproj.io/sync-options": "Delete=false"})},
               when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True, finalizer=True), file="web.yaml")
    lab.env.run(until=10)
    lab.argo.delete_app("web")
    lab.env.run(until=20)
    assert lab.argo.app("web") is None
    assert lab.mgmt.get("v1", "ConfigMap", "a", "default") is None
    assert lab.mgmt.get("v1", "ConfigMap", "db", "default") is not None
