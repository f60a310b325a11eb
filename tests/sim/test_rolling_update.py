"""Deployment rolling updates: surge / unavailable bounds at every instant, step times, revisions.

Timings.deterministic(): scheduling 0.5 s, first pull of an image 2 s (then
cached on the node), container start 1 s, no readiness jitter, termination 2 s.
With a readinessProbe ``initialDelaySeconds: 5`` a pod is therefore ready
0.5 + 2 + 1 + 5 = 8.5 s after creation when its image is new on the node, and
0.5 + 1 + 5 = 6.5 s after creation when the image is already there.
"""
from __future__ import annotations

from simhelpers import (at, condition, deployment, events, is_ready, make_cluster, on_every_change, pods,
                        set_image, times)

from labkit.sim.registry import ImageRegistry


def _track_bounds(c, name: str, replicas: int, surge: int, unavailable: int, since: float) -> list:
    """Check, at every store change after ``since``, the rolling-update invariants on live pods."""
    violations: list = []
    samples = [0]

    def check(_ev: str, obj: dict) -> None:
        if c.now < since or obj.get("kind") not in ("Pod", "ReplicaSet", "Deployment"):
            return
        samples[0] += 1
        live = [p for p in pods(c, {"app": name}) if not p["metadata"].get("deletionTimestamp")]
        available = [p for p in live if is_ready(p)]
        if len(live) > replicas + surge:
            violations.append((c.now, "total", len(live)))
        if len(available) < replicas - unavailable:
            violations.append((c.now, "available", len(available)))

    on_every_change(c, check)
    return violations, samples


def test_rolling_update_with_int_surge_and_unavailable_keeps_bounds_and_completes_on_time():
    c = make_cluster()
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}
    d = deployment("web", "web:v1", 4, probe_delay=5, strategy=strategy)
    c.apply(d, field_manager="test")
    at(c, 19)
    assert c.get("apps/v1", "Deployment", "web")["status"]["availableReplicas"] == 4  # all ready at 8.5
    violations, samples = _track_bounds(c, "web", 4, 1, 1, since=20)
    c.run(until=20)
    c.apply(set_image(d, "web:v2"), field_manager="test")
    at(c, 200)
    assert violations == []
    assert samples[0] > 50
    # Each sync either scales up or scales down (rolling.go). The new ReplicaSet may grow while the
    # ReplicaSets' replicas sum to less than 4 + 1 = 5; old replicas may go while available pods stay
    # above 4 - 1 = 3 and the new ReplicaSet's unavailable pods fit in the budget
    # (maxScaledDown = total - 3 - newUnavailable):
    #   t=20    new 0->1 (sum 5); old 4->3 (budget 5-3-1 = 1); new 1->2 (sum 4 < 5); then budget 5-3-2 = 0.
    #           Both v2 pods pull v2 together: ready at 20 + 0.5 + 2 + 1 + 5 = 28.5.
    #   t=28.5  available 3 + 2 = 5 > 3: old 3->1; then new 2->4 (sum 3). New pods: image cached, ready at 35.
    #   t=35    old 1->0; complete (4 updated, 4 available) at 35.
    scaling = events(c, component="deployment-controller", event="ScalingReplicaSet")
    got = [(t, m.split(" replica set ")[0], m.rsplit(" from ", 1)[1]) for t, _, m in scaling if t >= 20]
    assert got == [(20, "Scaled up", "0 to 1"), (20, "Scaled down", "4 to 3"), (20, "Scaled up", "1 to 2"),
                   (28.5, "Scaled down", "3 to 1"), (28.5, "Scaled up", "2 to 4"),
                   (35, "Scaled down", "1 to 0")]
    dep = c.get("apps/v1", "Deployment", "web")
    prog = condition(dep, "Progressing")
    assert prog["reason"] == "NewReplicaSetAvailable"
    assert prog["lastUpdateTime"] == "2026-01-01T00:00:35Z"
    assert dep["status"]["updatedReplicas"] == 4 and dep["status"]["availableReplicas"] == 4
    assert "unavailableReplicas" not in dep["status"]
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"


def test_rolling_update_percentages_round_surge_up_and_unavailable_down():
    c = make_cluster()
    d = deployment("api", "api:v1", 10, probe_delay=5)  # defaults: maxSurge 25%, maxUnavailable 25%
    c.apply(d, field_manager="test")
    c.run(until=20)
    # 25% of 10 = 2.5: surge rounds up to 3, unavailable rounds down to 2
    violations, samples = _track_bounds(c, "api", 10, 3, 2, since=20)
    c.apply(set_image(d, "api:v2"), field_manager="test")
    at(c, 300)
    assert violations == []
    first = [(t, m) for t, _, m in events(c, component="deployment-controller", event="ScalingReplicaSet") if t == 20]
    # new RS to 10 + 3 - 10 = 3; old may lose 13 - 8 - 3 = 2 (10 -> 8); the replicas then sum to 11 < 13,
    # so new 3 -> 5; the budget is then 13 - 8 - 5 = 0
    assert [m.split(" replica set ")[0] + " " + m.rsplit(" from ", 1)[1] for _, m in first] == \
        ["Scaled up 0 to 3", "Scaled down 10 to 8", "Scaled up 3 to 5"]
    dep = c.get("apps/v1", "Deployment", "api")
    assert condition(dep, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert dep["status"]["updatedReplicas"] == 10


def test_both_fenceposts_zero_means_one_unavailable():
    c = make_cluster()
    # 0% surge and 10% of 3 (= 0.3, rounded down to 0) unavailable: ResolveFenceposts makes unavailable 1
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "0%", "maxUnavailable": "10%"}}
    d = deployment("web", "web:v1", 3, strategy=strategy)
    c.apply(d, field_manager="test")
    c.run(until=20)
    violations, _ = _track_bounds(c, "web", 3, 0, 1, since=20)
    c.apply(set_image(d, "web:v2"), field_manager="test")
    at(c, 20)
    # no surge: the first move is to scale the old ReplicaSet down by one
    assert [m for t, _, m in events(c, component="deployment-controller", event="ScalingReplicaSet") if t == 20][0] \
        .startswith("Scaled down replica set web-")
    at(c, 200)
    assert violations == []
    assert condition(c.get("apps/v1", "Deployment", "web"), "Progressing")["reason"] == "NewReplicaSetAvailable"


def test_recreate_waits_for_old_pods_to_terminate():
    c = make_cluster()
    d = deployment("db", "db:v1", 2, strategy={"type": "Recreate"})
    c.apply(d, field_manager="test")
    c.run(until=20)
    c.apply(set_image(d, "db:v2"), field_manager="test")
    at(c, 60)
    scaling = [(t, m) for t, _, m in events(c, component="deployment-controller", event="ScalingReplicaSet") if t >= 20]
    # old scaled to 0 at 20; its pods terminate in 2 s; only then is the new ReplicaSet created
    assert scaling[0][0] == 20 and scaling[0][1].startswith("Scaled down") and scaling[0][1].endswith("from 2 to 0")
    assert scaling[1][0] == 22 and scaling[1][1].startswith("Scaled up") and scaling[1][1].endswith("from 0 to 2")


def test_rollback_reuses_the_old_replicaset_and_bumps_its_revision():
    c = make_cluster()
    d = deployment("web", "web:v1", 2)
    c.apply(d, field_manager="test")
    c.run(until=20)
    c.apply(set_image(d, "web:v2"), field_manager="test")
    c.run(until=60)
    c.apply(set_image(d, "web:v1"), field_manager="test")
    at(c, 100)
    rss = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in c.list("apps/v1", "ReplicaSet")}
    assert set(rss) == {"web:v1", "web:v2"}  # no third ReplicaSet
    v1 = rss["web:v1"]
    assert v1["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert v1["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert v1["spec"]["replicas"] == 2 and rss["web:v2"]["spec"]["replicas"] == 0
    dep = c.get("apps/v1", "Deployment", "web")
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    # names carry the pod-template-hash, which is also on the selector and the pods
    h = v1["metadata"]["labels"]["pod-template-hash"]
    assert v1["metadata"]["name"] == f"web-{h}"
    assert v1["spec"]["selector"]["matchLabels"]["pod-template-hash"] == h
    ref = v1["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "Deployment" and ref["controller"] is True and ref["blockOwnerDeletion"] is True


def test_revision_history_limit_deletes_old_empty_replicasets():
    c = make_cluster()
    d = deployment("web", "web:v1", 1, revisionHistoryLimit=1)
    c.apply(d, field_manager="test")
    for i, image in enumerate(["web:v2", "web:v3", "web:v4"]):
        c.run(until=30 * (i + 1))
        c.apply(set_image(d, image), field_manager="test")
    at(c, 200)
    images = sorted(rs["spec"]["template"]["spec"]["containers"][0]["image"] for rs in c.list("apps/v1", "ReplicaSet"))
    assert images == ["web:v3", "web:v4"]  # the new one plus revisionHistoryLimit=1 old one


def test_paused_deployment_does_not_roll_out():
    c = make_cluster()
    d = deployment("web", "web:v1", 2)
    c.apply(d, field_manager="test")
    c.run(until=20)
    d["spec"]["paused"] = True
    c.apply(set_image(d, "web:v2"), field_manager="test")
    at(c, 60)
    assert len(c.list("apps/v1", "ReplicaSet")) == 1
    prog = condition(c.get("apps/v1", "Deployment", "web"), "Progressing")
    assert (prog["status"], prog["reason"], prog["message"]) == ("Unknown", "DeploymentPaused", "Deployment is paused")
    d["spec"]["paused"] = False
    c.apply(d, field_manager="test")
    at(c, 120)
    assert len(c.list("apps/v1", "ReplicaSet")) == 2
    assert condition(c.get("apps/v1", "Deployment", "web"), "Progressing")["reason"] == "NewReplicaSetAvailable"


def test_scaling_mid_rollout_is_proportional():
    reg = ImageRegistry().add("web", ["v1"])  # web:v2 does not exist: the rollout is stuck half-way
    c = make_cluster(registry=reg)
    d = deployment("web", "web:v1", 4)
    c.apply(d, field_manager="test")
    c.run(until=20)
    c.apply(set_image(d, "web:v2"), field_manager="test")
    c.run(until=50)
    # stuck (surge 1, unavailable 1): new 0->1, old 4->3, new 1->2, then the budget 5 - 3 - 2 is 0:
    # old 3 / new 2. Scale to 8: allowed = 8 + ceil(25% of 8) = 10, so 10 - 5 = 5 to add, shared in
    # proportion to the max-replicas annotation (4 + 1 = 5), largest first:
    # old round(3 * 10 / 5) - 3 = 3, new round(2 * 10 / 5) - 2 = 2, no leftover: old 3 -> 6, new 2 -> 4.
    d["spec"]["replicas"] = 8
    c.apply(d, field_manager="test")
    at(c, 50)
    msgs = [m for t, _, m in events(c, component="deployment-controller", event="ScalingReplicaSet") if t == 50]
    assert [m.split(" replica set ")[0] + " " + m.rsplit(" from ", 1)[1] for m in msgs] == \
        ["Scaled up 3 to 6", "Scaled up 2 to 4"]


def test_new_replicaset_event_and_conditions_on_first_rollout():
    c = make_cluster()
    c.apply(deployment("web", "web:v1", 3), field_manager="test")
    at(c, 0)
    (t, _, msg), = events(c, component="deployment-controller", event="ScalingReplicaSet")
    assert t == 0 and msg.startswith("Scaled up replica set web-") and msg.endswith(" from 0 to 3")
    dep = c.get("apps/v1", "Deployment", "web")
    assert condition(dep, "Available")["reason"] == "MinimumReplicasUnavailable"
    assert condition(dep, "Progressing")["reason"] == "ReplicaSetUpdated"
    # ready at 0.5 + 2 + 1 = 3.5 (no probe): complete then
    at(c, 3.5)
    dep = c.get("apps/v1", "Deployment", "web")
    assert condition(dep, "Available")["reason"] == "MinimumReplicasAvailable"
    assert condition(dep, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert times(c, component="replicaset-controller", event="SuccessfulCreate") == [0, 0, 0]
