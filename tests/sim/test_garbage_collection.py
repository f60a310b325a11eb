"""Deleting a Deployment: its ReplicaSets and Pods follow by ownerReference (background and foreground).

Pods of a 3-replica Deployment are Ready at 0.5 + 2 + 1 = 3.5; pods terminate
2 s after their deletionTimestamp is set (Timings.deterministic()).
"""
from __future__ import annotations

from simhelpers import EPS, at, deployment, make_cluster, pods


def _deleted(c, kind: str) -> list[tuple[float, str]]:
    return [(e.time, e.object) for e in c.log.filter(component="api", event="Deleted") if e.object.startswith(kind + "/")]


def test_background_deletion_removes_owner_at_once_and_dependents_after():
    c = make_cluster()
    c.apply(deployment("web", "web:v1", 3), field_manager="test")
    c.run(until=10)
    assert len(pods(c, {"app": "web"})) == 3
    c.delete("apps/v1", "Deployment", "web", "default", propagation="Background")
    assert c.get("apps/v1", "Deployment", "web") is None
    at(c, 10)
    # the garbage collector deletes the ReplicaSet (no owner left), then its pods, which start terminating
    assert c.list("apps/v1", "ReplicaSet") == []
    live = pods(c, {"app": "web"})
    assert len(live) == 3 and all(p["metadata"].get("deletionTimestamp") for p in live)
    at(c, 12 - 2 * EPS)
    assert len(pods(c, {"app": "web"})) == 3
    at(c, 12)
    assert pods(c, {"app": "web"}) == []
    assert [t for t, _ in _deleted(c, "Pod")] == [12, 12, 12]


def test_foreground_deletion_keeps_the_owner_until_its_dependents_are_gone():
    c = make_cluster()
    c.apply(deployment("web", "web:v1", 3), field_manager="test")
    c.run(until=10)
    out = c.delete("apps/v1", "Deployment", "web", "default", propagation="Foreground")
    assert "foregroundDeletion" in out["metadata"]["finalizers"]
    at(c, 10)
    dep = c.get("apps/v1", "Deployment", "web")
    rs = c.list("apps/v1", "ReplicaSet")
    assert dep is not None and dep["metadata"]["deletionTimestamp"]
    assert len(rs) == 1 and "foregroundDeletion" in rs[0]["metadata"]["finalizers"]
    # the pods terminate gracefully (2 s) even though the GC deleted them in the foreground
    at(c, 12 - 2 * EPS)
    assert len(pods(c, {"app": "web"})) == 3
    assert c.get("apps/v1", "Deployment", "web") is not None
    # at 12 the pods are gone; the ReplicaSet has no dependents left, then neither has the Deployment
    at(c, 12)
    assert c.get("apps/v1", "Deployment", "web") is None
    assert c.list("apps/v1", "ReplicaSet") == [] and pods(c, {"app": "web"}) == []
    order = [e.object.split("/")[0] for e in c.log.filter(component="api", event="Deleted")]
    assert order == ["Pod", "Pod", "Pod", "ReplicaSet", "Deployment"]
    assert {t for t, _ in _deleted(c, "Deployment")} == {12}


def test_orphan_deletion_leaves_replicaset_and_pods_running():
    c = make_cluster()
    c.apply(deployment("web", "web:v1", 2), field_manager="test")
    c.run(until=10)
    c.delete("apps/v1", "Deployment", "web", "default", propagation="Orphan")
    at(c, 30)
    (rs,) = c.list("apps/v1", "ReplicaSet")
    assert not rs["metadata"].get("ownerReferences")
    assert len(pods(c, {"app": "web"})) == 2
    # re-creating the Deployment adopts the orphaned ReplicaSet instead of rolling out a new one
    c.apply(deployment("web", "web:v1", 2), field_manager="test")
    at(c, 40)
    (rs,) = c.list("apps/v1", "ReplicaSet")
    assert rs["metadata"]["ownerReferences"][0]["name"] == "web"
