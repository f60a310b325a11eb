"""Benchmark: random commit / live-edit / fault sequences through the Flux dialect, to convergence.

Each case is a ``labkit.faults.soak.SoakCase`` drawn from a seeded generator: a
few ConfigMaps, Deployments, Services and Secrets split between two
Kustomizations; up to six steps of commits (add, modify, remove, move between
the Kustomizations, ``prune: disabled``), live edits by other managers
(kubectl-edit drift, deletes, owner labels stripped, protection added) and
hand-made foreign objects; and up to three fault windows (API 500/503/429/409/
504 with lost responses, slow responses, git outages and corrupt refs,
kustomize timeouts).  ``FluxSoakLab`` plays it against the real Flux
controllers, real git and (by default) the in-process renderer, in virtual
time, then checks every invariant of ``labkit.faults.invariants``.

It prints, over all cases and per fault kind present:

* convergence — virtual seconds from the last change (commit or live edit) until
  every Kustomization had reconciled the head revision after it, and from the
  moment the faults stopped (0 when already in sync);
* reconciles per case (successful + failed), failed reconciles, back-offs
  (``ReconcileError``: API errors outside the stages) and git fetch failures;
* faults injected, invariant violations (must be 0), and wall time per case.

By default both dialects run, one after the other (``--dialect flux|argo`` picks one); with argo the same stories run through the Argo CD dialect
(``labkit.faults.argo.ArgoSoakLab``: two automated Applications with prune,
self-heal and unlimited retries); the columns are then operations per case,
failed operations, operation retries, back-offs (``ReconcileError``) and
ComparisonErrors.

The figures are virtual time and counts from the event log, so they do not
depend on the machine (only the wall time does).  Run:
``.venv/bin/python benchmarks/bench_soak.py [--cases N] [--seed S] [--renderer inline|kustomize]
[--dialect flux|argo|both]``.  Under ``labkit bench`` the figures (violations, target 0;
convergence after faults stop p50/p90; wall per case) go into the one table.
"""
from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.app.bench import Figure, quick, report  # noqa: E402

from labkit.faults.soak import SoakConfig, SoakResult, random_case, run_case  # noqa: E402


def pct(values: list[float], q: float) -> float:
    vals = sorted(v for v in values if not math.isnan(v))
    if not vals:
        return float("nan")
    k = (len(vals) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return vals[lo] + (vals[hi] - vals[lo]) * (k - lo)


def row(label: str, results: list[SoakResult], walls: list[float]) -> str:
    m = [r.metrics for r in results]
    since = [x["since_last_change"] for x in m]
    after = [x["after_faults_stop"] for x in m]
    rec = [x["reconciles"] for x in m]
    return (f"{label:<21} {len(results):>5}  "
            f"{pct(since, .5):>7.1f} {pct(since, .9):>7.1f} {max(since):>7.1f}  "
            f"{pct(after, .5):>7.1f} {pct(after, .9):>7.1f} {max(after):>7.1f}  "
            f"{statistics.mean(rec):>6.1f} {pct(rec, .9):>5.0f}  "
            f"{statistics.mean(x['failed_reconciles'] for x in m):>6.1f} {statistics.mean(x['backoffs'] for x in m):>6.1f} "
            f"{statistics.mean(x['fetch_failures'] for x in m):>6.1f} {statistics.mean(x['faults'] for x in m):>7.1f}  "
            f"{sum(len(r.violations) for r in results):>5}  {statistics.mean(walls) * 1000:>7.0f}")


def argo_row(label: str, results: list[SoakResult], walls: list[float]) -> str:
    m = [r.metrics for r in results]
    since = [x["since_last_change"] for x in m]
    after = [x["after_faults_stop"] for x in m]
    ops = [x["operations"] for x in m]
    return (f"{label:<21} {len(results):>5}  "
            f"{pct(since, .5):>7.1f} {pct(since, .9):>7.1f} {max(since):>7.1f}  "
            f"{pct(after, .5):>7.1f} {pct(after, .9):>7.1f} {max(after):>7.1f}  "
            f"{statistics.mean(ops):>6.1f} {pct(ops, .9):>5.0f}  "
            f"{statistics.mean(x['failed_operations'] for x in m):>6.1f} "
            f"{statistics.mean(x['retries'] for x in m):>6.1f} {statistics.mean(x['backoffs'] for x in m):>6.1f} "
            f"{statistics.mean(x['comparison_errors'] for x in m):>6.1f} {statistics.mean(x['faults'] for x in m):>7.1f}  "
            f"{sum(len(r.violations) for r in results):>5}  {statistics.mean(walls) * 1000:>7.0f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--renderer", choices=("inline", "kustomize"), default="inline")
    ap.add_argument("--dialect", choices=("flux", "argo", "both"), default="both")
    args = ap.parse_args(argv)
    if quick() and args.cases == 120:
        args.cases = 30
    if args.dialect in ("flux", "both"):
        main_flux(args)
    if args.dialect in ("argo", "both"):
        main_argo(args)
    return 0


def figures(dialect: str, results: list[SoakResult], walls: list[float]) -> list[Figure]:
    """The soak run as ``labkit bench`` figures: violations (target 0), convergence, cost per case."""
    after = [r.metrics["after_faults_stop"] for r in results]
    violations = sum(len(r.violations) for r in results)
    n = len(results)
    return [Figure(f"{dialect}: invariant violations over {n} random cases", violations, "", target=0, op="=="),
            Figure(f"{dialect}: converged after faults stop, p50", pct(after, .5), "virtual s"),
            Figure(f"{dialect}: converged after faults stop, p90", pct(after, .9), "virtual s"),
            Figure(f"{dialect}: wall per case", statistics.mean(walls) * 1000, "ms", note=f"{n} cases")]


def main_flux(args: argparse.Namespace) -> int:
    config = SoakConfig(renderer=args.renderer)
    header = (f"bench_soak: {args.cases} random cases, seed {args.seed}, renderer {args.renderer}; "
              f"source interval {config.source_interval}s, Kustomization interval {config.ks_interval}s, "
              f"retryInterval {config.retry_interval}s, max back-off {config.max_retry_delay:g}s")
    columns = (f"{'':<21} {'':>5}  {'since last change (s)':^23}  {'after faults stop (s)':^23}  "
               f"{'reconciles':^12}  {'mean per case':^29}  {'':>5}  {'wall':>7}",
               f"{'cases':<21} {'n':>5}  {'p50':>7} {'p90':>7} {'max':>7}  {'p50':>7} {'p90':>7} {'max':>7}  "
               f"{'mean':>6} {'p90':>5}  {'failed':>6} {'backof':>6} {'gitErr':>6} {'faults':>7}  {'viol':>5}  {'ms/case':>7}")
    return play("flux", args, random_case, lambda case: run_case(case, config), row, header, columns)


def main_argo(args: argparse.Namespace) -> int:
    from labkit.faults.argo import ArgoSoakConfig, random_argo_case, run_argo_case

    config = ArgoSoakConfig()
    header = (f"bench_soak: {args.cases} random cases, seed {args.seed}, dialect argo; timeout.reconciliation "
              f"{config.reconciliation:g}s, retry 5s x2 up to {config.retry_max:g}s (limit {config.retry_limit}), "
              f"self-heal cap {config.self_heal_cap:g}s")
    columns = (f"{'':<21} {'':>5}  {'since last change (s)':^23}  {'after faults stop (s)':^23}  "
               f"{'operations':^12}  {'mean per case':^36}  {'':>5}  {'wall':>7}",
               f"{'cases':<21} {'n':>5}  {'p50':>7} {'p90':>7} {'max':>7}  {'p50':>7} {'p90':>7} {'max':>7}  "
               f"{'mean':>6} {'p90':>5}  {'failed':>6} {'retry':>6} {'backof':>6} {'cmpErr':>6} {'faults':>7}  "
               f"{'viol':>5}  {'ms/case':>7}")
    return play("argo", args, random_argo_case, lambda case: run_argo_case(case, config), argo_row, header, columns)


def play(dialect: str, args: argparse.Namespace, draw: Callable[..., Any], run: Callable[[Any], SoakResult],
         fmt: Callable[[str, list[SoakResult], list[float]], str], header: str, columns: tuple[str, str]) -> int:
    """Draw ``args.cases`` seeded cases, run each, print the table (all, no faults, per fault kind), report."""
    rng = random.Random(args.seed)
    results: list[SoakResult] = []
    walls: list[float] = []
    t0 = time.perf_counter()
    for i in range(args.cases):
        case = draw(rng, seed=args.seed * 100_000 + i)
        start = time.perf_counter()
        results.append(run(case))
        walls.append(time.perf_counter() - start)
    total = time.perf_counter() - t0
    print(header)
    print(columns[0])
    print(columns[1])
    print(fmt("all", results, walls))
    no_faults = [(r, w) for r, w in zip(results, walls) if not r.case.faults]
    if no_faults:
        print(fmt("no faults", [r for r, _ in no_faults], [w for _, w in no_faults]))
    by_kind: dict[str, list[tuple[SoakResult, float]]] = defaultdict(list)
    for r, w in zip(results, walls):
        for kind in sorted({f.kind for f in r.case.faults}):
            by_kind[kind].append((r, w))
    for kind in sorted(by_kind):
        pairs = by_kind[kind]
        print(fmt(f"with {kind}", [r for r, _ in pairs], [w for _, w in pairs]))
    bad = [r for r in results if r.violations]
    print(f"total wall {total:.1f} s ({args.cases / total:.1f} cases/s); invariant violations in {len(bad)} case(s)")
    for r in bad[:5]:
        print("  VIOLATION", r.case.seed, "; ".join(r.violations[:3]))
    report(figures(dialect, results, walls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
