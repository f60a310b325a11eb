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
    evenly over its ready pods (0 m for running pods that are not ready).  Pods
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
from typing import Any

from labkit.errors import ApiError, not_found
from labkit.events import object_key
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


class MetricError(Exception):
    """A metric that could not be computed; ``reason`` names the event and condition reason."""

    def __init__(self, message: str, reason: str = "FailedGetResourceMetric"):
        super().__init__(message)
        self.reason = reason


class HorizontalPodAutoscalerController(Controller):
    component = "horizontal-pod-autoscaler"

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
        self.store.watch("autoscaling", "HorizontalPodAutoscaler", self._on_hpa)

    # ------------------------------------------------------------------ queueing
    def _on_hpa(self, ev: str, obj: dict) -> None:
        md = obj["metadata"]
        key = (md.get("namespace", ""), md["name"])
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
        self.scale_up_events.pop(key, None)
        self.scale_down_events.pop(key, None)
        self._v1_conditions.pop(key, None)

    def object_key(self, key: Any) -> str:
        return object_key("HorizontalPodAutoscaler", key[0], key[1])

    def sync(self, key: tuple[str, str]) -> None:
        hpa = self.store.ref("autoscaling", "HorizontalPodAutoscaler", key[0], key[1])
        if hpa is None:
            self._forget(key)
            return
        try:
            self.reconcile(hpa, key)
        finally:
            if self.store.ref("autoscaling", "HorizontalPodAutoscaler", key[0], key[1]) is not None:
                self.queue.add_after(key, self.timings.hpa_sync_period)

    # ------------------------------------------------------------------ conditions
    def _set_condition(self, conds: list[dict], ctype: str, status: str, reason: str, message: str) -> None:
        for i, c in enumerate(conds):
            if c["type"] == ctype:
                new = dict(c)
                if c.get("status") != status:
                    new["lastTransitionTime"] = iso(self.env.now)
                new.update(status=status, reason=reason, message=message)
                conds[i] = new
                return
        conds.append({"type": ctype, "status": status, "lastTransitionTime": iso(self.env.now),
                      "reason": reason, "message": message})

    # ------------------------------------------------------------------ reconcile
    def reconcile(self, hpa: dict, key: tuple[str, str]) -> None:
        now = self.env.now
        ns = hpa["metadata"].get("namespace", "")
        spec = hpa.get("spec") or {}
        v1 = hpa.get("apiVersion") == "autoscaling/v1"
        old_status = hpa.get("status") or {}
        conds: list[dict] = [dict(c) for c in (old_status.get("conditions") or [])]
        if v1:
            conds = [dict(c) for c in self._v1_conditions.get(key, [])]
        hkey = self.object_key(key)
        ref = spec.get("scaleTargetRef") or {}
        kind, tname = ref.get("kind", ""), ref.get("name", "")
        api_version = ref.get("apiVersion") or "apps/v1"
        target = None
        group = api_version.split("/")[0] if "/" in api_version else ""
        if _SCALE_KINDS.get(kind) == group:
            target = self.store.ref(group, kind, ns, tname)
        if target is None:
            err = not_found(api_version, kind, tname).message if kind in _SCALE_KINDS else \
                f'no matches for kind "{kind}" in group "{group}"'
            self.event("FailedGetScale", hkey, err, type="Warning")
            self._set_condition(conds, "AbleToScale", "False", "FailedGetScale",
                                f"the HPA controller was unable to get the target's current scale: {err}")
            self._write(hpa, key, old_status, conds, old_status.get("currentReplicas", 0),
                        old_status.get("desiredReplicas", 0), old_status.get("currentMetrics"), False, v1)
            return
        self._set_condition(conds, "AbleToScale", "True", "SucceededGetScale",
                            "the HPA controller was able to get the target's current scale")
        current = (target.get("spec") or {}).get("replicas", 1)
        if key not in self.recommendations:
            self.recommendations[key] = [[current, now]]
        min_r = spec.get("minReplicas", 1)
        max_r = spec.get("maxReplicas", min_r)
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
            if spec.get("behavior") is None:
                desired = self._normalize(key, conds, current, desired, min_r, max_r)
            else:
                desired = self._normalize_with_behaviors(key, spec["behavior"], conds, current, desired, min_r, max_r)
            rescale = desired != current
        if rescale:
            try:
                self.store.scale(api_version, kind, tname, ns, desired, field_manager=FIELD_MANAGER)
            except ApiError as exc:
                self.event("FailedRescale", hkey, f"New size: {desired}; reason: {reason}; error: {exc.message}",
                           type="Warning")
                self._set_condition(conds, "AbleToScale", "False", "FailedUpdateScale",
                                    f"the HPA controller was unable to update the target scale: {exc.message}")
                self._write(hpa, key, old_status, conds, current, old_status.get("desiredReplicas", 0),
                            statuses, False, v1)
                return
            self._set_condition(conds, "AbleToScale", "True", "SucceededRescale",
                                f"the HPA controller was able to update the target scale to {desired}")
            self.event("SuccessfulRescale", hkey, f"New size: {desired}; reason: {reason}",
                       old=current, new=desired)
            self._store_scale_event(spec.get("behavior"), key, current, desired)
        else:
            desired = current
        self._write(hpa, key, old_status, conds, current, desired, statuses, rescale, v1)

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
        if status != old:
            self.store.update_status(hpa, status, field_manager=FIELD_MANAGER)

    # ------------------------------------------------------------------ metrics
    def _metric_specs(self, hpa: dict) -> list[dict]:
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
        specs = self._metric_specs(hpa)
        statuses: list[dict] = [{"type": ""} for _ in specs]
        replicas, metric = 0, ""
        invalid = 0
        first_err: str | None = None
        first_cond: tuple | None = None
        hkey = self.object_key((hpa["metadata"].get("namespace", ""), hpa["metadata"]["name"]))
        for i, ms in enumerate(specs):
            try:
                proposal, name, status = self._compute_for_metric(hpa, target, ms, current)
            except MetricError as exc:
                self.event(exc.reason, hkey, str(exc), type="Warning")
                if invalid == 0:
                    mname = ((ms.get("resource") or ms.get("containerResource") or {}).get("name")
                             or ms.get("type", "").lower())
                    first_err = f"failed to get {mname} resource metric value: {exc}" \
                        if ms.get("type") in ("Resource", "ContainerResource") else str(exc)
                    first_cond = ("ScalingActive", "False", exc.reason,
                                  f"the HPA was unable to compute the replica count: {exc}")
                invalid += 1
                continue
            statuses[i] = status
            if replicas == 0 or proposal > replicas:
                replicas, metric = proposal, name
        err = None
        if first_err is not None:
            err = f"invalid metrics ({invalid} invalid out of {len(specs)}), first error is: {first_err}"
        if invalid >= len(specs) or (invalid > 0 and replicas < current):
            if first_cond is not None:
                self._set_condition(conds, *first_cond)
            return -1, "", statuses, err
        self._set_condition(conds, "ScalingActive", "True", "ValidMetricFound",
                            f"the HPA was able to successfully calculate a replica count from {metric}")
        return replicas, metric, statuses, err

    def _compute_for_metric(self, hpa: dict, target: dict, ms: dict, current: int) -> tuple[int, str, dict]:
        mtype = ms.get("type")
        if mtype not in ("Resource", "ContainerResource"):
            raise MetricError(f"unable to get {mtype} metric: the server could not find the requested resource",
                              "FailedGetExternalMetric" if mtype == "External" else
                              f"FailedGet{mtype}Metric")
        src = ms.get("resource") if mtype == "Resource" else ms.get("containerResource")
        src = src or {}
        resource = src.get("name", "cpu")
        tgt = src.get("target") or {}
        if resource != "cpu":
            raise MetricError(f"failed to get {resource} utilization: unable to get metrics for resource "
                              f"{resource}: no metrics returned from resource metrics API")
        ns = hpa["metadata"].get("namespace", "")
        selector = (target.get("spec") or {}).get("selector")
        pods = self.pods.select(ns, selector)
        tname = target["metadata"]["name"]
        if tgt.get("averageValue") is not None:
            target_m = cpu_millicores(tgt["averageValue"]) or 0
            try:
                replicas, usage = self._raw_replicas(current, target_m, pods, ns, tname)
            except MetricError as exc:
                raise MetricError(f"failed to get {resource} usage: {exc}") from None
            name = f"{resource} resource" if mtype == "Resource" else f"{resource} container resource"
            status = {"type": mtype, ("resource" if mtype == "Resource" else "containerResource"): {
                "name": resource, "current": {"averageValue": format_millicores(usage)}}}
            if mtype == "ContainerResource":
                status["containerResource"]["container"] = src.get("container", "")
            return replicas, name, status
        util_target = tgt.get("averageUtilization")
        if util_target is None:
            raise MetricError("invalid resource metric source: neither an average utilization target nor an "
                              "average value (usage) target was set")
        try:
            replicas, util, raw = self._resource_replicas(current, int(util_target), pods, ns, tname)
        except MetricError as exc:
            raise MetricError(f"failed to get {resource} utilization: {exc}") from None
        name = f"{resource} resource utilization (percentage of request)" if mtype == "Resource" else \
            f"{resource} container resource utilization (percentage of request)"
        body = {"name": resource, "current": {"averageUtilization": util, "averageValue": format_millicores(raw)}}
        if mtype == "ContainerResource":
            body["container"] = src.get("container", "")
        return replicas, name, {"type": mtype, "resource" if mtype == "Resource" else "containerResource": body}

    # ------------------------------------------------------------------ replica calculator
    def _metrics(self, pods: list[PodInfo], ns: str, workload: str) -> dict[str, int]:
        """What metrics-server reports: usage of every running pod (ready pods share the demand)."""
        running = [p for p in pods if p.phase == "Running"]
        if not running:
            raise MetricError("unable to get metrics for resource cpu: no metrics returned from resource metrics API")
        serving = sum(1 for p in running if p.ready and not p.terminating)
        share = int(self.load.usage_per_pod(ns, workload, self.env.now, serving)) if serving else 0
        return {p.name: (share if p.ready and not p.terminating else 0) for p in running}

    def _group(self, pods: list[PodInfo], metrics: dict[str, int]) -> tuple[int, list, list, list]:
        """``groupPods``: ready count, unready, missing and ignored pod names (CPU)."""
        t = self.timings
        now = self.env.now
        ready_count = 0
        unready, missing, ignored = [], [], []
        for p in pods:
            if p.terminating or p.phase == "Failed":
                ignored.append(p.name)
                continue
            if p.phase == "Pending":
                ignored.append(p.name)
                continue
            if p.name not in metrics:
                missing.append(p.name)
                continue
            if p.ready_transition is None or p.start_time is None:
                is_unready = True
            elif p.start_time + t.hpa_cpu_initialization_period > now:
                is_unready = (not p.ready) or now < p.ready_transition + t.metrics_window
            else:
                is_unready = (not p.ready) and p.start_time + t.hpa_initial_readiness_delay > p.ready_transition
            if is_unready:
                unready.append(p.name)
                continue
            ready_count += 1
        return ready_count, unready, missing, ignored

    @staticmethod
    def _requests(pods: list[PodInfo]) -> dict[str, int]:
        out = {}
        for p in pods:
            if p.cpu_request is None:
                for c in (p.obj.get("spec") or {}).get("containers") or ():
                    if ((c.get("resources") or {}).get("requests") or {}).get("cpu") is None:
                        raise MetricError(f"missing request for cpu in container {c.get('name', '')} of Pod {p.name}")
            out[p.name] = p.cpu_request or 0
        return out

    @staticmethod
    def _utilization_ratio(metrics: dict[str, int], requests: dict[str, int], target: int) -> tuple[float, int, int]:
        total = req = n = 0
        for name, v in metrics.items():
            r = requests.get(name)
            if r is None:
                continue
            total += v
            req += r
            n += 1
        if req == 0:
            raise MetricError("no metrics returned matched known pods")
        util = (total * 100) // req
        return util / target, util, total // n

    def _within(self, ratio: float) -> bool:
        return abs(1.0 - ratio) <= self.timings.hpa_tolerance

    def _resource_replicas(self, current: int, target: int, pods: list[PodInfo], ns: str,
                           workload: str) -> tuple[int, int, int]:
        metrics = self._metrics(pods, ns, workload)
        if not pods:
            raise MetricError("no pods returned by selector while calculating replica count")
        ready_count, unready, missing, ignored = self._group(pods, metrics)
        for n in ignored + unready:
            metrics.pop(n, None)
        requests = self._requests(pods)
        if not metrics:
            raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
        ratio, util, raw = self._utilization_ratio(metrics, requests, target)
        scale_up_unready = bool(unready) and ratio > 1.0
        if not scale_up_unready and not missing:
            if self._within(ratio):
                return current, util, raw
            return int(math.ceil(ratio * ready_count)), util, raw
        if missing:
            if ratio < 1.0:
                fallback = max(100, target)
                for n in missing:
                    metrics[n] = requests[n] * fallback // 100
            elif ratio > 1.0:
                for n in missing:
                    metrics[n] = 0
        if scale_up_unready:
            for n in unready:
                metrics[n] = 0
        new_ratio, _, _ = self._utilization_ratio(metrics, requests, target)
        if self._within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
            return current, util, raw
        new_replicas = int(math.ceil(new_ratio * len(metrics)))
        if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
            return current, util, raw
        return new_replicas, util, raw

    def _raw_replicas(self, current: int, target: int, pods: list[PodInfo], ns: str, workload: str) -> tuple[int, int]:
        metrics = self._metrics(pods, ns, workload)
        if not pods:
            raise MetricError("no pods returned by selector while calculating replica count")
        ready_count, unready, missing, ignored = self._group(pods, metrics)
        for n in ignored + unready:
            metrics.pop(n, None)
        if not metrics:
            raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
        usage = sum(metrics.values()) // len(metrics)
        ratio = usage / target if target else 0.0
        scale_up_unready = bool(unready) and ratio > 1.0
        if not scale_up_unready and not missing:
            if self._within(ratio):
                return current, usage
            return int(math.ceil(ratio * ready_count)), usage
        if missing:
            for n in missing:
                metrics[n] = target if ratio < 1.0 else 0
        if scale_up_unready:
            for n in unready:
                metrics[n] = 0
        new_ratio = (sum(metrics.values()) // len(metrics)) / target if target else 0.0
        if self._within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
            return current, usage
        new_replicas = int(math.ceil(new_ratio * len(metrics)))
        if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
            return current, usage
        return new_replicas, usage

    # ------------------------------------------------------------------ normalisation (no behavior)
    def _normalize(self, key: tuple, conds: list[dict], current: int, desired: int, min_r: int, max_r: int) -> int:
        stabilized = self._stabilize(key, desired)
        if stabilized != desired:
            self._set_condition(conds, "AbleToScale", "True", "ScaleDownStabilized",
                                "recent recommendations were higher than current one, applying the highest "
                                "recent recommendation")
        else:
            self._set_condition(conds, "AbleToScale", "True", "ReadyForNewScale",
                                "recommended size matches current size")
        limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
        if max_r > limit:
            maximum, cond, reason = limit, "ScaleUpLimit", \
                "the desired replica count is increasing faster than the maximum scale rate"
        else:
            maximum, cond, reason = max_r, "TooManyReplicas", \
                "the desired replica count is more than the maximum replica count"
        if stabilized < min_r:
            result, cond, reason = min_r, "TooFewReplicas", \
                "the desired replica count is less than the minimum replica count"
        elif stabilized > maximum:
            result = maximum
        else:
            result, cond, reason = stabilized, "DesiredWithinRange", "the desired count is within the acceptable range"
        self._set_condition(conds, "ScalingLimited", "False" if result == stabilized else "True", cond, reason)
        return result

    def _stabilize(self, key: tuple, desired: int) -> int:
        """``stabilizeRecommendation``: the highest recommendation of the downscale window."""
        now = self.env.now
        cutoff = now - self.timings.hpa_downscale_stabilization
        recs = self.recommendations.setdefault(key, [])
        best = desired
        old_index = -1
        for i, (rec, ts) in enumerate(recs):
            if ts <= cutoff:  # exactly one window old: out (see module docstring)
                old_index = i
            elif rec > best:
                best = rec
        if old_index >= 0:
            recs[old_index] = [desired, now]
        else:
            recs.append([desired, now])
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
