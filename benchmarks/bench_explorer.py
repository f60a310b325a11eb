"""The live explorers: wall time from a click to the updated view.

Target (issue 16): a click that advances up to 10 simulated minutes updates the view in
under 300 ms (p95); issue 18 asks it of the +10 min click alone, which is its own figure.
For every scenario explorer, this script runs the scenario with the
notebook's defaults, opens its explorer (``labkit.scenarios.explorer.explore``, as the
notebook's last cell does) and plays a fixed session through the real click handlers:
rounds of one scenario control (a commit, a hotfix, a load switch, a release …) followed
by the clock buttons +10 s, +1 min, +10 min.  A click's latency is ``Explorer.latencies``:
the handler (the simulation running its virtual time, the control acting on git or the
cluster) plus the refresh of every panel (plan dry-runs, events, conditions, live state,
owners, timeline).

    .venv/bin/python benchmarks/bench_explorer.py [--rounds 4] [--think 0.5] [--only tour ...]

``--think`` is the pause between two clicks (a person reads the panels before the next
click; 0.5 s is quick).  It matters for one thing only: a commit renders its new revision
with real kustomize (~0.25 s per Kustomization) in a background thread while the
participant reads (``explorer_labs.Prewarm``), and a clock click waits for that render
if it comes sooner.  The script reports the clock clicks with that pause (the target's
figure), every click with it, and the clock clicks back to back (``--think 0``), so the
cost of the render is visible too.  Under ``labkit bench --quick``: 2 rounds, no target.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.app.bench import Figure, quick, report  # noqa: E402

CLOCK = ("+10 s", "+1 min", "+10 min")


def _p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(0.95 * (len(s) - 1)))))
    return s[k]


def build(name: str):
    """(explorer, the controls a session presses in turn) for one scenario, with the notebook's defaults."""
    from labkit.scenarios.explorer import explore

    if name == "tour":
        from labkit.scenarios import tour

        return explore(tour.run_tour()), ["commit", "hotfix", "limit", "revert", "bad", "revert"]
    if name == "promotion":
        from labkit.scenarios import promotion

        return explore(promotion.run_promotion()), ["commit", "promote", "hotfix", "revert"]
    if name == "drift":
        from labkit.scenarios import drift

        return explore(drift.run_drift()), ["limit", "commit-hotfix", "hotfix", "commit"]
    if name.startswith("hpa-conflict"):
        from labkit.scenarios import hpa_conflict

        dialect = name.split(":")[1]
        return explore(hpa_conflict.run_hpa_conflict(dialect=dialect)), ["release", "scale", "drop", "fix"]
    if name == "stateful-edges":
        from labkit.scenarios import stateful_edges

        return explore(stateful_edges.run_stateful_edges()), ["dbs", "grow", "orphan", "grow"]
    if name == "migrations":
        from labkit.scenarios import migrations

        return explore(migrations.run_migrations()), ["patch", "migration", "versioned", "patch"]
    if name == "secrets":
        from labkit.scenarios import secrets

        return explore(secrets.run_secrets(keep=True)), ["seal", "rotate", "plaintext", "reconcile"]
    if name in ("rollback", "push-vs-pull"):
        from labkit.delivery import studies
        from labkit.delivery.stream import StreamConfig
        from labkit.scenarios.explorer import Explorer
        from labkit.scenarios.explorer_delivery import DeliveryDriver

        if name == "rollback":
            params = studies.rollback_params(replicas=3, readiness_delay_s=10.0, poll_interval_s=60.0, ci_runners=4,
                                             ci_load=0.0, push_skip_build=False, human_action_s=40.0,
                                             revert_review_s=0.0)
            study = type("RollbackStudy", (), {"params": params})()
        else:
            study = type("PushVsPullStudy", (), {"config": StreamConfig()})()
        return Explorer(DeliveryDriver.for_study(study)), ["release", "rollback", "hand", "reconcile"]
    raise SystemExit(f"unknown explorer {name!r}")


NAMES = ("tour", "promotion", "drift", "hpa-conflict:flux", "hpa-conflict:argo", "stateful-edges", "migrations",
         "secrets", "rollback", "push-vs-pull")


def session(ex, controls: list[str], rounds: int, think: float) -> list[tuple[str, float]]:
    """Play ``rounds`` of (one control, then each clock button); (button, seconds) per click."""
    out = []
    for r in range(rounds):
        for key in [controls[r % len(controls)], *CLOCK]:
            if think:
                time.sleep(think)
            n = len(ex.latencies)
            ex.click(key)
            assert len(ex.latencies) == n + 1
            out.append((key, ex.latencies[-1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2 if quick() else 4)
    ap.add_argument("--think", type=float, default=0.5)
    ap.add_argument("--only", action="append", default=[])
    args = ap.parse_args()
    names = [n for n in NAMES if not args.only or n in args.only or n.split(":")[0] in args.only]
    clock_paced: list[float] = []
    all_paced: list[float] = []
    clock_b2b: list[float] = []
    ten_min: list[float] = []
    worst = ("", 0.0)
    print(f"{'explorer':<20} {'clicks':>6} {'clock p50':>10} {'clock p95':>10} {'clock max':>10} "
          f"{'control p95':>12} {'b2b clock p95':>14}  (ms; think {args.think:g} s)")
    for name in names:
        t0 = time.perf_counter()
        ex, controls = build(name)
        setup = time.perf_counter() - t0
        paced = session(ex, controls, args.rounds, args.think)
        b2b = session(ex, controls, args.rounds, 0.0)
        clocks = [s for k, s in paced if k in CLOCK]
        ctrls = [s for k, s in paced if k not in CLOCK]
        clocks_b2b = [s for k, s in b2b if k in CLOCK]
        clock_paced += clocks
        ten_min += [s for k, s in paced if k == "+10 min"]
        all_paced += [s for _, s in paced]
        clock_b2b += clocks_b2b
        slow = max(paced, key=lambda x: x[1])
        if slow[1] > worst[1]:
            worst = (f"{name} {slow[0]}", slow[1])
        print(f"{name:<20} {len(paced):>6} {statistics.median(clocks) * 1e3:>10.1f} {_p95(clocks) * 1e3:>10.1f} "
              f"{max(clocks) * 1e3:>10.1f} {_p95(ctrls) * 1e3:>12.1f} {_p95(clocks_b2b) * 1e3:>14.1f}"
              f"  (scenario + explorer {setup:.1f} s; slowest: {slow[0]} {slow[1] * 1e3:.0f} ms)")
    target = None if quick() else 0.300
    report([
        Figure("clock click (+10 s/+1 min/+10 min) -> view updated, p95", _p95(clock_paced) * 1e3, "ms",
               target=None if target is None else target * 1e3, op="<",
               note=f"{len(clock_paced)} clicks over {len(names)} explorers, {args.think:g} s between clicks"),
        Figure("+10 min click -> view updated, p95", _p95(ten_min) * 1e3, "ms",
               target=None if target is None else target * 1e3, op="<",
               note=f"{len(ten_min)} clicks advancing 10 simulated minutes, {args.think:g} s between clicks"),
        Figure("any click (controls too) -> view updated, p95", _p95(all_paced) * 1e3, "ms",
               note=f"{len(all_paced)} clicks; slowest {worst[0]} {worst[1] * 1e3:.0f} ms"),
        Figure("clock click back to back (no pause), p95", _p95(clock_b2b) * 1e3, "ms",
               note="a clock click right after a commit waits for the new revision's kustomize render"),
    ])


if __name__ == "__main__":
    main()
