"""The fleet scenario (one ApplicationSet over N services) under a steady 10 % injected fault rate.

Every API fault kind at the Cluster seam (500, 503, 429 with Retry-After 2 s,
409, 504 with the write done and the answer lost, 1 s slow responses) and both
git fault kinds (unreachable, corrupt ref) fire at a combined 10 % per call
(``labkit.faults.argo.fleet_fault_plan``), for the whole run.  The figures:
virtual seconds until every Application completed a sync of head and every
object is live as git has it, the same without faults, the extra time, wall
seconds of both runs, faults injected, operations and retries, objects lost or
wrongly deleted (must be 0), and statuses in sync after the faults stop.  It
also prints when every object was first live as git has it: under a steady
fault rate that comes well before every operation has *succeeded*, because one
failed call fails a whole attempt and the retry back-off reaches its 3 m cap.

    .venv/bin/python benchmarks/bench_fleet_faults.py [--services 200] [--rate 0.1] [--seed 0]
"""
from __future__ import annotations

import argparse
import json

from labkit.app.bench import Figure, quick, report
from labkit.faults.argo import run_fleet_under_faults


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=50 if quick() else 200)
    ap.add_argument("--rate", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    calm = run_fleet_under_faults(args.services, 0.0, seed=args.seed)
    stormy = run_fleet_under_faults(args.services, args.rate, seed=args.seed)
    out = {
        "services": args.services,
        "fault_rate": args.rate,
        "converged_virtual_s_no_faults": calm.converged_at,
        "converged_virtual_s_with_faults": stormy.converged_at,
        "extra_virtual_s": None if None in (calm.converged_at, stormy.converged_at)
        else stormy.converged_at - calm.converged_at,
        "objects_live_as_git_virtual_s_no_faults": calm.objects_converged_at,
        "objects_live_as_git_virtual_s_with_faults": stormy.objects_converged_at,
        "wall_s_no_faults": round(calm.wall_s, 2),
        "wall_s_with_faults": round(stormy.wall_s, 2),
        "extra_wall_s": round(stormy.wall_s - calm.wall_s, 2),
        "faults_injected": stormy.faults,
        "faults_by_kind": stormy.faults_by_kind,
        "operations": stormy.operations,
        "operation_retries": stormy.retries,
        "objects_lost": len(stormy.lost),
        "objects_wrongly_deleted": len(stormy.wrongly_deleted),
        "statuses_in_sync_after_faults_stop": stormy.statuses_in_sync,
        "ok": calm.ok and stormy.ok,
    }
    print(json.dumps(out, indent=2))
    extra = out["extra_virtual_s"]
    report([
        Figure(f"fleet {args.services} services, {args.rate:.0%} faults: objects lost", len(stormy.lost), "",
               target=0, op="=="),
        Figure(f"fleet {args.services} services, {args.rate:.0%} faults: objects wrongly deleted",
               len(stormy.wrongly_deleted), "", target=0, op="=="),
        Figure(f"fleet {args.services} services, {args.rate:.0%} faults: extra time to converge",
               extra if extra is not None else float("nan"), "virtual s",
               note=f"{calm.converged_at} s without faults; {stormy.faults} faults injected"),
        Figure(f"fleet {args.services} services, {args.rate:.0%} faults: wall, with faults", stormy.wall_s, "s",
               note=f"{calm.wall_s:.1f} s without faults"),
    ])


if __name__ == "__main__":
    main()
