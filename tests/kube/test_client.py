"""What ``KubeCluster`` sends and returns, against a scripted fake API server (no control plane needed)."""
import pytest

from labkit.core.cluster import Cluster
from labkit.core.errors import ApiError
from labkit.kube.client import KubeCluster
from labkit.kube.versions import KUBERNETES_VERSION
from tests.kube import fakeapi

DEPLOY = "/apis/apps/v1/namespaces/default/deployments/web"


def status(code, reason, message, details=None):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "details": details or {}, "code": code}


@pytest.fixture
def api():
    a = fakeapi.start()
    yield a
    a.server.shutdown()


@pytest.fixture
def kc(api, tmp_path):
    c = KubeCluster(api.kubeconfig(tmp_path / "kubeconfig"), "fake")
    yield c
    c.close()


def deployment(**spec):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 2, **spec}}


def test_is_a_cluster(kc):
    assert isinstance(kc, Cluster)
    assert not hasattr(kc, "watch")  # no clock bound: FluxSystem polls


def test_apply_is_a_server_side_apply_patch(api, kc):
    live = deployment() | {"metadata": {"name": "web", "namespace": "default", "resourceVersion": "7"}}
    api.script("PATCH", DEPLOY, (200, live))
    out = kc.apply(deployment(), field_manager="kustomize-controller", force=True)
    req = api.calls("PATCH")[0]
    assert req.path == DEPLOY
    assert req.content_type == "application/apply-patch+yaml"
    assert req.query == {"fieldManager": ["kustomize-controller"], "force": ["true"]}
    assert req.body == deployment()
    assert out["metadata"]["resourceVersion"] == "7"


def test_apply_dry_run_and_no_force(api, kc):
    api.script("PATCH", DEPLOY, (200, deployment()))
    kc.apply(deployment(), field_manager="flux", dry_run=True)
    assert api.calls("PATCH")[0].query == {"fieldManager": ["flux"], "dryRun": ["All"]}


def test_apply_defaults_the_namespace_and_ignores_it_for_cluster_scoped_kinds(api, kc):
    api.script("PATCH", "/api/v1/namespaces/default/configmaps/a", (200, {"metadata": {"name": "a"}}))
    api.script("PATCH", "/api/v1/namespaces/team", (200, {"metadata": {"name": "team"}}))
    out = kc.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}, field_manager="m")
    assert out["kind"] == "ConfigMap" and out["apiVersion"] == "v1"  # filled in when the server omits them
    kc.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "namespace": "x"}}, field_manager="m")
    assert [r.path for r in api.calls("PATCH")] == ["/api/v1/namespaces/default/configmaps/a", "/api/v1/namespaces/team"]


def test_apply_requires_a_field_manager(kc):
    with pytest.raises(ApiError) as e:
        kc.apply(deployment(), field_manager="")
    assert e.value.reason == "BadRequest"


def test_server_refusal_becomes_api_error_verbatim(api, kc):
    msg = 'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas'
    api.script("PATCH", DEPLOY, (409, status(409, "Conflict", msg)))
    with pytest.raises(ApiError) as e:
        kc.apply(deployment(), field_manager="flux")
    assert (e.value.reason, e.value.code, e.value.message) == ("Conflict", 409, msg)


def test_update_is_a_put_with_the_manager(api, kc):
    api.script("PUT", DEPLOY, (200, deployment()))
    kc.update(deployment(), field_manager="kubectl-edit", dry_run=True)
    req = api.calls("PUT")[0]
    assert req.query == {"fieldManager": ["kubectl-edit"], "dryRun": ["All"]}
    assert req.body == deployment()


def test_create_posts_to_the_collection_so_the_server_picks_a_generated_name(api, kc):
    api.script("POST", "/api/v1/namespaces/kube-system/configmaps",
               (201, {"metadata": {"name": "key-x7k2p", "namespace": "kube-system"}}))
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "key-", "namespace": "kube-system"}}
    out = kc.create(cm, field_manager="sealed-secrets-controller")
    assert out["metadata"]["name"] == "key-x7k2p" and out["kind"] == "ConfigMap"
    req = api.calls("POST")[0]
    assert req.query == {"fieldManager": ["sealed-secrets-controller"]} and req.body == cm


def test_get_missing_is_none_and_list_items_get_kind(api, kc):
    assert kc.get("apps/v1", "Deployment", "web", "default") is None
    api.script("GET", "/apis/apps/v1/namespaces/default/deployments",
               (200, {"kind": "DeploymentList", "metadata": {"continue": "c1"}, "items": [{"metadata": {"name": "a"}}]}),
               (200, {"kind": "DeploymentList", "metadata": {}, "items": [{"metadata": {"name": "b"}}]}))
    items = kc.list("apps/v1", "Deployment", "default", {"app": "web"})
    assert [(i["apiVersion"], i["kind"], i["metadata"]["name"]) for i in items] == [
        ("apps/v1", "Deployment", "a"), ("apps/v1", "Deployment", "b")]
    lists = [r for r in api.calls("GET") if r.path == "/apis/apps/v1/namespaces/default/deployments"]
    assert lists[0].query == {"labelSelector": ["app=web"]}
    assert lists[1].query == {"labelSelector": ["app=web"], "continue": ["c1"]}


def test_all_namespaces_list_uses_the_cluster_wide_path(api, kc):
    api.script("GET", "/apis/apps/v1/deployments", (200, {"items": []}))
    assert kc.list("apps/v1", "Deployment") == []
    assert api.calls("GET", "/apis/apps/v1/deployments")


def test_unknown_kind_is_no_matches_for_kind(kc):
    with pytest.raises(ApiError) as e:
        kc.is_namespaced("example.com/v1", "Gadget")
    assert e.value.message == 'no matches for kind "Gadget" in version "example.com/v1"'
    with pytest.raises(ApiError):
        kc.get("nope.io/v1", "Thing", "x")
    assert kc.is_namespaced("example.com/v1", "Widget") is True
    assert kc.is_namespaced("v1", "Namespace") is False


def test_delete_returns_the_object_as_last_seen(api, kc):
    seen = deployment() | {"metadata": {"name": "web", "namespace": "default", "uid": "u1"}}
    api.script("GET", DEPLOY, (200, seen))
    api.script("DELETE", DEPLOY, (200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {}}))
    out = kc.delete("apps/v1", "Deployment", "web", "default", propagation="Foreground")
    assert out["metadata"]["uid"] == "u1"
    assert api.calls("DELETE")[0].query == {"propagationPolicy": ["Foreground"]}


def test_delete_returns_the_terminating_object_when_the_server_sends_it(api, kc):
    api.script("GET", DEPLOY, (200, deployment()))
    terminating = deployment() | {"metadata": {"name": "web", "namespace": "default", "deletionTimestamp": "2026-01-01T00:00:00Z",
                                               "finalizers": ["foregroundDeletion"]}}
    api.script("DELETE", DEPLOY, (200, terminating))
    out = kc.delete("apps/v1", "Deployment", "web", "default", dry_run=True)
    assert out["metadata"]["deletionTimestamp"] and out["kind"] == "Deployment"
    assert api.calls("DELETE")[0].query == {"propagationPolicy": ["Background"], "dryRun": ["All"]}


def test_delete_of_absent_object_is_none(kc, api):
    assert kc.delete("apps/v1", "Deployment", "web", "default") is None
    assert not api.calls("DELETE")


def test_patch_status_replaces_status_through_the_subresource(api, kc):
    api.script("PATCH", DEPLOY + "/status", (200, deployment()))
    kc.patch_status("apps/v1", "Deployment", "web", "default", {"observedGeneration": 3}, field_manager="ctl")
    req = api.calls("PATCH")[0]
    assert req.path == DEPLOY + "/status"
    assert req.content_type == "application/json-patch+json"
    assert req.body == [{"op": "add", "path": "/status", "value": {"observedGeneration": 3}}]
    assert req.query == {"fieldManager": ["ctl"]}


def test_patch_status_without_status_subresource_patches_the_object(api, kc):
    api.script("PATCH", "/apis/example.com/v1/namespaces/default/widgets/w", (200, {"metadata": {"name": "w"}}))
    kc.patch_status("example.com/v1", "Widget", "w", None, {"ok": True}, field_manager="ctl")
    assert api.calls("PATCH")[0].path == "/apis/example.com/v1/namespaces/default/widgets/w"


def test_scale_goes_through_the_scale_subresource(api, kc):
    api.script("PATCH", DEPLOY + "/scale", (200, {"kind": "Scale", "spec": {"replicas": 5}}))
    kc.scale("apps/v1", "Deployment", "web", "default", 5, field_manager="hpa")
    req = api.calls("PATCH")[0]
    assert req.content_type == "application/merge-patch+json" and req.body == {"spec": {"replicas": 5}}


def test_unreachable_server_is_service_unavailable(tmp_path):
    api = fakeapi.start()
    kc = KubeCluster(api.kubeconfig(tmp_path / "kc"), "fake", request_timeout=2)
    api.server.shutdown()
    api.server.server_close()
    with pytest.raises(ApiError) as e:
        kc.get("apps/v1", "Deployment", "web", "default")
    kc.close()
    assert e.value.reason == "ServiceUnavailable" and e.value.code == 503 and e.value.retryable


def test_bad_kubeconfig_is_a_clear_labkit_error(tmp_path):
    from labkit.core.errors import LabkitError

    p = tmp_path / "kc"
    p.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    with pytest.raises(LabkitError) as e:
        KubeCluster(p, "missing")
    assert str(p) in str(e.value)


def test_connect_explains_what_is_not_running(tmp_path, monkeypatch):
    from labkit.core.errors import LabkitError
    from labkit.kube.locate import connect

    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    with pytest.raises(LabkitError, match=r"--cluster: no local control plane named 'labkit' is running; "
                                          r"start one with `labkit cluster create --name labkit`"):
        connect("kwok")
    with pytest.raises(LabkitError, match=r"`labkit cluster create --provider kind`"):
        connect("kind")
    with pytest.raises(LabkitError, match="embedded simulator"):
        connect("sim")


def test_connect_to_a_kubeconfig_context(api, tmp_path, monkeypatch):
    from labkit.kube.locate import connect

    monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path / "kc")))
    kc = connect("fake")
    try:
        assert kc.name == "fake" and kc.server == api.url
        assert kc.server_version() == KUBERNETES_VERSION
    finally:
        kc.close()
