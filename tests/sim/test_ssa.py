"""Server-side apply field ownership, as the API server does it (structured-merge-diff semantics).

The expected values come from the SSA rules in the Kubernetes docs
(reference/using-api/server-side-apply): an applier owns what it sends; applying a
field another manager owns with a different value conflicts unless forced; a field
dropped by its only owner is removed and defaulting fills it back in.
"""
import copy

import pytest
import simpy

from labkit.core.errors import ApiError
from labkit.sim.store import ApiStore

DEP = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
        },
    },
}


@pytest.fixture
def store():
    return ApiStore(simpy.Environment())


def owners(store, path):
    return sorted(store.owners_of("apps", "Deployment", "default", "web", path))


def test_apply_creates_and_owns_sent_fields(store):
    obj = store.apply(copy.deepcopy(DEP), field_manager="a")
    assert obj["spec"]["replicas"] == 3
    assert obj["metadata"]["generation"] == 1
    mf = obj["metadata"]["managedFields"]
    assert [(m["manager"], m["operation"]) for m in mf] == [("a", "Apply")]
    assert mf[0]["fieldsV1"]["f:spec"]["f:replicas"] == {}
    # defaulted fields are not owned by anyone
    assert "f:revisionHistoryLimit" not in mf[0]["fieldsV1"]["f:spec"]
    assert obj["spec"]["revisionHistoryLimit"] == 10


def test_ownership_handover_manager_a_b_force_and_drop(store):
    store.apply(copy.deepcopy(DEP), field_manager="a")
    # manager B (kubectl scale) updates replicas: an Update never conflicts and takes ownership
    store.scale("apps/v1", "Deployment", "web", "default", 5, field_manager="b")
    assert owners(store, ("spec", "replicas")) == ["b"]
    # A re-applies its unchanged config: replicas differ from live and B owns it -> conflict
    with pytest.raises(ApiError) as err:
        store.apply(copy.deepcopy(DEP), field_manager="a")
    assert err.value.code == 409 and err.value.reason == "Conflict"
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "b" with subresource "scale" using apps/v1: .spec.replicas'
    )
    assert store.get("apps/v1", "Deployment", "web", "default")["spec"]["replicas"] == 5
    # forced: A takes replicas back
    obj = store.apply(copy.deepcopy(DEP), field_manager="a", force=True)
    assert obj["spec"]["replicas"] == 3
    assert owners(store, ("spec", "replicas")) == ["a"]
    # A drops the field: it was the only owner, so it is removed and falls back to the default 1
    dropped = copy.deepcopy(DEP)
    del dropped["spec"]["replicas"]
    obj = store.apply(dropped, field_manager="a")
    assert obj["spec"]["replicas"] == 1
    assert owners(store, ("spec", "replicas")) == []


def test_dropping_a_co_owned_field_keeps_the_value(store):
    store.apply(copy.deepcopy(DEP), field_manager="a")
    store.scale("apps/v1", "Deployment", "web", "default", 7, field_manager="hpa")
    dropped = copy.deepcopy(DEP)
    del dropped["spec"]["replicas"]
    obj = store.apply(dropped, field_manager="a")
    # hpa still owns replicas, so it stays at the HPA's value
    assert obj["spec"]["replicas"] == 7


def test_same_value_is_shared_not_a_conflict(store):
    store.apply(copy.deepcopy(DEP), field_manager="a")
    other = copy.deepcopy(DEP)
    obj = store.apply(other, field_manager="b")
    assert owners(store, ("spec", "replicas")) == ["a", "b"]
    assert obj["spec"]["replicas"] == 3


def test_noop_apply_writes_nothing(store):
    first = store.apply(copy.deepcopy(DEP), field_manager="a")
    before = store.writes
    again = store.apply(copy.deepcopy(DEP), field_manager="a")
    assert store.writes == before
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert again["metadata"]["generation"] == 1


def test_generation_moves_on_spec_change_only(store):
    store.apply(copy.deepcopy(DEP), field_manager="a")
    labelled = copy.deepcopy(DEP)
    labelled["metadata"]["labels"] = {"team": "x"}
    obj = store.apply(labelled, field_manager="a")
    assert obj["metadata"]["generation"] == 1
    changed = copy.deepcopy(labelled)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    obj = store.apply(changed, field_manager="a")
    assert obj["metadata"]["generation"] == 2


def test_kubectl_edit_update_takes_ownership_of_changed_fields_only(store):
    store.apply(copy.deepcopy(DEP), field_manager="flux")
    live = store.get("apps/v1", "Deployment", "web", "default")
    live["metadata"].pop("managedFields")
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:hotfix"
    store.update(live, field_manager="kubectl-edit")
    image = ("spec", "template", "spec", "containers", ("k", (("name", "web"),)), "image")
    assert owners(store, image) == ["kubectl-edit"]
    assert owners(store, ("spec", "replicas")) == ["flux"]
    with pytest.raises(ApiError) as err:
        store.apply(copy.deepcopy(DEP), field_manager="flux")
    assert 'conflict with "kubectl-edit" using apps/v1: .spec.template.spec.containers[name="web"].image' in err.value.message


def test_associative_list_items_are_owned_per_key(store):
    two = copy.deepcopy(DEP)
    two["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "envoy:1"})
    store.apply(two, field_manager="a")
    # b co-owns the sidecar's image (same value: shared, no conflict) and adds an env var
    b = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "envoy:1", "env": [{"name": "X", "value": "1"}]}]}}},
    }
    store.apply(b, field_manager="b")
    # a drops the sidecar: b still owns it, so the element stays with b's fields
    obj = store.apply(copy.deepcopy(DEP), field_manager="a")
    names = [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]]
    assert names == ["web", "sidecar"]
    sidecar = obj["spec"]["template"]["spec"]["containers"][1]
    assert sidecar["env"] == [{"name": "X", "value": "1"}] and sidecar["image"] == "envoy:1"
    # b drops it too: nobody owns it any more, so it goes
    b["spec"]["template"]["spec"]["containers"] = []
    obj = store.apply(b, field_manager="b")
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["web"]


def test_dry_run_persists_nothing(store):
    store.apply(copy.deepcopy(DEP), field_manager="a")
    rv = store.get("apps/v1", "Deployment", "web", "default")["metadata"]["resourceVersion"]
    changed = copy.deepcopy(DEP)
    changed["spec"]["replicas"] = 9
    out = store.apply(changed, field_manager="a", dry_run=True)
    assert out["spec"]["replicas"] == 9
    live = store.get("apps/v1", "Deployment", "web", "default")
    assert live["spec"]["replicas"] == 3 and live["metadata"]["resourceVersion"] == rv


def test_stale_resource_version_is_a_conflict(store):
    store.apply(copy.deepcopy(DEP), field_manager="a")
    live = store.get("apps/v1", "Deployment", "web", "default")
    store.scale("apps/v1", "Deployment", "web", "default", 4, field_manager="b")
    live["metadata"].pop("managedFields")
    live["spec"]["replicas"] = 2
    with pytest.raises(ApiError) as err:
        store.update(live, field_manager="c")
    assert err.value.message == (
        'Operation cannot be fulfilled on deployments.apps "web": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
