"""Argo CD health, one test per branch of each gitops-engine check.

Expected statuses and messages come from argoproj/gitops-engine ``pkg/health``:
``health.go`` (dispatch, deletion, ``IsWorse`` order), ``health_deployment.go``,
``health_statefulset.go``, ``health_replicaset.go``, ``health_daemonset.go``,
``health_pod.go``, ``health_job.go``, ``health_pvc.go``, ``health_service.go``,
``health_hpa.go`` and ``health_customresourcedefinition.go``.
"""
from __future__ import annotations

import json

import pytest

from labkit.core.health import (
    DEGRADED,
    HEALTHY,
    MISSING,
    PROGRESSING,
    SUSPENDED,
    UNKNOWN,
    Health,
    argo_has_health_check,
    argo_health,
    is_worse,
    worst_health,
)


def obj(api_version, kind, name="x", spec=None, status=None, **md):
    o = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": "default", **md}}
    if spec is not None:
        o["spec"] = spec
    if status is not None:
        o["status"] = status
    return o


def cond(ctype, status="True", reason="", message=""):
    return {"type": ctype, "status": status, "reason": reason, "message": message}


def test_missing():
    assert argo_health(None) == Health(MISSING, "")


def test_pending_deletion():
    o = obj("apps/v1", "Deployment", deletionTimestamp="2024-01-01T00:00:00Z")
    assert argo_health(o) == Health(PROGRESSING, "Pending deletion")


def test_kind_without_check_is_neutral():
    cm = obj("v1", "ConfigMap")
    assert not argo_has_health_check(cm)
    assert argo_health(cm) == Health(HEALTHY, "")
    assert argo_has_health_check(obj("apps/v1", "Deployment"))


# ----------------------------------------------------------------- Deployment


def deployment(spec_replicas=3, replicas=3, updated=3, available=3, generation=2, observed=2, paused=False, conditions=()):
    spec = {"replicas": spec_replicas}
    if paused:
        spec["paused"] = True
    return obj(
        "apps/v1",
        "Deployment",
        name="web",
        generation=generation,
        spec=spec,
        status={
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "conditions": list(conditions),
        },
    )


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, Health(HEALTHY, "")),
        ({"paused": True, "updated": 0}, Health(SUSPENDED, "Deployment is paused")),
        (
            {"generation": 3},
            Health(PROGRESSING, "Waiting for rollout to finish: observed deployment generation less then desired generation"),
        ),
        (
            {"conditions": [cond("Progressing", "False", "ProgressDeadlineExceeded")], "updated": 1},
            Health(DEGRADED, 'Deployment "web" exceeded its progress deadline'),
        ),
        ({"updated": 1}, Health(PROGRESSING, "Waiting for rollout to finish: 1 out of 3 new replicas have been updated...")),
        ({"replicas": 4}, Health(PROGRESSING, "Waiting for rollout to finish: 1 old replicas are pending termination...")),
        ({"available": 1}, Health(PROGRESSING, "Waiting for rollout to finish: 1 of 3 updated replicas are available...")),
    ],
)
def test_deployment(kwargs, expected):
    assert argo_health(deployment(**kwargs)) == expected


# ----------------------------------------------------------------- StatefulSet


def sts(spec=3, ready=3, updated=3, current=3, generation=1, observed=1, strategy=None, cur_rev="r1", upd_rev="r1"):
    s = {"replicas": spec}
    if strategy is not None:
        s["updateStrategy"] = strategy
    return obj(
        "apps/v1",
        "StatefulSet",
        generation=generation,
        spec=s,
        status={
            "observedGeneration": observed,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "currentReplicas": current,
            "currentRevision": cur_rev,
            "updateRevision": upd_rev,
        },
    )


ROLLING = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"observed": 0}, Health(PROGRESSING, "Waiting for statefulset spec update to be observed...")),
        ({"generation": 2}, Health(PROGRESSING, "Waiting for statefulset spec update to be observed...")),
        ({"ready": 1}, Health(PROGRESSING, "Waiting for 2 pods to be ready...")),
        (
            {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}, "updated": 1},
            Health(PROGRESSING, "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated..."),
        ),
        ({"strategy": ROLLING, "upd_rev": "r2"}, Health(HEALTHY, "partitioned roll out complete: 3 new pods have been updated...")),
        ({"strategy": {"type": "OnDelete"}, "updated": 1}, Health(HEALTHY, "statefulset has 3 ready pods (1 updated)")),
        (
            {"upd_rev": "r2", "updated": 1},
            Health(PROGRESSING, "waiting for statefulset rolling update to complete 1 pods at revision r2..."),
        ),
        ({}, Health(HEALTHY, "statefulset rolling update complete 3 pods at revision r1...")),
    ],
)
def test_statefulset(kwargs, expected):
    assert argo_health(sts(**kwargs)) == expected


# ----------------------------------------------------------------- ReplicaSet, DaemonSet


def test_replicaset_branches():
    rs = obj("apps/v1", "ReplicaSet", generation=1, spec={"replicas": 2}, status={"observedGeneration": 1, "availableReplicas": 2})
    assert argo_health(rs) == Health(HEALTHY, "")
    rs["status"]["availableReplicas"] = 1
    assert argo_health(rs) == Health(PROGRESSING, "Waiting for rollout to finish: 1 out of 2 new replicas are available...")
    rs["status"]["conditions"] = [cond("ReplicaFailure", message="quota exceeded")]
    assert argo_health(rs) == Health(DEGRADED, "quota exceeded")
    rs["metadata"]["generation"] = 2
    assert argo_health(rs) == Health(
        PROGRESSING, "Waiting for rollout to finish: observed replica set generation less then desired generation"
    )


def test_daemonset_branches():
    d = obj(
        "apps/v1",
        "DaemonSet",
        name="agent",
        generation=1,
        spec={"updateStrategy": {"type": "RollingUpdate"}},
        status={"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3},
    )
    assert argo_health(d) == Health(HEALTHY, "")
    d["status"]["numberAvailable"] = 2
    assert argo_health(d) == Health(PROGRESSING, 'Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...')
    d["status"]["updatedNumberScheduled"] = 1
    assert argo_health(d) == Health(
        PROGRESSING, 'Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated...'
    )
    d["spec"]["updateStrategy"]["type"] = "OnDelete"
    assert argo_health(d) == Health(HEALTHY, "daemon set 1 out of 3 new pods have been updated")
    d["metadata"]["generation"] = 2
    assert argo_health(d).status == PROGRESSING


# ----------------------------------------------------------------- Pod


def pod(phase, restart="Always", conditions=(), statuses=(), init_statuses=(), message="", annotations=None):
    md = {"annotations": annotations} if annotations else {}
    st = {"phase": phase, "conditions": list(conditions), "containerStatuses": list(statuses)}
    if init_statuses:
        st["initContainerStatuses"] = list(init_statuses)
    if message:
        st["message"] = message
    spec = {"restartPolicy": restart} if restart else {}
    return obj("v1", "Pod", spec=spec, status=st, **md)


def test_pod_image_pull_backoff_is_degraded():
    """The difference from kstatus: a waiting reason ending in BackOff is Degraded at once."""
    p = pod("Pending", statuses=[{"name": "app", "state": {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "web:bad"'}}}])
    assert argo_health(p) == Health(DEGRADED, 'Back-off pulling image "web:bad"')


@pytest.mark.parametrize("reason", ["ErrImagePull", "CrashLoopBackOff", "CreateContainerConfigError"])
def test_pod_waiting_error_reasons_are_degraded(reason):
    p = pod("Running", statuses=[{"name": "a", "state": {"waiting": {"reason": reason, "message": "m1"}}},
                                 {"name": "b", "state": {"waiting": {"reason": reason, "message": "m2"}}}])
    assert argo_health(p) == Health(DEGRADED, "m1, m2")


def test_pod_waiting_container_creating_is_not_degraded():
    p = pod("Pending", statuses=[{"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}}])
    assert argo_health(p).status == PROGRESSING


def test_pod_backoff_with_restart_never_is_not_degraded():
    p = pod("Pending", restart="Never", statuses=[{"name": "a", "state": {"waiting": {"reason": "ImagePullBackOff"}}}])
    assert argo_health(p).status == PROGRESSING


def test_pod_missing_restart_policy_reads_as_always():
    p = pod("Running", restart=None, conditions=[cond("Ready")])
    assert argo_health(p).status == HEALTHY


def test_pod_phases():
    assert argo_health(pod("Succeeded", message="done")) == Health(HEALTHY, "done")
    assert argo_health(pod("Running", conditions=[cond("Ready")])) == Health(HEALTHY, "")
    assert argo_health(pod("Running", conditions=[cond("Ready", "False")])) == Health(PROGRESSING, "")
    assert argo_health(pod("Unknownish")) == Health(UNKNOWN, "")


def test_pod_running_not_ready_with_previous_termination_is_degraded():
    p = pod("Running", conditions=[cond("Ready", "False")], statuses=[{"name": "a", "lastState": {"terminated": {"exitCode": 1}}}])
    assert argo_health(p).status == DEGRADED


def test_pod_running_with_restart_never_is_progressing_even_when_ready():
    assert argo_health(pod("Running", restart="Never", conditions=[cond("Ready")])).status == PROGRESSING
    ann = {"argocd.argoproj.io/ignore-restart-policy": "true"}
    assert argo_health(pod("Running", restart="Never", conditions=[cond("Ready")], annotations=ann)).status == HEALTHY


def test_pod_failed_messages():
    assert argo_health(pod("Failed", message="Evicted")) == Health(DEGRADED, "Evicted")
    term = {"name": "app", "state": {"terminated": {"exitCode": 2}}}
    assert argo_health(pod("Failed", restart="Never", statuses=[term])) == Health(DEGRADED, 'container "app" failed with exit code 2')
    oom = {"name": "app", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
    assert argo_health(pod("Failed", restart="Never", statuses=[oom])) == Health(DEGRADED, "OOMKilled")
    init = {"name": "init", "state": {"terminated": {"exitCode": 1, "message": "migration failed"}}}
    assert argo_health(pod("Failed", restart="Never", statuses=[term], init_statuses=[init])) == Health(DEGRADED, "migration failed")


# ----------------------------------------------------------------- Job


def job(conditions):
    return obj("batch/v1", "Job", status={"conditions": conditions})


def test_job_branches():
    assert argo_health(job([])) == Health(PROGRESSING, "")
    assert argo_health(job([cond("Complete", message="done")])) == Health(HEALTHY, "done")
    assert argo_health(job([cond("Failed", reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit")])) == Health(
        DEGRADED, "Job has reached the specified backoff limit"
    )
    assert argo_health(job([cond("Suspended", message="Job suspended")])) == Health(SUSPENDED, "Job suspended")


# ----------------------------------------------------------------- PVC, Service, Ingress


@pytest.mark.parametrize("phase, status", [("Bound", HEALTHY), ("Pending", PROGRESSING), ("Lost", DEGRADED), ("", UNKNOWN)])
def test_pvc(phase, status):
    assert argo_health(obj("v1", "PersistentVolumeClaim", status={"phase": phase})) == Health(status, "")


def test_service_loadbalancer():
    s = obj("v1", "Service", spec={"type": "LoadBalancer", "clusterIP": "10.0.0.1"}, status={"loadBalancer": {}})
    assert argo_health(s).status == PROGRESSING
    s["status"]["loadBalancer"]["ingress"] = [{"ip": "1.2.3.4"}]
    assert argo_health(s).status == HEALTHY
    assert argo_health(obj("v1", "Service", spec={"type": "ClusterIP"})).status == HEALTHY


def test_ingress():
    i = obj("networking.k8s.io/v1", "Ingress", status={"loadBalancer": {}})
    assert argo_health(i).status == PROGRESSING
    i["status"]["loadBalancer"]["ingress"] = [{"hostname": "lb.example.com"}]
    assert argo_health(i).status == HEALTHY


# ----------------------------------------------------------------- HPA


def test_hpa_v2():
    h = obj("autoscaling/v2", "HorizontalPodAutoscaler", status={"conditions": [
        cond("AbleToScale", reason="ReadyForNewScale", message="recommended size matches current size"),
        cond("ScalingActive", reason="ValidMetricFound", message="valid metric"),
    ]})
    assert argo_health(h) == Health(PROGRESSING, "Waiting to Autoscale")
    h["status"]["conditions"] = [cond("AbleToScale", message="a"), cond("ScalingLimited", message="b")]
    assert argo_health(h) == Health(HEALTHY, "a,b")
    h["status"]["conditions"] = [cond("ScalingActive", "False", "FailedGetResourceMetric", "no metrics")]
    assert argo_health(h) == Health(DEGRADED, "no metrics")


def test_hpa_v1_annotation():
    h = obj("autoscaling/v1", "HorizontalPodAutoscaler")
    assert argo_health(h) == Health(PROGRESSING, "Waiting to Autoscale")
    h["metadata"]["annotations"] = {
        "autoscaling.alpha.kubernetes.io/conditions": json.dumps([{"type": "AbleToScale", "status": "True", "reason": "FailedGetScale", "message": "x"}])
    }
    assert argo_health(h) == Health(DEGRADED, "x")


# ----------------------------------------------------------------- CRD


def test_crd():
    c = obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", status={"conditions": []})
    assert argo_health(c) == Health(PROGRESSING, "Status conditions not found")
    c["status"]["conditions"] = [cond("NamesAccepted"), cond("Established")]
    assert argo_health(c) == Health(HEALTHY, "CRD is healthy")
    c["status"]["conditions"] = [cond("Established", "False", message="installing")]
    assert argo_health(c) == Health(DEGRADED, "CRD is not established: installing")
    c["status"]["conditions"] = [cond("NamesAccepted", "False", message="taken"), cond("Established", "False")]
    assert argo_health(c).message.startswith("CRD names have not been accepted: ")


# ----------------------------------------------------------------- ordering


def test_is_worse_order():
    """health.go healthOrder: Healthy, Suspended, Progressing, Missing, Degraded, Unknown."""
    order = [HEALTHY, SUSPENDED, PROGRESSING, MISSING, DEGRADED, UNKNOWN]
    for i, a in enumerate(order):
        for j, b in enumerate(order):
            assert is_worse(a, b) == (j > i)


def test_worst_health():
    assert worst_health([]) == Health(HEALTHY, "")
    hs = [Health(HEALTHY), Health(PROGRESSING, "rolling"), Health(SUSPENDED, "paused"), Health(PROGRESSING, "second")]
    assert worst_health(hs) == Health(PROGRESSING, "rolling")
    assert worst_health([Health(MISSING), Health(DEGRADED, "bad"), Health(PROGRESSING)]) == Health(DEGRADED, "bad")
    assert worst_health(["Healthy", "Unknown"]).status == UNKNOWN
