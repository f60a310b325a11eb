"""Deleting a Kustomization: the ``finalizers.fluxcd.io`` finalizer and ``spec.deletionPolicy``.

kustomize-controller adds its finalizer before anything else, and on deletion
garbage-collects the inventory when the policy says so (MirrorPrune follows
``spec.prune``; Delete and WaitForTermination always; Orphan never; a suspended
Kustomization never), skipping objects another owner took over or marked
``prune: disabled`` / ``reconcile: disabled``; then it removes the finalizer and
the API server lets the object go.  Fixed timings as in ``test_reconcile``.
"""
import pytest

from labkit.core.errors import LabkitError
from labkit.flux.api import KustomizationSpec
from tests.flux.conftest import cm

KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
FILES = {"apps/a.yaml": cm("a", greeting="hi"), "apps/b.yaml": cm("b", x="1")}


def configmaps(lab) -> set[str]:
    return {o["metadata"]["name"] for o in lab.cluster.list("v1", "ConfigMap", "default")}


def delete_ks(lab, name="apps") -> None:
    lab.cluster.delete(*KS, name, "flux-system")


def test_the_finalizer_is_added_before_the_first_apply(make_lab):
    lab = make_lab(FILES)
    lab.source()
    lab.kustomization()
    lab.run(5)
    assert lab.ks()["metadata"]["finalizers"] == ["finalizers.fluxcd.io"]
    # the finalizer write is not an apply: the objects were still applied once, at 1.5
    assert [e.time for e in lab.events("ReconciliationSucceeded")] == [1.5]


@pytest.mark.parametrize("policy, prune, survivors", [
    (None, True, set()),                      # MirrorPrune (default) with prune: true deletes
    (None, False, {"a", "b"}),                # ... with prune: false orphans
    ("Delete", False, set()),                 # Delete overrides prune: false
    ("WaitForTermination", False, set()),
    ("Orphan", True, {"a", "b"}),             # Orphan overrides prune: true
])
def test_deletion_policy_decides_what_happens_to_the_inventory(make_lab, policy, prune, survivors):
    lab = make_lab(FILES)
    lab.source()
    lab.kustomization(prune=prune, **({"deletionPolicy": policy} if policy else {}))
    lab.run(5)
    assert configmaps(lab) == {"a", "b"}
    delete_ks(lab)
    lab.run(10)
    assert lab.ks() is None
    assert configmaps(lab) == survivors
    assert lab.events("Finalized")[0].time == 5.0


def test_a_suspended_kustomization_orphans_its_objects(make_lab):
    lab = make_lab(FILES)
    lab.source()
    lab.kustomization()
    lab.run(5)
    lab.flux.apply({"apiVersion": KS[0], "kind": KS[1], "metadata": {"name": "apps", "namespace": "flux-system"},
                    "spec": {"interval": "10m", "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                             "path": "./apps", "prune": True, "suspend": True}})
    lab.run(6)
    delete_ks(lab)
    lab.run(10)
    assert lab.ks() is None
    assert configmaps(lab) == {"a", "b"}


def test_protected_and_taken_over_objects_survive_the_garbage_collection(make_lab):
    lab = make_lab({**FILES, "apps/c.yaml": cm("c", y="2")})
    lab.source()
    lab.kustomization()
    lab.run(5)
    a = lab.cluster.get("v1", "ConfigMap", "a", "default")
    a["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/prune": "Disabled"}
    b = lab.cluster.get("v1", "ConfigMap", "b", "default")
    b["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = "someone-else"
    c = lab.cluster.get("v1", "ConfigMap", "c", "default")
    c["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/reconcile"] = "disabled"
    for obj in (a, b, c):
        obj["metadata"].pop("managedFields")
        lab.cluster.update(obj, field_manager="kubectl-edit")
    delete_ks(lab)
    lab.run(10)
    assert lab.ks() is None
    assert configmaps(lab) == {"a", "b", "c"}
    (gc,) = lab.events("GarbageCollected")  # Flux emits the changeset, skipped entries included
    assert gc.detail["deleted"] == 0
    assert sorted(gc.detail["changeset"].splitlines()) == [
        "ConfigMap/default/a skipped", "ConfigMap/default/b skipped", "ConfigMap/default/c skipped"]


def test_deletion_generation_bump_wakes_the_controller_and_the_objects_go_in_reverse_order(make_lab):
    lab = make_lab({"apps/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n",
                    "apps/a.yaml": cm("a", ns="team", x="1")})
    lab.source()
    lab.kustomization()
    lab.run(5)
    gen = lab.ks()["metadata"]["generation"]
    delete_ks(lab)
    deleting = lab.ks()
    assert deleting["metadata"]["generation"] == gen + 1  # as the API server does on deletionTimestamp
    lab.run(10)
    deleted = [e.object for e in lab.log.filter(component="api", event="Deleted")
               if e.object.startswith(("ConfigMap/", "Namespace/"))]
    assert deleted[:1] == ["ConfigMap/team/a"]


def test_wait_for_termination_waits_for_finalizers_up_to_the_timeout(make_lab):
    lab = make_lab(FILES)
    lab.source()
    lab.kustomization(prune=True, deletionPolicy="WaitForTermination", timeout="1m")
    lab.run(5)
    a = lab.cluster.get("v1", "ConfigMap", "a", "default")
    a["metadata"]["finalizers"] = ["example.com/hold"]
    a["metadata"].pop("managedFields")
    lab.cluster.update(a, field_manager="operator")
    delete_ks(lab)
    lab.run(30)
    assert lab.ks() is not None  # still waiting for ConfigMap a (held by its finalizer)
    lab.run(100)
    assert lab.ks() is None
    timeout = lab.events("TerminationTimeout")
    assert [e.time for e in timeout] == [65.0]  # deleted at 5, timeout 1m, polled every 2 s
    assert timeout[0].detail["message"] == "failed to wait for resources termination"
    assert configmaps(lab) == {"a"}


def test_deletion_policy_is_validated_naming_the_field():
    with pytest.raises(LabkitError) as err:
        KustomizationSpec.from_obj({"apiVersion": KS[0], "kind": KS[1],
                                    "metadata": {"name": "apps", "namespace": "flux-system"},
                                    "spec": {"interval": "10m", "prune": True, "deletionPolicy": "Sometimes",
                                             "sourceRef": {"kind": "GitRepository", "name": "fleet"}}},
                                   file="clusters/dev/apps.yaml")
    assert "clusters/dev/apps.yaml" in str(err.value)
    assert "spec.deletionPolicy" in str(err.value)
    assert '"Sometimes"' in str(err.value)


def test_a_failed_garbage_collection_keeps_the_finalizer_and_is_retried(make_lab, monkeypatch):
    from labkit.core.errors import ApiError

    lab = make_lab(FILES)
    lab.source()
    lab.kustomization()
    lab.run(5)
    real_delete = lab.cluster.delete
    outage = {"until": 20.0}

    def delete(api_version, kind, name, namespace=None, **kw):
        if kind == "ConfigMap" and lab.env.now < outage["until"]:
            raise ApiError("ServiceUnavailable", "the server is currently unable to handle the request")
        return real_delete(api_version, kind, name, namespace, **kw)

    monkeypatch.setattr(lab.cluster, "delete", delete)
    delete_ks(lab)
    lab.run(19)
    assert lab.ks() is not None and lab.ks()["metadata"]["finalizers"] == ["finalizers.fluxcd.io"]
    assert configmaps(lab) == {"a", "b"}
    failures = lab.events("GarbageCollectionFailed")
    assert failures and failures[0].detail["message"] == "pruning for deleted resource failed"
    lab.run(60)
    assert lab.ks() is None
    assert configmaps(lab) == set()
    # controller-runtime back-off from 750 ms doubling: 5, 5.75, 7.25, 10.25, 16.25, 28.25 (the first after the outage)
    assert lab.events("Finalized")[0].time == 28.25
