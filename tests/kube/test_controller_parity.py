"""Controller-behaviour parity: the same steps on the simulator and on the real control plane.

Issue 7: the real control plane (kube-controller-manager v1.34 with KWOK kubelets and
metrics-server) is the reference.  Each test drives one scenario through the same
``Driver`` interface twice — on a ``SimCluster`` (virtual time, its own controllers) and on
the session's real cluster (wall time, watched through the API) — and compares what a user
sees: condition types, statuses, reasons and messages in the order they appear, status
counts, the events' reasons and messages, the HPA's replica decision.  Names the API server
generates (ReplicaSet hashes, pod suffixes) are replaced by placeholders before comparing,
except where a test checks them on purpose.

A mismatch is fixed in the simulator (``labkit/sim/controllers``) and the test stays as a
guard; one that is too big to fix now is ``xfail(strict=True)`` naming the difference.

Mismatches found by these tests and fixed in the simulator: the HPA's condition and events
while metrics-server has no sample of a new pod yet ("unable to get metrics for resource cpu:
no metrics returned from resource metrics API", not "did not receive metrics for targeted
pods"); a ReplicaSet's ``spec.minReadySeconds: 0`` (omitted upstream); the defaults a real
API server adds (``securityContext: {}`` and ``resources: {}`` in pod templates, a Job's
``podReplacementPolicy`` / ``manualSelector``, a Pod's service account and its projected
token volume, priority, preemption policy, ``enableServiceLinks`` and not-ready / unreachable
tolerations).  Still different (strict xfail below): the pod-template-hash.

Both sides use short timings: KWOK's fast stages (``StageTimings.fast()``: ready in
0.2–1 s, Job pods run 0.5–1.5 s) and simulator timings of the same size; deadlines of a
few seconds.  Sequences are compared after collapsing repeats, so a status write that
changes only counts or timestamps does not count as a step.
"""
from __future__ import annotations

import copy
import re
import time
from typing import Any, Callable

import pytest

from tests.kube.conftest import needs_real

pytestmark = needs_real

BAD_TAG = "web:missing-1"  # missing on both sides: KWOK's missing-tag pattern, the sim registry's undeclared tag


# ---------------------------------------------------------------------------- drivers

class Driver:
    """One cluster, watched: every Deployment / HPA / Job status is recorded in arrival order."""

    name = ""

    def __init__(self) -> None:
        self.history: dict[tuple[str, str], list[dict]] = {}

    def _record(self, kind: str, obj: dict) -> None:
        # a copy: the simulator's store hands out its own objects, which later writes replace or change
        self.history.setdefault((kind, obj["metadata"]["name"]), []).append(copy.deepcopy(obj))

    def conditions_seen(self, kind: str, name: str, since: int = 0, until: int | None = None) -> dict[str, list[tuple]]:
        """Per condition type, the distinct ``(status, reason, message)`` steps in order (repeats collapsed)."""
        out: dict[str, list[tuple]] = {}
        for obj in self.history.get((kind, name), [])[since:until]:
            for c in (obj.get("status") or {}).get("conditions") or []:
                step = (c.get("status"), c.get("reason"), c.get("message"))
                seq = out.setdefault(c["type"], [])
                if not seq or seq[-1] != step:
                    seq.append(step)
        return out

    def latest(self, kind: str, name: str) -> dict | None:
        """The last version the watch delivered (waiting on it keeps the recorded history complete)."""
        seen = self.history.get((kind, name))
        return seen[-1] if seen else None

    def mark(self, kind: str, name: str) -> int:
        return len(self.history.get((kind, name), []))

    # implemented per side
    def apply(self, obj: dict) -> dict: ...
    def get(self, api_version: str, kind: str, name: str) -> dict | None: ...
    def list(self, api_version: str, kind: str, labels: dict | None = None) -> list[dict]: ...
    def wait(self, predicate: Callable[[], Any], timeout: float) -> Any: ...
    def events(self, kind: str, name: str) -> list[tuple[str, str]]: ...


class SimDriver(Driver):
    name = "sim"

    def __init__(self, *, load: dict[str, float] | None = None, seed: int = 7):
        super().__init__()
        from labkit.kube import controlplane as cp
        from labkit.sim.cluster import SimCluster
        from labkit.sim.load import LoadModel
        from labkit.sim.registry import ImageRegistry
        from labkit.sim.timings import Timings

        registry = ImageRegistry()
        registry.add("web", ["v1", "v2"])  # web:missing-1 is then a bad tag
        timings = Timings(schedule=0.1, pull=(0.1, 0.5), start=0.1, ready_jitter=(0.0, 0.6), pull_error=(0.2, 0.6),
                          job_run=(0.5, 1.5), termination=0.2,
                          # what the real control plane runs with (labkit.kube.controlplane)
                          metrics_window=float(cp.METRIC_RESOLUTION.rstrip("s")),
                          hpa_sync_period=float(cp.HPA_SYNC_PERIOD.rstrip("s")))
        self.ns = "parity"
        lm = LoadModel(seed=seed)
        for workload, millicores in (load or {}).items():
            lm.set(workload, millicores, namespace=self.ns)
        self.c = SimCluster(seed=seed, registry=registry, timings=timings, load=lm)
        self.c.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.ns}}, field_manager="pytest")
        for group, kind in (("apps", "Deployment"), ("autoscaling", "HorizontalPodAutoscaler"), ("batch", "Job")):
            self.c.store.watch(group, kind, lambda ev, obj, kind=kind: self._on(kind, obj))

    def _on(self, kind: str, obj: dict) -> None:
        if obj["metadata"].get("namespace") == self.ns:
            self._record(kind, obj)

    def apply(self, obj: dict) -> dict:
        obj = {**obj, "metadata": {**obj["metadata"], "namespace": self.ns}}
        return self.c.apply(obj, field_manager="pytest")

    def get(self, api_version: str, kind: str, name: str) -> dict | None:
        return self.c.get(api_version, kind, name, self.ns)

    def list(self, api_version: str, kind: str, labels: dict | None = None) -> list[dict]:
        return self.c.list(api_version, kind, self.ns, labels)

    def wait(self, predicate: Callable[[], Any], timeout: float) -> Any:
        deadline = self.c.env.now + timeout
        while self.c.env.now < deadline:
            value = predicate()
            if value:
                return value
            self.c.run(until=self.c.env.now + 0.1)
        raise AssertionError(f"sim: condition not met within {timeout} virtual seconds")

    def events(self, kind: str, name: str) -> list[tuple[str, str]]:
        key = f"{kind}/{self.ns}/{name}"
        return [(e.event, (e.detail or {}).get("message", "")) for e in self.c.log.records()
                if e.object == key and e.component != "api" and isinstance(e.detail, dict) and "message" in e.detail]


class RealDriver(Driver):
    name = "real"

    def __init__(self, real_cluster: Any, ns: str):
        super().__init__()
        from labkit.core import clock
        from labkit.kube.client import KubeCluster

        self.ns = ns
        self.env = clock.realtime()
        self.c = KubeCluster(real_cluster.kubeconfig, real_cluster.context, name=real_cluster.name, env=self.env)
        for api, kind in (("apps/v1", "Deployment"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
                          ("batch/v1", "Job")):
            self.c.watch(api, kind, lambda ev, obj, kind=kind: self._on(kind, obj))
        self.env.run(until=self.env.now + 0.5)  # let the watches start before the first write

    def _on(self, kind: str, obj: dict) -> None:
        if obj["metadata"].get("namespace") == self.ns:
            self._record(kind, obj)

    def close(self) -> None:
        self.c.close()

    def apply(self, obj: dict) -> dict:
        obj = {**obj, "metadata": {**obj["metadata"], "namespace": self.ns}}
        return self.c.apply(obj, field_manager="pytest")

    def get(self, api_version: str, kind: str, name: str) -> dict | None:
        return self.c.get(api_version, kind, name, self.ns)

    def list(self, api_version: str, kind: str, labels: dict | None = None) -> list[dict]:
        return self.c.list(api_version, kind, self.ns, labels)

    def wait(self, predicate: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            self.env.run(until=self.env.now + 0.2)  # delivers watch events on this thread
        raise AssertionError(f"real: condition not met within {timeout} s")

    def events(self, kind: str, name: str) -> list[tuple[str, str]]:
        evs = [e for e in self.c.list("v1", "Event", self.ns)
               if (e.get("involvedObject") or {}).get("kind") == kind and e["involvedObject"].get("name") == name]
        evs.sort(key=self._created)
        return [(e["reason"], e["message"]) for e in evs]

    @staticmethod
    def _created(event: dict) -> tuple:
        """Creation order: timestamps have one-second resolution, but client-go's recorder names an Event
        ``<object>.<UnixNano of its first occurrence, in hex>``, which orders events within a second."""
        suffix = event["metadata"]["name"].rsplit(".", 1)[-1]
        try:
            return (0, int(suffix, 16), "")
        except ValueError:
            return (1, 0, event.get("firstTimestamp") or event.get("eventTime") or "")


@pytest.fixture
def real(real_cluster, ns):
    d = RealDriver(real_cluster, ns)
    yield d
    d.close()


def both(real: RealDriver, scenario: Callable[[Driver], dict], **sim_kw) -> tuple[dict, dict]:
    """Run ``scenario`` on a fresh simulator and on the real cluster; returns (sim outcome, real outcome)."""
    return scenario(SimDriver(**sim_kw)), scenario(real)


def scrub(value: Any, names: dict[str, str]) -> Any:
    """Replace generated names (longest first) by placeholders, recursively."""
    if isinstance(value, str):
        for name in sorted(names, key=len, reverse=True):
            value = value.replace(name, names[name])
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(scrub(v, names) for v in value)
    if isinstance(value, dict):
        return {scrub(k, names): scrub(v, names) for k, v in value.items()}
    return value


def counts(status: dict, *fields: str) -> dict[str, int]:
    return {f: status.get(f, 0) for f in fields}


# ---------------------------------------------------------------------------- manifests

def deployment(name: str, image: str, *, replicas: int = 2, deadline: int = 60, annotations: dict | None = None) -> dict:
    md: dict = {"labels": {"app": name}}
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "progressDeadlineSeconds": deadline,
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": md,
                                  "spec": {"containers": [{"name": "web", "image": image,
                                                           "resources": {"requests": {"cpu": "100m"}}}]}}}}


def job(name: str, *, backoff_limit: int, exit_code: int | None = None) -> dict:
    md: dict = {}
    if exit_code is not None:
        md["annotations"] = {"sim.labkit.io/exit-code": str(exit_code)}  # both: kubelet hook / KWOK pod-fail stage
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": backoff_limit,
                     "template": {"metadata": md,
                                  "spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "main", "image": "web:v1"}]}}}}


def condition(obj: dict | None, ctype: str) -> dict | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == ctype:
            return c
    return None


# ---------------------------------------------------------------------------- Deployments

STATUS_COUNTS = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas")


def rollout_update_bad_tag_revert(d: Driver) -> dict:
    """v1, a rolling update to v2, a bad tag that times out, and the revert to v2 (git revert)."""

    def rs_names() -> set[str]:
        return {r["metadata"]["name"] for r in d.list("apps/v1", "ReplicaSet")}

    phases: dict[str, dict] = {}
    names: dict[str, str] = {}
    # a generous deadline where progress is expected (a loaded machine must not time it out), a short
    # one for the bad tag, which can never progress
    for phase, image, deadline, done in (("v1", "web:v1", 60, "NewReplicaSetAvailable"),
                                         ("v2", "web:v2", 60, "NewReplicaSetAvailable"),
                                         ("bad", BAD_TAG, 5, "ProgressDeadlineExceeded"),
                                         ("revert", "web:v2", 60, "NewReplicaSetAvailable")):
        mark, before = d.mark("Deployment", "web"), rs_names()
        gen = d.apply(deployment("web", image, deadline=deadline))["metadata"]["generation"]

        def finished() -> bool:
            o = d.latest("Deployment", "web") or {"metadata": {}}
            st = o.get("status") or {}
            if o["metadata"].get("generation") != gen or st.get("observedGeneration") != gen:
                return False
            if (condition(o, "Progressing") or {}).get("reason") != done:
                return False
            # a finished rollout, not the previous one's condition seen before the controller acted
            return done != "NewReplicaSetAvailable" or all(st.get(k) == 2 for k in
                                                           ("replicas", "updatedReplicas", "availableReplicas"))

        d.wait(finished, 40)
        for new in rs_names() - before:
            names[new] = f"<rs-{phase}>"
        dep = d.get("apps/v1", "Deployment", "web")
        phases[phase] = {"conditions": d.conditions_seen("Deployment", "web", since=mark),
                         "status": counts(dep["status"], *STATUS_COUNTS),
                         "final": sorted((c["type"], c["status"], c["reason"], c["message"])
                                         for c in dep["status"]["conditions"])}
    dep = d.get("apps/v1", "Deployment", "web")
    replicasets = {r["metadata"]["name"]: (r["spec"]["replicas"], {k: v for k, v in r["metadata"]["annotations"].items()
                                                                  if k.startswith("deployment.kubernetes.io/")})
                   for r in d.list("apps/v1", "ReplicaSet")}
    return scrub({"phases": phases,
                  "revision": dep["metadata"]["annotations"].get("deployment.kubernetes.io/revision"),
                  "replicasets": replicasets,
                  "scaling_events": [e for e in d.events("Deployment", "web") if e[0] == "ScalingReplicaSet"]},
                 names)


def test_deployment_rollout_progress_deadline_and_revert_match(real):
    sim, kube = both(real, rollout_update_bad_tag_revert)
    # what the reference says (read from the real cluster; the texts are the documented ones)
    assert kube["phases"]["v1"]["conditions"]["Progressing"][-1] == (
        "True", "NewReplicaSetAvailable", 'ReplicaSet "<rs-v1>" has successfully progressed.')
    assert kube["phases"]["v1"]["conditions"]["Available"][-1] == (
        "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    assert kube["phases"]["bad"]["conditions"]["Progressing"][-1] == (
        "False", "ProgressDeadlineExceeded", 'ReplicaSet "<rs-bad>" has timed out progressing.')
    assert kube["phases"]["bad"]["status"] == {"replicas": 3, "updatedReplicas": 1, "readyReplicas": 2,
                                               "availableReplicas": 2, "unavailableReplicas": 1}
    # A race in the real controller: the sync that creates the bad tag's ReplicaSet writes the
    # Progressing condition through a stale copy, so its second status write conflicts; if the retry
    # runs before the ReplicaSet reports its pod, updatedReplicas goes 2 -> 0 -> 1 and the step
    # ReplicaSetUpdated is recorded, if after, it goes 2 -> 1, which is no progress, and the next step
    # is the timeout (seen in about 3 runs out of 10).  The simulator takes the first path.
    racy = ("True", "ReplicaSetUpdated", 'ReplicaSet "<rs-bad>" is progressing.')
    assert racy in sim["phases"]["bad"]["conditions"]["Progressing"]
    if racy not in kube["phases"]["bad"]["conditions"]["Progressing"]:
        sim["phases"]["bad"]["conditions"]["Progressing"].remove(racy)
    # and otherwise the simulator says the same, phase by phase, step by step
    for phase in ("v1", "v2", "bad", "revert"):
        assert sim["phases"][phase] == kube["phases"][phase], phase
    assert sim["scaling_events"] == kube["scaling_events"]
    assert sim["replicasets"] == kube["replicasets"]
    assert sim["revision"] == kube["revision"]


# ---------------------------------------------------------------------------- HPA

def hpa_first_decision(d: Driver) -> dict:
    d.apply(deployment("busy", "web:v1", replicas=1, deadline=600,
                       annotations={"kwok.x-k8s.io/usage-cpu": "175m"}))  # KWOK's usage; the sim's is its load model
    d.apply({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "busy"},
             "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "busy"},
                      "minReplicas": 1, "maxReplicas": 6,
                      "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                          "type": "Utilization", "averageUtilization": 50}}}]}})

    def first_scaled() -> dict | None:
        for obj in d.history.get(("HorizontalPodAutoscaler", "busy"), []):
            if (obj.get("status") or {}).get("desiredReplicas", 0) > 1:  # 0 until the first computation
                return obj
        return None

    hpa = d.wait(first_scaled, 90)
    upto = d.history[("HorizontalPodAutoscaler", "busy")].index(hpa) + 1
    st = hpa["status"]
    events: list[tuple[str, str]] = []
    for e in d.events("HorizontalPodAutoscaler", "busy"):  # distinct, in order, up to the first rescale
        if e not in events:
            events.append(e)
        if e[0] == "SuccessfulRescale":
            break
    (metric,) = st["currentMetrics"]
    return {
        "desired": st["desiredReplicas"],
        "metric": (metric["type"], metric["resource"]["name"], sorted(metric["resource"]["current"])),
        "utilization": metric["resource"]["current"]["averageUtilization"],
        "conditions": sorted((c["type"], c["status"], c["reason"], c["message"]) for c in st["conditions"]),
        "rescale": [e for e in events if e[0] == "SuccessfulRescale"],
        # before the decision: what the HPA says while metrics-server has no sample of the pod yet
        "history": d.conditions_seen("HorizontalPodAutoscaler", "busy", until=upto),
        "events": events,
        "target_replicas": d.get("apps/v1", "Deployment", "busy")["spec"]["replicas"],
    }


def test_hpa_replica_decision_for_the_same_cpu_load(real, real_cluster):
    if not real_cluster.metrics:
        pytest.skip("metrics-server not built: run `labkit cluster build`")
    # one pod requesting 100m uses 175m on both sides: 175 % of request against a 50 % target.  KWOK's
    # usage is integrated over wall-clock scrapes, so the measured value wobbles by a percent or two: the
    # load keeps the ratio (3.5) away from an integer, where ceil() would turn that wobble into a decision
    sim, kube = both(real, hpa_first_decision, load={"busy": 175})
    assert kube["desired"] == 4 and kube["target_replicas"] == 4  # ceil(1 × 175 / 50), the documented rule
    assert kube["rescale"] == [("SuccessfulRescale",
                                "New size: 4; reason: cpu resource utilization (percentage of request) above target")]
    assert sim["utilization"] == 175 and abs(kube["utilization"] - 175) <= 5
    del sim["utilization"], kube["utilization"]
    assert sim == kube


# ---------------------------------------------------------------------------- Jobs

def job_outcomes(d: Driver) -> dict:
    d.apply(job("ok", backoff_limit=0))
    d.apply(job("bad", backoff_limit=1, exit_code=1))

    def finished(name: str) -> Callable[[], bool]:
        def check() -> bool:
            j = d.latest("Job", name)
            return any(c["type"] in ("Complete", "Failed") and c["status"] == "True"
                       for c in ((j or {}).get("status") or {}).get("conditions") or [])
        return check

    d.wait(finished("ok"), 30)
    d.wait(finished("bad"), 60)  # two failures with the 10 s pod-failure back-off between them
    out = {}
    for name in ("ok", "bad"):
        j = d.get("batch/v1", "Job", name)
        out[name] = {
            "conditions": [(t, seq) for t, seq in sorted(d.conditions_seen("Job", name).items())],
            "final": sorted((c["type"], c["status"], c["reason"], c["message"]) for c in j["status"]["conditions"]),
            "counts": counts(j["status"], "active", "succeeded", "failed", "ready", "terminating"),
            "events": [e for e in d.events("Job", name) if e[0] != "SuccessfulCreate"],
            "pods_created": len([e for e in d.events("Job", name) if e[0] == "SuccessfulCreate"]),
        }
    return out


def test_job_complete_and_backoff_limit_exceeded_match(real):
    sim, kube = both(real, job_outcomes)
    assert ("Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods") in kube["ok"]["final"]
    assert ("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit") in kube["bad"]["final"]
    assert kube["bad"]["counts"]["failed"] == 2 and kube["bad"]["pods_created"] == 2  # backoffLimit 1: two tries
    assert sim == kube


# ---------------------------------------------------------------------------- names

@pytest.mark.xfail(strict=True, reason=(
    "pod-template-hash differs: upstream controller.ComputeHash is FNV-32a over a go-spew %#v dump of the "
    "defaulted v1.PodTemplateSpec Go struct (every field, Go type names, nil pointers); the simulator hashes "
    "canonical JSON of the template (labkit.sim.controllers.common.compute_hash). Same form and stability, "
    "different value; reproducing spew's dump of the full PodSpec struct tree is not done yet"))
def test_replicaset_name_hash_matches_the_real_controller(real):
    """The pod-template-hash (ReplicaSet name suffix) the simulator computes for the same template."""
    d = SimDriver()
    d.apply(deployment("web", "web:v1"))
    d.wait(lambda: d.list("apps/v1", "ReplicaSet"), 10)
    real.apply(deployment("web", "web:v1"))
    real.wait(lambda: real.list("apps/v1", "ReplicaSet"), 30)
    sim_rs = d.list("apps/v1", "ReplicaSet")[0]["metadata"]["name"]
    real_rs = real.list("apps/v1", "ReplicaSet")[0]["metadata"]["name"]
    assert re.fullmatch(r"web-[bcdfghjklmnpqrstvwxz2456789]{1,10}", real_rs)
    assert sim_rs == real_rs


# ---------------------------------------------------------------------------- fields of what controllers create

def paths(obj: Any, prefix: str = "") -> set[str]:
    """Every field path of an object (list items as ``[]``)."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(f"{prefix}/{k}")
            out |= paths(v, f"{prefix}/{k}")
    elif isinstance(obj, list):
        for v in obj:
            out |= paths(v, prefix + "[]")
    return out


def created_objects(d: Driver) -> dict[str, set[str]]:
    """Field paths of a Deployment, its ReplicaSet and pods, and a Job, as each side's API and controllers make them.

    Pod status is left out: on the real side it is KWOK's stage template, not a kubelet."""
    d.apply(deployment("web", "web:v1"))
    d.apply(job("ok", backoff_limit=0))
    d.wait(lambda: (condition(d.latest("Deployment", "web"), "Progressing") or {}).get("reason")
           == "NewReplicaSetAvailable", 30)
    d.wait(lambda: condition(d.latest("Job", "ok"), "Complete"), 30)
    server_set = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation")

    def union(objs: list[dict], *, status: bool = True) -> set[str]:
        out: set[str] = set()
        for o in objs:
            o = copy.deepcopy(o)
            for k in server_set:
                o["metadata"].pop(k, None)
            if not status:
                o.pop("status", None)
            out |= paths(o)
        return out

    return {"Deployment": union(d.list("apps/v1", "Deployment")),
            "ReplicaSet": union(d.list("apps/v1", "ReplicaSet")),
            "Job": union(d.list("batch/v1", "Job")),
            "Pod": union(d.list("v1", "Pod"), status=False)}


def test_controller_created_objects_have_the_real_fields(real):
    sim, kube = both(real, created_objects)
    assert "/spec/template/spec/securityContext" in kube["Deployment"]  # the reference's defaulting, seen
    for kind in ("Deployment", "ReplicaSet"):
        assert sim[kind] == kube[kind], kind
    # the ServiceAccount admission plugin's projected token volume, mounted in every container
    assert "/spec/volumes[]/projected/sources[]/serviceAccountToken/expirationSeconds" in kube["Pod"]
    assert sim["Pod"] == kube["Pod"]
    # a Job created without labels gets its template's, the generated ones included
    assert "/metadata/labels/batch.kubernetes.io/job-name" in kube["Job"]
    assert sim["Job"] == kube["Job"]
