"""The hostile-repository suite: cases run in parallel worker threads, each test waits for its own case.

``safety_runner`` (session scope) looks at the collected tests, submits every
selected case to a thread pool on first use — the heavy cases first — and hands
each test its ``Result``.  Workers: ``LABKIT_SAFETY_WORKERS`` or CPUs + 1 (the
runs are subprocesses; many of them wait on kustomize or git).  A case whose
run passes has its world deleted; a failing case keeps it (the path is in the
failure message).  At the end a table of every case is printed, and
``LABKIT_SAFETY_RESULTS=path.json`` writes the results as JSON.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from . import harness
from .hostile import CASES


def pytest_configure(config):
    config.addinivalue_line("markers", "safety: the hostile-repository suite (tests/safety): labkit try on "
                                       "repositories built to attack it")


class Runner:
    def __init__(self, session, factory):
        self.factory = factory
        self.futures: dict[str, Future] = {}
        self.pool: ThreadPoolExecutor | None = None
        selected = []
        for item in session.items:
            params = getattr(getattr(item, "callspec", None), "params", {})
            name = params.get("case")
            if name in CASES and item.get_closest_marker("safety") and name not in selected:
                selected.append(name)
        self.selected = sorted(selected, key=lambda n: (not CASES[n].heavy, list(CASES).index(n)))
        self.mpl = factory.mktemp("safety-mplconfig")
        self._warm()

    def _warm(self) -> None:
        """Build matplotlib's font cache once, so runs do not each write it."""
        env = {**os.environ, "MPLCONFIGDIR": str(self.mpl), "PYTHONDONTWRITEBYTECODE": "1"}
        py = Path(harness.labkit_argv()[0]).parent / "python"
        subprocess.run([str(py) if py.exists() else sys.executable, "-c", "import matplotlib.pyplot"], env=env,
                       capture_output=True, timeout=300)

    def _start(self) -> None:
        if self.pool is not None:
            return
        workers = int(os.environ.get("LABKIT_SAFETY_WORKERS") or (os.cpu_count() or 2) + 1)
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="safety")
        for name in self.selected:
            self.futures[name] = self.pool.submit(self._one, name)

    def _one(self, name: str) -> harness.Result:
        base = self.factory.mktemp(f"safety-{name}", numbered=True)
        res = harness.run_case(name, base, mpl_dir=self.mpl)
        if res.ok:
            shutil.rmtree(base, ignore_errors=True)
        return res

    def result(self, name: str) -> harness.Result:
        self._start()
        if name not in self.futures:  # selected in an unusual way: run it now
            self.futures[name] = self.pool.submit(self._one, name)
        return self.futures[name].result()

    def check(self, name: str) -> None:
        res = self.result(name)
        if not res.ok:
            pytest.fail(res.summary(), pytrace=False)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def safety_runner(request, tmp_path_factory):
    runner = Runner(request.session, tmp_path_factory)
    yield runner
    runner.close()
    out = os.environ.get("LABKIT_SAFETY_RESULTS")
    if out:
        harness.dump_results(Path(out))


def pytest_terminal_summary(terminalreporter):
    rows = harness.result_rows()
    if not rows:
        return
    tr = terminalreporter
    tr.section("hostile repositories (tests/safety)")
    width = max(len(r[0]) for r in rows)
    for name, concept, verdict, first in rows:
        tr.write_line(f"{name:<{width}}  {concept:<11}  {verdict:<4}  {first[:160]}")
    failed = sum(1 for r in rows if r[2] != "pass")
    prefix, why = harness.netns()
    tr.write_line(f"{len(rows) - failed}/{len(rows)} cases pass; network namespace: "
                  f"{' '.join(prefix) if prefix else 'unavailable (' + why + ')'}")
