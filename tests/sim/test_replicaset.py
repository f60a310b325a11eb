"""ReplicaSets: creating and deleting pods, which pods go first, availability after minReadySeconds."""
from __future__ import annotations

from simhelpers import EPS, at, events, make_cluster, pods

from labkit.sim.registry import ImageRegistry


def rs(name: str, image: str, replicas: int, **spec) -> dict:
    body = {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": image}]}}}
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "default"},
            "spec": body}


def test_creates_pods_with_generate_name_and_controller_reference():
    c = make_cluster()
    c.apply(rs("web", "web:v1", 2), field_manager="test")
    at(c, 0)
    created = [m for _, _, m in events(c, component="replicaset-controller", event="SuccessfulCreate")]
    assert len(created) == 2 and all(m.startswith("Created pod: web-") for m in created)
    for p in pods(c, {"app": "web"}):
        assert p["metadata"]["generateName"] == "web-" and len(p["metadata"]["name"]) == len("web-") + 5
        ref = p["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["controller"], ref["blockOwnerDeletion"]) == ("ReplicaSet", "web", True, True)


def test_scale_down_deletes_not_ready_pods_first_then_the_newest():
    reg = ImageRegistry().add("web", ["v1"])
    c = make_cluster(registry=reg)
    c.apply(rs("web", "web:v1", 2), field_manager="test")
    c.run(until=10)   # two ready pods (ready at 3.5)
    obj = rs("web", "web:v1", 4)
    c.apply(obj, field_manager="test")
    c.run(until=20)   # two more, ready at 13.5: the newest
    broken = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-broken", "namespace": "default",
              "labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:missing"}]}}
    c.store.create(broken, manager="test")  # an orphan with the matching labels: adopted, never ready
    at(c, 20)
    assert len([p for p in pods(c, {"app": "web"}) if not p["metadata"].get("deletionTimestamp")]) == 4
    # adopting it made 5 active pods for 4 replicas: the unready one went first
    assert [m for t, _, m in events(c, component="replicaset-controller", event="SuccessfulDelete")] == \
        ["Deleted pod: web-broken"]
    ages = sorted((p for p in pods(c, {"app": "web"}) if not p["metadata"].get("deletionTimestamp")),
                  key=lambda p: p["metadata"]["creationTimestamp"])
    c.run(until=30)
    c.apply(rs("web", "web:v1", 2), field_manager="test")
    at(c, 30)
    deleted = {m.split(": ")[1] for t, _, m in events(c, component="replicaset-controller", event="SuccessfulDelete")
               if t == 30}
    # all ready: the ones ready for the shortest time (created at 10) go
    assert deleted == {p["metadata"]["name"] for p in ages[2:]}


def test_available_replicas_count_after_min_ready_seconds():
    c = make_cluster()
    c.apply(rs("web", "web:v1", 1, minReadySeconds=10), field_manager="test")
    # Ready at 3.5, lastTransitionTime recorded as 3 (one-second resolution): available from 3 + 10 = 13.
    at(c, 13 - 2 * EPS)
    st = c.get("apps/v1", "ReplicaSet", "web")["status"]
    assert st.get("readyReplicas") == 1 and "availableReplicas" not in st
    at(c, 13)
    assert c.get("apps/v1", "ReplicaSet", "web")["status"]["availableReplicas"] == 1


def test_terminating_pods_are_not_counted_and_are_replaced_at_once():
    c = make_cluster()
    c.apply(rs("web", "web:v1", 2), field_manager="test")
    c.run(until=10)
    victim = pods(c, {"app": "web"})[0]["metadata"]["name"]
    c.delete("v1", "Pod", victim)
    at(c, 10)
    live = pods(c, {"app": "web"})
    assert len(live) == 3  # the terminating one plus its replacement
    st = c.get("apps/v1", "ReplicaSet", "web")["status"]
    assert st["replicas"] == 2 and st["readyReplicas"] == 1
