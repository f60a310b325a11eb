"""Delivery models: Monte Carlo rollback runs and 90 days x 50 services of change stream.

Targets (issue 6): 1,000 rollback runs in under 30 s, and 90 days x 50 services through both
models in under 30 s, on the project's 2-core machines. Prints wall times (best of ``REPEATS``)
and rates; never fails because something was slow.

    .venv/bin/python benchmarks/bench_delivery.py [--runs 1000] [--repeats 1] [--services 50] [--days 90]

The figures also go to ``labkit bench`` (``labkit.app.bench.report``); under ``labkit bench
--quick`` the defaults shrink to 100 runs and 30 days x 10 services, without targets.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.app.bench import Figure, quick, report  # noqa: E402
from labkit.delivery.changes import TeamConfig, generate  # noqa: E402
from labkit.delivery.fixture import ServiceFixture, ServiceSpec  # noqa: E402
from labkit.delivery.rollback import RollbackParams, default_workers, monte_carlo  # noqa: E402
from labkit.delivery.rollout import RolloutModel  # noqa: E402
from labkit.delivery.stream import StreamConfig, run_stream  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and its (finished) worker processes."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


CPU: dict[str, float] = {}


def best(fn, repeats: int, key: str = ""):
    """Best wall time of ``repeats`` calls (and the CPU seconds of the best one under ``CPU[key]``)."""
    times, out = [], None
    for _ in range(repeats):
        c0, t0 = cpu_seconds(), time.perf_counter()
        out = fn()
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        if not times or wall < min(times):
            CPU[key] = cpu
        times.append(wall)
    return min(times), out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100 if quick() else 1000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--services", type=int, default=10 if quick() else 50)
    ap.add_argument("--days", type=int, default=30 if quick() else 90)
    args = ap.parse_args()
    figures: list[Figure] = []
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} (other work skews wall times)")

    t, _ = best(lambda: ServiceFixture.get(ServiceSpec()), 1)
    print(f"fixture (real git: 3 commits incl. revert; real kustomize: 3 renders): {t:.2f} s, once per service shape")

    runs = args.runs
    workers = default_workers(runs)
    for model, params in (("pull", RollbackParams(webhook=True)), ("push", RollbackParams())):
        t, df = best(lambda: monte_carlo(model, range(runs), params), args.repeats, model)
        med = df["restore_s"].median()
        cpu = CPU[model]
        print(f"rollback {model:4s}: {runs} runs in {t:6.2f} s wall ({workers} workers), {cpu:6.2f} CPU s "
              f"= {1000 * cpu / runs:5.1f} CPU ms per run -> {cpu / workers:6.2f} s on {workers} idle cores; "
              f"virtual median restore {med:7.1f} s")
        figures.append(Figure(f"{runs:,} rollback runs, {model} model", t, "s", target=30.0 if runs == 1000 else None,
                              note=f"{workers} workers, {cpu:.1f} CPU s; virtual median restore {med:.0f} s"))

    team = TeamConfig(services=args.services, days=args.days)
    t_gen, stream = best(lambda: generate(team, seed=0), 1)
    cfg = StreamConfig()
    t_cal, _ = best(lambda: (RolloutModel.calibrate(cfg.service, samples=cfg.calibration_samples, seed=0),
                             RolloutModel.calibrate(cfg.service, samples=cfg.calibration_samples, seed=0, cached=True)), 1)
    print(f"change stream: {len(stream)} PRs over {args.days} days x {args.services} services generated in {t_gen:.2f} s; "
          f"rollout calibration ({2 * cfg.calibration_samples} simulator rollouts) {t_cal:.2f} s")
    total = t_gen + t_cal
    cpu_total = 0.0
    for model in ("push", "pull"):
        t, res = best(lambda: run_stream(stream, model, cfg, seed=0), args.repeats, model)
        total += t
        cpu_total += CPU[model]
        k = res.keys
        print(f"stream {model:4s}: {t:6.2f} s wall, {CPU[model]:6.2f} CPU s, {res.stats['events']} events, "
              f"{k.deployments} deployments ({k.deployments / t:7.0f}/s), {k.incidents} incidents")
    print(f"{args.days} days x {args.services} services through both models, end to end: {total:.2f} s wall "
          f"(generation + calibration + both models; the models alone {cpu_total:.2f} CPU s)")
    full = (args.days, args.services) == (90, 50)
    figures.append(Figure(f"{args.days} days x {args.services} services, both models, end to end", total, "s",
                          target=30.0 if full else None,
                          note=f"{len(stream)} PRs; models alone {cpu_total:.1f} CPU s"))
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
