"""``labkit.app.bench``: the figure contract, the runner and ``labkit bench``, with tiny fake scripts."""
from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from labkit.app import bench
from labkit.app import cli
from labkit.app.bench import Figure
from labkit.core.errors import LabkitError


def write_script(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench_{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


REPORTS = """\
    from labkit.app.bench import Figure, quick, report
    print("hello from the script")
    report([Figure("first apply", 4.2, "s", target=5.0, op="<"),
            Figure("rate", 4000, "applies/s", target=5000, op=">="),
            Figure("quick flag", 1.0 if quick() else 0.0)])
"""


# ---------------------------------------------------------------------------- figures

@pytest.mark.parametrize("value, target, op, status", [
    (4.9, 5.0, "<", "met"), (5.0, 5.0, "<", "missed"), (5.0, 5.0, "<=", "met"),
    (5001, 5000, ">=", "met"), (4999, 5000, ">=", "missed"), (0, 0, "==", "met"), (1, 0, "==", "missed"),
    (3.0, None, "<", "no target"), (None, 1.0, "<", "no value"), (float("nan"), 1.0, "<", "no value"),
])
def test_figure_status(value, target, op, status):
    assert Figure("x", value, "s", target=target, op=op).status == status


def test_figure_rejects_an_unknown_comparison():
    with pytest.raises(ValueError, match="'=<'"):
        Figure("x", 1.0, op="=<")


def test_figure_round_trips_through_json_and_records_the_load():
    f = Figure("first apply", 1234.5, "s", target=60, note="n")
    back = Figure.from_dict(json.loads(json.dumps(f.to_dict())))
    assert back == f
    assert f.to_dict()["status"] == "missed"
    assert f.load is None or f.load >= 0


@pytest.mark.parametrize("v, text", [(12345.6, "12,346"), (5000.0, "5,000"), (0.0, "0"), (12.34, "12.3"),
                                     (1.234, "1.23"), (0.01234, "0.012")])
def test_format_value(v, text):
    assert bench.format_value(v) == text


def test_report_prints_and_appends_json_lines(tmp_path, monkeypatch, capsys):
    out = tmp_path / "figures.jsonl"
    monkeypatch.setenv(bench.ENV_OUT, str(out))
    bench.report([Figure("a", 1.5, "s", target=1.0)])
    bench.report([Figure("b", 2.0)])
    printed = capsys.readouterr().out
    assert "figure: a = 1.50 s  target < 1 s: missed" in printed
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["figure"]["name"] for x in lines] == ["a", "b"]
    assert lines[0]["figure"]["status"] == "missed"


def test_report_without_the_runner_only_prints(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(bench.ENV_OUT, raising=False)
    monkeypatch.chdir(tmp_path)
    bench.report([Figure("a", 1.0)])
    assert "figure: a = 1" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- discovery

def test_discover_sorts_and_filters(tmp_path):
    for n in ("zeta", "alpha"):
        write_script(tmp_path, n, "print(1)\n")
    (tmp_path / "helper.py").write_text("")
    assert [p.name for p in bench.discover(tmp_path)] == ["bench_alpha.py", "bench_zeta.py"]
    assert [p.name for p in bench.discover(tmp_path, ["bench_zeta.py", "zeta", "alpha"])] == \
        ["bench_zeta.py", "bench_alpha.py"]
    with pytest.raises(LabkitError, match="no benchmark 'nope'; known: alpha, zeta"):
        bench.discover(tmp_path, ["nope"])


# ---------------------------------------------------------------------------- running scripts

def test_a_script_speaking_the_contract(tmp_path):
    path = write_script(tmp_path / "benchmarks", "good", REPORTS)
    res = bench.run_script(path, log_dir=tmp_path / "logs", quick_mode=True)
    assert (res.script, res.status, res.exit_code) == ("good", "ok", 0)
    assert [(f.name, f.value, f.status) for f in res.figures] == [
        ("first apply", 4.2, "met"), ("rate", 4000.0, "missed"), ("quick flag", 1.0, "no target")]
    assert "hello from the script" in Path(res.log).read_text()
    assert not list((tmp_path / "logs").glob("*.jsonl"))  # the hand-over file is removed


def test_quick_is_off_unless_asked(tmp_path):
    path = write_script(tmp_path / "benchmarks", "good", REPORTS)
    res = bench.run_script(path, log_dir=tmp_path / "logs")
    assert res.figures[2].value == 0.0


def test_a_script_without_the_contract_shows_as_ran(tmp_path):
    path = write_script(tmp_path / "benchmarks", "plain", "print('42 things/s')\n")
    res = bench.run_script(path, log_dir=tmp_path / "logs")
    assert (res.status, res.exit_code, res.figures, res.failed) == ("ran", 0, [], False)
    [row] = bench.rows([res])
    assert (row["figure"], row["status"]) == ("ran, see output", "exit 0")
    assert row["note"] == f"see {res.log}"


def test_a_crash_keeps_the_figures_reported_before_it(tmp_path):
    path = write_script(tmp_path / "benchmarks", "bad", """\
        from labkit.app.bench import Figure, report
        report([Figure("before the crash", 1.0, "s", target=2.0)])
        raise RuntimeError("boom: the cluster went away")
    """)
    res = bench.run_script(path, log_dir=tmp_path / "logs")
    assert (res.status, res.exit_code, res.failed) == ("crashed", 1, True)
    assert "RuntimeError: boom: the cluster went away" in res.reason
    assert [f.name for f in res.figures] == ["before the crash"]
    assert [r["status"] for r in bench.rows([res])] == ["met", "exit 1"]
    assert bench.exit_code([res]) == 1


def test_a_skip_is_not_a_failure(tmp_path):
    path = write_script(tmp_path / "benchmarks", "real", """\
        from labkit.app.bench import skip
        skip("real control plane not built: run `labkit cluster build`")
        raise AssertionError("skip must exit")
    """)
    res = bench.run_script(path, log_dir=tmp_path / "logs")
    assert (res.status, res.exit_code, res.failed) == ("skipped", 0, False)
    assert res.reason == "real control plane not built: run `labkit cluster build`"
    assert bench.exit_code([res]) == 0


def test_the_time_limit_terminates_so_finally_blocks_run(tmp_path):
    marker = tmp_path / "cleaned-up"
    path = write_script(tmp_path / "benchmarks", "slow", f"""\
        import signal, sys, time
        def term(*_):
            raise SystemExit(143)
        signal.signal(signal.SIGTERM, term)
        try:
            print("started", flush=True)
            time.sleep(60)
        finally:
            open({str(marker)!r}, "w").write("deleted")
    """)
    res = bench.run_script(path, log_dir=tmp_path / "logs", timeout=1.5)
    assert res.status == "timeout" and res.failed
    assert res.seconds < 30
    assert marker.read_text() == "deleted"


def test_a_missed_target_does_not_change_the_exit_code(tmp_path):
    path = write_script(tmp_path / "benchmarks", "slow", """\
        from labkit.app.bench import Figure, report
        report([Figure("first apply", 99.0, "s", target=5.0)])
    """)
    res = bench.run_script(path, log_dir=tmp_path / "logs")
    assert res.figures[0].status == "missed"
    assert bench.exit_code([res]) == 0


def test_the_table_has_one_row_per_figure(tmp_path):
    scripts = [write_script(tmp_path / "benchmarks", "good", REPORTS),
               write_script(tmp_path / "benchmarks", "plain", "print('x')\n")]
    results = bench.run_all(scripts, log_dir=tmp_path / "logs")
    console = Console(record=True, width=220)
    bench.render_table(results, console)
    text = console.export_text()
    for needle in ("first apply", "4.20 s", "< 5 s", "met", "4,000 applies/s", ">= 5,000 applies/s", "missed",
                   "ran, see output", "exit 0"):
        assert needle in text, needle
    assert bench.summary(results) == "2 benchmark(s), 3 figure(s), 1/2 targets met, 1 missed, 1 without figures"
    data = bench.to_json(results)
    assert [s["status"] for s in data["scripts"]] == ["ok", "ran"]
    assert data["scripts"][0]["figures"][1]["status"] == "missed"


# ---------------------------------------------------------------------------- labkit bench

def test_labkit_bench_json_and_exit_code(tmp_path, monkeypatch, capsys):
    write_script(tmp_path / "benchmarks", "good", REPORTS)
    write_script(tmp_path / "benchmarks", "bad", "raise SystemExit(3)\n")
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    code = cli.main(["bench", "--json", "--quiet", "--quick", "--log-dir", str(tmp_path / "logs")])
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert code == 1
    assert data["quick"] is True
    assert {s["script"]: (s["status"], s["exit_code"]) for s in data["scripts"]} == \
        {"bad": ("crashed", 3), "good": ("ok", 0)}
    assert "benchmark bad crashed: exit 3" in out.err
    code = cli.main(["bench", "--only", "good", "--quiet", "--log-dir", str(tmp_path / "logs")])
    out = capsys.readouterr()
    assert code == 0
    assert "first apply" in out.out and "1/2 targets met" in out.out


def test_labkit_bench_unknown_name_is_an_input_error(tmp_path, monkeypatch, capsys):
    write_script(tmp_path / "benchmarks", "good", REPORTS)
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    assert cli.main(["bench", "--only", "nope"]) == 2
    assert "no benchmark 'nope'; known: good" in capsys.readouterr().err


def test_nan_values_survive_the_hand_over(tmp_path):
    path = write_script(tmp_path / "benchmarks", "nan", """\
        from labkit.app.bench import Figure, report
        report([Figure("p50", float("nan"), "s", target=1.0)])
    """)
    res = bench.run_script(path, log_dir=tmp_path / "logs")
    assert math.isnan(res.figures[0].value) and res.figures[0].status == "no value"


def test_the_crash_reason_is_the_exception_even_when_its_message_has_many_lines(tmp_path):
    path = write_script(tmp_path / "benchmarks", "bad", """\
        import sys
        print("working", flush=True)
        raise RuntimeError("metrics-server did not start; last lines of its log:\\nI1126 caches are synced")
    """)
    res = bench.run_script(path, log_dir=tmp_path / "logs")
    assert res.reason == "exit 1: RuntimeError: metrics-server did not start; last lines of its log:"
