"""The Job controller: run pods to completion, count successes and failures, give up in time.

A port of the parts of ``pkg/controller/job/job_controller.go`` (Kubernetes
1.31+, with ``JobPodReplacementPolicy`` and ``JobManagedBy`` on, so terminal
conditions are delayed until pods have terminated) that decide *when a Job is
done* — which is what an Argo CD PreSync hook or a Flux health check waits for.

Pods
    ``min(parallelism, completions − succeeded)`` pods are kept active (pods
    named ``<job>-<suffix>`` from ``spec.template``, with a controller
    ownerReference and the ``controller-uid`` / ``job-name`` labels the API
    server added to the template); event ``SuccessfulCreate`` "Created pod:
    migrate-7xk2p".  A pod counts as **succeeded** when it reaches ``Succeeded``
    and as **failed** when it reaches ``Failed`` or is deleted before succeeding;
    each pod is counted once.

Back-off (``backoff_utils.go``)
    After failures, the next pod is created no sooner than 10 s × 2^(n−1) (capped
    at 10 minutes) after the last failure, where n counts the failures since the
    last success (``DefaultJobPodFailureBackOff`` / ``MaxJobPodFailureBackOff``);
    the failure time is the pod's last container ``finishedAt`` (one-second
    resolution).

Pod events are batched: a change of a Job's pods syncs the Job
``Timings.job_sync_batch`` (1 s, upstream ``syncJobBatchPeriod``) later, while a
new or edited Job is synced at once.

Finishing
    * ``failed > backoffLimit`` (``restartPolicy: Never``), or for ``OnFailure``
      the pods' container restarts reaching ``backoffLimit`` → the interim
      condition ``FailureTarget`` (reason ``BackoffLimitExceeded``, "Job has
      reached the specified backoff limit") is added and active pods are
      deleted; once no pod is terminating, ``Failed`` with the same reason and
      message, and the Warning event ``BackoffLimitExceeded``.  With
      ``backoffLimit: 0`` the first failed pod fails the Job.
    * ``activeDeadlineSeconds`` elapsed since ``startTime`` → the same with
      reason ``DeadlineExceeded``, "Job was active longer than specified
      deadline"; the Job is re-synced exactly at the deadline.
    * ``succeeded >= completions`` with no active pod → ``SuccessCriteriaMet``
      then ``Complete`` (reason ``CompletionsReached``, "Reached expected number of
      succeeded pods"), ``completionTime`` and the event ``Completed`` "Job
      completed".
    * ``suspend: true`` deletes active pods (``Suspended=True/JobSuspended``);
      resuming resets ``startTime``.
    * ``ttlSecondsAfterFinished`` deletes the Job (and, by garbage collection,
      its pods) that long after it finished (the ttl-after-finished controller).

Status: ``startTime``, ``completionTime``, ``active``, ``ready``,
``succeeded``, ``failed``, ``terminating``, ``uncountedTerminatedPods`` and
``conditions``.  labkit does not add the ``batch.kubernetes.io/job-tracking``
finalizer to pods: counting is done in the controller's memory, which the
simulator never loses.  Indexed completion mode, ``podFailurePolicy`` and
``successPolicy`` are not modelled.  Component names in the event log:
``job-controller`` and ``ttl-after-finished-controller``.
"""
from __future__ import annotations

from typing import Any

from labkit.core.events import object_key
from labkit.sim.controllers.common import FIELD_MANAGER, iso, parse_time
from labkit.sim.controllers.informers import Informers, PodInfo
from labkit.sim.controllers.replicaset import deletion_order, pod_from_template
from labkit.sim.controllers.workqueue import Controller
from labkit.sim.timings import Timings

DEFAULT_BACKOFF = 10.0
MAX_BACKOFF = 600.0
BACKOFF_LIMIT_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
COMPLETE_MESSAGE = "Reached expected number of succeeded pods"


def _finished(job: dict) -> bool:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return True
    return False


def _condition(conds: list[dict], ctype: str) -> dict | None:
    for c in conds:
        if c.get("type") == ctype:
            return c
    return None


class JobController(Controller):
    component = "job-controller"

    def __init__(self, cluster: Any, informers: Informers, timings: Timings):
        super().__init__(cluster)
        self.pods = informers.pods
        self.timings = timings
        self._generation: dict[str, int] = {}
        self._counted: dict[str, dict[str, str]] = {}  # job uid -> pod uid -> "Succeeded"/"Failed"
        self._backoff: dict[str, tuple[int, float | None]] = {}  # job uid -> (failures after success, last failure)
        self._ttl_scheduled: set[str] = set()
        self.store.watch("batch", "Job", self._on_job)
        self.pods.on_change(self._on_pod)

    # ------------------------------------------------------------------ handlers
    def _on_job(self, ev: str, obj: dict) -> None:
        md = obj["metadata"]
        key = (md.get("namespace", ""), md["name"])
        uid = md["uid"]
        if ev == "DELETED":
            self._generation.pop(uid, None)
            self._counted.pop(uid, None)
            self._backoff.pop(uid, None)
            self.queue.add(key)
            return
        gen = md.get("generation", 1)
        old = self._generation.get(uid)
        self._generation[uid] = gen
        if ev == "ADDED" or old != gen:
            self.queue.add(key)
        else:
            self.queue.add_after(key, self.timings.job_sync_batch)

    def _on_pod(self, ev: str, pod: dict, info: PodInfo) -> None:
        if info is None or not info.owner_uid:
            return
        ref = next((r for r in pod["metadata"].get("ownerReferences") or () if r.get("controller")), None)
        if ref is None or ref.get("kind") != "Job":
            return
        self.queue.add_after((info.namespace, ref.get("name", "")), self.timings.job_sync_batch)

    def object_key(self, key: Any) -> str:
        return object_key("Job", key[0], key[1])

    # ------------------------------------------------------------------ sync
    def sync(self, key: tuple[str, str]) -> None:
        ns, name = key
        job = self.store.ref("batch", "Job", ns, name)
        if job is None or _finished(job):
            if job is not None:
                self._schedule_ttl(job)
            return
        now = self.env.now
        md, spec = job["metadata"], job.get("spec") or {}
        uid = md["uid"]
        old_status = job.get("status") or {}
        status = {k: v for k, v in old_status.items()}
        conds = [dict(c) for c in old_status.get("conditions") or ()]
        pods = self.pods.owned_info(uid)
        active = [p for p in pods if p.active]
        terminating = sum(1 for p in pods if p.terminating and p.phase not in ("Succeeded", "Failed"))
        counted = self._counted.setdefault(uid, {})
        new_succeeded = [p for p in pods if p.uid not in counted and p.phase == "Succeeded"]
        new_failed = [p for p in pods if p.uid not in counted and
                      (p.phase == "Failed" or (p.terminating and p.phase != "Succeeded"))]
        succeeded = old_status.get("succeeded", 0) + len(new_succeeded)
        failed = old_status.get("failed", 0) + len(new_failed)
        suspended = bool(spec.get("suspend"))
        if not status.get("startTime") and not suspended:
            status["startTime"] = iso(now)
        self._update_backoff(uid, new_succeeded, new_failed)
        for p in new_succeeded:
            counted[p.uid] = "Succeeded"
        for p in new_failed:
            counted[p.uid] = "Failed"

        finished: tuple[str, str, str] | None = None  # (interim type, reason, message)
        target = _condition(conds, "FailureTarget")
        if target is not None and target.get("status") == "True":
            finished = ("FailureTarget", target.get("reason", ""), target.get("message", ""))
        elif failed > spec.get("backoffLimit", 6) or self._past_backoff_limit_on_failure(spec, pods):
            finished = ("FailureTarget", "BackoffLimitExceeded", BACKOFF_LIMIT_MESSAGE)
        elif self._past_active_deadline(spec, status, now):
            finished = ("FailureTarget", "DeadlineExceeded", DEADLINE_MESSAGE)
        elif spec.get("activeDeadlineSeconds") is not None and not suspended and status.get("startTime"):
            started = parse_time(status["startTime"])
            started = now if started is None else started
            self.queue.add_after(key, started + spec["activeDeadlineSeconds"] - now)

        n_active = len(active)
        ready = sum(1 for p in active if p.ready)
        if finished is not None:
            for p in sorted(active, key=deletion_order):
                self.store.delete("v1", "Pod", p.name, ns, manager=FIELD_MANAGER, render=False)
                self.event("SuccessfulDelete", self.object_key(key), f"Deleted pod: {p.name}")
                terminating += 1
                if p.uid not in counted:
                    counted[p.uid] = "Failed"
                    failed += 1
            n_active, ready = 0, 0
        else:
            n_active, ready, terminating = self._manage(job, key, active, succeeded, ready, terminating, now)
            completions = spec.get("completions")
            if completions is None:
                complete = succeeded > 0 and n_active == 0
            else:
                complete = succeeded >= completions and n_active == 0
            if complete:
                finished = ("SuccessCriteriaMet", "CompletionsReached", COMPLETE_MESSAGE)
            else:
                self._suspend_condition(job, key, conds, status, suspended, now)

        if n_active:
            status["active"] = n_active
        else:
            status.pop("active", None)
        status["ready"] = ready
        if succeeded:
            status["succeeded"] = succeeded
        if failed:
            status["failed"] = failed
        status["terminating"] = terminating
        status["uncountedTerminatedPods"] = {}
        final_event = None
        if finished is not None:
            interim, reason, message = finished
            if _condition(conds, interim) is None:
                conds.append({"type": interim, "status": "True", "lastProbeTime": iso(now),
                              "lastTransitionTime": iso(now), "reason": reason, "message": message})
            if terminating == 0:
                final = "Failed" if interim == "FailureTarget" else "Complete"
                if _condition(conds, final) is None:
                    conds.append({"type": final, "status": "True", "lastProbeTime": iso(now),
                                  "lastTransitionTime": iso(now), "reason": reason, "message": message})
                    if final == "Complete":
                        status["completionTime"] = iso(now)
                        final_event = ("Completed", "Job completed", "Normal")
                    else:
                        final_event = (reason, message, "Warning")
        if conds:
            status["conditions"] = conds
        if status != old_status:
            self.store.update_status(job, status, field_manager=FIELD_MANAGER)
        if final_event is not None:
            self.event(final_event[0], self.object_key(key), final_event[1], type=final_event[2])
            job = self.store.ref("batch", "Job", ns, name)
            if job is not None:
                self._schedule_ttl(job)

    # ------------------------------------------------------------------ helpers
    def _manage(self, job: dict, key: tuple, active: list[PodInfo], succeeded: int, ready: int, terminating: int,
                now: float) -> tuple[int, int, int]:
        spec = job.get("spec") or {}
        n_active = len(active)
        ns = key[0]
        if spec.get("suspend"):
            for p in sorted(active, key=deletion_order):
                self.store.delete("v1", "Pod", p.name, ns, manager=FIELD_MANAGER, render=False)
                self.event("SuccessfulDelete", self.object_key(key), f"Deleted pod: {p.name}")
                terminating += 1
            return 0, 0, terminating
        if job["metadata"].get("deletionTimestamp"):
            return n_active, ready, terminating
        parallelism = spec.get("parallelism", 1)
        completions = spec.get("completions")
        if completions is None:
            want = n_active if succeeded > 0 else parallelism
        else:
            want = max(0, min(completions - succeeded, parallelism))
        surplus = n_active - want
        if surplus > 0:
            for p in sorted(active, key=deletion_order)[:surplus]:
                self.store.delete("v1", "Pod", p.name, ns, manager=FIELD_MANAGER, render=False)
                self.event("SuccessfulDelete", self.object_key(key), f"Deleted pod: {p.name}")
                terminating += 1
                n_active -= 1
                if p.ready:
                    ready -= 1
            return n_active, ready, terminating
        diff = want - n_active
        if diff > 0:
            remaining = self._backoff_remaining(job["metadata"]["uid"], now)
            if remaining > 0:
                self.queue.add_after(key, max(remaining, self.timings.job_sync_batch))
                return n_active, ready, terminating
            template = spec.get("template") or {}
            for _ in range(diff):
                pod = pod_from_template(template, namespace=ns, owner=job, generate_name=f"{job['metadata']['name']}-")
                created = self.store.create(pod, manager=FIELD_MANAGER, render=False)
                self.event("SuccessfulCreate", self.object_key(key), f"Created pod: {created['metadata']['name']}")
                n_active += 1
        return n_active, ready, terminating

    @staticmethod
    def _finish_time(p: PodInfo, now: float) -> float:
        latest = None
        for cs in (p.obj.get("status") or {}).get("containerStatuses") or ():
            t = parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
            if t is not None and (latest is None or t > latest):
                latest = t
        if latest is None:
            latest = parse_time(p.obj["metadata"].get("deletionTimestamp"))
        return now if latest is None else latest

    def _update_backoff(self, uid: str, succeeded: list[PodInfo], failed: list[PodInfo]) -> None:
        """``newBackoffRecord``: failures since the last success and the time of the last failure."""
        now = self.env.now
        count, last = self._backoff.get(uid, (0, None))
        fails = sorted(self._finish_time(p, now) for p in failed)
        if not succeeded:
            if not fails:
                return
            self._backoff[uid] = (count + len(fails), fails[-1])
            return
        last_success = max(self._finish_time(p, now) for p in succeeded)
        count, last = 0, None
        for t in reversed(fails):
            if t <= last_success:
                break
            if last is None:
                last = t
            count += 1
        self._backoff[uid] = (count, last)

    def _backoff_remaining(self, uid: str, now: float) -> float:
        count, last = self._backoff.get(uid, (0, None))
        if count == 0 or last is None:
            return 0.0
        backoff = DEFAULT_BACKOFF
        for _ in range(1, count):
            backoff *= 2
            if backoff >= MAX_BACKOFF:
                backoff = MAX_BACKOFF
                break
        elapsed = now - last
        return 0.0 if backoff <= elapsed else backoff - elapsed

    @staticmethod
    def _past_backoff_limit_on_failure(spec: dict, pods: list[PodInfo]) -> bool:
        tpl = (spec.get("template") or {}).get("spec") or {}
        if tpl.get("restartPolicy") != "OnFailure":
            return False
        restarts = 0
        for p in pods:
            if p.phase in ("Running", "Pending"):
                st = p.obj.get("status") or {}
                for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
                    restarts += cs.get("restartCount", 0)
        limit = spec.get("backoffLimit", 6)
        return restarts > 0 if limit == 0 else restarts >= limit

    @staticmethod
    def _past_active_deadline(spec: dict, status: dict, now: float) -> bool:
        ads = spec.get("activeDeadlineSeconds")
        if ads is None or not status.get("startTime") or spec.get("suspend"):
            return False
        started = parse_time(status["startTime"])
        return started is not None and now - started >= ads

    def _suspend_condition(self, job: dict, key: tuple, conds: list[dict], status: dict, suspended: bool,
                           now: float) -> None:
        cur = _condition(conds, "Suspended")
        if suspended:
            if cur is None or cur.get("status") != "True":
                new = {"type": "Suspended", "status": "True", "lastProbeTime": iso(now),
                       "lastTransitionTime": iso(now), "reason": "JobSuspended", "message": "Job suspended"}
                conds[:] = [c for c in conds if c.get("type") != "Suspended"] + [new]
                self.event("Suspended", self.object_key(key), "Job suspended")
        elif cur is not None and cur.get("status") == "True":
            new = {"type": "Suspended", "status": "False", "lastProbeTime": iso(now),
                   "lastTransitionTime": iso(now), "reason": "JobResumed", "message": "Job resumed"}
            conds[:] = [c for c in conds if c.get("type") != "Suspended"] + [new]
            self.event("Resumed", self.object_key(key), "Job resumed")
            status["startTime"] = iso(now)

    def _schedule_ttl(self, job: dict) -> None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        uid = job["metadata"]["uid"]
        if ttl is None or uid in self._ttl_scheduled:
            return
        finished_at = None
        for c in (job.get("status") or {}).get("conditions") or ():
            if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
                finished_at = parse_time(c.get("lastTransitionTime"))
        if finished_at is None:
            return
        self._ttl_scheduled.add(uid)
        ns, name = job["metadata"].get("namespace", ""), job["metadata"]["name"]
        ev = self.env.timeout(max(0.0, finished_at + ttl - self.env.now))

        def expire(_ev: Any) -> None:
            live = self.store.ref("batch", "Job", ns, name)
            if live is not None and live["metadata"]["uid"] == uid and not live["metadata"].get("deletionTimestamp"):
                self.log.record("ttl-after-finished-controller", "Deleted", object_key("Job", ns, name),
                                detail={"type": "Normal", "message": f"Job {name} finished {ttl}s ago"})
                self.store.delete("batch/v1", "Job", name, ns, propagation="Background",
                                  manager="ttl-after-finished-controller", render=False)
        ev.callbacks.append(expire)
