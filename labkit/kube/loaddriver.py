"""``LoadDriver``: the simulator's load model, played on a real cluster through KWOK's CPU usage.

On the embedded simulator the HorizontalPodAutoscaler reads CPU usage from
``labkit.sim.load.LoadModel``: a workload's offered demand at time ``t`` is shared
equally among its *ready* pods (``usage per pod = demand(t) / ready pods``), so scaling
out lowers every pod's usage — the feedback loop the HPA's algorithm assumes.  A real
HPA reads ``metrics.k8s.io`` from metrics-server, which on the local control plane
scrapes KWOK, and KWOK reports each pod's CPU from the pod's own annotation
``kwok.x-k8s.io/usage-cpu`` (``labkit.kube.stages``).  Nothing shares anything there: a
constant annotation would scale a workload straight to ``maxReplicas``.

This driver closes that gap so that a scenario's load spike means the same thing on
both: every ``period`` seconds of the lab's (wall-time) clock, for each workload the
model knows (``namespace/name`` of a Deployment), it reads the Deployment's selector,
lists its pods, and sets on every ready pod the annotation to
``int(model.usage_per_pod(ns, name, t, ready))`` millicores — exactly the value the
simulator's HPA would use (it truncates the same way).  Pods that run but are not ready
get no traffic in the model (0 m): one that still carries a non-zero value from when it
was ready is set to ``0m``; one that never had the annotation is left alone (KWOK's
default is 1m).  Terminating pods are left alone.  ``t`` is the lab's clock
(``env.now``), i.e. scenario-relative time, the same axis the model's profiles use.

Writes are few on purpose — the API server is shared, and every write is a watch event
for the cluster's controllers: a pod is only written when its current annotation differs
from the value it should have (read from the list just made, so nothing is cached that
could go stale), as a server-side apply of just that annotation with the field manager
``labkit-load`` (``force``: the annotation is the driver's alone).  The driver never
crashes the lab: a pod that disappeared between the list and the write (NotFound, or the
API server refusing to create a Pod from an annotation-only apply), a Deployment not
created yet, or any other ``ApiError`` is counted and logged, and the next tick tries
again.

It talks to the cluster only through the ``Cluster`` seam, so given a lab's
``NamespacedCluster`` (``labkit.scenarios.isolation``) the model's ``shop/web`` resolves to
the run's prefixed namespace like every other request of the lab.

How fast the HPA sees a change (measured on the local control plane, metrics-server
``--metric-resolution=10s``): KWOK derives a pod's cumulative CPU counter from the
annotation's *current* value, so the rate metrics-server computes between two scrapes is
the new value as soon as one scrape happened after the write — a changed annotation shows
in ``metrics.k8s.io`` within one resolution (observed 6 s for a write 4 s after a scrape;
never mixed with the old rate).  A *new* pod needs two scrapes before it has any metric at
all: 10–20 s after it is Ready (observed 21 and 31 s after the deployment).  The
controller manager then syncs the HPA within 5 s, and this driver adds up to one
``period``.  The simulator models the metrics pipeline with a 15 s window, so a reaction
takes a similar time on both — not the same one.

Every tick that wrote something records ``LoadApplied`` (component ``load-driver``) in the
event log given, with the per-pod value, ready pods and writes, per workload; failures are
``LoadWriteFailed`` with the API's message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from labkit.core.errors import ApiError
from labkit.core.events import EventLog, object_key

__all__ = ["LoadDriver", "FIELD_MANAGER", "USAGE_CPU_ANNOTATION", "pod_is_ready", "selector_matches",
           "format_millicores"]

FIELD_MANAGER = "labkit-load"
#: KWOK's per-pod CPU usage annotation (labkit.kube.stages.USAGE_CPU_ANNOTATION; repeated so that this
#: module does not import the control-plane side of labkit.kube)
USAGE_CPU_ANNOTATION = "kwok.x-k8s.io/usage-cpu"
COMPONENT = "load-driver"


def format_millicores(millicores: float) -> str:
    """``123.9`` → ``"123m"``: whole millicores, truncated as the simulator's HPA does."""
    return f"{max(0, int(millicores))}m"


def pod_is_ready(pod: dict[str, Any]) -> bool:
    """Running, ``Ready=True`` and not terminating: a pod the load balancer sends traffic to."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """A ``LabelSelector`` (``matchLabels`` and ``matchExpressions``) against a label set; empty matches nothing."""
    if not selector:
        return False
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


@dataclass
class TickReport:
    """What one pass over one workload did (returned by ``LoadDriver.tick``; tests read it)."""

    workload: str
    demand: float = 0.0
    ready: int = 0
    value: str | None = None  # the per-ready-pod annotation value
    writes: int = 0
    errors: list[str] = field(default_factory=list)


class LoadDriver:
    """Set ``kwok.x-k8s.io/usage-cpu`` on a workload's pods from a ``LoadModel`` (see module docstring).

    ``cluster`` is any ``Cluster`` (a lab's ``NamespacedCluster`` on a real cluster), ``model``
    a ``labkit.sim.load.LoadModel`` whose workloads are ``namespace/name`` of Deployments,
    ``env`` the lab's clock (its ``now`` is the model's ``t``).  ``start()`` runs it as a
    SimPy process every ``period`` seconds; ``tick()`` is one pass, callable directly.
    """

    def __init__(self, cluster: Any, model: Any, env: Any, *, period: float = 2.0, log: EventLog | None = None,
                 api_version: str = "apps/v1", kind: str = "Deployment", field_manager: str = FIELD_MANAGER):
        if period <= 0:
            from labkit.core.errors import LabkitError

            raise LabkitError(f"the load driver's period must be positive, got {period}", field="period")
        self.cluster = cluster
        self.model = model
        self.env = env
        self.period = float(period)
        self.log = log
        self.api_version, self.kind = api_version, kind
        self.field_manager = field_manager
        self.writes = 0
        self.errors = 0
        self.ticks = 0
        self._stopped = False
        self._process: Any = None

    # ------------------------------------------------------------------ one pass

    def tick(self) -> list[TickReport]:
        """One pass over every workload of the model at ``env.now``; never raises an ``ApiError``."""
        self.ticks += 1
        reports = []
        for workload in self.model.workloads():
            namespace, name = workload.split("/", 1)
            reports.append(self._drive(namespace, name))
        return reports

    def _drive(self, namespace: str, name: str) -> TickReport:
        report = TickReport(f"{namespace}/{name}")
        try:
            owner = self.cluster.get(self.api_version, self.kind, name, namespace)
        except ApiError as err:
            return self._failed(report, namespace, name, err)
        if owner is None:
            return report  # not created yet (GitOps has not applied it): nothing to drive
        selector = (owner.get("spec") or {}).get("selector") or {}
        try:
            pods = self.cluster.list("v1", "Pod", namespace, selector.get("matchLabels") or None)
        except ApiError as err:
            return self._failed(report, namespace, name, err)
        pods = [p for p in pods if selector_matches(selector, (p.get("metadata") or {}).get("labels"))]
        ready = [p for p in pods if pod_is_ready(p)]
        report.ready = len(ready)
        report.demand = self.model.demand(namespace, name, self.env.now)
        value = format_millicores(self.model.usage_per_pod(namespace, name, self.env.now, len(ready)))
        report.value = value
        zero = format_millicores(0)
        for pod in pods:
            md = pod.get("metadata") or {}
            if md.get("deletionTimestamp"):
                continue
            current = (md.get("annotations") or {}).get(USAGE_CPU_ANNOTATION)
            if pod_is_ready(pod):
                want = value
            elif (pod.get("status") or {}).get("phase") == "Running" and current not in (None, zero):
                want = zero  # running, not ready: no traffic (the model gives it 0 m)
            else:
                continue
            if current == want:
                continue
            try:
                self.cluster.apply({"apiVersion": "v1", "kind": "Pod",
                                    "metadata": {"name": md["name"], "namespace": namespace,
                                                 "annotations": {USAGE_CPU_ANNOTATION: want}}},
                                   field_manager=self.field_manager, force=True)
            except ApiError as err:
                # NotFound, or a 422 when the pod went away and the apply would have created it: next tick
                report.errors.append(f"Pod/{md['name']}: {err.reason}: {err.message}")
                self.errors += 1
                continue
            report.writes += 1
            self.writes += 1
        if self.log is not None and report.writes:
            self.log.record(COMPONENT, "LoadApplied", object_key(self.kind, namespace, name),
                            detail={"demand": report.demand, "ready": report.ready, "per_pod": value,
                                    "writes": report.writes})
        if self.log is not None and report.errors:
            self.log.record(COMPONENT, "LoadWriteFailed", object_key(self.kind, namespace, name),
                            detail={"errors": list(report.errors)})
        return report

    def _failed(self, report: TickReport, namespace: str, name: str, err: ApiError) -> TickReport:
        self.errors += 1
        report.errors.append(f"{err.reason}: {err.message}")
        if self.log is not None:
            self.log.record(COMPONENT, "LoadWriteFailed", object_key(self.kind, namespace, name),
                            detail={"errors": list(report.errors)})
        return report

    # ------------------------------------------------------------------ as a process on the lab's clock

    def start(self) -> "LoadDriver":
        """Run ``tick`` now and every ``period`` seconds of ``env`` until ``stop``."""
        if self._process is None:
            self._process = self.env.process(self._loop())
        return self

    def stop(self) -> None:
        self._stopped = True

    def _loop(self) -> Iterator[Any]:
        while not self._stopped:
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - a transport hiccup outside ApiError: retry next tick
                self.errors += 1
                if self.log is not None:
                    self.log.record(COMPONENT, "LoadWriteFailed", "", detail={"errors": [repr(exc)]})
            yield self.env.timeout(self.period)
