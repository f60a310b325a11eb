"""Health assessment of live objects, in Flux's (kstatus) and Argo CD's vocabularies.

A GitOps reconcile does not end when the API server accepts the apply: Flux's
``wait`` / ``healthChecks`` and Argo CD's sync waves both *wait for health*, and
the app's health is what a user looks at.  This module computes health from a
single object dict — the JSON form any backend returns, the embedded simulator
or a real cluster through the official client — and never looks anything up, so
the same function answers for both worlds.  Two vocabularies are provided,
because the two tools disagree in ways the scenarios show.

kstatus (``kstatus``), as Flux computes it
===========================================

Flux's kustomize-controller waits with ``fluxcd/pkg/ssa``'s ``WaitForSet``, which
polls with kstatus (``kubernetes-sigs/cli-utils`` ``pkg/kstatus/status``, vendored
by Flux as ``fluxcd/cli-utils``).  ``status.Compute`` decides in this order
(``generic.go``, ``status.go``, ``core.go``):

1. **Generic properties.**  ``metadata.deletionTimestamp`` set → ``Terminating``
   ("Resource scheduled for deletion").  If both ``metadata.generation`` and
   ``status.observedGeneration`` are present and differ → ``InProgress``
   ("<Kind> generation is 2, but latest observed generation is 1").  A condition
   ``Reconciling=True`` → ``InProgress`` with that condition's message;
   ``Stalled=True`` → ``Failed`` with its message.  (Note the order: the
   generation check runs *before* the two conditions, as in ``generic.go``.)
2. **Type-specific ("legacy") rules**, keyed on group/kind, for the built-in types
   that do not publish the standard conditions: Deployment, ReplicaSet,
   StatefulSet, DaemonSet, Pod, Job, PVC, Service, PodDisruptionBudget,
   CustomResourceDefinition, and the always-ready Secret, ConfigMap, CronJob.
   Their messages are reproduced verbatim ("Deployment is available. Replicas: 3",
   "Updated: 1/3", "Pending termination: 1", "PVC is not Bound. phase: Pending",
   ...).  Some upstream behaviour is surprising and kept on purpose:

   * a Deployment needs ``Progressing=True`` with reason ``NewReplicaSetAvailable``
     (unless it has no ``progressDeadlineSeconds``) *and* ``Available=True`` to
     be Current; ``Progressing`` reason ``ProgressDeadlineExceeded`` → Failed;
   * a StatefulSet with a ``rollingUpdate.partition`` (the API server defaults it
     to 0) is judged by ``updatedReplicas`` against ``replicas - partition`` and
     never by ``currentRevision``/``updateRevision``; ``OnDelete`` → Current;
   * a Pod in phase ``Failed`` is **Current** ("Pod has completed, but not
     successfully"); a Running, not-Ready pod with a container waiting in
     ``CrashLoopBackOff`` is **Failed**; ``ImagePullBackOff`` / ``ErrImagePull``
     keep the pod ``Pending`` and therefore only ``InProgress`` (a bad image tag
     is caught by the timeout, not by kstatus);
   * a LoadBalancer Service is InProgress only while ``spec.clusterIP`` is empty
     (kstatus does not look at ``status.loadBalancer.ingress``; Argo CD does);
   * Namespace has no rule: it is Current unless it is being deleted.
3. **The Ready condition.**  The kstatus README ("The Ready Condition") documents
   that a resource with no type rule and none of the standard conditions is
   judged by ``Ready``: ``True`` → Current, ``False`` → InProgress.  labkit
   applies it (and treats ``Ready=Unknown`` as InProgress, which is what Flux's
   own objects mean by it: "reconciliation in progress").  This is how Flux's
   custom resources — Kustomization, GitRepository, HelmRelease — are judged
   when one Kustomization health-checks another.
4. Otherwise → ``Current`` ("Resource is current").

**Flux's Job reader.**  kstatus on its own reports a *running* Job as Current
("Job in progress. ..."), which would let a Kustomization go Ready before its
Job finishes.  Flux therefore registers its own reader (``fluxcd/pkg``
``runtime/statusreaders/job.go``): ``Complete=True`` → Current ("Job Completed.
succeeded: 1/1"), ``Failed=True`` → Failed ("Job Failed. failed: 1/1"),
anything else → InProgress ("Job in progress").  That reader replaces the whole
computation for Jobs (it does not run the generic checks).  ``kstatus`` uses it
by default (``flux_job_reader=True``), because that is what Flux does; pass
``False`` for plain cli-utils semantics.

``kstatus(None)`` is ``NotFound``, as the poller reports a missing object.  A
rule that cannot decide (a Pod in an unknown phase) gives ``Unknown`` with the
error text, where Go would return an error that the poller turns into Unknown.

Argo CD's vocabulary (``argo_health``)
=======================================

Argo CD uses ``argoproj/gitops-engine`` ``pkg/health``: Healthy, Progressing,
Degraded, Suspended, Missing, Unknown.  ``GetResourceHealth`` first maps a
``deletionTimestamp`` to Progressing ("Pending deletion"), then dispatches on
group/kind: ``apps`` Deployment / StatefulSet / ReplicaSet / DaemonSet,
``networking.k8s.io`` and ``extensions`` Ingress, core Service / PVC / Pod,
``batch`` Job, ``autoscaling`` HorizontalPodAutoscaler, and
``apiextensions.k8s.io`` CustomResourceDefinition.  Messages are mirrored from
the Go files (``health_deployment.go``: "Waiting for rollout to finish: 1 of 3
updated replicas are available...", including upstream's "less then desired
generation").  Highlights:

* Deployment: ``spec.paused`` → Suspended; the rollout checks run only once
  ``observedGeneration >= generation`` (else Progressing);
  ``ProgressDeadlineExceeded`` → Degraded.
* StatefulSet: ``observedGeneration`` 0 or behind → Progressing; a
  ``RollingUpdate`` strategy with a ``rollingUpdate`` block (always present on a
  live object: the partition defaults to 0) is Healthy as soon as enough pods
  are updated and ready — the revision check applies only without that block.
* Pod (restart policy Always): a container waiting with a reason starting
  ``Err`` or ending ``Error`` / ``BackOff`` (``ErrImagePull``,
  ``ImagePullBackOff``, ``CrashLoopBackOff``) → **Degraded** at once — the
  difference from kstatus that the promotion scenario shows.  A missing
  ``restartPolicy`` is read as ``Always`` (the API server's default).
* Job: Failed condition → Degraded, Complete → Healthy, Suspended → Suspended,
  else Progressing.  PVC: Bound / Pending / Lost → Healthy / Progressing /
  Degraded.  Service/Ingress: LoadBalancer without ``status.loadBalancer.ingress``
  → Progressing.  HPA: the AbleToScale / ScalingActive failure reasons →
  Degraded; all conditions AbleToScale/ScalingLimited True → Healthy.

Kinds without a built-in check have *no* health in Argo CD (they do not count
towards the app's health).  ``argo_health`` returns ``Healthy`` with an empty
message for them — neutral under ``worst_health`` — and
``argo_has_health_check`` tells the two cases apart.  ``argo_health(None)`` is
``Missing``.

``worst_health`` folds a list with gitops-engine's ``IsWorse`` order, most to
least healthy: Healthy < Suspended < Progressing < Missing < Degraded < Unknown.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

__all__ = [
    "Status",
    "Health",
    "IN_PROGRESS",
    "FAILED",
    "CURRENT",
    "TERMINATING",
    "NOT_FOUND",
    "UNKNOWN",
    "KSTATUS_VALUES",
    "HEALTHY",
    "PROGRESSING",
    "DEGRADED",
    "SUSPENDED",
    "MISSING",
    "HEALTH_ORDER",
    "kstatus",
    "argo_health",
    "argo_has_health_check",
    "is_worse",
    "worst_health",
    "get_condition",
]

Obj = Mapping[str, Any]

# kstatus statuses (cli-utils pkg/kstatus/status/status.go)
IN_PROGRESS = "InProgress"
FAILED = "Failed"
CURRENT = "Current"
TERMINATING = "Terminating"
NOT_FOUND = "NotFound"
UNKNOWN = "Unknown"
KSTATUS_VALUES = (IN_PROGRESS, FAILED, CURRENT, TERMINATING, NOT_FOUND, UNKNOWN)

# Argo CD health codes (gitops-engine pkg/health/health.go)
HEALTHY = "Healthy"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
SUSPENDED = "Suspended"
MISSING = "Missing"
HEALTH_ORDER = (HEALTHY, SUSPENDED, PROGRESSING, MISSING, DEGRADED, UNKNOWN)


@dataclass(frozen=True)
class Status:
    """A kstatus result: ``status`` is one of ``KSTATUS_VALUES``."""

    status: str
    message: str = ""

    def __str__(self) -> str:
        return f"{self.status}: {self.message}" if self.message else self.status


@dataclass(frozen=True)
class Health:
    """An Argo CD health result: ``status`` is one of ``HEALTH_ORDER``."""

    status: str
    message: str = ""

    def __str__(self) -> str:
        return f"{self.status}: {self.message}" if self.message else self.status


# ------------------------------------------------------------------ helpers


def _get(obj: Any, path: str, default: Any = None) -> Any:
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return default
        cur = cur[part]
    return cur


def _int(obj: Any, path: str, default: int) -> int:
    """cli-utils ``GetIntField``: the integer at ``path``, or ``default`` if absent / not a number."""
    v = _get(obj, path, None)
    if isinstance(v, bool) or v is None:
        return default
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return default


def _str(obj: Any, path: str, default: str) -> str:
    v = _get(obj, path, None)
    return v if isinstance(v, str) else default


def _conditions(obj: Any) -> list[Mapping[str, Any]]:
    conds = _get(obj, "status.conditions", None)
    if not isinstance(conds, list):
        return []
    return [c for c in conds if isinstance(c, Mapping)]


def get_condition(obj: Obj | None, ctype: str) -> Mapping[str, Any] | None:
    """The first ``status.conditions`` entry of type ``ctype``, or None."""
    if obj is None:
        return None
    for c in _conditions(obj):
        if c.get("type") == ctype:
            return c
    return None


def _group_kind(obj: Obj) -> tuple[str, str]:
    api_version = obj.get("apiVersion") or ""
    group = api_version.split("/")[0] if "/" in api_version else ""
    return group, obj.get("kind") or ""


def _version(obj: Obj) -> str:
    api_version = obj.get("apiVersion") or ""
    return api_version.split("/")[-1]


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _now(now: datetime | float | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if isinstance(now, datetime):
        return now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(float(now), tz=timezone.utc)


class _Undecided(Exception):
    """A rule could not compute a status (cli-utils would return an error)."""


# ------------------------------------------------------------------ kstatus

def _in_progress(message: str) -> Status:
    return Status(IN_PROGRESS, message)


def _failed(message: str) -> Status:
    return Status(FAILED, message)


def _current(message: str) -> Status:
    return Status(CURRENT, message)


def _generic(obj: Obj) -> Status | None:
    md = obj.get("metadata") or {}
    if md.get("deletionTimestamp"):
        return Status(TERMINATING, "Resource scheduled for deletion")
    generation = _get(obj, "metadata.generation")
    observed = _get(obj, "status.observedGeneration")
    if isinstance(generation, int) and isinstance(observed, int) and not isinstance(observed, bool):
        if observed != generation:
            kind = obj.get("kind", "")
            return _in_progress(f"{kind} generation is {generation}, but latest observed generation is {observed}")
    for c in _conditions(obj):
        if c.get("type") == "Reconciling" and c.get("status") == "True":
            return _in_progress(str(c.get("message", "")))
        if c.get("type") == "Stalled" and c.get("status") == "True":
            return _failed(str(c.get("message", "")))
    return None


def _always_ready(obj: Obj) -> Status:
    return _current("Resource is always ready")


def _sts(obj: Obj) -> Status:
    if _str(obj, "spec.updateStrategy.type", "") == "OnDelete":
        return _current("StatefulSet is using the ondelete update strategy")
    spec = _int(obj, "spec.replicas", 1)
    ready = _int(obj, "status.readyReplicas", 0)
    current = _int(obj, "status.currentReplicas", 0)
    updated = _int(obj, "status.updatedReplicas", 0)
    status_replicas = _int(obj, "status.replicas", 0)
    partition = _int(obj, "spec.updateStrategy.rollingUpdate.partition", -1)
    if spec > status_replicas:
        return _in_progress(f"Replicas: {status_replicas}/{spec}")
    if spec > ready:
        return _in_progress(f"Ready: {ready}/{spec}")
    if status_replicas > spec:
        return _in_progress(f"Pending termination: {status_replicas - spec}")
    if partition != -1:
        if updated < spec - partition:
            return _in_progress(f"updated: {updated}/{spec - partition}")
        return _current(f"Partition rollout complete. updated: {updated}")
    if spec > current:
        return _in_progress(f"current: {current}/{spec}")
    if _str(obj, "status.currentRevision", "") != _str(obj, "status.updateRevision", ""):
        return _in_progress("Waiting for updated revision to match current")
    return _current(f"All replicas scheduled as expected. Replicas: {status_replicas}")


_MAX_INT32 = 2**31 - 1


def _deployment(obj: Obj) -> Status:
    progressing = False
    if _int(obj, "spec.progressDeadlineSeconds", _MAX_INT32) == _MAX_INT32:
        # no deadline: the controller never sets Progressing, so do not wait for it
        progressing = True
    available = False
    for c in _conditions(obj):
        if c.get("type") == "Progressing":
            if c.get("reason") == "ProgressDeadlineExceeded":
                return _failed("Progress deadline exceeded")
            if c.get("status") == "True" and c.get("reason") == "NewReplicaSetAvailable":
                progressing = True
        elif c.get("type") == "Available" and c.get("status") == "True":
            available = True
    spec = _int(obj, "spec.replicas", 1)
    status_replicas = _int(obj, "status.replicas", 0)
    updated = _int(obj, "status.updatedReplicas", 0)
    ready = _int(obj, "status.readyReplicas", 0)
    avail = _int(obj, "status.availableReplicas", 0)
    if spec > status_replicas:
        return _in_progress(f"Replicas: {status_replicas}/{spec}")
    if spec > updated:
        return _in_progress(f"Updated: {updated}/{spec}")
    if status_replicas > spec:
        return _in_progress(f"Pending termination: {status_replicas - spec}")
    if updated > avail:
        return _in_progress(f"Available: {avail}/{updated}")
    if spec > ready:
        return _in_progress(f"Ready: {ready}/{spec}")
    if not progressing:
        return _in_progress("ReplicaSet not Available")
    if not available:
        return _in_progress("Deployment not Available")
    return _current(f"Deployment is available. Replicas: {status_replicas}")


def _replicaset(obj: Obj) -> Status:
    for c in _conditions(obj):
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True":
            return _in_progress("Replica Failure condition. Check Pods")
    spec = _int(obj, "spec.replicas", 1)
    status_replicas = _int(obj, "status.replicas", 0)
    ready = _int(obj, "status.readyReplicas", 0)
    avail = _int(obj, "status.availableReplicas", 0)
    labelled = _int(obj, "status.fullyLabeledReplicas", 0)
    if spec > labelled:
        return _in_progress(f"Labelled: {labelled}/{spec}")
    if spec > avail:
        return _in_progress(f"Available: {avail}/{spec}")
    if spec > ready:
        return _in_progress(f"Ready: {ready}/{spec}")
    if status_replicas > spec:
        return _in_progress(f"Pending termination: {status_replicas - spec}")
    return _current(f"ReplicaSet is available. Replicas: {status_replicas}")


def _daemonset(obj: Obj) -> Status:
    kind = obj.get("kind", "")
    if not isinstance(_get(obj, "metadata.generation"), int):
        return _in_progress(f"{kind} metadata.generation not found")
    if not isinstance(_get(obj, "status.observedGeneration"), int):
        return _in_progress(f"{kind} status.observedGeneration not found")
    desired = _int(obj, "status.desiredNumberScheduled", -1)
    current = _int(obj, "status.currentNumberScheduled", 0)
    updated = _int(obj, "status.updatedNumberScheduled", 0)
    avail = _int(obj, "status.numberAvailable", 0)
    ready = _int(obj, "status.numberReady", 0)
    if desired == -1:
        return _in_progress("Missing .status.desiredNumberScheduled")
    if desired > current:
        return _in_progress(f"Current: {current}/{desired}")
    if desired > updated:
        return _in_progress(f"Updated: {updated}/{desired}")
    if desired > avail:
        return _in_progress(f"Available: {avail}/{desired}")
    if desired > ready:
        return _in_progress(f"Ready: {ready}/{desired}")
    return _current(f"All replicas scheduled as expected. Replicas: {desired}")


def _pvc(obj: Obj) -> Status:
    phase = _str(obj, "status.phase", "unknown")
    if phase != "Bound":
        return _in_progress(f"PVC is not Bound. phase: {phase}")
    return _current("PVC is Bound")


_SCHEDULE_WINDOW = 15.0  # seconds (cli-utils ScheduleWindow)


def _crash_looping(obj: Obj) -> list[str]:
    names = []
    for cs in _get(obj, "status.containerStatuses", None) or []:
        if not isinstance(cs, Mapping) or "name" not in cs:
            continue
        reason = _get(cs, "state.waiting.reason")
        if reason == "CrashLoopBackOff":
            names.append(str(cs["name"]))
    return names


def _pod(obj: Obj, now: datetime | float | None) -> Status:
    phase = _str(obj, "status.phase", "")
    conds = _conditions(obj)
    if phase == "Succeeded":
        return _current("Pod has completed successfully")
    if phase == "Failed":
        return _current("Pod has completed, but not successfully")
    if phase == "Running":
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
            return _current("Pod is Ready")
        looping = _crash_looping(obj)
        if looping:
            return _failed(f"Containers in CrashLoop state: {','.join(looping)}")
        return _in_progress("Pod is running but is not Ready")
    if phase == "Pending":
        sched = next(
            (c for c in conds if c.get("type") == "PodScheduled" and c.get("status") == "False"), None
        )
        if sched is not None and sched.get("reason") == "Unschedulable":
            created = _parse_time(_get(obj, "metadata.creationTimestamp"))
            if created is not None and (_now(now) - created).total_seconds() < _SCHEDULE_WINDOW:
                return _in_progress("Pod has not been scheduled")
            return _failed("Pod could not be scheduled")
        return _in_progress("Pod is in the Pending phase")
    if phase == "":
        return _in_progress("Pod phase not available")
    raise _Undecided(f"unknown phase {phase}")


def _pdb(obj: Obj) -> Status:
    return _current("AllowedDisruptions has been computed.")


def _job_cli_utils(obj: Obj) -> Status:
    parallelism = _int(obj, "spec.parallelism", 1)
    completions = _int(obj, "spec.completions", parallelism)
    succeeded = _int(obj, "status.succeeded", 0)
    active = _int(obj, "status.active", 0)
    failed = _int(obj, "status.failed", 0)
    for c in _conditions(obj):
        if c.get("status") != "True":
            continue
        if c.get("type") == "Complete":
            return _current(f"Job Completed. succeeded: {succeeded}/{completions}")
        if c.get("type") == "Failed":
            return _failed(f"Job Failed. failed: {failed}/{completions}")
        if c.get("type") == "Suspended":
            return _current("Job is suspended")
    if not _str(obj, "status.startTime", ""):
        return _in_progress("Job not started")
    return _current(f"Job in progress. success:{succeeded}, active: {active}, failed: {failed}")


def _job_flux(obj: Obj) -> Status:
    parallelism = _int(obj, "spec.parallelism", 1)
    completions = _int(obj, "spec.completions", parallelism)
    succeeded = _int(obj, "status.succeeded", 0)
    failed = _int(obj, "status.failed", 0)
    for c in _conditions(obj):
        if c.get("type") == "Complete" and c.get("status") == "True":
            return _current(f"Job Completed. succeeded: {succeeded}/{completions}")
        if c.get("type") == "Failed" and c.get("status") == "True":
            return _failed(f"Job Failed. failed: {failed}/{completions}")
    return _in_progress("Job in progress")


def _service(obj: Obj) -> Status:
    if _str(obj, "spec.type", "ClusterIP") == "LoadBalancer" and not _str(obj, "spec.clusterIP", ""):
        return _in_progress("ClusterIP not set. Service type: LoadBalancer")
    return _current("Service is ready")


def _crd(obj: Obj) -> Status:
    for c in _conditions(obj):
        if c.get("type") == "NamesAccepted" and c.get("status") == "False":
            return _failed(str(c.get("message", "")))
        if c.get("type") == "Established":
            if c.get("status") == "False" and c.get("reason") != "Installing":
                return _failed(str(c.get("message", "")))
            if c.get("status") == "True":
                return _current("CRD is established")
    return _in_progress("Install in progress")


_LEGACY = {
    "Service": _service,
    "Secret": _always_ready,
    "PersistentVolumeClaim": _pvc,
    "apps/StatefulSet": _sts,
    "apps/DaemonSet": _daemonset,
    "extensions/DaemonSet": _daemonset,
    "apps/Deployment": _deployment,
    "extensions/Deployment": _deployment,
    "apps/ReplicaSet": _replicaset,
    "extensions/ReplicaSet": _replicaset,
    "policy/PodDisruptionBudget": _pdb,
    "batch/CronJob": _always_ready,
    "ConfigMap": _always_ready,
    "batch/Job": _job_cli_utils,
    "apiextensions.k8s.io/CustomResourceDefinition": _crd,
}


def _ready_condition(obj: Obj) -> Status | None:
    ready = get_condition(obj, "Ready")
    if ready is None:
        return None
    if ready.get("status") == "True":
        return _current("Resource is Ready")
    return _in_progress(str(ready.get("message", "")) or "Resource is not Ready")


def kstatus(
    obj: Obj | None,
    *,
    flux_job_reader: bool = True,
    now: datetime | float | None = None,
) -> Status:
    """The kstatus of ``obj`` as Flux computes it (see the module docstring).

    ``flux_job_reader`` selects Flux's Job reader (default) over plain cli-utils;
    ``now`` (a datetime or epoch seconds) is only used for the 15 s scheduling
    grace period of an unschedulable Pod; it defaults to the wall clock.
    """
    if obj is None:
        return Status(NOT_FOUND, "Resource not found")
    group, kind = _group_kind(obj)
    key = f"{group}/{kind}" if group else kind
    try:
        if flux_job_reader and key == "batch/Job":
            return _job_flux(obj)
        res = _generic(obj)
        if res is not None:
            return res
        if key == "Pod":
            return _pod(obj, now)
        fn = _LEGACY.get(key)
        if fn is not None:
            return fn(obj)
        res = _ready_condition(obj)
        if res is not None:
            return res
        return _current("Resource is current")
    except _Undecided as err:
        return Status(UNKNOWN, str(err))


# ------------------------------------------------------------------ Argo CD health


def _argo_deployment(obj: Obj) -> Health:
    name = _str(obj, "metadata.name", "")
    if _get(obj, "spec.paused") is True:
        return Health(SUSPENDED, "Deployment is paused")
    generation = _int(obj, "metadata.generation", 0)
    observed = _int(obj, "status.observedGeneration", 0)
    if generation > observed:
        return Health(
            PROGRESSING,
            "Waiting for rollout to finish: observed deployment generation less then desired generation",
        )
    cond = get_condition(obj, "Progressing")
    spec_replicas = _get(obj, "spec.replicas")
    updated = _int(obj, "status.updatedReplicas", 0)
    replicas = _int(obj, "status.replicas", 0)
    available = _int(obj, "status.availableReplicas", 0)
    if cond is not None and cond.get("reason") == "ProgressDeadlineExceeded":
        return Health(DEGRADED, f'Deployment "{name}" exceeded its progress deadline')
    if isinstance(spec_replicas, int) and updated < spec_replicas:
        return Health(
            PROGRESSING,
            f"Waiting for rollout to finish: {updated} out of {spec_replicas} new replicas have been updated...",
        )
    if replicas > updated:
        return Health(
            PROGRESSING,
            f"Waiting for rollout to finish: {replicas - updated} old replicas are pending termination...",
        )
    if available < updated:
        return Health(
            PROGRESSING,
            f"Waiting for rollout to finish: {available} of {updated} updated replicas are available...",
        )
    return Health(HEALTHY, "")


def _argo_statefulset(obj: Obj) -> Health:
    generation = _int(obj, "metadata.generation", 0)
    observed = _int(obj, "status.observedGeneration", 0)
    if observed == 0 or generation > observed:
        return Health(PROGRESSING, "Waiting for statefulset spec update to be observed...")
    spec_replicas = _get(obj, "spec.replicas")
    ready = _int(obj, "status.readyReplicas", 0)
    updated = _int(obj, "status.updatedReplicas", 0)
    if isinstance(spec_replicas, int) and ready < spec_replicas:
        return Health(PROGRESSING, f"Waiting for {spec_replicas - ready} pods to be ready...")
    strategy = _str(obj, "spec.updateStrategy.type", "")
    rolling = _get(obj, "spec.updateStrategy.rollingUpdate")
    if strategy == "RollingUpdate" and isinstance(rolling, Mapping):
        partition = rolling.get("partition")
        if isinstance(spec_replicas, int) and isinstance(partition, int) and not isinstance(partition, bool):
            if updated < spec_replicas - partition:
                return Health(
                    PROGRESSING,
                    "Waiting for partitioned roll out to finish: "
                    f"{updated} out of {spec_replicas - partition} new pods have been updated...",
                )
        return Health(HEALTHY, f"partitioned roll out complete: {updated} new pods have been updated...")
    if strategy == "OnDelete":
        return Health(HEALTHY, f"statefulset has {ready} ready pods ({updated} updated)")
    update_rev = _str(obj, "status.updateRevision", "")
    current_rev = _str(obj, "status.currentRevision", "")
    if update_rev != current_rev:
        return Health(
            PROGRESSING,
            f"waiting for statefulset rolling update to complete {updated} pods at revision {update_rev}...",
        )
    current = _int(obj, "status.currentReplicas", 0)
    return Health(HEALTHY, f"statefulset rolling update complete {current} pods at revision {current_rev}...")


def _argo_replicaset(obj: Obj) -> Health:
    generation = _int(obj, "metadata.generation", 0)
    observed = _int(obj, "status.observedGeneration", 0)
    if generation > observed:
        return Health(
            PROGRESSING,
            "Waiting for rollout to finish: observed replica set generation less then desired generation",
        )
    cond = get_condition(obj, "ReplicaFailure")
    if cond is not None and cond.get("status") == "True":
        return Health(DEGRADED, str(cond.get("message", "")))
    spec_replicas = _get(obj, "spec.replicas")
    available = _int(obj, "status.availableReplicas", 0)
    if isinstance(spec_replicas, int) and available < spec_replicas:
        return Health(
            PROGRESSING,
            f"Waiting for rollout to finish: {available} out of {spec_replicas} new replicas are available...",
        )
    return Health(HEALTHY, "")


def _argo_daemonset(obj: Obj) -> Health:
    name = _str(obj, "metadata.name", "")
    generation = _int(obj, "metadata.generation", 0)
    observed = _int(obj, "status.observedGeneration", 0)
    if generation > observed:
        return Health(
            PROGRESSING,
            "Waiting for rollout to finish: observed daemon set generation less then desired generation",
        )
    desired = _int(obj, "status.desiredNumberScheduled", 0)
    updated = _int(obj, "status.updatedNumberScheduled", 0)
    available = _int(obj, "status.numberAvailable", 0)
    if _str(obj, "spec.updateStrategy.type", "") == "OnDelete":
        return Health(HEALTHY, f"daemon set {updated} out of {desired} new pods have been updated")
    if updated < desired:
        return Health(
            PROGRESSING,
            f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new pods have been updated...',
        )
    if available < desired:
        return Health(
            PROGRESSING,
            f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} updated pods are available...',
        )
    return Health(HEALTHY, "")


def _argo_lb_ingress(obj: Obj) -> bool:
    ingress = _get(obj, "status.loadBalancer.ingress")
    return isinstance(ingress, list) and len(ingress) > 0


def _argo_service(obj: Obj) -> Health:
    if _str(obj, "spec.type", "") == "LoadBalancer" and not _argo_lb_ingress(obj):
        return Health(PROGRESSING, "")
    return Health(HEALTHY, "")


def _argo_ingress(obj: Obj) -> Health:
    return Health(HEALTHY if _argo_lb_ingress(obj) else PROGRESSING, "")


def _argo_pvc(obj: Obj) -> Health:
    phase = _str(obj, "status.phase", "")
    status = {"Lost": DEGRADED, "Pending": PROGRESSING, "Bound": HEALTHY}.get(phase, UNKNOWN)
    return Health(status, "")


_IGNORE_RESTART_POLICY = "argocd.argoproj.io/ignore-restart-policy"


def _argo_pod(obj: Obj) -> Health:
    restart = _str(obj, "spec.restartPolicy", "") or "Always"
    message = _str(obj, "status.message", "")
    statuses = [c for c in (_get(obj, "status.containerStatuses") or []) if isinstance(c, Mapping)]
    init_statuses = [c for c in (_get(obj, "status.initContainerStatuses") or []) if isinstance(c, Mapping)]
    if restart == "Always":
        messages = []
        degraded = False
        for cs in statuses:
            waiting = _get(cs, "state.waiting")
            if not isinstance(waiting, Mapping):
                continue
            reason = str(waiting.get("reason", ""))
            if reason.startswith("Err") or reason.endswith("Error") or reason.endswith("BackOff"):
                degraded = True
                messages.append(str(waiting.get("message", "")))
        if degraded:
            return Health(DEGRADED, ", ".join(messages))

    def fail_message(cs: Mapping[str, Any]) -> str:
        term = _get(cs, "state.terminated")
        if isinstance(term, Mapping):
            if term.get("message"):
                return str(term["message"])
            if term.get("reason") == "OOMKilled":
                return "OOMKilled"
            code = term.get("exitCode", 0)
            if code:
                return f'container "{cs.get("name", "")}" failed with exit code {code}'
        return ""

    phase = _str(obj, "status.phase", "")
    if phase == "Pending":
        return Health(PROGRESSING, message)
    if phase == "Succeeded":
        return Health(HEALTHY, message)
    if phase == "Failed":
        if message:
            return Health(DEGRADED, message)
        for cs in init_statuses + statuses:
            msg = fail_message(cs)
            if msg:
                return Health(DEGRADED, msg)
        return Health(DEGRADED, "")
    if phase == "Running":
        annotations = _get(obj, "metadata.annotations") or {}
        if _IGNORE_RESTART_POLICY in annotations or restart == "Always":
            ready = get_condition(obj, "Ready")
            if ready is not None and ready.get("status") == "True":
                return Health(HEALTHY, message)
            for cs in statuses:
                if isinstance(_get(cs, "lastState.terminated"), Mapping):
                    return Health(DEGRADED, message)
            return Health(PROGRESSING, message)
        if restart in ("OnFailure", "Never"):
            return Health(PROGRESSING, message)
    return Health(UNKNOWN, message)


def _argo_job(obj: Obj) -> Health:
    failed = complete = suspended = False
    fail_msg = message = ""
    for c in _conditions(obj):
        ctype = c.get("type")
        if ctype == "Failed":
            failed = complete = True
            fail_msg = str(c.get("message", ""))
        elif ctype == "Complete":
            complete = True
            message = str(c.get("message", ""))
        elif ctype == "Suspended":
            complete = True
            message = str(c.get("message", ""))
            if c.get("status") == "True":
                suspended = True
    if not complete:
        return Health(PROGRESSING, message)
    if failed:
        return Health(DEGRADED, fail_msg)
    if suspended:
        return Health(SUSPENDED, message)
    return Health(HEALTHY, message)


_HPA_DEGRADED = {
    ("AbleToScale", "FailedGetScale"),
    ("AbleToScale", "FailedUpdateScale"),
    ("ScalingActive", "FailedGetResourceMetric"),
    ("ScalingActive", "InvalidSelector"),
}
_HPA_WAITING = Health(PROGRESSING, "Waiting to Autoscale")


def _argo_hpa(obj: Obj) -> Health:
    if _version(obj) == "v1":
        raw = (_get(obj, "metadata.annotations") or {}).get("autoscaling.alpha.kubernetes.io/conditions")
        if raw is None:
            return _HPA_WAITING
        try:
            conds = json.loads(raw)
        except (TypeError, ValueError) as err:
            return Health(UNKNOWN, f"failed to convert conditions annotation to typed: {err}")
        if not conds:
            return _HPA_WAITING
        conds = [c for c in conds if isinstance(c, Mapping)]
    else:
        conds = _conditions(obj)
    healthy_messages = []
    for c in conds:
        if (c.get("type"), c.get("reason")) in _HPA_DEGRADED:
            return Health(DEGRADED, str(c.get("message", "")))
        if c.get("type") in ("AbleToScale", "ScalingLimited") and c.get("status") == "True":
            healthy_messages.append(str(c.get("message", "")))
    if len(conds) == len(healthy_messages):
        return Health(HEALTHY, ",".join(healthy_messages))
    return _HPA_WAITING


def _argo_crd(obj: Obj) -> Health:
    conds = _conditions(obj)
    if not conds:
        return Health(PROGRESSING, "Status conditions not found")
    established = terminating = names_rejected = violations = False
    msg = ""
    for c in conds:
        ctype, status = c.get("type"), c.get("status")
        if ctype == "Terminating" and status == "True":
            terminating, msg = True, str(c.get("message", ""))
        elif ctype == "NamesAccepted" and status == "False":
            names_rejected, msg = True, str(c.get("message", ""))
        elif ctype == "Established":
            if status == "True":
                established = True
            else:
                msg = str(c.get("message", ""))
        elif ctype == "NonStructuralSchema" and status == "True":
            violations, msg = True, str(c.get("message", ""))
    if terminating:
        return Health(PROGRESSING, f"CRD is being terminated: {msg}")
    if names_rejected:
        return Health(DEGRADED, f"CRD names have not been accepted: {msg}")
    if not established:
        return Health(DEGRADED, f"CRD is not established: {msg}")
    if violations:
        return Health(DEGRADED, f"Schema violations found: {msg}")
    return Health(HEALTHY, "CRD is healthy")


_ARGO_CHECKS = {
    ("apps", "Deployment"): _argo_deployment,
    ("apps", "StatefulSet"): _argo_statefulset,
    ("apps", "ReplicaSet"): _argo_replicaset,
    ("apps", "DaemonSet"): _argo_daemonset,
    ("extensions", "Ingress"): _argo_ingress,
    ("networking.k8s.io", "Ingress"): _argo_ingress,
    ("", "Service"): _argo_service,
    ("", "PersistentVolumeClaim"): _argo_pvc,
    ("", "Pod"): _argo_pod,
    ("batch", "Job"): _argo_job,
    ("autoscaling", "HorizontalPodAutoscaler"): _argo_hpa,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _argo_crd,
}


def argo_has_health_check(obj: Obj) -> bool:
    """Whether Argo CD has a built-in health check for this object's group/kind."""
    return _group_kind(obj) in _ARGO_CHECKS


def argo_health(obj: Obj | None) -> Health:
    """Argo CD's health of ``obj`` (gitops-engine ``GetResourceHealth``); None → Missing."""
    if obj is None:
        return Health(MISSING, "")
    if _get(obj, "metadata.deletionTimestamp"):
        return Health(PROGRESSING, "Pending deletion")
    check = _ARGO_CHECKS.get(_group_kind(obj))
    if check is None:
        return Health(HEALTHY, "")
    return check(obj)


def _code(h: Health | Status | str) -> str:
    return h if isinstance(h, str) else h.status


def is_worse(current: Health | str, new: Health | str) -> bool:
    """gitops-engine ``IsWorse``: is ``new`` a worse health code than ``current``?"""

    def index(code: str) -> int:
        return HEALTH_ORDER.index(code) if code in HEALTH_ORDER else 0

    return index(_code(new)) > index(_code(current))


def worst_health(healths: Iterable[Health | str]) -> Health:
    """The worst of ``healths`` (first one wins ties); Healthy for an empty list."""
    worst = Health(HEALTHY, "")
    for h in healths:
        h = Health(h) if isinstance(h, str) else h
        if is_worse(worst, h):
            worst = h
    return worst
