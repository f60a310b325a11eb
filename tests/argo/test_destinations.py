"""Several SimClusters as destinations: by server URL or by cluster name; tracking ids per object."""
from tests.argo.argo_support import Lab, configmap, deployment

from labkit.argo.tracking import TRACKING_ANNOTATION, owns

CLUSTERS = {"staging": {"server": "https://staging.example"}, "prod": {"server": "https://prod.example"}}


def test_apps_land_in_their_destination_cluster(tmp_path):
    lab = Lab(tmp_path, extra_clusters=CLUSTERS)
    lab.commit({"app/d.yaml": deployment("web"), "app/c.yaml": configmap("cfg")}, when=0)
    lab.argo.apply(lab.app_yaml("web-staging", "app", auto=True, server="https://staging.example"), file="s.yaml")
    by_name = lab.app_yaml("web-prod", "app", auto=True).replace(
        "    server: https://kubernetes.default.svc\n", "    name: prod\n")
    lab.argo.apply(by_name, file="p.yaml")
    lab.env.run(until=30)
    for cluster, app in (("staging", "web-staging"), ("prod", "web-prod")):
        dep = lab.clusters[cluster].get("apps/v1", "Deployment", "web", "default")
        assert dep["metadata"]["annotations"][TRACKING_ANNOTATION] == f"{app}:apps/Deployment:default/web"
        assert lab.argo.status(app)["health"]["status"] == "Healthy"
    assert lab.mgmt.get("apps/v1", "Deployment", "web", "default") is None
    assert lab.argo.status("web-prod")["sync"]["comparedTo"]["destination"]["server"] == "https://prod.example"


def test_a_copied_tracking_annotation_does_not_make_an_object_prunable(lab):
    # argo-cd #15472: an operator copies metadata from a managed object into one it creates
    lab.commit({"app/c.yaml": configmap("cfg"), "app/d.yaml": configmap("other")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto={"prune": True}), file="web.yaml")
    lab.env.run(until=10)
    src = lab.mgmt.get("v1", "ConfigMap", "cfg", "default")
    copy = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "operator-made", "namespace": "default",
                         "annotations": {TRACKING_ANNOTATION: src["metadata"]["annotations"][TRACKING_ANNOTATION]}},
            "data": {"x": "y"}}
    lab.mgmt.apply(copy, field_manager="some-operator")
    assert not owns("web", lab.mgmt.get("v1", "ConfigMap", "operator-made", "default"))
    lab.commit({"app/d.yaml": None}, when=10)
    lab.argo.refresh("web")
    lab.env.run(until=30)
    assert lab.mgmt.get("v1", "ConfigMap", "other", "default") is None  # really pruned
    assert lab.mgmt.get("v1", "ConfigMap", "operator-made", "default") is not None
    assert lab.argo.status("web")["sync"]["status"] == "Synced"


def test_clusters_must_share_the_clock(tmp_path):
    import pytest

    from labkit.core.errors import LabkitError
    from labkit.sim import SimCluster

    lab = Lab(tmp_path)
    with pytest.raises(LabkitError, match="another SimPy environment"):
        lab.argo.add_cluster("x", "https://x.example", SimCluster(seed=1, controllers=False))
