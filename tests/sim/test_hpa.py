"""The HorizontalPodAutoscaler: the upstream formula, readiness handling, stabilization and rate limits.

Timings.deterministic(schedule=1): a pod created at t is bound at t+1 (its
``startTime``), and with the image already on the node it starts and is Ready at
t+2 (no probe, no jitter).  The very first pod also pulls the image: bound at 1,
ready at 1 + 2 + 1 = 4.  Every pod requests 100m CPU.  The HPA is created at
t=50, so it syncs at 65, 80, 95, ... (every 15 s after creation).

HPA rules used below (replica_calculator.go / horizontal.go):
* ready pods share the offered demand equally; utilization = int(Σ usage × 100 / Σ request);
* within cpu-initialization-period (300 s) of startTime a pod is set aside as
  *unready* until the metric window (15 s) after it became Ready has passed;
* desired = ceil(utilization / target × ready pods); on a scale-up with unready
  pods they count as 0 % and a reversed direction keeps the current count;
* no ``behavior``: max recommendation of the last 300 s, then at most
  max(2 × current, 4); with ``behavior`` defaults: max(current + 4, 2 × current)
  per 15 s.
"""
from __future__ import annotations

import pytest
from simhelpers import at, condition, deployment, events, hpa, make_cluster, times

from labkit.core.errors import ApiError
from labkit.sim.load import LoadModel


def replicas(c, name="web") -> int:
    return c.get("apps/v1", "Deployment", name)["spec"]["replicas"]


def rescales(c) -> list[tuple[float, str]]:
    return [(t, m) for t, _, m in events(c, component="horizontal-pod-autoscaler", event="SuccessfulRescale")]


def test_step_load_reaches_the_formula_and_holds_through_the_stabilization_window():
    load = LoadModel().set("web", lambda t: 400.0 if 100 <= t < 600 else 40.0)
    c = make_cluster(load=load, schedule=1.0)
    c.apply(deployment("web", "web:v1", 1), field_manager="gitops")
    c.run(until=50)
    c.apply(hpa("web", "web", max_replicas=10, utilization=50), field_manager="gitops")
    at(c, 100)
    # 65, 80, 95: 40m on one pod = 40 % -> ceil(0.8 × 1) = 1, nothing to do
    assert rescales(c) == []
    at(c, 1000)
    # 110: 400m on 1 ready pod = 400 % -> ratio 8 -> ceil(8 × 1) = 8, limited to max(2 × 1, 4) = 4.
    #      The recommendation recorded for stabilization is the un-limited 8.
    # 125: the 3 new pods (Ready at 112) are unready until 112 + 15 = 127. The old pod uses 400/4 = 100m:
    #      100 % -> ratio 2 > 1 with unready pods, which then count as 0: 100m / 400m = 25 % -> ratio 0.5,
    #      the direction reverses: the metric proposes 4. But stabilizeRecommendation takes the largest
    #      recommendation of the window: 8 (from 110), and max(2 × 4, 4) = 8 allows it. The reason string is
    #      computed from the metric's proposal (4 = current), so upstream's event says "reason: " with nothing.
    # 140: 4 pods created at 125 are unready until 142; the 4 counted pods use 400/8 = 50m = 50 % -> ratio 1.
    # 155 ... 590: 50 % everywhere: 8 = ceil(400m / (50 % × 100m)).
    # 605: 40m over 8 pods = 5 % -> ceil(0.1 × 8) = 1, but the largest recommendation of the last 300 s is
    #      8 (made at 590); 8 holds until the sync at which 590 has left the window: 590 + 300 = 890.
    assert rescales(c) == [
        (110, "New size: 4; reason: cpu resource utilization (percentage of request) above target"),
        (125, "New size: 8; reason: "),
        (890, "New size: 1; reason: All metrics below target"),
    ]
    status = c.get("autoscaling/v2", "HorizontalPodAutoscaler", "web")["status"]
    assert status["currentReplicas"] == 1 and status["desiredReplicas"] == 1
    assert status["lastScaleTime"] == "2026-01-01T00:14:50Z"  # 890 s
    assert replicas(c) == 1


def test_scale_down_is_held_at_every_sync_inside_the_window():
    load = LoadModel().set("web", lambda t: 400.0 if 100 <= t < 600 else 40.0)
    c = make_cluster(load=load, schedule=1.0)
    c.apply(deployment("web", "web:v1", 1), field_manager="gitops")
    c.run(until=50)
    c.apply(hpa("web", "web", max_replicas=10, utilization=50), field_manager="gitops")
    at(c, 875)
    assert replicas(c) == 8
    h = c.get("autoscaling/v2", "HorizontalPodAutoscaler", "web")
    able = condition(h, "AbleToScale")
    assert (able["reason"], able["message"]) == (
        "ScaleDownStabilized",
        "recent recommendations were higher than current one, applying the highest recent recommendation")
    metric = h["status"]["currentMetrics"][0]["resource"]["current"]
    assert metric == {"averageUtilization": 5, "averageValue": "5m"}
    at(c, 890)
    assert replicas(c) == 1


def test_rate_limit_with_default_behavior_is_max_of_four_pods_and_100_percent_per_period():
    load = LoadModel().set("web", 10_000.0)
    c = make_cluster(load=load, schedule=1.0)
    c.apply(deployment("web", "web:v1", 1), field_manager="gitops")
    c.run(until=50)
    c.apply(hpa("web", "web", max_replicas=40, utilization=50,
                behavior={"scaleDown": {"stabilizationWindowSeconds": 300}}), field_manager="gitops")
    at(c, 130)
    # demand far above any target: the limit decides. Scale events older than the 15 s period no longer
    # count, so each sync may add max(4 pods, 100 %) to the current count:
    # 65: max(1 + 4, 2) = 5;  80: max(5 + 4, 10) = 10;  95: max(14, 20) = 20;  110: max(24, 40) = 40 = max.
    assert [(t, int(m.split(";")[0].split()[-1])) for t, m in rescales(c)] == [(65, 5), (80, 10), (95, 20), (110, 40)]
    lim = condition(c.get("autoscaling/v2", "HorizontalPodAutoscaler", "web"), "ScalingLimited")
    assert (lim["status"], lim["reason"]) == ("True", "TooManyReplicas")


def test_rate_limit_without_behavior_doubles_with_a_minimum_of_four():
    load = LoadModel().set("web", 10_000.0)
    c = make_cluster(load=load, schedule=1.0)
    c.apply(deployment("web", "web:v1", 1), field_manager="gitops")
    c.run(until=50)
    c.apply(hpa("web", "web", max_replicas=40, utilization=50), field_manager="gitops")
    at(c, 130)
    # legacy normalizeDesiredReplicas: at most max(2 × current, 4) per sync
    assert [(t, int(m.split(";")[0].split()[-1])) for t, m in rescales(c)] == \
        [(65, 4), (80, 8), (95, 16), (110, 32), (125, 40)]
    lim = condition(c.get("autoscaling/v2", "HorizontalPodAutoscaler", "web"), "ScalingLimited")
    assert lim["reason"] == "TooManyReplicas"


def test_autoscaling_v1_target_cpu_utilization_percentage():
    load = LoadModel().set("web", 180.0)
    c = make_cluster(load=load, schedule=1.0)
    c.apply(deployment("web", "web:v1", 2), field_manager="gitops")
    c.run(until=50)
    c.apply({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
             "metadata": {"name": "web", "namespace": "default"},
             "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                      "minReplicas": 1, "maxReplicas": 10, "targetCPUUtilizationPercentage": 50}},
            field_manager="gitops")
    at(c, 65)
    # 180m over 2 ready pods = 90 % -> ceil(90 / 50 × 2) = ceil(3.6) = 4 (= ceil(180m / 50m))
    status = c.get("autoscaling/v1", "HorizontalPodAutoscaler", "web")["status"]
    assert status == {"currentReplicas": 2, "desiredReplicas": 4, "currentCPUUtilizationPercentage": 90,
                      "lastScaleTime": "2026-01-01T00:01:05Z"}
    at(c, 200)
    # then 45 % each: |1 - 0.9| <= 0.1 tolerance, stays at 4
    assert replicas(c) == 4 and len(rescales(c)) == 1


def test_a_new_pod_is_not_counted_before_one_metric_window_after_it_became_ready():
    c = make_cluster(load=LoadModel().set("web", 50.0), schedule=1.0)
    c.apply(deployment("web", "web:v1", 1), field_manager="gitops")
    c.apply(hpa("web", "web"), field_manager="gitops")
    at(c, 15)
    # first sync at 15: the only pod became Ready at 4 and its sample covers a window only from 4 + 15 = 19;
    # metrics-server has no sample of it yet either (its first one needs a window of running), so the
    # metrics API answers with nothing — the message the real HPA gives then (tests/kube/test_controller_parity)
    (t, _, msg), = events(c, component="horizontal-pod-autoscaler", event="FailedGetResourceMetric")
    assert (t, msg) == (15, "failed to get cpu utilization: unable to get metrics for resource cpu: "
                            "no metrics returned from resource metrics API")
    active = condition(c.get("autoscaling/v2", "HorizontalPodAutoscaler", "web"), "ScalingActive")
    assert (active["status"], active["reason"]) == ("False", "FailedGetResourceMetric")
    at(c, 30)
    active = condition(c.get("autoscaling/v2", "HorizontalPodAutoscaler", "web"), "ScalingActive")
    assert (active["status"], active["reason"]) == ("True", "ValidMetricFound")
    assert active["message"] == ("the HPA was able to successfully calculate a replica count from cpu resource "
                                 "utilization (percentage of request)")


def test_target_scaled_to_zero_disables_autoscaling():
    c = make_cluster(load=LoadModel().set("web", 500.0), schedule=1.0)
    c.apply(deployment("web", "web:v1", 2), field_manager="gitops")
    c.run(until=50)
    c.apply(hpa("web", "web", min_replicas=1), field_manager="gitops")
    c.run(until=60)
    c.kubectl_scale("apps/v1", "Deployment", "web", "default", 0)
    at(c, 200)
    assert replicas(c) == 0 and rescales(c) == []
    active = condition(c.get("autoscaling/v2", "HorizontalPodAutoscaler", "web"), "ScalingActive")
    assert (active["status"], active["reason"], active["message"]) == (
        "False", "ScalingDisabled", "scaling is disabled since the replica count of the target is zero")


def test_missing_cpu_request_fails_the_metric():
    c = make_cluster(load=LoadModel().set("web", 500.0), schedule=1.0)
    c.apply(deployment("web", "web:v1", 1, cpu=None), field_manager="gitops")
    c.run(until=50)
    c.apply(hpa("web", "web"), field_manager="gitops")
    at(c, 65)
    (_, _, msg), = events(c, component="horizontal-pod-autoscaler", event="FailedGetResourceMetric")
    assert msg.startswith("failed to get cpu utilization: missing request for cpu in container web of Pod web-")
    (_, _, msg), = events(c, component="horizontal-pod-autoscaler", event="FailedComputeMetricsReplicas")
    assert msg.startswith("invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric "
                          "value: failed to get cpu utilization: missing request for cpu")
    assert c.get("autoscaling/v2", "HorizontalPodAutoscaler", "web")["status"]["currentMetrics"] == [{"type": ""}]


def test_hpa_writes_replicas_through_the_scale_subresource_and_owns_the_field():
    c = make_cluster(load=LoadModel().set("web", 400.0), schedule=1.0)
    c.apply(deployment("web", "web:v1", 1), field_manager="gitops")
    c.run(until=50)
    c.apply(hpa("web", "web"), field_manager="gitops")
    at(c, 65)
    assert replicas(c) == 4
    owners = c.store.owners_of("apps", "Deployment", "default", "web", ("spec", "replicas"))
    assert owners == ["kube-controller-manager"]
    entry = next(e for e in c.store.managed_fields("apps", "Deployment", "default", "web")
                 if e.manager == "kube-controller-manager" and ("spec", "replicas") in e.fields)
    assert (entry.operation, entry.subresource) == ("Update", "scale")
    # re-applying the manifest's replicas from git now conflicts: the root of the hpa-conflict scenario
    with pytest.raises(ApiError) as err:
        c.apply(deployment("web", "web:v1", 1), field_manager="gitops")
    assert err.value.reason == "Conflict"
    assert 'conflict with "kube-controller-manager" with subresource "scale"' in err.value.message
    assert times(c, component="horizontal-pod-autoscaler", event="SuccessfulRescale") == [65]


def _busy_autoscaled_run(fast: bool) -> tuple[list, list]:
    """Ten noisy workloads (incl. a step, a trough to zero demand, a missing request, a v1 HPA and one with
    behavior) for two hours; returns the event log and the final HPA statuses."""
    from labkit.sim.controllers.hpa import HorizontalPodAutoscalerController
    from labkit.sim.load import DailySinusoid, Step

    saved = HorizontalPodAutoscalerController.fast_path
    HorizontalPodAutoscalerController.fast_path = fast
    try:
        load = LoadModel(seed=3)
        c = make_cluster(load=load, seed=3, ready_jitter=[0, 2], schedule=[0.3, 0.9])
        for i in range(10):
            name = f"w{i}"
            load.set(name, DailySinusoid(400 + 60 * i, 350, period=3600, peak_at=600 * i) if i != 3
                     else Step(900, 0, at=2400), noise=0.15)
            c.apply(deployment(name, "web:v1", 2, cpu=None if i == 5 else "100m", probe_delay=2),
                    field_manager="gitops")
            h = hpa(name, name, min_replicas=1, max_replicas=12, utilization=40 + 5 * i,
                    behavior={"scaleDown": {"stabilizationWindowSeconds": 60}} if i == 7 else None)
            if i == 8:
                h = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                     "metadata": {"name": name, "namespace": "default"},
                     "spec": {"scaleTargetRef": h["spec"]["scaleTargetRef"], "maxReplicas": 12,
                              "targetCPUUtilizationPercentage": 60}}
            c.apply(h, field_manager="gitops")
        c.run(until=7200)
        log = [(e.time, e.component, e.event, e.object, repr(sorted(e.detail.items()))) for e in c.log]
        statuses = [h["status"] for h in c.list("autoscaling/v2", "HorizontalPodAutoscaler")]
        return log, statuses
    finally:
        HorizontalPodAutoscalerController.fast_path = saved


def test_the_common_case_fast_path_changes_nothing():
    fast_log, fast_status = _busy_autoscaled_run(True)
    slow_log, slow_status = _busy_autoscaled_run(False)
    assert len([r for r in fast_log if r[2] == "SuccessfulRescale"]) > 20
    assert fast_status == slow_status
    assert fast_log == slow_log
