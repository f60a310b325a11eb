"""The benchmark contract and ``labkit bench``: every ``benchmarks/bench_*.py`` in one table.

Why a contract at all
---------------------
The benchmark scripts are plain programs a person runs and reads (``python
benchmarks/bench_engine.py``); each prints its own, differently shaped report.  To
answer "where do we stand against every performance target of the project" in one
go, ``labkit bench`` runs each script in its own process (so one benchmark's heap,
threads, caches or crash never touch the next one) and needs the *figures* back in a
common shape.  The contract is deliberately tiny, one call at the end of a script::

    from labkit.app.bench import Figure, report

    report([Figure("first apply, 1,000 objects", wall, "s", target=5.0, op="<"),
            Figure("writes during the no-op resync", writes, "", target=0, op="==")])

``report`` prints the figures as plain lines (so a standalone run shows them too) and,
when the script runs under ``labkit bench`` (``$LABKIT_BENCH_OUT`` names a file),
appends them there as JSON lines.  A script whose prerequisites are missing calls
``skip("why")``, which records the reason and exits 0.  ``quick()`` tells a script
that ``labkit bench --quick`` asked for reduced sizes (``$LABKIT_BENCH_QUICK=1``); a
quick figure is not the issue's figure, so scripts drop its target then.

A script that does not call ``report`` still runs; it shows as one row, "ran, see
output", with its exit status and the path of its captured output.

What a figure carries
---------------------
Name, value, unit, and optionally a target with its comparison (``value < target``
and so on): the status is then *met* or *missed*, else *no target*.  A missed target
is a reported figure, not a failure: only a script that crashes (non-zero exit, or
killed by the time limit) makes ``labkit bench`` exit non-zero.  Every figure also
records the 1-minute load average at the moment it was made, because the project's
machines are shared and wall times move with the load.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, NoReturn, Sequence

ENV_OUT = "LABKIT_BENCH_OUT"
ENV_QUICK = "LABKIT_BENCH_QUICK"
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
    "==": lambda v, t: v == t,
}

MET, MISSED, NO_TARGET, NO_VALUE = "met", "missed", "no target", "no value"


def load_average() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


@dataclass
class Figure:
    """One measured figure of a benchmark (see module docstring)."""

    name: str
    value: float | None
    unit: str = ""
    target: float | None = None
    op: str = "<"
    note: str = ""
    load: float | None = field(default_factory=load_average)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"figure {self.name!r}: comparison {self.op!r} is not one of {', '.join(OPS)}")
        if self.value is not None:
            self.value = float(self.value)
        if self.target is not None:
            self.target = float(self.target)

    @property
    def status(self) -> str:
        if self.target is None:
            return NO_TARGET
        if self.value is None or math.isnan(self.value):
            return NO_VALUE
        return MET if OPS[self.op](self.value, self.target) else MISSED

    def target_text(self) -> str:
        if self.target is None:
            return ""
        return f"{self.op} {format_value(self.target)}{' ' + self.unit if self.unit else ''}"

    def value_text(self) -> str:
        if self.value is None:
            return "-"
        return f"{format_value(self.value)}{' ' + self.unit if self.unit else ''}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Figure":
        known = {k: raw[k] for k in ("name", "value", "unit", "target", "op", "note", "load") if k in raw}
        return cls(**known)


def format_value(v: float) -> str:
    """A figure's value as a person reads it: thousands separators, a few significant digits."""
    if math.isnan(v):
        return "nan"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 0.1:
        return f"{v:.2f}"
    return f"{v:.3f}"


# ---------------------------------------------------------------------------- the script side

def quick() -> bool:
    """Whether ``labkit bench --quick`` asked for reduced sizes."""
    return os.environ.get(ENV_QUICK, "") not in ("", "0")


def _emit(record: dict[str, Any]) -> None:
    path = os.environ.get(ENV_OUT)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def report(figures: Iterable[Figure], *, stream: IO[str] | None = None) -> list[Figure]:
    """Print ``figures`` and hand them to ``labkit bench`` when it runs this script.

    May be called more than once; the figures accumulate.
    """
    figures = list(figures)
    out = stream or sys.stdout
    for f in figures:
        target = f"  target {f.target_text()}: {f.status}" if f.target is not None else ""
        note = f"  ({f.note})" if f.note else ""
        load = f"  [load {f.load:.2f}]" if f.load is not None else ""
        print(f"figure: {f.name} = {f.value_text()}{target}{load}{note}", file=out)
        _emit({"figure": f.to_dict()})
    out.flush()
    return figures


def skip(reason: str, *, stream: IO[str] | None = None) -> NoReturn:
    """Record that this benchmark cannot run here (``reason`` says why and how to fix it); exit 0."""
    print(f"skipped: {reason}", file=stream or sys.stdout)
    _emit({"skipped": reason})
    sys.exit(0)


# ---------------------------------------------------------------------------- the runner side

OK, SKIPPED, RAN, CRASHED, TIMEOUT = "ok", "skipped", "ran", "crashed", "timeout"


@dataclass
class ScriptResult:
    """What running one benchmark script gave."""

    script: str
    path: str
    status: str  # ok | skipped | ran (no figures reported) | crashed | timeout
    exit_code: int | None
    seconds: float
    figures: list[Figure] = field(default_factory=list)
    reason: str = ""
    log: str = ""
    load: float | None = None

    @property
    def failed(self) -> bool:
        return self.status in (CRASHED, TIMEOUT)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["figures"] = [f.to_dict() for f in self.figures]
        return out


def script_name(path: Path) -> str:
    """``benchmarks/bench_engine.py`` -> ``engine``."""
    stem = path.stem
    return stem[len("bench_"):] if stem.startswith("bench_") else stem


def discover(directory: Path, only: Sequence[str] = ()) -> list[Path]:
    """The ``bench_*.py`` scripts of ``directory``, sorted; ``only`` keeps the named ones.

    A name in ``only`` may be ``engine``, ``bench_engine`` or ``bench_engine.py``;
    an unknown name raises ``LabkitError`` listing the known ones.
    """
    from labkit.core.errors import LabkitError

    if not directory.is_dir():
        raise LabkitError("no benchmarks folder (set LABKIT_HOME to the labkit checkout)", file=str(directory))
    scripts = sorted(p for p in directory.glob("bench_*.py") if p.is_file())
    if not only:
        return scripts
    by_name = {script_name(p): p for p in scripts}
    chosen = []
    for raw in only:
        key = script_name(Path(raw))
        if key not in by_name:
            raise LabkitError(f"no benchmark {raw!r}; known: {', '.join(by_name) or '(none)'}", field="--only")
        if by_name[key] not in chosen:
            chosen.append(by_name[key])
    return chosen


def _read_records(path: Path) -> tuple[list[Figure], str | None, list[str]]:
    """Figures, skip reason and unreadable lines from a script's ``$LABKIT_BENCH_OUT`` file."""
    figures: list[Figure] = []
    skipped: str | None = None
    bad: list[str] = []
    if not path.exists():
        return figures, skipped, bad
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if "figure" in rec:
                figures.append(Figure.from_dict(rec["figure"]))
            elif "skipped" in rec:
                skipped = str(rec["skipped"])
            else:
                bad.append(line)
        except (ValueError, TypeError) as err:
            bad.append(f"{line[:80]} ({err})")
    return figures, skipped, bad


def _tail(text: str, limit: int = 300) -> str:
    """The line that says why a script stopped: the exception after its last traceback, else its last line."""
    rows = [r for r in text.splitlines() if r.strip()]
    starts = [i for i, r in enumerate(rows) if r.startswith("Traceback (most recent call last)")]
    if starts:
        for r in rows[starts[-1] + 1:]:
            if not r[0].isspace() and r.strip().strip("^~") != "":
                return r[:limit]
    return rows[-1][:limit] if rows else "(no output)"


def run_script(
    path: Path,
    *,
    quick_mode: bool = False,
    timeout: float | None = None,
    log_dir: Path,
    echo: IO[str] | None = None,
    python: str | None = None,
    cwd: Path | None = None,
) -> ScriptResult:
    """Run one benchmark script in its own process and collect what it reported.

    Its stdout and stderr go to ``log_dir/<name>.log`` (and, line by line, to
    ``echo`` when given).  On ``timeout`` the script gets SIGTERM (so its
    ``finally`` blocks run: a control plane is deleted), then SIGKILL 60 s later.
    """
    name = script_name(path)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    out_path = log_dir / f"{name}.figures.jsonl"
    out_path.unlink(missing_ok=True)
    env = dict(os.environ)
    env[ENV_OUT] = str(out_path)
    env[ENV_QUICK] = "1" if quick_mode else "0"
    env["PYTHONUNBUFFERED"] = "1"
    root = str((cwd or path.parent.parent).resolve())
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    t0 = time.monotonic()
    timed_out = False
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen([python or sys.executable, str(path)], cwd=root, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                log.flush()
                if echo is not None:
                    echo.write(f"  {name}| {line}")
                    echo.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached the script too (same process group): let it clean up, then stop
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
        reader.join(timeout=5)
    seconds = time.monotonic() - t0
    output = log_path.read_text(encoding="utf-8", errors="replace")
    figures, skipped, bad = _read_records(out_path)
    out_path.unlink(missing_ok=True)
    code = proc.returncode
    res = ScriptResult(name, str(path), OK, code, round(seconds, 2), figures, log=str(log_path), load=load_average())
    if timed_out:
        res.status, res.reason = TIMEOUT, f"killed after the {timeout:g} s time limit; last output: {_tail(output)}"
    elif code != 0:
        res.status, res.reason = CRASHED, f"exit {code}: {_tail(output)}"
    elif skipped is not None:
        res.status, res.reason = SKIPPED, skipped
    elif not figures:
        res.status, res.reason = RAN, "ran, see output (the script reports no figures through labkit.app.bench)"
    if bad and not res.failed:
        res.reason = (res.reason + "; " if res.reason else "") + f"{len(bad)} unreadable figure record(s)"
    return res


def run_all(
    scripts: Sequence[Path],
    *,
    quick_mode: bool = False,
    timeout: float | None = None,
    log_dir: Path,
    echo: IO[str] | None = None,
    on_start: Callable[[Path], None] | None = None,
    on_done: Callable[[ScriptResult], None] | None = None,
    python: str | None = None,
) -> list[ScriptResult]:
    """Run every script, one after another (see ``run_script``)."""
    results = []
    for path in scripts:
        if on_start:
            on_start(path)
        res = run_script(path, quick_mode=quick_mode, timeout=timeout, log_dir=log_dir, echo=echo, python=python)
        results.append(res)
        if on_done:
            on_done(res)
    return results


def exit_code(results: Sequence[ScriptResult]) -> int:
    """0 unless a script crashed or timed out (a missed target is a figure, not a failure)."""
    return 1 if any(r.failed for r in results) else 0


def rows(results: Sequence[ScriptResult]) -> list[dict[str, str]]:
    """The table's rows as plain strings: one per figure, or one per script without figures."""
    out: list[dict[str, str]] = []
    for r in results:
        for f in r.figures:
            out.append({"benchmark": r.script, "figure": f.name, "value": f.value_text(), "target": f.target_text(),
                        "status": f.status, "load": "" if f.load is None else f"{f.load:.2f}", "note": f.note})
        if r.figures and r.status == OK:
            continue
        label = {OK: "", SKIPPED: "skipped", RAN: "ran, see output", CRASHED: "crashed", TIMEOUT: "timed out"}[r.status]
        status = {RAN: f"exit {r.exit_code}", CRASHED: f"exit {r.exit_code}", TIMEOUT: "killed"}.get(r.status, r.status)
        note = r.reason if r.status != RAN else f"see {r.log}"
        if r.status in (CRASHED, TIMEOUT):
            note += f" (log {r.log})"
        out.append({"benchmark": r.script, "figure": label, "value": f"{r.seconds:.0f} s run", "target": "",
                    "status": status, "load": "" if r.load is None else f"{r.load:.2f}", "note": note})
    return out


STATUS_STYLE = {MET: "green", MISSED: "bold red", NO_TARGET: "dim", NO_VALUE: "yellow", SKIPPED: "yellow",
                "exit 0": "cyan", "killed": "bold red"}


def render_table(results: Sequence[ScriptResult], console: Any, *, title: str = "labkit bench") -> None:
    """Print one rich table of every figure (benchmark, figure, value, target, status, load, note)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for col, kw in (("benchmark", {}), ("figure", {}), ("value", {"justify": "right"}), ("target", {}),
                    ("status", {}), ("load", {"justify": "right"}), ("note", {"overflow": "fold"})):
        table.add_column(col, **kw)
    for row in rows(results):
        st = row["status"]
        style = STATUS_STYLE.get(st, "bold red" if st.startswith("exit") else "")
        table.add_row(Text(row["benchmark"]), Text(row["figure"]), Text(row["value"]), Text(row["target"]),
                      Text(st, style=style), Text(row["load"]), Text(row["note"]))
    console.print(table)


def summary(results: Sequence[ScriptResult]) -> str:
    figs = [f for r in results for f in r.figures]
    met = sum(f.status == MET for f in figs)
    missed = sum(f.status == MISSED for f in figs)
    targets = sum(f.target is not None for f in figs)
    parts = [f"{len(results)} benchmark(s)", f"{len(figs)} figure(s)", f"{met}/{targets} targets met"]
    if missed:
        parts.append(f"{missed} missed")
    for status, word in ((SKIPPED, "skipped"), (RAN, "without figures"), (CRASHED, "crashed"), (TIMEOUT, "timed out")):
        n = sum(r.status == status for r in results)
        if n:
            parts.append(f"{n} {word}")
    return ", ".join(parts)


def to_json(results: Sequence[ScriptResult], *, quick_mode: bool = False) -> dict[str, Any]:
    return {"quick": quick_mode, "cores": os.cpu_count(), "load_end": load_average(),
            "scripts": [r.to_dict() for r in results]}
