"""The resource tree: Application -> resources -> owned objects, hooks; drawn with matplotlib."""
from tests.argo.argo_support import configmap, deployment, job

from labkit.argo.tree import HEALTH_COLOURS, draw_tree, resource_tree


def _owned(lab, kind, api_version, name, owner, spec):
    return lab.mgmt.store.create({"apiVersion": api_version, "kind": kind,
                                  "metadata": {"name": name, "namespace": "default", "ownerReferences": [
                                      {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                       "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                       "controller": True}]}, "spec": spec}, manager="kube-controller-manager")


def test_tree_follows_owner_references_and_shows_hooks(lab):
    lab.commit({"app/d.yaml": deployment("web"), "app/c.yaml": configmap("cfg", wave=-1),
                "app/m.yaml": job("migrate", hook="PreSync")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=40)
    dep = lab.mgmt.get("apps/v1", "Deployment", "web", "default")
    pod_spec = {"containers": [{"name": "web", "image": "nginx:1.25"}]}
    rs = _owned(lab, "ReplicaSet", "apps/v1", "web-5d4f", dep,
                {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec}})
    _owned(lab, "Pod", "v1", "web-5d4f-a", rs, pod_spec)
    _owned(lab, "Pod", "v1", "web-5d4f-b", rs, pod_spec)
    g = resource_tree(lab.argo, "web")
    assert set(g.successors("Application/argocd/web")) == {"Deployment/default/web", "ConfigMap/default/cfg",
                                                           "Job/default/migrate"}
    assert list(g.successors("Deployment/default/web")) == ["ReplicaSet/default/web-5d4f"]
    assert set(g.successors("ReplicaSet/default/web-5d4f")) == {"Pod/default/web-5d4f-a", "Pod/default/web-5d4f-b"}
    assert g.nodes["Job/default/migrate"]["hook"] == "PreSync"
    assert g.nodes["ConfigMap/default/cfg"]["wave"] == -1
    assert g.nodes["Deployment/default/web"]["health"] == "Healthy"
    assert g.nodes["Deployment/default/web"]["sync"] == "Synced"
    assert g.nodes["Pod/default/web-5d4f-a"]["depth"] == 3
    fig = draw_tree(g)
    ax = fig.axes[0]
    assert ax.get_title() == "Application web — Synced, Healthy"
    assert [t.get_text() for t in ax.get_legend().get_texts()][:3] == ["Healthy", "Progressing", "Degraded"]
    import matplotlib.colors as mc

    healthy = mc.to_rgb(HEALTH_COLOURS["Healthy"])
    assert any(all(abs(a - b) < 1e-6 for a, b in zip(p.get_facecolor()[:3], healthy)) for p in ax.patches)


def test_out_of_sync_and_missing_resources_are_marked(lab):
    lab.commit({"app/c.yaml": configmap("cfg"), "app/d.yaml": configmap("later")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=5)
    g = resource_tree(lab.argo, "web")
    assert g.nodes["ConfigMap/default/later"]["sync"] == "OutOfSync"
    assert g.nodes["ConfigMap/default/later"]["health"] == "Missing"
    fig = draw_tree(g, title="before the first sync")
    assert fig.axes[0].get_title() == "before the first sync"
