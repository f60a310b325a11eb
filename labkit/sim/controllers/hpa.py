"""The HorizontalPodAutoscaler controller: the real algorithm against the load model.

A port of ``pkg/controller/podautoscaler/horizontal.go`` and
``replica_calculator.go`` (autoscaling/v2, with autoscaling/v1
``targetCPUUtilizationPercentage`` read as a CPU utilization metric), because the
hpa-conflict scenario is about what this loop does to ``spec.replicas``.

Sync cadence
    An HPA is reconciled ``Timings.hpa_sync_period`` (15 s) after it is
    created and every period after that: upstream queues every HPA key with a
    fixed-interval rate limiter, so edits to the HPA do not change the cadence.

Reading the target (``reconcileAutoscaler``)
    The target's scale subresource gives ``currentReplicas`` (its
    ``spec.replicas``) and the pod selector.  ``currentReplicas == 0`` with
    ``minReplicas > 0`` disables autoscaling (``ScalingActive=False/
    ScalingDisabled``).  Outside ``[minReplicas, maxReplicas]`` the HPA clamps at
    once ("Current number of replicas above Spec.MaxReplicas").  Otherwise every
    metric proposes a replica count and the largest wins.

CPU metrics (``GetResourceReplicas``)
    Per-pod usage comes from ``labkit.sim.load``: the workload's demand split
    evenly over its ready pods (0 m for running pods that are not ready).  Like
    metrics-server, which differentiates a cumulative CPU counter between two
    scrapes, the metrics pipeline has a sample of a pod only once its containers
    have been running for one ``metrics_window``; until then the pod has no metric
    (it is *missing*), and when no selected pod has one the metrics API answers
    with nothing: "unable to get metrics for resource cpu: no metrics returned
    from resource metrics API" — what the real HPA reports for a new workload
    (``tests/kube/test_controller_parity.py``).  Pods
    are grouped as upstream's ``groupPods`` does: deleted, failed and pending
    pods are ignored; for CPU a running pod is *unready* when its Ready
    condition is False or — within ``cpu-initialization-period`` (300 s) of its
    ``startTime`` — when the metric sample does not yet cover a full window
    (``metrics_window``, 15 s) after it became ready; after that period a pod
    that has never been ready since ``initial-readiness-delay`` (30 s) is
    unready.  Utilization is ``int(Σ usage × 100 / Σ requests)`` over the ready
    pods' metrics — an integer percentage, as ``GetResourceUtilizationRatio``
    computes it — and ``ratio = utilization / target``.  Within the tolerance
    (``|ratio − 1| ≤ 0.1``) nothing changes; otherwise ``desired =
    ceil(ratio × ready pods)``.  With unready pods on a scale-up they count as 0 %;
    missing metrics count as 100 % of the request (or the target if higher) on a
    scale-down and 0 % on a scale-up; and if that recomputation would reverse
    the direction or land within tolerance, the replica count stays.  A pod
    without a CPU request fails the metric ("missing request for cpu in
    container web of Pod web-x"); no ready pod at all fails it with "did not
    receive metrics for targeted pods (pods might be unready)".  ``AverageValue``
    targets use ``GetRawResourceReplicas`` the same way in millicores.

Normalisation without ``spec.behavior`` (``normalizeDesiredReplicas``)
    The recommendation is stabilised over the downscale stabilization window
    (300 s): the largest recommendation of the window wins.  Then the legacy
    rate limit applies: at most ``max(2 × current, 4)`` replicas
    (``ScalingLimited=True/ScaleUpLimit``), clamped to ``[min, max]``
    (``TooFewReplicas`` / ``TooManyReplicas``).

Normalisation with ``spec.behavior`` (``normalizeDesiredReplicasWithBehaviors``)
    Missing rules take the API defaults: scale-up stabilization 0 s, policies
    ``Pods 4 / 15 s`` and ``Percent 100 / 15 s``, ``selectPolicy: Max``;
    scale-down policy ``Percent 100 / 15 s``, stabilization from the controller
    flag (300 s).  Stabilization keeps the current count between the smallest
    recommendation of the scale-up window and the largest of the scale-down
    window.  Rate policies limit the change relative to the replica count at the
    start of each policy's period (replicas added / removed by scale events
    younger than the period are subtracted / added back); percent policies round
    the change up (``ceil`` on the way up, truncation of the remainder on the
    way down); ``selectPolicy`` Max takes the policy allowing the biggest change,
    Min the smallest, Disabled none.

Writing
    A new size goes through the scale subresource (``store.scale`` as
    ``kube-controller-manager``, subresource ``scale``) — the write that makes
    ``spec.replicas`` a field with two owners under server-side apply — with the
    event ``SuccessfulRescale`` "New size: 5; reason: cpu resource utilization
    (percentage of request) above target" (or "All metrics below target").
    Status: ``currentReplicas``, ``desiredReplicas``, ``currentMetrics``
    (``averageUtilization`` and ``averageValue``), ``lastScaleTime`` and the
    conditions ``AbleToScale``, ``ScalingActive``, ``ScalingLimited`` with the
    upstream reasons and messages; metric failures are the Warning events
    ``FailedGetResourceMetric`` and ``FailedComputeMetricsReplicas``.

Timestamps compared here are exact virtual times, except the pod's
``startTime`` and Ready ``lastTransitionTime``, which like the real ones have
one-second resolution.  A recommendation or scale event exactly one window or
period old has left the window (see ``labkit.sim.controllers.common``).
Component name in the event log: ``horizontal-pod-autoscaler``.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Any

from labkit.core.errors import ApiError, not_found
from labkit.core.events import object_key
from labkit.sim.controllers.common import FIELD_MANAGER, cpu_millicores, format_millicores, iso
from labkit.sim.controllers.informers import Informers, PodInfo
from labkit.sim.controllers.workqueue import Controller
from labkit.sim.timings import Timings

SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
DEFAULT_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
              "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                           {"type": "Percent", "value": 100, "periodSeconds": 15}]}
DEFAULT_DOWN = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
_SCALE_KINDS = {"Deployment": "apps", "ReplicaSet": "apps", "StatefulSet": "apps"}
_VALID_METRIC: dict[str, str] = {}


class _Groups:
    """``groupPods`` as sums: ready (r_), unready (u_) and missing (m_) pods, their requests.

    Time enters only through the readiness windows, so a grouping stays valid until one of the
    selected pods changes (``PodInformer.selector_version``) or ``valid_until`` (the next window
    boundary of a pod) — the HPA reuses it across syncs until then.
    """

    __slots__ = ("r_n", "r_req", "counted_ready", "u_n", "u_req", "m_n", "m_req", "m_fallback", "running",
                 "serving", "missing_request", "valid_until", "version", "fallback", "sampled")

    def __init__(self) -> None:
        self.sampled = 0  # pods metrics-server has a sample of (the metrics API's answer is empty without one)
        self.r_n = self.r_req = self.counted_ready = self.u_n = self.u_req = 0
        self.m_n = self.m_req = self.m_fallback = self.running = self.serving = 0
        self.missing_request: PodInfo | None = None
        self.valid_until = math.inf
        self.version: tuple = ()
        self.fallback = 100


class _MetricSpec:
    """One ``spec.metrics[]`` entry, parsed: what to measure, the target, the names upstream prints."""

    __slots__ = ("mtype", "resource", "utilization", "average_value", "name", "status_key", "container",
                 "error", "error_reason")

    def __init__(self, ms: dict):
        self.mtype = mtype = ms.get("type")
        src = (ms.get("resource") if mtype == "Resource" else ms.get("containerResource")) or {}
        self.resource = src.get("name", "cpu") if mtype in ("Resource", "ContainerResource") else \
            (mtype or "").lower()
        self.status_key = "resource" if mtype == "Resource" else "containerResource"
        self.container = src.get("container", "") if mtype == "ContainerResource" else None
        tgt = src.get("target") or {}
        self.average_value = cpu_millicores(tgt["averageValue"]) or 0 if tgt.get("averageValue") is not None else None
        self.utilization = int(tgt["averageUtilization"]) if tgt.get("averageUtilization") is not None else None
        kind = "resource" if mtype == "Resource" else "container resource"
        if self.average_value is not None:
            self.name = f"{self.resource} {kind}"
        else:
            self.name = f"{self.resource} {kind} utilization (percentage of request)"
        self.error = self.error_reason = None
        if mtype not in ("Resource", "ContainerResource"):
            self.error = f"unable to get {mtype} metric: the server could not find the requested resource"
            self.error_reason = "FailedGetExternalMetric" if mtype == "External" else f"FailedGet{mtype}Metric"
        elif self.resource != "cpu":
            self.error = (f"failed to get {self.resource} utilization: unable to get metrics for resource "
                          f"{self.resource}: no metrics returned from resource metrics API")
            self.error_reason = "FailedGetResourceMetric"
        elif self.average_value is None and self.utilization is None:
            self.error = ("invalid resource metric source: neither an average utilization target nor an "
                          "average value (usage) target was set")
            self.error_reason = "FailedGetResourceMetric"


class _HPASpec:
    """An HPA's spec, parsed once per generation (target, bounds, behavior)."""

    __slots__ = ("generation", "v1", "kind", "target_name", "target_api_version", "target_group", "scalable",
                 "min_replicas", "max_replicas", "behavior", "metrics", "fast")

    def __init__(self, hpa: dict):
        spec = hpa.get("spec") or {}
        self.generation = hpa["metadata"].get("generation")
        self.v1 = hpa.get("apiVersion") == "autoscaling/v1"
        ref = spec.get("scaleTargetRef") or {}
        self.kind, self.target_name = ref.get("kind", ""), ref.get("name", "")
        self.target_api_version = ref.get("apiVersion") or "apps/v1"
        self.target_group = self.target_api_version.split("/")[0] if "/" in self.target_api_version else ""
        self.scalable = _SCALE_KINDS.get(self.kind) == self.target_group
        self.min_replicas = spec.get("minReplicas", 1)
        self.max_replicas = spec.get("maxReplicas", self.min_replicas)
        self.behavior = spec.get("behavior")
        self.metrics: list[_MetricSpec] = []
        self.fast = False


class _Last:
    """What one HPA's previous fast-path sync left behind (see ``_reconcile_common``)."""

    __slots__ = ("uid", "selector", "label", "status", "conds", "sig")

    def __init__(self, uid: str) -> None:
        self.uid = uid
        self.selector: Any = None  # the target's spec.selector this label was read from (by identity)
        self.label: tuple | None = None  # its one (namespace, key, value), None for any other selector
        self.status: dict | None = None  # the status dict written last, as stored
        self.conds: list[dict] = []
        self.sig: tuple = ()  # the condition values that produced conds


class MetricError(Exception):
    """A metric that could not be computed; ``reason`` names the event and condition reason."""

    def __init__(self, message: str, reason: str = "FailedGetResourceMetric"):
        super().__init__(message)
        self.reason = reason


class HorizontalPodAutoscalerController(Controller):
    component = "horizontal-pod-autoscaler"
    fast_path = True  # use _reconcile_common for the common case (same results, fewer calls)

    def __init__(self, cluster: Any, informers: Informers, timings: Timings):
        super().__init__(cluster)
        self.pods = informers.pods
        self.timings = timings
        self.load = cluster.load
        self.recommendations: dict[tuple, list[list]] = {}  # key -> [[replicas, time], ...]
        self.scale_up_events: dict[tuple, list[list]] = {}  # key -> [[change, time, outdated], ...]
        self.scale_down_events: dict[tuple, list[list]] = {}
        self._uids: dict[tuple, str] = {}
        self._v1_conditions: dict[tuple, list[dict]] = {}  # autoscaling/v1 has no conditions in its status
        self._specs: dict[str, tuple] = {}  # uid -> (generation, metric specs)
        self._object_keys: dict[tuple, str] = {}
        self._syncing: tuple | None = None
        self._syncing_obj: dict | None = None  # the HPA object being synced (its own status write comes back)
        self._window_max: dict[tuple, deque] = {}  # key -> monotonic deque of [recommendation, time]
        self._parsed_specs: dict[str, _HPASpec] = {}  # uid -> the spec, parsed once per generation
        self._groups: dict[str, _Groups] = {}  # HPA uid -> its pods, grouped (see _Groups)
        self._last: dict[tuple, _Last] = {}  # key -> what the last fast-path sync left (see _reconcile_common)
        self.store.watch("autoscaling", "HorizontalPodAutoscaler", self._on_hpa)

    # ------------------------------------------------------------------ queueing
    def _on_hpa(self, ev: str, obj: dict) -> None:
        if obj is self._syncing_obj and ev == "MODIFIED":
            return  # our own status write (the test below, answered without building the key)
        md = obj["metadata"]
        key = (md.get("namespace", ""), md["name"])
        if key == self._syncing and ev == "MODIFIED":
            return  # our own status write: the sync re-queues the key itself
        if ev == "DELETED":
            if self._uids.get(key) == md["uid"]:
                self._forget(key)
            return
        if self._uids.get(key) != md["uid"]:
            self._forget(key)
            self._uids[key] = md["uid"]
        self.queue.add_after(key, self.timings.hpa_sync_period)

    def _forget(self, key: tuple) -> None:
        self._uids.pop(key, None)
        self.recommendations.pop(key, None)
        self._window_max.pop(key, None)
        self.scale_up_events.pop(key, None)
        self.scale_down_events.pop(key, None)
        self._v1_conditions.pop(key, None)
        self._last.pop(key, None)

    def object_key(self, key: Any) -> str:
        k = self._object_keys.get(key)
        if k is None:
            k = self._object_keys[key] = object_key("HorizontalPodAutoscaler", key[0], key[1])
        return k

    def sync(self, key: tuple[str, str]) -> None:
        hpa = self.store.ref("autoscaling", "HorizontalPodAutoscaler", key[0], key[1])
        if hpa is None:
            self._forget(key)
            return
        self.interleave = False
        self._syncing, self._syncing_obj = key, hpa
        try:
            self.reconcile(hpa, key)
        finally:
            self._syncing = self._syncing_obj = None
            # requeue with the fixed sync period, whatever happened (upstream: AddRateLimited with a
            # FixedItemIntervalRateLimiter); a deleted HPA is forgotten at its next turn
            self.queue.add_after(key, self.timings.hpa_sync_period)

    # ------------------------------------------------------------------ conditions
    def _set_condition(self, conds: list[dict], ctype: str, status: str, reason: str, message: str) -> None:
        """``setConditionInList``: the transition time moves only when the status changes."""
        for i, c in enumerate(conds):
            if c["type"] == ctype:
                if c["status"] == status and c["reason"] == reason and c["message"] == message:
                    return  # unchanged: keep the very same dict
                new = dict(c)
                if c["status"] != status:
                    new["lastTransitionTime"] = iso(self.env.now)
                new.update(status=status, reason=reason, message=message)
                conds[i] = new
                return
        conds.append({"type": ctype, "status": status, "lastTransitionTime": iso(self.env.now),
                      "reason": reason, "message": message})

    # ------------------------------------------------------------------ reconcile
    def _parsed(self, hpa: dict) -> "_HPASpec":
        md = hpa["metadata"]
        cached = self._parsed_specs.get(md["uid"])
        if cached is None or cached.generation != md.get("generation"):
            cached = self._parsed_specs[md["uid"]] = _HPASpec(hpa)
            cached.metrics = self._metric_specs(hpa)
            m = cached.metrics
            cached.fast = (not cached.v1 and cached.behavior is None and cached.scalable and len(m) == 1
                           and m[0].mtype == "Resource" and m[0].error is None and m[0].resource == "cpu"
                           and m[0].utilization is not None and m[0].average_value is None)
        return cached

    def reconcile(self, hpa: dict, key: tuple[str, str]) -> None:
        now = self.env.now
        ns = key[0]
        p = self._parsed(hpa)
        v1 = p.v1
        old_status = hpa.get("status") or {}
        kind, tname, api_version, group = p.kind, p.target_name, p.target_api_version, p.target_group
        target = self.store.ref(group, kind, ns, tname) if p.scalable else None
        if target is not None and self.fast_path and p.fast:
            current = (target.get("spec") or {}).get("replicas", 1)
            if p.min_replicas <= current <= p.max_replicas and current > 0 and \
                    self._reconcile_common(hpa, key, p, target, current, old_status, now):
                return
        conds: list[dict] = list(self._v1_conditions.get(key, []) if v1 else old_status.get("conditions") or [])
        hkey = self.object_key(key)
        if target is None:
            err = not_found(api_version, kind, tname).message if kind in _SCALE_KINDS else \
                f'no matches for kind "{kind}" in group "{group}"'
            self.event("FailedGetScale", hkey, err, type="Warning")
            self._set_condition(conds, "AbleToScale", "False", "FailedGetScale",
                                f"the HPA controller was unable to get the target's current scale: {err}")
            self._write(hpa, key, old_status, conds, old_status.get("currentReplicas", 0),
                        old_status.get("desiredReplicas", 0), old_status.get("currentMetrics"), False, v1)
            return
        current = (target.get("spec") or {}).get("replicas", 1)
        self._set_condition(conds, "AbleToScale", "True", "SucceededGetScale",
                            "the HPA controller was able to get the target's current scale")
        if key not in self.recommendations:
            self.recommendations[key] = [[current, now]]
        min_r, max_r = p.min_replicas, p.max_replicas
        rescale = True
        reason = ""
        statuses: list[dict] | None = None
        if current == 0 and min_r != 0:
            desired = 0
            rescale = False
            self._set_condition(conds, "ScalingActive", "False", "ScalingDisabled",
                                "scaling is disabled since the replica count of the target is zero")
        elif current > max_r:
            reason = "Current number of replicas above Spec.MaxReplicas"
            desired = max_r
        elif current < min_r:
            reason = "Current number of replicas below Spec.MinReplicas"
            desired = min_r
        else:
            proposal, metric_name, statuses, err = self._compute_replicas_for_metrics(hpa, target, current, conds)
            if err is not None and proposal == -1:
                self._write(hpa, key, old_status, conds, current, old_status.get("desiredReplicas", 0),
                            statuses, False, v1)
                self.event("FailedComputeMetricsReplicas", hkey, err, type="Warning")
                return
            desired = 0
            rescale_metric = ""
            if proposal > desired:
                desired = proposal
                rescale_metric = metric_name
            if desired > current:
                reason = f"{rescale_metric} above target"
            if desired < current:
                reason = "All metrics below target"
            if p.behavior is None:
                desired = self._normalize(key, conds, current, desired, min_r, max_r)
            else:
                desired = self._normalize_with_behaviors(key, p.behavior, conds, current, desired, min_r, max_r)
            rescale = desired != current
        if rescale:
            try:
                self.store.scale(api_version, kind, tname, ns, desired, field_manager=FIELD_MANAGER, render=False)
            except ApiError as exc:
                self.event("FailedRescale", hkey, f"New size: {desired}; reason: {reason}; error: {exc.message}",
                           type="Warning")
                self._set_condition(conds, "AbleToScale", "False", "FailedUpdateScale",
                                    f"the HPA controller was unable to update the target scale: {exc.message}")
                self._write(hpa, key, old_status, conds, current, old_status.get("desiredReplicas", 0),
                            statuses, False, v1)
                return
            self.interleave = True  # let the Deployment controller see the new size before the next HPA
            self._set_condition(conds, "AbleToScale", "True", "SucceededRescale",
                                f"the HPA controller was able to update the target scale to {desired}")
            self.event("SuccessfulRescale", hkey, f"New size: {desired}; reason: {reason}",
                       old=current, new=desired)
            self._store_scale_event(p.behavior, key, current, desired)
        else:
            desired = current
        self._write(hpa, key, old_status, conds, current, desired, statuses, rescale, v1)

    def _reconcile_common(self, hpa: dict, key: tuple, p: "_HPASpec", target: dict, current: int,
                          old_status: dict, now: float) -> bool:
        """The common case, inlined: autoscaling/v2, one CPU utilization metric, no ``behavior``,
        ``minReplicas <= current <= maxReplicas``.

        Exactly the steps of the general path (``_compute_replicas_for_metrics`` → ``_resource_replicas``
        → ``_normalize`` → rescale → status) with fewer calls: an HPA sync is the simulator's hottest
        loop (a day of 50 autoscaled workloads is 288,000 of them).  Returns False, having changed
        nothing, when the metric cannot be computed — the general path then reports it.  The set of
        AbleToScale=True reasons upstream applies one after the other collapses into the last one:
        with the status unchanged in between, only the last reason and message remain and the
        transition time moves exactly as it would.  ``tests/sim/test_hpa.py`` checks that a busy run
        gives the same event log with and without this path.

        Two things are remembered from one sync to the next (``_Last``), each used only while what it
        was derived from is unchanged: the target's pod-selector label (a one-label ``matchLabels``,
        checked by the selector's identity) and the conditions written last time — when the HPA's
        status is still the very dict this controller wrote and the three conditions are set to the
        same values again, the condition list is that same list (setting a condition to what it
        already says changes nothing, not even its transition time).
        """
        ms = p.metrics[0]
        target_util = ms.utilization
        ns, name = key[0], target["metadata"]["name"]
        spec = target["spec"]
        selector = spec.get("selector")
        uid = hpa["metadata"]["uid"]
        last = self._last.get(key)
        if last is None or last.uid != uid:
            last = self._last[key] = _Last(uid)
        if last.selector is not selector:
            last.selector, last.label = selector, self.pods.single_label(ns, selector)
            self._groups.pop(uid, None)  # its version was that of the previous selector's label
        version = self.pods.label_version.get(last.label, 0) if last.label is not None \
            else self.pods.selector_version(ns, selector)
        g = self._groups.get(uid)
        if g is None or g.version != version or now >= g.valid_until or g.fallback != max(100, target_util):
            g = self._group(self.pods.select(ns, selector), now, target_util)
            g.version = version
            self._groups[uid] = g
        if not g.running or g.missing_request is not None or g.r_n == 0 or g.r_req == 0:
            return False
        # usage_per_pod, with the ready pods sharing the demand (a counted ready pod is a serving one)
        r_usage = g.counted_ready * int(self.load.demand(ns, name, now) / g.serving) if g.counted_ready else 0
        util = (r_usage * 100) // g.r_req
        raw = r_usage // g.r_n
        ratio = util / target_util
        tol = self.timings.hpa_tolerance
        scale_up_unready = g.u_n > 0 and ratio > 1.0
        if not scale_up_unready and g.m_n == 0:
            proposal = current if abs(1.0 - ratio) <= tol else int(math.ceil(ratio * g.r_n))
        else:
            usage, req, n = r_usage, g.r_req, g.r_n
            if g.m_n:
                if ratio < 1.0:
                    usage, req, n = usage + g.m_fallback, req + g.m_req, n + g.m_n
                elif ratio > 1.0:
                    req, n = req + g.m_req, n + g.m_n
            if scale_up_unready:
                req, n = req + g.u_req, n + g.u_n
            new_ratio = ((usage * 100) // req) / target_util
            if abs(1.0 - new_ratio) <= tol or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
                proposal = current
            else:
                proposal = int(math.ceil(new_ratio * n))
                if (new_ratio < 1.0 and proposal > current) or (new_ratio > 1.0 and proposal < current):
                    proposal = current
        # reconcileAutoscaler
        if key not in self.recommendations:
            self.recommendations[key] = [[current, now]]
        metric = ms.name
        desired = proposal if proposal > 0 else 0
        # normalizeDesiredReplicas
        stabilized, result, able, (lim_reason, lim_msg) = self._normalize_decision(
            key, current, desired, p.min_replicas, p.max_replicas, now)
        limited = "False" if result == stabilized else "True"
        active = _VALID_METRIC.get(metric)
        if active is None:
            active = _VALID_METRIC[metric] = f"the HPA was able to successfully calculate a replica count from {metric}"
        statuses = [{"type": "Resource", "resource": {"name": ms.resource, "current": {
            "averageUtilization": util, "averageValue": format_millicores(raw)}}}]
        rescale = result != current
        if rescale:
            reason = f"{metric} above target" if desired > current else \
                ("All metrics below target" if desired < current else "")
            try:
                self.store.scale(p.target_api_version, p.kind, p.target_name, ns, result, field_manager=FIELD_MANAGER,
                                 render=False)
            except ApiError as exc:
                conds = list(old_status.get("conditions") or [])
                self._set_condition(conds, "AbleToScale", "True", *able)
                self._set_condition(conds, "ScalingActive", "True", "ValidMetricFound", active)
                self._set_condition(conds, "ScalingLimited", limited, lim_reason, lim_msg)
                self.event("FailedRescale", self.object_key(key),
                           f"New size: {result}; reason: {reason}; error: {exc.message}", type="Warning")
                self._set_condition(conds, "AbleToScale", "False", "FailedUpdateScale",
                                    f"the HPA controller was unable to update the target scale: {exc.message}")
                self._write(hpa, key, old_status, conds, current, old_status.get("desiredReplicas", 0),
                            statuses, False, False)
                return True
            able = ("SucceededRescale", f"the HPA controller was able to update the target scale to {result}")
            self.interleave = True
            self.event("SuccessfulRescale", self.object_key(key), f"New size: {result}; reason: {reason}",
                       old=current, new=result)
        sig = (able, active, limited, lim_reason, lim_msg)
        if old_status is last.status and sig == last.sig:
            conds = last.conds
        else:
            conds = list(old_status.get("conditions") or [])
            self._set_condition(conds, "AbleToScale", "True", *able)
            self._set_condition(conds, "ScalingActive", "True", "ValidMetricFound", active)
            self._set_condition(conds, "ScalingLimited", limited, lim_reason, lim_msg)
        # _write, for an autoscaling/v2 HPA with conditions
        status: dict[str, Any] = {"currentReplicas": current, "desiredReplicas": result, "currentMetrics": statuses}
        last_scale = iso(now) if rescale else old_status.get("lastScaleTime")
        if last_scale:
            status["lastScaleTime"] = last_scale
        status["conditions"] = conds
        self.store.update_status(hpa, status, field_manager=FIELD_MANAGER)  # a no-op when unchanged
        last.status, last.conds, last.sig = hpa.get("status"), conds, sig
        return True

    def _write(self, hpa: dict, key: tuple, old: dict, conds: list[dict], current: int, desired: int,
               metrics: list[dict] | None, rescaled: bool, v1: bool) -> None:
        last_scale = iso(self.env.now) if rescaled else old.get("lastScaleTime")
        if v1:
            self._v1_conditions[key] = conds
            status: dict[str, Any] = {"currentReplicas": current, "desiredReplicas": desired}
            for m in metrics or ():
                util = ((m.get("resource") or {}).get("current") or {}).get("averageUtilization")
                if util is not None:
                    status["currentCPUUtilizationPercentage"] = util
                    break
            if last_scale:
                status["lastScaleTime"] = last_scale
        else:
            status = {}
            if current:
                status["currentReplicas"] = current
            status["desiredReplicas"] = desired
            if metrics:
                status["currentMetrics"] = metrics
            if last_scale:
                status["lastScaleTime"] = last_scale
            if conds:
                status["conditions"] = conds
        self.store.update_status(hpa, status, field_manager=FIELD_MANAGER)  # a no-op when unchanged

    # ------------------------------------------------------------------ metrics
    def _metric_specs(self, hpa: dict) -> list["_MetricSpec"]:
        """The HPA's metrics, parsed once per generation."""
        md = hpa["metadata"]
        cached = self._specs.get(md["uid"])
        if cached is not None and cached[0] == md.get("generation"):
            return cached[1]
        specs = [_MetricSpec(ms) for ms in self._metric_specs_uncached(hpa)]
        self._specs[md["uid"]] = (md.get("generation"), specs)
        return specs

    def _metric_specs_uncached(self, hpa: dict) -> list[dict]:
        spec = hpa.get("spec") or {}
        if hpa.get("apiVersion") == "autoscaling/v1":
            target = spec.get("targetCPUUtilizationPercentage", 80)
            return [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": target}}}]
        metrics = spec.get("metrics")
        if not metrics:
            return [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": 80}}}]
        return metrics

    def _compute_replicas_for_metrics(self, hpa: dict, target: dict, current: int,
                                      conds: list[dict]) -> tuple[int, str, list[dict], str | None]:
        """``computeReplicasForMetrics``: the largest proposal of the valid metrics."""
        specs = self._metric_specs(hpa)
        statuses: list[dict] = []
        replicas, metric = 0, ""
        invalid = 0
        first_err: str | None = None
        first_cond: tuple | None = None
        hkey = None
        ns = hpa["metadata"].get("namespace", "")
        selector = (target.get("spec") or {}).get("selector")
        workload = (ns, target["metadata"]["name"], hpa["metadata"]["uid"])
        for ms in specs:
            try:
                if ms.error is not None:
                    raise MetricError(ms.error, ms.error_reason)
                proposal, status = self._compute_for_metric(ms, selector, workload, current)
            except MetricError as exc:
                hkey = hkey or self.object_key((ns, hpa["metadata"]["name"]))
                self.event(exc.reason, hkey, str(exc), type="Warning")
                if invalid == 0:
                    first_err = f"failed to get {ms.resource} resource metric value: {exc}" \
                        if ms.mtype in ("Resource", "ContainerResource") else str(exc)
                    first_cond = ("ScalingActive", "False", exc.reason,
                                  f"the HPA was unable to compute the replica count: {exc}")
                invalid += 1
                statuses.append({"type": ""})
                continue
            statuses.append(status)
            if replicas == 0 or proposal > replicas:
                replicas, metric = proposal, ms.name
        err = None
        if first_err is not None:
            err = f"invalid metrics ({invalid} invalid out of {len(specs)}), first error is: {first_err}"
        if invalid >= len(specs) or (invalid > 0 and replicas < current):
            if first_cond is not None:
                self._set_condition(conds, *first_cond)
            return -1, "", statuses, err
        message = _VALID_METRIC.get(metric)
        if message is None:
            message = _VALID_METRIC[metric] = f"the HPA was able to successfully calculate a replica count from {metric}"
        self._set_condition(conds, "ScalingActive", "True", "ValidMetricFound", message)
        return replicas, metric, statuses, err

    def _compute_for_metric(self, ms: "_MetricSpec", selector: dict | None, workload: tuple,
                            current: int) -> tuple[int, dict]:
        """``computeStatusForResourceMetricGeneric``: a proposal and the metric's status."""
        if ms.average_value is not None:
            try:
                replicas, usage = self._raw_replicas(current, ms.average_value, selector, workload)
            except MetricError as exc:
                raise MetricError(f"failed to get {ms.resource} usage: {exc}") from None
            body: dict[str, Any] = {"name": ms.resource, "current": {"averageValue": format_millicores(usage)}}
        else:
            try:
                replicas, util, raw = self._resource_replicas(current, ms.utilization, selector, workload)
            except MetricError as exc:
                raise MetricError(f"failed to get {ms.resource} utilization: {exc}") from None
            body = {"name": ms.resource, "current": {"averageUtilization": util, "averageValue": format_millicores(raw)}}
        if ms.container is not None:
            body["container"] = ms.container
        return replicas, {"type": ms.mtype, ms.status_key: body}

    # ------------------------------------------------------------------ replica calculator
    def _group(self, pods: list[PodInfo], now: float, target: int) -> _Groups:
        """One pass over the pods: ``groupPods`` and the requests, as sums (see ``_Groups``).

        Running pods have a metric once their containers have run for one metrics window (before
        that, and in other phases, they are missing); deleted, failed and pending pods are ignored.  For CPU a running pod is unready when it was never Ready, when it is
        not Ready, or — within cpu-initialization-period of its start — until one metric window
        after it became Ready; past that period only a pod that has not been Ready since the initial
        readiness delay is unready.
        """
        t = self.timings
        g = _Groups()
        g.fallback = fallback = max(100, target)
        init_period, window, delay = t.hpa_cpu_initialization_period, t.metrics_window, t.hpa_initial_readiness_delay
        valid_until = math.inf
        for p in pods:
            req = p.cpu_request
            if req is None:
                if g.missing_request is None:
                    g.missing_request = p
                req = 0
            phase = p.phase
            if phase == "Running":
                g.running += 1
                if p.ready and not p.terminating:
                    g.serving += 1
            if p.terminating or phase == "Failed" or phase == "Pending":
                if p.terminating and phase == "Running" and p.running_since is not None \
                        and p.running_since + window <= now:
                    g.sampled += 1  # metrics-server still returns it; groupPods then ignores it
                continue  # ignored
            sampled_at = None if p.running_since is None else p.running_since + window
            if phase == "Running" and sampled_at is not None and sampled_at > now:
                valid_until = min(valid_until, sampled_at)  # its first metric arrives then
            if phase != "Running" or sampled_at is None or sampled_at > now:  # no metric (yet): missing
                g.m_n += 1
                g.m_req += req
                g.m_fallback += req * fallback // 100
                continue
            g.sampled += 1
            ready, transition, start = p.ready, p.ready_transition, p.start_time
            if transition is None or start is None:
                unready = True
            elif start + init_period > now:
                edge = transition + window
                unready = (not ready) or now < edge
                if ready and edge > now:
                    valid_until = min(valid_until, edge)
                valid_until = min(valid_until, start + init_period)
            else:
                unready = (not ready) and start + delay > transition
            if unready:
                g.u_n += 1
                g.u_req += req
                continue
            g.r_n += 1
            g.r_req += req
            if ready:
                g.counted_ready += 1
        g.valid_until = valid_until
        return g

    def _classify(self, selector: dict | None, workload: tuple, target: int, utilization: bool) -> tuple[_Groups, int]:
        """The grouped pods of the workload (cached until they change) and the ready pods' usage."""
        ns, name, uid = workload
        now = self.env.now
        version = self.pods.selector_version(ns, selector)
        g = self._groups.get(uid)
        if g is None or g.version != version or now >= g.valid_until or g.fallback != max(100, target):
            g = self._group(self.pods.select(ns, selector), now, target)
            g.version = version
            self._groups[uid] = g
        if not g.sampled:
            raise MetricError("unable to get metrics for resource cpu: no metrics returned from resource metrics API")
        usage = g.counted_ready * int(self.load.usage_per_pod(ns, name, now, g.serving)) if g.counted_ready else 0
        mr = g.missing_request
        if utilization and mr is not None:
            for c in (mr.obj.get("spec") or {}).get("containers") or ():
                if ((c.get("resources") or {}).get("requests") or {}).get("cpu") is None:
                    raise MetricError(f"missing request for cpu in container {c.get('name', '')} of Pod {mr.name}")
        if g.r_n == 0:
            raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
        return g, usage

    def _within(self, ratio: float) -> bool:
        return abs(1.0 - ratio) <= self.timings.hpa_tolerance

    def _resource_replicas(self, current: int, target: int, selector: dict | None,
                           workload: tuple) -> tuple[int, int, int]:
        """``GetResourceReplicas``: (replicas, utilization %, average usage in millicores)."""
        g, r_usage = self._classify(selector, workload, target, True)
        if g.r_req == 0:
            raise MetricError("no metrics returned matched known pods")
        util = (r_usage * 100) // g.r_req
        raw = r_usage // g.r_n
        ratio = util / target
        scale_up_unready = g.u_n > 0 and ratio > 1.0
        if not scale_up_unready and g.m_n == 0:
            if self._within(ratio):
                return current, util, raw
            return int(math.ceil(ratio * g.r_n)), util, raw
        usage, req, n = r_usage, g.r_req, g.r_n
        if g.m_n:
            if ratio < 1.0:  # missing pods count as 100 % of their request (or the target if higher)
                usage, req, n = usage + g.m_fallback, req + g.m_req, n + g.m_n
            elif ratio > 1.0:  # ... and as 0 % on a scale-up
                req, n = req + g.m_req, n + g.m_n
        if scale_up_unready:  # unready pods count as 0 % on a scale-up
            req, n = req + g.u_req, n + g.u_n
        new_ratio = ((usage * 100) // req) / target
        if self._within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
            return current, util, raw
        new_replicas = int(math.ceil(new_ratio * n))
        if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
            return current, util, raw
        return new_replicas, util, raw

    def _raw_replicas(self, current: int, target: int, selector: dict | None, workload: tuple) -> tuple[int, int]:
        """``GetRawResourceReplicas`` (an averageValue target): (replicas, average usage in millicores)."""
        g, r_usage = self._classify(selector, workload, target, False)
        usage = r_usage // g.r_n
        ratio = usage / target if target else 0.0
        scale_up_unready = g.u_n > 0 and ratio > 1.0
        if not scale_up_unready and g.m_n == 0:
            if self._within(ratio):
                return current, usage
            return int(math.ceil(ratio * g.r_n)), usage
        total, n = r_usage, g.r_n
        if g.m_n:
            total += g.m_n * target if ratio < 1.0 else 0
            n += g.m_n
        if scale_up_unready:
            n += g.u_n
        new_ratio = (total // n) / target if target else 0.0
        if self._within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
            return current, usage
        new_replicas = int(math.ceil(new_ratio * n))
        if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
            return current, usage
        return new_replicas, usage

    # ------------------------------------------------------------------ normalisation (no behavior)
    def _normalize_decision(self, key: tuple, current: int, desired: int, min_r: int, max_r: int,
                            now: float) -> tuple[int, int, tuple[str, str], tuple[str, str]]:
        """``normalizeDesiredReplicas``: (stabilized, result, AbleToScale reason/message, ScalingLimited reason/message)."""
        stabilized = self._stabilize(key, desired, now)
        if stabilized != desired:
            able = ("ScaleDownStabilized", "recent recommendations were higher than current one, applying the "
                                           "highest recent recommendation")
        else:
            able = ("ReadyForNewScale", "recommended size matches current size")
        limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
        if max_r > limit:
            maximum, limited = limit, ("ScaleUpLimit", "the desired replica count is increasing faster than the "
                                                       "maximum scale rate")
        else:
            maximum, limited = max_r, ("TooManyReplicas", "the desired replica count is more than the maximum "
                                                          "replica count")
        if stabilized < min_r:
            result, limited = min_r, ("TooFewReplicas", "the desired replica count is less than the minimum "
                                                        "replica count")
        elif stabilized > maximum:
            result = maximum
        else:
            result, limited = stabilized, ("DesiredWithinRange", "the desired count is within the acceptable range")
        return stabilized, result, able, limited

    def _normalize(self, key: tuple, conds: list[dict], current: int, desired: int, min_r: int, max_r: int) -> int:
        stabilized, result, able, limited = self._normalize_decision(key, current, desired, min_r, max_r,
                                                                     self.env.now)
        self._set_condition(conds, "AbleToScale", "True", *able)
        self._set_condition(conds, "ScalingLimited", "False" if result == stabilized else "True", *limited)
        return result

    def _stabilize(self, key: tuple, desired: int, now: float) -> int:
        """``stabilizeRecommendation``: the highest recommendation of the downscale window.

        Upstream scans its list of timestamped recommendations and keeps the largest one younger
        than the window (one exactly a window old is out, see the module docstring).  The same
        maximum comes from a monotonic deque — recommendations in time order, each larger than
        every later one — in amortised O(1); the recommendation list is kept too (for
        ``behavior``, should the HPA gain one), trimmed of entries older than every window.
        """
        window = self.timings.hpa_downscale_stabilization
        cutoff = now - window
        dq = self._window_max.get(key)
        if dq is None:
            dq = self._window_max[key] = deque([r, t] for r, t in self.recommendations.get(key, ()))
            # restore the monotonic invariant of entries loaded from the list
            mono: deque = deque()
            for r, t in dq:
                while mono and mono[-1][0] <= r:
                    mono.pop()
                mono.append([r, t])
            dq = self._window_max[key] = mono
        while dq and dq[0][1] <= cutoff:
            dq.popleft()
        best = desired if not dq or dq[0][0] < desired else dq[0][0]
        while dq and dq[-1][0] <= desired:
            dq.pop()
        dq.append([desired, now])
        recs = self.recommendations.setdefault(key, [])
        recs.append([desired, now])
        if len(recs) > 1024:  # trim in batches: keep the longest window the API allows (1 h)
            horizon = now - max(window, 3600.0)
            recs[:] = [r for r in recs if r[1] > horizon]
        return best

    # ------------------------------------------------------------------ normalisation (behavior)
    def _rules(self, behavior: dict, direction: str) -> dict:
        given = behavior.get(direction)
        default = DEFAULT_UP if direction == "scaleUp" else DEFAULT_DOWN
        if given is None:
            rules = dict(default)
        else:
            rules = dict(given)
            for k, v in default.items():
                if rules.get(k) is None:
                    rules[k] = v
        if direction == "scaleDown" and rules.get("stabilizationWindowSeconds") is None:
            rules["stabilizationWindowSeconds"] = self.timings.hpa_downscale_stabilization
        return rules

    def _normalize_with_behaviors(self, key: tuple, behavior: dict, conds: list[dict], current: int, desired: int,
                                  min_r: int, max_r: int) -> int:
        up, down = self._rules(behavior, "scaleUp"), self._rules(behavior, "scaleDown")
        stabilized, reason, message = self._stabilize_with_behaviors(key, up, down, current, desired)
        if stabilized != desired:
            self._set_condition(conds, "AbleToScale", "True", reason, message)
        else:
            self._set_condition(conds, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
        result, reason, message = self._rate_limited(key, up, down, current, stabilized, min_r, max_r)
        self._set_condition(conds, "ScalingLimited", "False" if result == stabilized else "True", reason, message)
        return result

    def _stabilize_with_behaviors(self, key: tuple, up: dict, down: dict, current: int,
                                  desired: int) -> tuple[int, str, str]:
        now = self.env.now
        up_cut = now - float(up.get("stabilizationWindowSeconds") or 0)
        down_cut = now - float(down.get("stabilizationWindowSeconds") or 0)
        up_rec = down_rec = desired
        recs = self.recommendations.setdefault(key, [])
        old_index = -1
        for i, (rec, ts) in enumerate(recs):
            if ts > up_cut:
                up_rec = min(rec, up_rec)
            if ts > down_cut:
                down_rec = max(rec, down_rec)
            if ts <= up_cut and ts <= down_cut:
                old_index = i
        recommendation = current
        if recommendation < up_rec:
            recommendation = up_rec
        if recommendation > down_rec:
            recommendation = down_rec
        if old_index >= 0:
            recs[old_index] = [desired, now]
        else:
            recs.append([desired, now])
        self._window_max.pop(key, None)  # rebuilt from the list if the HPA loses its behavior
        if desired >= current:
            return recommendation, "ScaleUpStabilized", \
                "recent recommendations were lower than current one, applying the lowest recent recommendation"
        return recommendation, "ScaleDownStabilized", \
            "recent recommendations were higher than current one, applying the highest recent recommendation"

    def _change_in_period(self, period: float, events: list[list]) -> int:
        cutoff = self.env.now - period
        return sum(e[0] for e in events if e[1] > cutoff)

    def _scale_up_limit(self, current: int, up_events: list, down_events: list, rules: dict) -> int:
        select = rules.get("selectPolicy") or "Max"
        if select == "Disabled":
            return current
        result = None
        for p in rules.get("policies") or ():
            period = float(p.get("periodSeconds", 15))
            start = current - self._change_in_period(period, up_events) + self._change_in_period(period, down_events)
            if p.get("type") == "Pods":
                proposed = start + int(p.get("value", 0))
            else:
                proposed = int(math.ceil(start * (1 + float(p.get("value", 0)) / 100)))
            if result is None:
                result = proposed
            else:
                result = min(result, proposed) if select == "Min" else max(result, proposed)
        return current if result is None else result

    def _scale_down_limit(self, current: int, up_events: list, down_events: list, rules: dict) -> int:
        select = rules.get("selectPolicy") or "Max"
        if select == "Disabled":
            return current
        result = None
        for p in rules.get("policies") or ():
            period = float(p.get("periodSeconds", 15))
            start = current - self._change_in_period(period, up_events) + self._change_in_period(period, down_events)
            if p.get("type") == "Pods":
                proposed = start - int(p.get("value", 0))
            else:
                proposed = int(start * (1 - float(p.get("value", 0)) / 100))
            if result is None:
                result = proposed
            else:
                result = max(result, proposed) if select == "Min" else min(result, proposed)
        return current if result is None else result

    def _rate_limited(self, key: tuple, up: dict, down: dict, current: int, desired: int, min_r: int,
                      max_r: int) -> tuple[int, str, str]:
        ups = self.scale_up_events.get(key, [])
        downs = self.scale_down_events.get(key, [])
        if desired > current:
            limit = max(self._scale_up_limit(current, ups, downs, up), current)
            if max_r > limit:
                maximum, reason, msg = limit, "ScaleUpLimit", \
                    "the desired replica count is increasing faster than the maximum scale rate"
            else:
                maximum, reason, msg = max_r, "TooManyReplicas", \
                    "the desired replica count is more than the maximum replica count"
            if desired > maximum:
                return maximum, reason, msg
        elif desired < current:
            limit = min(self._scale_down_limit(current, ups, downs, down), current)
            if min_r < limit:
                minimum, reason, msg = limit, "ScaleDownLimit", \
                    "the desired replica count is decreasing faster than the maximum scale rate"
            else:
                minimum, reason, msg = min_r, "TooFewReplicas", \
                    "the desired replica count is less than the minimum replica count"
            if desired < minimum:
                return minimum, reason, msg
        return desired, "DesiredWithinRange", "the desired count is within the acceptable range"

    def _store_scale_event(self, behavior: dict | None, key: tuple, prev: int, new: int) -> None:
        if behavior is None:
            return
        now = self.env.now
        if new > prev:
            rules, events = self._rules(behavior, "scaleUp"), self.scale_up_events.setdefault(key, [])
            change = new - prev
        else:
            rules, events = self._rules(behavior, "scaleDown"), self.scale_down_events.setdefault(key, [])
            change = prev - new
        longest = max((float(p.get("periodSeconds", 15)) for p in rules.get("policies") or ()), default=0.0)
        cutoff = now - longest
        old_index = -1
        for i, e in enumerate(events):
            if e[1] <= cutoff:
                e[2] = True
            if e[2]:
                old_index = i
        if old_index >= 0:
            events[old_index] = [change, now, False]
        else:
            events.append([change, now, False])
