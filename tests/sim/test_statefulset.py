"""StatefulSets: ordered start, claims per ordinal, reverse-order rolling updates, retention.

Timings.deterministic(): scheduling 0.5 s (but a pod waits for its claims to be
Bound), claims bind 1 s after creation, first pull 2 s, start 1 s, no probe,
termination 2 s.
"""
from __future__ import annotations

from simhelpers import at, events, make_cluster, times


def sts(name: str, image: str, replicas: int = 3, **spec) -> dict:
    body = {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": name, "image": image}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                      "spec": {"accessModes": ["ReadWriteOnce"],
                                               "resources": {"requests": {"storage": "1Gi"}}}}]}
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": "default"},
            "spec": body}


def created_pods(c) -> list[tuple[float, str]]:
    return [(t, m.split()[2]) for t, _, m in events(c, component="statefulset-controller", event="SuccessfulCreate")
            if m.startswith("create Pod")]


def test_ordered_ready_starts_pods_one_at_a_time_with_their_claims():
    c = make_cluster()
    c.apply(sts("db", "postgres:16"), field_manager="test")
    at(c, 30)
    # db-0 and claim data-db-0 at 0; the claim binds at 1, so the pod is bound at 1 (not 0.5), pulls until 3,
    # starts and is Ready at 4. Only then db-1 (and data-db-1): bound 5, image cached, Ready at 6. db-2: 6 -> 8.
    assert created_pods(c) == [(0, "db-0"), (4, "db-1"), (6, "db-2")]
    claims = [m for _, _, m in events(c, component="statefulset-controller", event="SuccessfulCreate")
              if m.startswith("create Claim")]
    assert claims == [f"create Claim data-db-{i} Pod db-{i} in StatefulSet db success" for i in range(3)]
    assert times(c, component="default-scheduler", event="Scheduled") == [1, 5, 7]
    assert times(c, component="kubelet", event="Started") == [4, 6, 8]
    for i in range(3):
        pvc = c.get("v1", "PersistentVolumeClaim", f"data-db-{i}")
        assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["volumeName"] == f"pvc-{pvc['metadata']['uid']}"
        pod = c.get("v1", "Pod", f"db-{i}")
        assert {"name": "data", "persistentVolumeClaim": {"claimName": f"data-db-{i}"}} in pod["spec"]["volumes"]
        assert pod["spec"]["hostname"] == f"db-{i}" and pod["spec"]["subdomain"] == "db"
        assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == str(i)
    status = c.get("apps/v1", "StatefulSet", "db")["status"]
    assert status["readyReplicas"] == 3 and status["currentRevision"] == status["updateRevision"]
    assert status["currentReplicas"] == 3 and status["availableReplicas"] == 3


def test_parallel_policy_starts_all_pods_at_once():
    c = make_cluster()
    c.apply(sts("db", "postgres:16", podManagementPolicy="Parallel"), field_manager="test")
    at(c, 10)
    assert created_pods(c) == [(0, "db-0"), (0, "db-1"), (0, "db-2")]
    assert times(c, component="kubelet", event="Started") == [4, 4, 4]


def test_rolling_update_replaces_pods_in_reverse_ordinal_order():
    c = make_cluster()
    obj = sts("db", "postgres:16")
    c.apply(obj, field_manager="test")
    c.run(until=20)
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = "postgres:17"
    c.apply(obj, field_manager="test")
    at(c, 60)
    deletes = [(t, m.split()[2]) for t, _, m in events(c, component="statefulset-controller", event="SuccessfulDelete")]
    # db-2 deleted at 20, gone at 22, recreated at 22 (claim already bound: bound 22.5), pulls postgres:17
    # until 24.5, Ready 25.5 -> db-1 deleted at 25.5, gone 27.5, recreated, bound 28, Ready 29 -> db-0 at 29,
    # gone 31, bound 31.5, Ready 32.5.
    assert deletes == [(20, "db-2"), (25.5, "db-1"), (29, "db-0")]
    assert created_pods(c)[3:] == [(22, "db-2"), (27.5, "db-1"), (31, "db-0")]
    status = c.get("apps/v1", "StatefulSet", "db")["status"]
    assert status["currentRevision"] == status["updateRevision"] and status["updatedReplicas"] == 3
    revs = sorted((r["revision"], r["metadata"]["name"]) for r in c.list("apps/v1", "ControllerRevision"))
    assert [r for r, _ in revs] == [1, 2] and revs[1][1] == status["updateRevision"]
    assert all(c.get("v1", "Pod", f"db-{i}")["metadata"]["labels"]["controller-revision-hash"] == revs[1][1]
               for i in range(3))


def test_scale_down_removes_highest_ordinal_first_and_retains_claims():
    c = make_cluster()
    obj = sts("db", "postgres:16")
    c.apply(obj, field_manager="test")
    c.run(until=20)
    obj["spec"]["replicas"] = 1
    c.apply(obj, field_manager="test")
    at(c, 40)
    deletes = [(t, m.split()[2]) for t, _, m in events(c, component="statefulset-controller", event="SuccessfulDelete")]
    assert deletes == [(20, "db-2"), (22, "db-1")]  # one at a time: db-1 only once db-2 is gone
    assert sorted(p["metadata"]["name"] for p in c.list("v1", "PersistentVolumeClaim")) == \
        ["data-db-0", "data-db-1", "data-db-2"]  # whenScaled: Retain (the default)


def test_when_deleted_delete_claims_follow_the_statefulset():
    c = make_cluster()
    c.apply(sts("db", "postgres:16", persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete",
                                                                           "whenScaled": "Retain"}),
            field_manager="test")
    c.run(until=20)
    c.delete("apps/v1", "StatefulSet", "db", "default")
    at(c, 30)
    assert c.list("v1", "PersistentVolumeClaim") == [] and c.list("v1", "Pod") == []
    assert c.list("v1", "PersistentVolume") == []  # reclaim policy Delete
