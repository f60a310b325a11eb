"""The ``labkit`` command, run the way a user runs it: ``python -m labkit`` in a subprocess."""
from __future__ import annotations

import json
import sys

import pytest

from labkit.app import cli as cli_mod


def test_scenarios_lists_name_and_title(cli, fixture_home):
    proc = cli("scenarios", home=fixture_home)
    assert proc.returncode == 0, proc.stderr
    for name, title in [("fail", "Fixture that fails"), ("missing-metric", "Fixture with a missing metric"), ("ok", "Fixture that succeeds")]:
        line = next(ln for ln in proc.stdout.splitlines() if f" {name} " in ln)
        assert title in line


def test_scenarios_name_shows_parameters_and_metrics(cli, fixture_home):
    proc = cli("scenarios", "ok", home=fixture_home)
    assert proc.returncode == 0, proc.stderr
    assert "how many points (min 1; max 10)" in proc.stdout
    assert "kernel_prefix" in proc.stdout


def test_run_json_prints_only_metrics(cli, fixture_home, tmp_path):
    proc = cli("run", "ok", "--param", "n=5", "-p", "label=b", "--seed", "3", "--out", str(tmp_path / "o"), "--json",
               home=fixture_home)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert (metrics["n"], metrics["label"], metrics["seed"], metrics["cluster"]) == (5, "b", 3, "sim")
    assert metrics == json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert (tmp_path / "o" / "ok.ipynb").is_file()


def test_default_out_dir_is_reports_name(cli, fixture_home, tmp_path):
    proc = cli("run", "ok", home=fixture_home, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "reports" / "ok" / "metrics.json").is_file()
    assert "reports/ok/ok.ipynb" in proc.stdout


def test_failing_notebook_exits_nonzero_with_one_paragraph(cli, fixture_home, tmp_path):
    proc = cli("run", "fail", "--out", str(tmp_path), home=fixture_home)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("labkit: scenario 'fail' failed: cell In [")
    assert "ValueError: the fixture failed on purpose" in lines[0]
    assert str(tmp_path / "fail.ipynb") in lines[0]


def test_missing_metric_exits_nonzero(cli, fixture_home, tmp_path):
    proc = cli("run", "missing-metric", "--out", str(tmp_path), home=fixture_home)
    assert proc.returncode == 1
    assert "lacks metric(s)" in proc.stderr and "absent" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "ok", "--param", "n=11"], ["ok.yaml: parameters.n: 11 is above the maximum 10"]),
        (["run", "ok", "--param", "n=x"], ["parameters.n: expects an int, got 'x'"]),
        (["run", "ok", "--param", "bogus=1"], ["unknown parameter 'bogus'", "valid parameters: label, n, rate, sizes, verbose"]),
        (["run", "ok", "--param", "label=c"], ["parameters.label: 'c' is not one of the choices: 'a', 'b'"]),
        (["run", "ok", "--param", "n"], ["--param expects KEY=VALUE"]),
        (["run", "nope"], ["unknown scenario 'nope'; known scenarios: fail, missing-metric, ok"]),
        (["run"], ["name a scenario to run, or --all"]),
        (["run", "ok", "--all"], ["not both"]),
        (["run", "--all", "--param", "n=1"], ["--param applies to one scenario"]),
        (["run", "--all", "--jobs", "0"], ["--jobs: expects a whole number of 1 or more, got '0'"]),
        (["run", "--all", "-j", "-2"], ["--jobs: expects a whole number of 1 or more, got '-2'"]),
        (["run", "--all", "--jobs=two"], ["--jobs: expects a whole number of 1 or more, got 'two'"]),
        (["run", "--all", "-j", "1.5"], ["--jobs: expects a whole number of 1 or more, got '1.5'"]),
        (["run", "ok", "--jobs", "2"], ["--jobs: applies to `run --all`"]),
    ],
)
def test_bad_input_is_one_error_line_exit_2(cli, fixture_home, tmp_path, args, words):
    proc = cli(*args, home=fixture_home, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("labkit: error: ")
    assert proc.stderr.count("\n") == 1, proc.stderr
    for word in words:
        assert word in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_malformed_scenario_file_is_named(cli, make_home):
    home = make_home({"broken.yaml": "name: broken\ntitle: a: b\n"})
    proc = cli("scenarios", home=home)
    assert proc.returncode == 2
    assert proc.stderr.startswith("labkit: error: ")
    assert "broken.yaml: malformed YAML: mapping values are not allowed here (line 2, column 9)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_all_reports_every_scenario_and_fails_if_any_failed(cli, fixture_home, tmp_path):
    proc = cli("run", "--all", "--out", str(tmp_path / "all"), home=fixture_home)
    assert proc.returncode == 1
    table = {ln.split("│")[1].strip(): ln for ln in proc.stdout.splitlines() if ln.count("│") >= 4}
    assert "failed" in table["fail"] and "failed" in table["missing-metric"] and " ok " in table["ok"]
    assert "1 of 3 scenarios succeeded" in proc.stdout
    assert "scenario 'fail' failed" in proc.stderr and "scenario 'missing-metric' failed" in proc.stderr
    assert "Traceback" not in proc.stderr
    for name in ("fail", "missing-metric", "ok"):
        assert (tmp_path / "all" / name / f"{name}.ipynb").is_file()


def test_no_command_prints_help_and_exits_2(cli):
    proc = cli()
    assert proc.returncode == 2
    assert "usage: labkit" in proc.stderr


def test_version(cli):
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("labkit ")


def test_lab_command_starts_jupyterlab_in_notebooks(fixture_home):
    cmd, cwd = cli_mod.lab_command(["--", "--no-browser"])
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={fixture_home / 'notebooks'}" in cmd
    assert cmd[-1] == "--no-browser" and "--" not in cmd
    assert cwd == fixture_home / "notebooks"


def test_unknown_kernel_is_a_clear_failure(cli, fixture_home, tmp_path):
    proc = cli("run", "ok", "--kernel", "no-such-kernel", "--out", str(tmp_path), home=fixture_home)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "NoSuchKernel" in lines[0] and "'no-such-kernel'" in lines[0]
