"""Benchmark the embedded simulator: API-store server-side apply, and a day of an autoscaled fleet.

(a) server-side applies per second into ``ApiStore`` — a mix of ConfigMaps and
    Deployments (first applies create, the second pass re-applies the same
    objects, which must be no-ops), target >= 10,000/s (issue 18);
(b) a cluster of 50 Deployments, each with an HPA, under a noisy daily
    sinusoid load, run for one simulated day with every controller on — wall
    seconds and virtual seconds per wall second, target < 6 s (issue 18).

Usage: ``python benchmarks/bench_sim.py [--objects N] [--deployments N] [--hours H] [--profile]``.
``--profile`` prints the top of a cProfile of case (b).  Prints figures only;
exits non-zero only if it could not run.  The figures also go to ``labkit bench``
(``labkit.app.bench.report``); under ``labkit bench --quick`` the defaults shrink to 2,000
objects and 2 simulated hours, and the day's target (which is for 24 hours) is dropped.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import simpy  # noqa: E402

from labkit.app.bench import Figure, quick, report  # noqa: E402
from labkit.sim import SimCluster  # noqa: E402
from labkit.sim.load import DailySinusoid, LoadModel  # noqa: E402
from labkit.sim.store import ApiStore  # noqa: E402


def configmap(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"cfg-{i}", "namespace": "default", "labels": {"app": f"app-{i % 50}"}},
            "data": {"LOG_LEVEL": "info", "FEATURE_X": "on" if i % 2 else "off", "INDEX": str(i)}}


def deployment(name: str, *, replicas: int | None = 2, cpu: str = "200m") -> dict:
    spec = {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": name, "image": f"registry.local/{name}:1.0",
                                                  "ports": [{"containerPort": 8080}],
                                                  "env": [{"name": "MODE", "value": "prod"}],
                                                  "resources": {"requests": {"cpu": cpu, "memory": "128Mi"}},
                                                  "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                                                     "initialDelaySeconds": 5}}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default",
                                                                        "labels": {"app": name}}, "spec": spec}


def bench_apply(n: int, repeats: int = 3) -> None:
    objs = [deployment(f"app-{i}") if i % 5 == 0 else configmap(i) for i in range(n)]
    n_dep = sum(1 for o in objs if o["kind"] == "Deployment")
    best_create = best_noop = best_cpu = float("inf")
    for _ in range(repeats):
        store = ApiStore(simpy.Environment(), seed=1)
        store.log_status_writes = False
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        for o in objs:
            store.apply(o, field_manager="bench")
        t1 = time.perf_counter()
        best_cpu = min(best_cpu, time.process_time() - c0)
        writes = store.writes
        for o in objs:
            store.apply(o, field_manager="bench")
        t2 = time.perf_counter()
        assert store.writes == writes, "re-applying identical objects must not write"
        best_create, best_noop = min(best_create, t1 - t0), min(best_noop, t2 - t1)
    print(f"(a) server-side apply, {n} objects ({n - n_dep} ConfigMaps, {n_dep} Deployments), best of {repeats}")
    print(f"    create        {best_create:7.3f} s  {n / best_create:9,.0f} applies/s   "
          f"(cpu {best_cpu:.3f} s, {n / best_cpu:,.0f}/s)")
    print(f"    re-apply no-op {best_noop:6.3f} s  {n / best_noop:9,.0f} applies/s")
    report([Figure(f"SSA creates into ApiStore ({n:,} objects, best of {repeats})", n / best_create, "applies/s",
                   target=10_000, op=">=", note=f"{n / best_cpu:,.0f}/s of CPU time"),
            Figure(f"SSA identical re-applies, no writes ({n:,} objects)", n / best_noop, "applies/s")])


def build_fleet(n: int, seed: int = 7) -> SimCluster:
    load = LoadModel(seed=seed)
    for i in range(n):
        # mean 300-700 millicores per service, ±60 % over the day, peaks spread over the afternoon, 10 % noise
        mean = 300 + (i * 37) % 400
        load.set(f"svc-{i:02d}", DailySinusoid(mean, 0.6 * mean, peak_at=(12 + i % 8) * 3600), noise=0.1)
    c = SimCluster(seed=seed, load=load)
    c.store.log_status_writes = False
    for i in range(n):
        name = f"svc-{i:02d}"
        c.apply(deployment(name, replicas=None), field_manager="gitops")
        c.apply({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                 "metadata": {"name": name, "namespace": "default"},
                 "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                          "minReplicas": 1, "maxReplicas": 20,
                          "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                              "type": "Utilization", "averageUtilization": 60}}}]}}, field_manager="gitops")
    return c


def bench_fleet(n: int, hours: float, profile: bool) -> None:
    c = build_fleet(n)
    horizon = hours * 3600
    gc.collect()
    prof = cProfile.Profile() if profile else None
    t0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    c.run(until=horizon)
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    log = c.log
    rescales = len(log.filter(component="horizontal-pod-autoscaler", event="SuccessfulRescale"))
    pods_created = len(log.filter(component="replicaset-controller", event="SuccessfulCreate"))
    pods_now = len(c.store.refs("", "Pod"))
    cs = c.controller_set
    syncs = {type(x).__name__: getattr(x, "syncs", 0) for x in cs}
    print(f"(b) {n} Deployments + HPAs, daily sinusoid load with noise, {hours:g} simulated hours")
    print(f"    wall {wall:7.2f} s   cpu {cpu:7.2f} s   virtual/wall {horizon / wall:9,.0f}x   "
          f"store writes {c.store.writes:,}   event records {len(log):,}")
    print(f"    HPA rescales {rescales:,}   pods created {pods_created:,}   pods at the end {pods_now:,}   "
          f"HPA syncs {syncs['HorizontalPodAutoscalerController']:,}   "
          f"deployment syncs {syncs['DeploymentController']:,}   replicaset syncs {syncs['ReplicaSetController']:,}")
    report([Figure(f"{hours:g} simulated hours, {n} Deployments + HPAs, every controller on", wall, "s",
                   target=6.0 if hours == 24 and n == 50 else None,
                   note=f"cpu {cpu:.2f} s; {horizon / wall:,.0f}x real time")])
    if prof:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())


def calibrate() -> float:
    """CPU seconds of a fixed pure-Python workload (dict/list churn like the simulator's), best of 3.

    On a shared machine the other benchmarks' figures move with the load; this one moves with them,
    so ``figure / calibration`` compares runs taken under different loads.
    """
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        acc = 0
        d: dict = {}
        for i in range(300_000):
            k = i & 1023
            d[k] = {"a": i, "b": [i, k]}
            acc += d[k]["b"][1] + len(d)
        best = min(best, time.process_time() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", type=int, default=2_000 if quick() else 10_000)
    ap.add_argument("--deployments", type=int, default=50)
    ap.add_argument("--hours", type=float, default=2.0 if quick() else 24.0)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--only", choices=["apply", "fleet"])
    args = ap.parse_args()
    cal = calibrate()
    try:
        load = " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        load = "?"
    print(f"calibration: {cal:.3f} s CPU for a fixed pure-Python workload (load average {load})")
    if args.only in (None, "apply"):
        bench_apply(args.objects)
    if args.only in (None, "fleet"):
        bench_fleet(args.deployments, args.hours, args.profile)
    print(f"calibration after: {calibrate():.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
