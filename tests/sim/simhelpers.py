"""Builders and probes shared by the simulator's controller tests.

Tests run with ``Timings.deterministic()`` (no jitter, round numbers) so that
every expected time can be added up by hand from the Kubernetes rules; each test
writes that sum down in a comment.
"""
from __future__ import annotations

from typing import Any, Callable

from labkit.sim import SimCluster
from labkit.sim.load import LoadModel
from labkit.sim.registry import ImageRegistry
from labkit.sim.timings import Timings

EPS = 1e-6  # env.run(until=t) stops *before* the events of time t; look just after them


def make_cluster(*, seed: int = 0, registry: ImageRegistry | None = None, load: LoadModel | None = None,
                 **timing_overrides: Any) -> SimCluster:
    return SimCluster(seed=seed, registry=registry, load=load, timings=Timings.deterministic(**timing_overrides))


def at(c: SimCluster, t: float) -> None:
    """Advance to just after every event of virtual time ``t``."""
    c.run(until=t + EPS)


def deployment(name: str, image: str, replicas: int | None = 3, *, cpu: str | None = "100m",
               probe_delay: float | None = None, strategy: dict | None = None, namespace: str = "default",
               **spec: Any) -> dict:
    container: dict[str, Any] = {"name": name, "image": image}
    if cpu is not None:
        container["resources"] = {"requests": {"cpu": cpu}}
    if probe_delay is not None:
        container["readinessProbe"] = {"httpGet": {"path": "/", "port": 8080}, "initialDelaySeconds": probe_delay}
    body: dict[str, Any] = {"selector": {"matchLabels": {"app": name}},
                            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}
    if replicas is not None:
        body["replicas"] = replicas
    if strategy is not None:
        body["strategy"] = strategy
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": body}


def set_image(obj: dict, image: str) -> dict:
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return obj


def hpa(name: str, target: str, *, min_replicas: int = 1, max_replicas: int = 10, utilization: int = 50,
        behavior: dict | None = None, namespace: str = "default") -> dict:
    spec: dict[str, Any] = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                            "minReplicas": min_replicas, "maxReplicas": max_replicas,
                            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                                "type": "Utilization", "averageUtilization": utilization}}}]}
    if behavior is not None:
        spec["behavior"] = behavior
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def events(c: SimCluster, *, component: str | None = None, event: str | None = None,
           obj: str | None = None) -> list[tuple[float, str, str]]:
    """``(time, reason, message)`` of the matching event-log records."""
    return [(e.time, e.event, e.detail.get("message", "")) for e in c.log.filter(component=component, event=event)
            if obj is None or e.object == obj or e.object.startswith(obj)]


def times(c: SimCluster, **kw: Any) -> list[float]:
    return [t for t, _, _ in events(c, **kw)]


def pods(c: SimCluster, selector: dict[str, str] | None = None, namespace: str = "default") -> list[dict]:
    return [p for p in c.store.refs("", "Pod", namespace, selector)]


def is_ready(pod: dict) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def condition(obj: dict | None, ctype: str) -> dict | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or ():
        if cond.get("type") == ctype:
            return cond
    return None


def on_every_change(c: SimCluster, fn: Callable[[str, dict], None]) -> None:
    """Call ``fn(event_type, obj)`` after every persisted change in the store."""
    c.store.watch_all(fn)
