"""How long each notebook takes: measured headless run times, plus the exercises' estimated minutes.

The run times are *measurements*: ``python -m labkit.workshop.durations`` runs
``labkit run NAME`` for every scenario (each in its own process, one after the
other, as a participant's kernel would) and writes the wall-clock seconds to
``labkit/data/workshop-durations.yaml`` with the machine they were taken on.
The start-here notebook's map and the facilitator guide read that file; the
exercises' minutes are the exercise authors' *estimates* (``Exercise.minutes``)
and are always labelled so.

    python -m labkit.workshop.durations              # every scenario
    python -m labkit.workshop.durations tour drift   # only these (the others are kept)
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from labkit.workshop.yamltext import yaml_dump

__all__ = ["DATA", "load", "measure", "main"]

DATA = Path(__file__).resolve().parent.parent / "data" / "workshop-durations.yaml"


def load(path: Path = DATA) -> dict[str, float]:
    """Scenario name → measured headless run time in seconds (empty when never measured)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    runs = data.get("run_s") or {}
    return {str(k): float(v) for k, v in runs.items() if isinstance(v, (int, float))}


def measured_on(path: Path = DATA) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return dict(data.get("measured_on") or {})


def measure(name: str, *, timeout: float = 3600.0) -> tuple[float, bool]:
    """Wall-clock seconds of ``labkit run NAME`` (a fresh process and kernel), and whether it succeeded."""
    with tempfile.TemporaryDirectory(prefix=f"labkit-duration-{name}-") as out:
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "labkit", "run", name, "--out", out],  # noqa: S603
                              capture_output=True, text=True, timeout=timeout)
        return time.monotonic() - t0, proc.returncode == 0


def main(argv: list[str] | None = None) -> int:
    from labkit.scenarios import spec as sc_mod

    ap = argparse.ArgumentParser(prog="python -m labkit.workshop.durations", description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="scenarios to measure (default: all)")
    ap.add_argument("--out", type=Path, default=DATA, help=f"the YAML to update (default {DATA})")
    args = ap.parse_args(argv)
    names = args.names or sc_mod.names()
    runs = load(args.out)
    failed = []
    loads = []
    for name in names:
        if hasattr(os, "getloadavg"):
            loads.append(os.getloadavg()[0])
        secs, ok = measure(name)
        print(f"{name:<16} {secs:7.1f} s{'' if ok else '  FAILED'}", flush=True)
        if ok:
            runs[name] = round(secs, 1)
        else:
            failed.append(name)
    load_avg = max(loads) if loads else None
    data = {
        "measured_on": {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "python": platform.python_version(),
                        "load_average_1m_max": round(load_avg, 1) if load_avg is not None else None,
                        "how": "wall-clock seconds of `labkit run NAME` (kernel start included), one at a time"},
        "run_s": dict(sorted(runs.items())),
    }
    args.out.write_text("# Measured by `python -m labkit.workshop.durations`; do not edit by hand.\n"
                        + yaml_dump(data, sort_keys=False), encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
