"""labkit.app.runner: papermill execution of fixture notebooks, and the metrics check."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from labkit.app import runner
from labkit.scenarios import spec as scenario
from labkit.core.errors import LabkitError


def test_ok_notebook_runs_end_to_end_with_injected_parameters(fixture_home, tmp_path, monkeypatch):
    # a kubeconfig context (never contacted: the fixture notebook only echoes its parameters)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: lab\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: lab, context: {cluster: c, user: u}}]\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    out = tmp_path / "ok-run"
    res = runner.run_scenario("ok", ["n=4", "sizes=7,8", "verbose=true"], seed=11, cluster="lab", out_dir=out)
    assert res.ok, res.error
    assert res.out_dir == out.resolve()
    metrics = json.loads((out / "metrics.json").read_text())
    assert res.metrics == metrics
    # declared defaults overlaid with --param, plus seed / cluster / out_dir
    assert metrics["n"] == 4 and metrics["sizes"] == [7, 8] and metrics["verbose"] is True
    assert metrics["rate"] == 0.25 and metrics["label"] == "a"  # rate: the YAML's real_cluster default
    assert metrics["seed"] == 11 and metrics["cluster"] == "lab"
    assert metrics["out_dir"] == str(out.resolve())
    assert metrics["double_n"] == 8  # a numpy int64 in the notebook
    # the executed notebook and the figure the notebook saved
    assert res.notebook == out.resolve() / "ok.ipynb"
    executed = nbformat.read(res.notebook, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "seed = 11" in injected[0].source
    assert res.figures == [out.resolve() / "line.png"]
    # the notebook runs in its own folder
    assert metrics["cwd"] == str(fixture_home / "notebooks")


def test_the_kernel_is_this_environments_python(fixture_home, tmp_path):
    res = runner.run_scenario("ok", out_dir=tmp_path)
    assert res.ok, res.error
    assert Path(res.metrics["kernel_prefix"]).resolve() == Path(sys.prefix).resolve()
    # the venv's own bin/python (a symlink, so compare without resolving it)
    assert Path(os.path.abspath(res.metrics["kernel_executable"])).parent == Path(os.path.abspath(sys.prefix)) / "bin"


def test_failing_notebook_gives_one_paragraph(fixture_home, tmp_path):
    res = runner.run_scenario("fail", out_dir=tmp_path)
    assert not res.ok
    assert res.metrics is None
    assert "scenario 'fail' failed" in res.error
    assert "raised ValueError: the fixture failed on purpose" in res.error
    assert 'raise ValueError("the fixture failed on purpose")' in res.error
    assert str(tmp_path / "fail.ipynb") in res.error
    assert "Traceback" not in res.error and "\n" not in res.error
    assert (tmp_path / "fail.ipynb").is_file()  # with the traceback inside, for the curious
    assert not (tmp_path / "metrics.json").exists()


def test_missing_metric_key_fails_the_run(fixture_home, tmp_path):
    res = runner.run_scenario("missing-metric", out_dir=tmp_path)
    assert not res.ok
    assert "lacks metric(s) declared in" in res.error
    assert "missing-metric.yaml: absent" in res.error
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"present": 1}


def test_check_metrics_rejects_undeclared_and_absent_metrics(fixture_home, tmp_path):
    sc = scenario.get("missing-metric")
    with pytest.raises(LabkitError, match="did not write metrics.json"):
        runner.check_metrics(sc, tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"present": 1, "absent": 2, "surprise": 3}))
    with pytest.raises(LabkitError, match="not declared .* surprise"):
        runner.check_metrics(sc, tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"present": {"nested": 1}, "absent": 2}))
    with pytest.raises(LabkitError, match="not flat JSON"):
        runner.check_metrics(sc, tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"present": 1, "absent": None}))
    assert runner.check_metrics(sc, tmp_path) == {"present": 1, "absent": None}


def test_a_stale_metrics_file_does_not_pass_a_failed_run(fixture_home, tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"never": 1}))
    res = runner.run_scenario("fail", out_dir=tmp_path)
    assert not res.ok
    assert not (tmp_path / "metrics.json").exists()


def test_bad_input_raises_before_anything_runs(fixture_home, tmp_path):
    out = tmp_path / "not-created"
    with pytest.raises(LabkitError, match="unknown parameter 'm'"):
        runner.run_scenario("ok", ["m=1"], out_dir=out)
    with pytest.raises(LabkitError, match="--seed expects an int"):
        runner.run_scenario("ok", seed="3", out_dir=out)
    with pytest.raises(LabkitError, match="--cluster"):
        runner.run_scenario("ok", cluster=" ", out_dir=out)
    assert not out.exists()


def test_notebook_without_parameters_cell_is_refused(tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(Path(__file__).parent / "data" / "home", home)
    nb = nbformat.read(home / "notebooks" / "fail.ipynb", as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("tags", None)
    nbformat.write(nb, home / "notebooks" / "fail.ipynb")
    monkeypatch.setenv("LABKIT_HOME", str(home))
    with pytest.raises(LabkitError, match="no cell tagged 'parameters'") as info:
        runner.run_scenario("fail", out_dir=tmp_path / "out")
    assert info.value.file.endswith("fail.ipynb")


def test_run_all_runs_each_scenario_into_its_own_folder(fixture_home, tmp_path):
    started, done = [], []
    results = runner.run_all(
        scenario.load_all(),
        tmp_path,
        on_start=lambda sc: started.append(sc.name),
        on_done=lambda sc, res: done.append((sc.name, res.ok)),
    )
    assert started == ["fail", "missing-metric", "ok"]
    assert done == [("fail", False), ("missing-metric", False), ("ok", True)]
    assert [r.out_dir for r in results] == [(tmp_path / n).resolve() for n in started]
    assert (tmp_path / "ok" / "ok.ipynb").is_file() and (tmp_path / "ok" / "metrics.json").is_file()


def test_a_cell_over_the_timeout_fails_the_run_with_one_paragraph(tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(Path(__file__).parent / "data" / "home", home)
    nb = nbformat.read(home / "notebooks" / "fail.ipynb", as_version=4)
    nb.cells[2].source = "import time\ntime.sleep(60)"
    nbformat.write(nb, home / "notebooks" / "fail.ipynb")
    monkeypatch.setenv("LABKIT_HOME", str(home))
    res = runner.run_scenario("fail", out_dir=tmp_path / "out", timeout=2)
    assert not res.ok
    assert res.duration_s < 45
    assert "scenario 'fail' failed:" in res.error
    assert "Timeout" in res.error
    # the kernel's own complaints about being shut down mid-cell go to the run log, not the terminal
    assert f"{tmp_path / 'out' / 'run.log'}" in res.error
    assert (tmp_path / "out" / "run.log").is_file()
    assert "Traceback" not in res.error and "\n" not in res.error
