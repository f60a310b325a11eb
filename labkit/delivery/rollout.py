"""Rollout durations measured in the simulator, for models that cannot afford one per deploy.

Ninety days of fifty services is thousands of deployments per model.  Running
the simulator's Deployment controller and kubelet for each one would take
minutes, and every rollout of the same Deployment shape behaves the same way up
to its random draws.  So the change-stream model (``labkit.delivery.stream``)
does what a performance engineer does with an expensive component: it
*measures* it.  ``RolloutModel.calibrate`` runs ``samples`` real rollouts in
the embedded simulator — a fresh ``SimCluster`` per sample, the service's
Deployment rolled from one image to the next, timed from the apply to the moment
its kstatus is Current (observed through the cluster's watch, so no polling
error) — and keeps the measured durations.  ``draw`` resamples them (a
bootstrap), so the stream model's rollouts have exactly the simulator's
distribution: surge steps, image pulls, readiness probe delays and their jitter.

Calibrations are cached per (service shape, simulator timings, samples, seed).
"""
from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field
from typing import Any

from labkit.core import clock as clocks
from labkit.delivery.fixture import ServiceSpec, manifests
from labkit.core.health import kstatus

_CACHE: dict[tuple[Any, ...], "RolloutModel"] = {}


def _deployment(spec: ServiceSpec, tag: str) -> dict:
    import yaml

    dep = yaml.safe_load(manifests(spec)[f"{spec.path}/deployment.yaml"])
    dep["metadata"]["namespace"] = spec.name
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = f"{spec.image}:{tag}"
    return dep


def measure_rollout(spec: ServiceSpec, seed: int, sim_timings: Any = None, *, cached: bool = False) -> float:
    """One rollout in a fresh simulator: seconds from applying a new image to the Deployment being Current.

    ``cached``: the node already has the new image (a rollback to a release it ran before).
    """
    from labkit.sim import SimCluster
    from labkit.sim.registry import ImageRegistry

    registry = ImageRegistry()
    registry.add(spec.image, ["r1", "r2"])
    cluster = SimCluster(seed=seed, registry=registry, timings=sim_timings)
    env = cluster.env
    kubelet = getattr(cluster, "kubelet", None)
    if cached and kubelet is not None and isinstance(getattr(kubelet, "images", None), dict):
        kubelet.images[f"{spec.image}:r2"] = 0.0
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.name}}, field_manager="calibrate")
    cluster.apply(_deployment(spec, "r1"), field_manager="calibrate")
    cluster.run(until=600)
    done = env.event()
    t0 = env.now

    def on_change(event_type: str, obj: dict) -> None:
        if done.triggered or obj["metadata"].get("name") != spec.name:
            return
        if obj["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":r2") and kstatus(obj).status == "Current":
            done.succeed(env.now - t0)

    cluster.watch("apps/v1", "Deployment", on_change)
    cluster.apply(_deployment(spec, "r2"), field_manager="calibrate")
    cluster.run(until=simpy_any(env, done, t0 + 3600))
    if not done.triggered:
        raise RuntimeError(f"rollout of {spec.name} did not complete within an hour in the simulator")
    return float(done.value)


def simpy_any(env: Any, event: Any, until: float) -> Any:
    import simpy

    return simpy.AnyOf(env, [event, env.timeout(until - env.now)])


@dataclass
class RolloutModel:
    """Measured rollout durations of one Deployment shape; ``draw`` bootstraps them."""

    spec: ServiceSpec
    durations: list[float] = field(default_factory=list)
    cached: bool = False

    @classmethod
    def calibrate(cls, spec: ServiceSpec | None = None, *, samples: int = 30, seed: int = 0,
                  sim_timings: Any = None, cached: bool = False) -> "RolloutModel":
        """Measure ``samples`` rollouts (new image; ``cached``: an image the node already has)."""
        spec = spec or ServiceSpec()
        key = (spec, repr(sim_timings), samples, seed, cached)
        hit = _CACHE.get(key)
        if hit is None:
            base = clocks.rng_for(seed, f"rollout-calibration:{cached}")
            seeds = [base.randrange(2**31) for _ in range(samples)]
            hit = _CACHE[key] = cls(spec, [measure_rollout(spec, s, sim_timings, cached=cached) for s in seeds], cached)
        return hit

    def draw(self, rng: random.Random) -> float:
        return self.durations[rng.randrange(len(self.durations))]

    @property
    def median(self) -> float:
        return statistics.median(self.durations)
