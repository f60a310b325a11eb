"""kstatus as Flux computes it, one test per branch of each rule.

Expected statuses and message texts come from kubernetes-sigs/cli-utils
``pkg/kstatus/status/generic.go``, ``status.go`` and ``core.go``, the kstatus
README ("The Ready Condition"), and fluxcd/pkg ``runtime/statusreaders/job.go``
(Flux's Job reader).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from labkit.core.health import CURRENT, FAILED, IN_PROGRESS, NOT_FOUND, TERMINATING, UNKNOWN, Status, kstatus


def obj(api_version, kind, name="x", namespace="default", spec=None, status=None, **md):
    o = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace, **md}}
    if spec is not None:
        o["spec"] = spec
    if status is not None:
        o["status"] = status
    return o


def cond(ctype, status="True", reason="", message=""):
    return {"type": ctype, "status": status, "reason": reason, "message": message}


# ----------------------------------------------------------------- generic.go / status.go


def test_missing_object_is_not_found():
    assert kstatus(None) == Status(NOT_FOUND, "Resource not found")


def test_deletion_timestamp_is_terminating():
    """generic.go: deletionTimestamp wins over everything else."""
    o = obj("v1", "ConfigMap", deletionTimestamp="2024-01-01T00:00:00Z")
    assert kstatus(o) == Status(TERMINATING, "Resource scheduled for deletion")


def test_generation_not_observed_is_in_progress():
    """generic.go checkGeneration: message names the kind and both generations."""
    o = obj("example.com/v1", "Widget", generation=3, status={"observedGeneration": 2})
    assert kstatus(o) == Status(IN_PROGRESS, "Widget generation is 3, but latest observed generation is 2")


def test_generation_check_skipped_without_observed_generation():
    o = obj("example.com/v1", "Widget", generation=3, status={})
    assert kstatus(o).status == CURRENT


def test_generation_check_runs_before_conditions():
    """generic.go runs checkGeneration before looking at Stalled."""
    o = obj("example.com/v1", "Widget", generation=2, status={"observedGeneration": 1, "conditions": [cond("Stalled", message="boom")]})
    assert kstatus(o).message.startswith("Widget generation is 2")


def test_reconciling_true_is_in_progress_with_its_message():
    o = obj("example.com/v1", "Widget", status={"conditions": [cond("Reconciling", message="working on it")]})
    assert kstatus(o) == Status(IN_PROGRESS, "working on it")


def test_stalled_true_is_failed_with_its_message():
    o = obj("example.com/v1", "Widget", status={"conditions": [cond("Stalled", message="gave up")]})
    assert kstatus(o) == Status(FAILED, "gave up")


def test_reconciling_false_is_ignored():
    o = obj("example.com/v1", "Widget", status={"conditions": [cond("Reconciling", "False")]})
    assert kstatus(o) == Status(CURRENT, "Resource is current")


def test_no_conditions_is_current():
    """status.go Compute: unknown type, no standard conditions -> Current."""
    assert kstatus(obj("example.com/v1", "Widget")) == Status(CURRENT, "Resource is current")


# ----------------------------------------------------------------- Ready condition (README) and Flux objects


def test_ready_true_custom_resource_is_current():
    o = obj("example.com/v1", "Widget", status={"conditions": [cond("Ready")]})
    assert kstatus(o) == Status(CURRENT, "Resource is Ready")


def test_ready_false_custom_resource_is_in_progress():
    o = obj("example.com/v1", "Widget", status={"conditions": [cond("Ready", "False", "Nope", "backend down")]})
    assert kstatus(o) == Status(IN_PROGRESS, "backend down")


def test_flux_kustomization_ready():
    o = obj(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        namespace="flux-system",
        generation=2,
        status={
            "observedGeneration": 2,
            "conditions": [cond("Ready", reason="ReconciliationSucceeded", message="Applied revision: main@sha1:abc")],
        },
    )
    assert kstatus(o).status == CURRENT


def test_flux_kustomization_reconciling_is_in_progress():
    o = obj(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        generation=1,
        status={
            "observedGeneration": 1,
            "conditions": [
                cond("Reconciling", reason="Progressing", message="Running health checks"),
                cond("Ready", "Unknown", "Progressing", "Running health checks"),
            ],
        },
    )
    assert kstatus(o) == Status(IN_PROGRESS, "Running health checks")


def test_flux_gitrepository_stalled_is_failed():
    o = obj(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        generation=1,
        status={
            "observedGeneration": 1,
            "conditions": [cond("Stalled", reason="InvalidURL", message="invalid url"), cond("Ready", "False")],
        },
    )
    assert kstatus(o) == Status(FAILED, "invalid url")


def test_flux_gitrepository_new_generation_not_observed():
    o = obj("source.toolkit.fluxcd.io/v1", "GitRepository", generation=2, status={"observedGeneration": 1, "conditions": [cond("Ready")]})
    assert kstatus(o).status == IN_PROGRESS


# ----------------------------------------------------------------- Deployment (core.go deploymentConditions)


def deployment(spec_replicas=3, replicas=3, updated=3, ready=3, available=3, conditions=None, deadline=600):
    spec = {"replicas": spec_replicas}
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    if conditions is None:
        conditions = [cond("Available", reason="MinimumReplicasAvailable"), cond("Progressing", reason="NewReplicaSetAvailable")]
    return obj(
        "apps/v1",
        "Deployment",
        name="web",
        generation=2,
        spec=spec,
        status={
            "observedGeneration": 2,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": conditions,
        },
    )


def test_deployment_available_is_current():
    assert kstatus(deployment()) == Status(CURRENT, "Deployment is available. Replicas: 3")


def test_deployment_progress_deadline_exceeded_is_failed():
    d = deployment(updated=1, conditions=[cond("Progressing", "False", "ProgressDeadlineExceeded")])
    assert kstatus(d) == Status(FAILED, "Progress deadline exceeded")


def test_deployment_too_few_replicas():
    assert kstatus(deployment(replicas=1, updated=1)) == Status(IN_PROGRESS, "Replicas: 1/3")


def test_deployment_too_few_updated():
    assert kstatus(deployment(updated=1)) == Status(IN_PROGRESS, "Updated: 1/3")


def test_deployment_old_pods_pending_termination():
    assert kstatus(deployment(replicas=4)) == Status(IN_PROGRESS, "Pending termination: 1")


def test_deployment_updated_not_available():
    assert kstatus(deployment(available=2)) == Status(IN_PROGRESS, "Available: 2/3")


def test_deployment_not_ready():
    assert kstatus(deployment(ready=2)) == Status(IN_PROGRESS, "Ready: 2/3")


def test_deployment_without_new_replicaset_available_reason():
    d = deployment(conditions=[cond("Available"), cond("Progressing", reason="ReplicaSetUpdated")])
    assert kstatus(d) == Status(IN_PROGRESS, "ReplicaSet not Available")


def test_deployment_without_deadline_does_not_need_progressing():
    d = deployment(deadline=None, conditions=[cond("Available")])
    assert kstatus(d).status == CURRENT


def test_deployment_available_false():
    d = deployment(conditions=[cond("Available", "False"), cond("Progressing", reason="NewReplicaSetAvailable")])
    assert kstatus(d) == Status(IN_PROGRESS, "Deployment not Available")


def test_deployment_spec_replicas_defaults_to_one():
    d = deployment(replicas=1, updated=1, ready=1, available=1)
    del d["spec"]["replicas"]
    assert kstatus(d) == Status(CURRENT, "Deployment is available. Replicas: 1")


# ----------------------------------------------------------------- ReplicaSet


def replicaset(spec=2, replicas=2, labelled=2, ready=2, available=2, conditions=()):
    return obj(
        "apps/v1",
        "ReplicaSet",
        spec={"replicas": spec},
        status={
            "replicas": replicas,
            "fullyLabeledReplicas": labelled,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": list(conditions),
        },
    )


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, Status(CURRENT, "ReplicaSet is available. Replicas: 2")),
        ({"conditions": [cond("ReplicaFailure")]}, Status(IN_PROGRESS, "Replica Failure condition. Check Pods")),
        ({"labelled": 1}, Status(IN_PROGRESS, "Labelled: 1/2")),
        ({"available": 1}, Status(IN_PROGRESS, "Available: 1/2")),
        ({"ready": 0}, Status(IN_PROGRESS, "Ready: 0/2")),
        ({"replicas": 3}, Status(IN_PROGRESS, "Pending termination: 1")),
    ],
)
def test_replicaset(kwargs, expected):
    assert kstatus(replicaset(**kwargs)) == expected


# ----------------------------------------------------------------- StatefulSet


def sts(spec=3, replicas=3, ready=3, current=3, updated=3, strategy=None, cur_rev="r1", upd_rev="r1"):
    s = {"replicas": spec}
    if strategy is not None:
        s["updateStrategy"] = strategy
    return obj(
        "apps/v1",
        "StatefulSet",
        name="db",
        spec=s,
        status={
            "replicas": replicas,
            "readyReplicas": ready,
            "currentReplicas": current,
            "updatedReplicas": updated,
            "currentRevision": cur_rev,
            "updateRevision": upd_rev,
        },
    )


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, Status(CURRENT, "All replicas scheduled as expected. Replicas: 3")),
        ({"strategy": {"type": "OnDelete"}, "ready": 0}, Status(CURRENT, "StatefulSet is using the ondelete update strategy")),
        ({"replicas": 2}, Status(IN_PROGRESS, "Replicas: 2/3")),
        ({"ready": 1}, Status(IN_PROGRESS, "Ready: 1/3")),
        ({"replicas": 4}, Status(IN_PROGRESS, "Pending termination: 1")),
        ({"current": 2}, Status(IN_PROGRESS, "current: 2/3")),
        ({"upd_rev": "r2"}, Status(IN_PROGRESS, "Waiting for updated revision to match current")),
        (
            {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}, "updated": 1},
            Status(IN_PROGRESS, "updated: 1/2"),
        ),
        (
            {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}, "updated": 2, "upd_rev": "r2"},
            Status(CURRENT, "Partition rollout complete. updated: 2"),
        ),
    ],
)
def test_statefulset(kwargs, expected):
    assert kstatus(sts(**kwargs)) == expected


def test_statefulset_defaulted_partition_zero_ignores_revisions():
    """The API server defaults partition to 0, so kstatus takes the partition branch."""
    s = sts(strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}, upd_rev="r2")
    assert kstatus(s) == Status(CURRENT, "Partition rollout complete. updated: 3")


# ----------------------------------------------------------------- DaemonSet


def ds(desired=2, current=2, updated=2, available=2, ready=2, generation=1, observed=1):
    md = {} if generation is None else {"generation": generation}
    st = {
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberReady": ready,
    }
    if desired is None:
        del st["desiredNumberScheduled"]
    if observed is not None:
        st["observedGeneration"] = observed
    return obj("apps/v1", "DaemonSet", status=st, **md)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, Status(CURRENT, "All replicas scheduled as expected. Replicas: 2")),
        ({"generation": None}, Status(IN_PROGRESS, "DaemonSet metadata.generation not found")),
        ({"observed": None}, Status(IN_PROGRESS, "DaemonSet status.observedGeneration not found")),
        ({"desired": None}, Status(IN_PROGRESS, "Missing .status.desiredNumberScheduled")),
        ({"current": 1}, Status(IN_PROGRESS, "Current: 1/2")),
        ({"updated": 1}, Status(IN_PROGRESS, "Updated: 1/2")),
        ({"available": 1}, Status(IN_PROGRESS, "Available: 1/2")),
        ({"ready": 1}, Status(IN_PROGRESS, "Ready: 1/2")),
    ],
)
def test_daemonset(kwargs, expected):
    assert kstatus(ds(**kwargs)) == expected


# ----------------------------------------------------------------- Pod


def pod(phase, conditions=(), container_statuses=(), created=None):
    md = {}
    if created is not None:
        md["creationTimestamp"] = created
    return obj(
        "v1",
        "Pod",
        spec={"restartPolicy": "Always"},
        status={"phase": phase, "conditions": list(conditions), "containerStatuses": list(container_statuses)},
        **md,
    )


def waiting(name, reason):
    return {"name": name, "ready": False, "state": {"waiting": {"reason": reason, "message": f"{reason} msg"}}}


def test_pod_running_ready_is_current():
    assert kstatus(pod("Running", [cond("Ready")])) == Status(CURRENT, "Pod is Ready")


def test_pod_succeeded_is_current():
    assert kstatus(pod("Succeeded")) == Status(CURRENT, "Pod has completed successfully")


def test_pod_failed_is_current_in_kstatus():
    """core.go podConditions: a Failed pod has *completed* -> Current."""
    assert kstatus(pod("Failed")) == Status(CURRENT, "Pod has completed, but not successfully")


def test_pod_crashloop_is_failed():
    p = pod("Running", [cond("Ready", "False")], [waiting("app", "CrashLoopBackOff"), waiting("side", "CrashLoopBackOff")])
    assert kstatus(p) == Status(FAILED, "Containers in CrashLoop state: app,side")


def test_pod_running_not_ready():
    assert kstatus(pod("Running", [cond("Ready", "False")])) == Status(IN_PROGRESS, "Pod is running but is not Ready")


def test_pod_image_pull_backoff_is_only_in_progress():
    """ImagePullBackOff keeps the pod Pending: kstatus says InProgress (the timeout catches it)."""
    p = pod("Pending", [cond("PodScheduled")], [waiting("app", "ImagePullBackOff")])
    assert kstatus(p) == Status(IN_PROGRESS, "Pod is in the Pending phase")


def test_pod_err_image_pull_is_only_in_progress():
    p = pod("Pending", [cond("PodScheduled")], [waiting("app", "ErrImagePull")])
    assert kstatus(p).status == IN_PROGRESS


def test_pod_unschedulable_within_window_then_failed():
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    p = pod("Pending", [cond("PodScheduled", "False", "Unschedulable")], created="2024-01-01T00:00:00Z")
    assert kstatus(p, now=t0 + timedelta(seconds=5)) == Status(IN_PROGRESS, "Pod has not been scheduled")
    assert kstatus(p, now=t0 + timedelta(seconds=20)) == Status(FAILED, "Pod could not be scheduled")
    assert kstatus(p, now=(t0 + timedelta(seconds=20)).timestamp()).status == FAILED


def test_pod_without_phase():
    assert kstatus(pod("")) == Status(IN_PROGRESS, "Pod phase not available")


def test_pod_unknown_phase_is_unknown():
    assert kstatus(pod("Weird")) == Status(UNKNOWN, "unknown phase Weird")


# ----------------------------------------------------------------- Job: Flux's reader and plain cli-utils


def job(conditions=(), start=True, succeeded=0, failed=0, active=0, completions=None):
    spec = {} if completions is None else {"completions": completions}
    st = {"succeeded": succeeded, "failed": failed, "active": active, "conditions": list(conditions)}
    if start:
        st["startTime"] = "2024-01-01T00:00:00Z"
    return obj("batch/v1", "Job", name="migrate", spec=spec, status=st)


def test_flux_job_complete():
    assert kstatus(job([cond("Complete")], succeeded=1)) == Status(CURRENT, "Job Completed. succeeded: 1/1")


def test_flux_job_failed():
    assert kstatus(job([cond("Failed", reason="BackoffLimitExceeded")], failed=1)) == Status(FAILED, "Job Failed. failed: 1/1")


def test_flux_job_running_is_in_progress():
    assert kstatus(job(active=1)) == Status(IN_PROGRESS, "Job in progress")


def test_cli_utils_job_running_is_current():
    assert kstatus(job(active=1), flux_job_reader=False) == Status(
        CURRENT, "Job in progress. success:0, active: 1, failed: 0"
    )


def test_cli_utils_job_not_started():
    assert kstatus(job(start=False), flux_job_reader=False) == Status(IN_PROGRESS, "Job not started")


def test_cli_utils_job_suspended():
    assert kstatus(job([cond("Suspended")]), flux_job_reader=False) == Status(CURRENT, "Job is suspended")


def test_cli_utils_job_completions():
    assert kstatus(job([cond("Complete")], succeeded=3, completions=3), flux_job_reader=False) == Status(
        CURRENT, "Job Completed. succeeded: 3/3"
    )


# ----------------------------------------------------------------- PVC, Service, CRD, always-ready kinds


def test_pvc_bound_and_pending():
    assert kstatus(obj("v1", "PersistentVolumeClaim", status={"phase": "Bound"})) == Status(CURRENT, "PVC is Bound")
    assert kstatus(obj("v1", "PersistentVolumeClaim", status={"phase": "Pending"})) == Status(
        IN_PROGRESS, "PVC is not Bound. phase: Pending"
    )
    assert kstatus(obj("v1", "PersistentVolumeClaim")) == Status(IN_PROGRESS, "PVC is not Bound. phase: unknown")


def test_service_loadbalancer_without_cluster_ip():
    s = obj("v1", "Service", spec={"type": "LoadBalancer"})
    assert kstatus(s) == Status(IN_PROGRESS, "ClusterIP not set. Service type: LoadBalancer")


def test_service_loadbalancer_with_cluster_ip_is_current_even_without_ingress():
    s = obj("v1", "Service", spec={"type": "LoadBalancer", "clusterIP": "10.0.0.5"}, status={"loadBalancer": {}})
    assert kstatus(s) == Status(CURRENT, "Service is ready")


def test_service_cluster_ip():
    assert kstatus(obj("v1", "Service", spec={"clusterIP": "10.0.0.1"})) == Status(CURRENT, "Service is ready")


def crd(conditions):
    return obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", name="widgets.example.com", namespace=None, status={"conditions": conditions})


def test_crd_established():
    assert kstatus(crd([cond("NamesAccepted"), cond("Established")])) == Status(CURRENT, "CRD is established")


def test_crd_installing():
    assert kstatus(crd([cond("Established", "False", "Installing")])) == Status(IN_PROGRESS, "Install in progress")
    assert kstatus(crd([])) == Status(IN_PROGRESS, "Install in progress")


def test_crd_names_not_accepted_is_failed():
    c = crd([cond("NamesAccepted", "False", "MultipleNamesNotAllowed", "names conflict")])
    assert kstatus(c) == Status(FAILED, "names conflict")


def test_crd_not_established_other_reason_is_failed():
    assert kstatus(crd([cond("Established", "False", "Broken", "nope")])) == Status(FAILED, "nope")


@pytest.mark.parametrize("api_version, kind", [("v1", "Secret"), ("v1", "ConfigMap"), ("batch/v1", "CronJob")])
def test_always_ready(api_version, kind):
    assert kstatus(obj(api_version, kind)) == Status(CURRENT, "Resource is always ready")


def test_pdb():
    assert kstatus(obj("policy/v1", "PodDisruptionBudget")) == Status(CURRENT, "AllowedDisruptions has been computed.")


def test_namespace_active_is_current_and_deleting_is_terminating():
    ns = obj("v1", "Namespace", name="team-a", namespace=None, status={"phase": "Active"})
    assert kstatus(ns) == Status(CURRENT, "Resource is current")
    ns["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    ns["status"]["phase"] = "Terminating"
    assert kstatus(ns).status == TERMINATING


def test_deployment_in_other_group_uses_no_rule():
    """legacyTypes is keyed on group/kind: a CR named Deployment is judged generically."""
    o = obj("example.com/v1", "Deployment", spec={"replicas": 3}, status={"replicas": 0})
    assert kstatus(o) == Status(CURRENT, "Resource is current")
