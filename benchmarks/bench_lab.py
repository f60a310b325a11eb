"""`labkit run --all` (what `make lab` runs): every scenario notebook headless, N at a time.

Target (issue 18): `labkit run --all` under 40 s on two cores with the default `--jobs`
(the number of cores).  The serial run (`--jobs 1`, each notebook after the other) is
reported next to it, without a target, so the gain is read on the same machine under the
same load.  Each run is `python -m labkit run --all --jobs N --out <tmp>` in a fresh
process, as a user types it; the figure is its wall time, the note says how many
scenarios succeeded.  The serial run's note also gives the CPU seconds the run and its
kernels used: on two cores no order gets the parallel run below half of that.  (The
parallel run's workers are children of the forkserver, which reaps them, so their CPU
time does not reach this process and is not reported.)  A missed target is a figure, not
a failure.

    .venv/bin/python benchmarks/bench_lab.py [--jobs N]... [--no-serial]

Under `labkit bench --quick` only the parallel run is made, without a target.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labkit.app.bench import Figure, quick, report  # noqa: E402

TARGET_S = 40.0


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_all(jobs: int) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds and the summary line of one `labkit run --all --jobs jobs`."""
    with tempfile.TemporaryDirectory(prefix="labkit-bench-lab-") as out:
        cpu0, t0 = children_cpu(), time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "labkit", "run", "--all", "--jobs", str(jobs), "--out", out],
                              cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    summary = next((ln for ln in proc.stdout.splitlines() if "scenarios succeeded" in ln), "").split(";")[0]
    if proc.returncode not in (0, 1) or not summary:
        print(proc.stderr[-2000:], file=sys.stderr)
        summary = f"exit {proc.returncode}"
    return wall, cpu, summary


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, action="append", help="parallel runs to time (default: the number of cores)")
    ap.add_argument("--no-serial", action="store_true", help="skip the serial (--jobs 1) run")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    print(f"machine: {cores} cores; load average {os.getloadavg()[0]:.2f} (other work skews wall times)")
    figures = []
    for jobs in args.jobs or [cores]:
        wall, _, summary = run_all(jobs)
        print(f"labkit run --all --jobs {jobs}: {wall:.1f} s wall; {summary}")
        target = TARGET_S if (jobs == cores == 2 and not quick()) else None
        figures.append(Figure(f"labkit run --all wall, {jobs} jobs", wall, "s", target=target, note=summary))
    if not (args.no_serial or quick()):
        wall, cpu, summary = run_all(1)
        print(f"labkit run --all --jobs 1: {wall:.1f} s wall, {cpu:.1f} CPU s; {summary}")
        figures.append(Figure("labkit run --all wall, serial (1 job)", wall, "s",
                              note=f"{summary}; {cpu:.0f} CPU s (run and kernels)"))
    report(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
