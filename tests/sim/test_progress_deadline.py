"""A bad image tag: the old ReplicaSet keeps serving and the Deployment times out on schedule."""
from __future__ import annotations

from simhelpers import EPS, at, condition, deployment, is_ready, make_cluster, pods, set_image

from labkit.sim.registry import ImageRegistry


def test_bad_tag_keeps_old_replicaset_serving_and_exceeds_progress_deadline():
    reg = ImageRegistry().add("web", ["v1"])  # the repository is known: web:v1-typo does not exist
    c = make_cluster(registry=reg)
    d = deployment("web", "web:v1", 2, progressDeadlineSeconds=60)
    c.apply(d, field_manager="test")
    c.run(until=100)
    old_rs = c.list("apps/v1", "ReplicaSet")[0]["metadata"]["name"]

    transitions: list = []

    def watch(_ev, obj):
        if obj.get("kind") == "Deployment":
            cond = condition(obj, "Progressing")
            reason = cond["reason"] if cond else None
            if not transitions or transitions[-1][1] != reason:
                transitions.append((c.now, reason))

    c.store.watch("apps", "Deployment", watch)
    c.apply(set_image(d, "web:v1-typo"), field_manager="test")
    at(c, 400)
    new_rs = next(rs for rs in c.list("apps/v1", "ReplicaSet") if rs["metadata"]["name"] != old_rs)
    name = new_rs["metadata"]["name"]
    # The rollout starts at t=100: new ReplicaSet created (NewReplicaSetCreated), scaled 0 -> 1 (25% of 2
    # rounds up to 1 surge pod): updatedReplicas 0 -> 1 is progress (ReplicaSetUpdated, lastUpdateTime 100).
    # maxUnavailable = floor(25% of 2) = 0, so no old pod may go while the new one is unavailable, and the
    # new pod never becomes available. progress.go requeues the Deployment at lastUpdateTime +
    # progressDeadlineSeconds + 1 s ("add a second to avoid milliseconds skew") = 100 + 60 + 1 = 161,
    # when lastUpdateTime + 60 < now: ProgressDeadlineExceeded.
    assert transitions[-1] == (161, "ProgressDeadlineExceeded")
    assert [r for _, r in transitions][-3:] == ["NewReplicaSetCreated", "ReplicaSetUpdated", "ProgressDeadlineExceeded"]
    assert [t for t, r in transitions if r == "ReplicaSetUpdated"] == [100]
    dep = c.get("apps/v1", "Deployment", "web")
    prog = condition(dep, "Progressing")
    assert prog["status"] == "False"
    assert prog["message"] == f'ReplicaSet "{name}" has timed out progressing.'
    assert prog["lastUpdateTime"] == "2026-01-01T00:02:41Z"
    # the old ReplicaSet still serves both replicas; the Deployment is still Available
    old = c.get("apps/v1", "ReplicaSet", old_rs)
    assert old["spec"]["replicas"] == 2 and old["status"]["availableReplicas"] == 2
    assert condition(dep, "Available")["status"] == "True"
    assert dep["status"]["updatedReplicas"] == 1 and dep["status"]["unavailableReplicas"] == 1
    new_pods = pods(c, {"pod-template-hash": new_rs["metadata"]["labels"]["pod-template-hash"]})
    assert len(new_pods) == 1 and not is_ready(new_pods[0])
    waiting = new_pods[0]["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
    assert waiting in ("ErrImagePull", "ImagePullBackOff")
    # the event log has the timeout as a Warning of the deployment controller
    (ev,) = c.log.filter(component="deployment-controller", event="ProgressDeadlineExceeded")
    assert ev.time == 161 and ev.detail["type"] == "Warning"


def test_deadline_counts_from_the_last_progress_not_from_the_start():
    # web:v2 pulls for 100 s: pods come up slowly, each one is progress that moves lastUpdateTime.
    reg = ImageRegistry().add("web", ["v1"]).add("web", ["v2"], pull_seconds=100)
    c = make_cluster(registry=reg)
    d = deployment("web", "web:v1", 1, progressDeadlineSeconds=60)
    c.apply(d, field_manager="test")
    c.run(until=10)
    c.apply(set_image(d, "web:v2"), field_manager="test")
    # t=10 new pod (surge 1, unavailable 0); ready at 10 + 0.5 + 100 + 1 = 111.5. Progress at 10
    # (updatedReplicas 1) sets lastUpdateTime 10: the deadline check at 10 + 60 + 1 = 71 times out
    # before the pod is ready, and the later success replaces the condition.
    at(c, 71 - 2 * EPS)
    assert condition(c.get("apps/v1", "Deployment", "web"), "Progressing")["reason"] == "ReplicaSetUpdated"
    at(c, 71)
    assert condition(c.get("apps/v1", "Deployment", "web"), "Progressing")["reason"] == "ProgressDeadlineExceeded"
    at(c, 111.5)
    prog = condition(c.get("apps/v1", "Deployment", "web"), "Progressing")
    assert (prog["status"], prog["reason"]) == ("True", "NewReplicaSetAvailable")
