"""Which clusters a scenario runs on (``clusters:``), its real-cluster defaults, and fast refusals."""
from __future__ import annotations

import pytest

from labkit.app import runner
from labkit.scenarios import spec as scenario
from labkit.core.errors import LabkitError

BASE = """\
name: demo
title: Demo
summary: A demo scenario.
notebook: notebooks/nb.ipynb
parameters:
  interval:
    type: float
    default: 60
    min: 1
    help: poll interval in seconds
  commits:
    type: int
    default: 5
    help: how many commits
metrics:
  a: metric a
"""


def load(make_home, extra: str = "") -> scenario.Scenario:
    home = make_home({"demo.yaml": BASE + extra})
    return scenario.load(home / "scenarios" / "demo.yaml", base=home)


def test_without_clusters_a_scenario_is_simulator_only(make_home):
    sc = load(make_home)
    assert sc.clusters == ("sim",)
    with pytest.raises(LabkitError) as e:
        sc.resolve_params([], cluster="kwok")
    assert e.value.field == "cluster"
    assert "scenario 'demo' cannot run on 'kwok' (the local control plane (kwok)); it runs on the embedded simulator" \
        in str(e.value)


def test_the_note_says_why_and_every_real_kind_is_refused(make_home):
    sc = load(make_home, "clusters: [sim]\nreal_cluster:\n  note: its Jobs run only in the simulator's kubelet\n")
    for value in ("kwok", "kind", "my-context", "kwok:other"):
        with pytest.raises(LabkitError, match="its Jobs run only in the simulator's kubelet"):
            sc.check_cluster(value)
    assert sc.check_cluster("sim") == "sim"


def test_real_cluster_defaults_apply_only_there_and_params_still_win(make_home):
    sc = load(make_home, "clusters: [sim, kwok, context]\nreal_cluster:\n  parameters:\n    interval: 5\n")
    assert sc.resolve_params([]) == {"interval": 60.0, "commits": 5}
    assert sc.resolve_params([], cluster="kwok") == {"interval": 5.0, "commits": 5}
    assert sc.resolve_params(["interval=7"], cluster="ctx") == {"interval": 7.0, "commits": 5}
    with pytest.raises(LabkitError, match="a kind cluster"):
        sc.resolve_params([], cluster="kind")  # not listed


@pytest.mark.parametrize("extra, field, message", [
    ("clusters: [sim, docker]\n", "clusters", "unknown cluster kind(s) 'docker'"),
    ("clusters: []\n", "clusters", "must be a non-empty list"),
    ("real_cluster:\n  parameters:\n    nope: 1\n", "real_cluster.parameters.nope", "'nope' is not a declared parameter"),
    ("real_cluster:\n  parameters:\n    interval: 0\n", "real_cluster.parameters.interval", "below the minimum"),
    ("real_cluster:\n  why: x\n", "real_cluster", "unknown key(s) why"),
])
def test_malformed_cluster_fields_name_file_and_field(make_home, extra, field, message):
    with pytest.raises(LabkitError) as e:
        load(make_home, extra)
    assert e.value.field == field and message in str(e.value)
    assert e.value.file.endswith("demo.yaml")


def test_the_runner_refuses_an_unsupported_cluster_before_papermill(make_home, monkeypatch, tmp_path):
    home = make_home({"demo.yaml": BASE})
    monkeypatch.setenv("LABKIT_HOME", str(home))
    with pytest.raises(LabkitError, match="cannot run on 'kwok'"):
        runner.run_scenario("demo", cluster="kwok", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written
    # --all: each scenario that cannot run there is a failed result saying why; nothing is provisioned
    results = runner.run_all([scenario.get("demo")], tmp_path / "all", cluster="kwok")
    assert [r.ok for r in results] == [False] and "cannot run on 'kwok'" in results[0].error


def test_the_projects_scenarios_declare_where_they_run():
    by_name = {sc.name: sc for sc in scenario.load_all()}
    for name in ("tour", "promotion", "drift", "stateful-edges", "hpa-conflict"):
        assert set(by_name[name].clusters) == {"sim", "kwok", "kind", "context"}, name
        assert by_name[name].real_defaults, name
    for name in ("migrations", "rollback", "push-vs-pull", "secrets"):
        assert by_name[name].clusters == ("sim",), name
        assert by_name[name].real_note, name  # says why
