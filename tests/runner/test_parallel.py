"""``labkit run --all --jobs N``: scenarios side by side in worker processes (labkit.app.parallel)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labkit.app import parallel
from labkit.app import runner
from labkit.scenarios import spec as scenario


def _named(*names: str) -> list[scenario.Scenario]:
    return [scenario.get(n) for n in names]


def test_schedule_is_longest_first_unmeasured_first_ties_in_catalogue_order(fixture_home):
    fail, missing, ok = _named("fail", "missing-metric", "ok")
    assert parallel.schedule([fail, missing, ok], {"fail": 1.0, "missing-metric": 5.0, "ok": 3.0}) == [missing, ok, fail]
    assert parallel.schedule([fail, missing, ok], {"fail": 2.0, "ok": 2.0}) == [missing, fail, ok]


def test_the_default_is_the_number_of_cores():
    assert parallel.default_jobs() == (os.cpu_count() or 1)


def test_a_failing_scenario_does_not_stop_the_others(fixture_home, tmp_path, monkeypatch):
    # durations put "fail" last: "ok" and "missing-metric" must still have run (and "fail" too)
    monkeypatch.setattr(parallel, "recorded_durations", lambda: {"ok": 9.0, "missing-metric": 8.0, "fail": 1.0})
    started, done = [], []
    results = runner.run_all(
        scenario.load_all(), tmp_path, jobs=2,
        on_start=lambda sc: started.append(sc.name),
        on_done=lambda sc, res: done.append((sc.name, res.ok)),
    )
    assert started == ["ok", "missing-metric", "fail"]
    assert sorted(done) == [("fail", False), ("missing-metric", False), ("ok", True)]
    assert [(r.scenario, r.ok) for r in results] == [("fail", False), ("missing-metric", False), ("ok", True)]
    assert "ValueError: the fixture failed on purpose" in results[0].error
    assert "lacks metric(s)" in results[1].error
    for name in ("fail", "missing-metric", "ok"):
        assert (tmp_path / name / f"{name}.ipynb").is_file() and (tmp_path / name / "run.log").is_file()
    assert json.loads((tmp_path / "ok" / "metrics.json").read_text())["out_dir"] == str((tmp_path / "ok").resolve())


def _exits(sc: scenario.Scenario) -> None:
    os._exit(3)


def _raises(sc: scenario.Scenario) -> None:
    raise RuntimeError(f"a bug while running {sc.name}")


def _name(sc: scenario.Scenario) -> str:
    return sc.name


def test_a_worker_that_dies_is_a_result_saying_so(fixture_home):
    scs = _named("fail", "ok")
    out = parallel.run_parallel(scs, _exits, 2, lost=lambda sc, why: (sc.name, why), durations={})
    assert out == [("fail", "its worker process exited (3) without a result"),
                   ("ok", "its worker process exited (3) without a result")]


def test_an_unexpected_exception_in_a_worker_is_raised_here(fixture_home):
    with pytest.raises(RuntimeError, match="a bug while running "):
        parallel.run_parallel(_named("fail", "ok"), _raises, 2, lost=lambda sc, why: why, durations={})


def test_more_jobs_than_scenarios_and_results_in_the_given_order(fixture_home):
    scs = _named("ok", "fail", "missing-metric")
    assert parallel.run_parallel(scs, _name, 8, lost=lambda sc, why: why, durations={"ok": 1.0}) == [
        "ok", "fail", "missing-metric"]


def test_jobs_must_be_a_positive_int(fixture_home, tmp_path):
    from labkit.core.errors import LabkitError

    for jobs in (0, -1, 1.5, True):
        with pytest.raises(LabkitError, match="--jobs"):
            runner.run_all(scenario.load_all(), tmp_path, jobs=jobs)


def test_parallel_and_serial_runs_write_the_same_metrics_and_figures(tmp_path):
    # two of the project's fast scenarios, on the simulator: nothing may depend on running side by side
    scs = _named("drift", "stateful-edges")
    serial = runner.run_all(scs, tmp_path / "serial", jobs=1)
    side_by_side = runner.run_all(scs, tmp_path / "parallel", jobs=2)
    assert [r.ok for r in serial] == [r.ok for r in side_by_side] == [True, True], [r.error for r in serial + side_by_side]
    for one, two in zip(serial, side_by_side):
        assert one.scenario == two.scenario
        assert (one.out_dir / "metrics.json").read_text() == (two.out_dir / "metrics.json").read_text()
        assert [f.name for f in one.figures] == [f.name for f in two.figures] and one.figures
        assert (two.out_dir / "run.log").is_file() and two.notebook.is_file()
