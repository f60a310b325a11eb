"""API store identity, versions, deletion, finalizers, garbage collection and CRDs."""
import pytest
import simpy

from labkit.sim.store import ApiStore


@pytest.fixture
def env():
    return simpy.Environment()


@pytest.fixture
def store(env):
    return ApiStore(env, seed=7)


def cm(name, ns="default", **data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def owned(name, owner, kind="ConfigMap"):
    obj = cm(name)
    obj["metadata"]["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                           "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                           "controller": True, "blockOwnerDeletion": True}]
    return obj


def test_uids_are_seeded_and_resource_versions_increase(env):
    a, b = ApiStore(simpy.Environment(), seed=3), ApiStore(simpy.Environment(), seed=3)
    x = a.apply(cm("x", k="v"), field_manager="m")
    y = b.apply(cm("x", k="v"), field_manager="m")
    assert x["metadata"]["uid"] == y["metadata"]["uid"]
    z = a.apply(cm("z"), field_manager="m")
    assert int(z["metadata"]["resourceVersion"]) == int(x["metadata"]["resourceVersion"]) + 1
    assert "generation" not in x["metadata"]  # ConfigMaps have no spec/status split


def test_creation_timestamp_uses_virtual_time(env, store):
    env.run(until=90)
    obj = store.apply(cm("late"), field_manager="m")
    assert obj["metadata"]["creationTimestamp"] == "2026-01-01T00:01:30Z"


def test_background_deletion_collects_dependents(env, store):
    owner = store.apply(cm("owner"), field_manager="m")
    store.create(owned("child", owner), manager="ctrl")
    store.delete("v1", "ConfigMap", "owner", "default")
    assert store.get("v1", "ConfigMap", "owner") is None
    assert store.get("v1", "ConfigMap", "child") is not None  # the GC runs as its own process
    env.run(until=env.now + 0.001)
    assert store.get("v1", "ConfigMap", "child") is None


def test_foreground_deletion_waits_for_dependents(env, store):
    owner = store.apply(cm("owner"), field_manager="m")
    store.create(owned("child", owner), manager="ctrl")
    out = store.delete("v1", "ConfigMap", "owner", "default", propagation="Foreground")
    assert out["metadata"]["deletionTimestamp"] and "foregroundDeletion" in out["metadata"]["finalizers"]
    env.run(until=env.now + 0.001)
    assert store.get("v1", "ConfigMap", "child") is None
    assert store.get("v1", "ConfigMap", "owner") is None


def test_orphan_deletion_keeps_dependents_without_owner_refs(env, store):
    owner = store.apply(cm("owner"), field_manager="m")
    store.create(owned("child", owner), manager="ctrl")
    store.delete("v1", "ConfigMap", "owner", "default", propagation="Orphan")
    env.run(until=env.now + 0.001)
    child = store.get("v1", "ConfigMap", "child")
    assert child is not None and not child["metadata"].get("ownerReferences")


def test_finalizer_holds_deletion_until_removed(env, store):
    obj = cm("guarded")
    obj["metadata"]["finalizers"] = ["example.com/protect"]
    store.apply(obj, field_manager="m")
    out = store.delete("v1", "ConfigMap", "guarded", "default")
    assert out["metadata"]["deletionTimestamp"] == "2026-01-01T00:00:00Z"
    assert store.get("v1", "ConfigMap", "guarded") is not None
    live = store.ref("", "ConfigMap", "default", "guarded")
    store.set_metadata(live, field_manager="operator", finalizers=[])
    assert store.get("v1", "ConfigMap", "guarded") is None


def test_namespace_deletion_removes_contents_then_namespace(env, store):
    store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}, field_manager="m")
    store.apply(cm("a", ns="team"), field_manager="m")
    store.delete("v1", "Namespace", "team")
    assert store.get("v1", "Namespace", "team")["status"]["phase"] == "Terminating"
    env.run(until=env.now + 0.001)
    assert store.get("v1", "ConfigMap", "a", "team") is None
    assert store.get("v1", "Namespace", "team") is None


def test_crd_registers_kind_and_deletion_removes_instances(env, store):
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "databases.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "Database", "plural": "databases"},
                 "versions": [{"name": "v1", "served": True, "storage": True}]},
    }
    live = store.apply(crd, field_manager="flux")
    assert {c["type"]: c["status"] for c in live["status"]["conditions"]}["Established"] == "True"
    db = store.apply({"apiVersion": "example.com/v1", "kind": "Database", "metadata": {"name": "orders"},
                      "spec": {"size": 1}}, field_manager="flux")
    assert db["metadata"]["generation"] == 1
    store.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "databases.example.com")
    with pytest.raises(Exception):
        store.get("example.com/v1", "Database", "orders")


def test_list_filters_by_namespace_and_labels(store):
    a = cm("a")
    a["metadata"]["labels"] = {"app": "x"}
    store.apply(a, field_manager="m")
    store.apply(cm("b"), field_manager="m")
    names = [o["metadata"]["name"] for o in store.list("v1", "ConfigMap", "default", {"app": "x"})]
    assert names == ["a"]
    assert len(store.list("v1", "ConfigMap", "kube-system")) == 0


def test_reads_are_copies(store):
    store.apply(cm("a", k="v"), field_manager="m")
    got = store.get("v1", "ConfigMap", "a")
    got["data"]["k"] = "changed"
    assert store.get("v1", "ConfigMap", "a")["data"]["k"] == "v"


def test_events_recorded(store):
    store.apply(cm("a"), field_manager="m")
    store.delete("v1", "ConfigMap", "a", "default")
    events = [(e.event, e.object) for e in store.log.filter(component="api")]
    assert ("Created", "ConfigMap/default/a") in events and ("Deleted", "ConfigMap/default/a") in events
