"""Scenario YAML loading/validation and ``--param k=v`` coercion (labkit.scenarios.spec)."""
from __future__ import annotations

from pathlib import Path

import pytest

from labkit.scenarios import spec as scenario
from labkit.core.errors import LabkitError

GOOD = """\
name: demo
title: Demo
summary: A demo scenario.
notebook: notebooks/nb.ipynb
parameters:
  interval:
    type: float
    default: 60
    min: 1
    max: 3600
    help: poll interval in seconds
  replicas:
    type: int
    default: 3
    min: 0
    max: 10
    help: how many replicas
  webhook:
    type: bool
    default: true
    help: deliver a webhook on push
  provider:
    type: str
    default: flux
    choices: [flux, argo]
    help: which dialect
  sweep:
    type: list
    items: float
    default: [30, 60]
    min: 1
    help: intervals to sweep
  tags:
    type: list
    default: []
    help: free-form list
metrics:
  a: metric a
  b: metric b
"""


@pytest.fixture
def demo(make_home) -> scenario.Scenario:
    home = make_home({"demo.yaml": GOOD})
    return scenario.load(home / "scenarios" / "demo.yaml", base=home)


def error_of(fn, *args, **kw) -> LabkitError:
    with pytest.raises(LabkitError) as info:
        fn(*args, **kw)
    return info.value


# ------------------------------------------------------------------ loading


def test_good_scenario_loads_with_typed_defaults(demo):
    assert demo.name == "demo"
    assert demo.title == "Demo"
    assert demo.notebook.name == "nb.ipynb" and demo.notebook.is_absolute()
    assert demo.defaults() == {
        "interval": 60.0,
        "replicas": 3,
        "webhook": True,
        "provider": "flux",
        "sweep": [30.0, 60.0],
        "tags": [],
    }
    assert isinstance(demo.defaults()["interval"], float)  # an int default of a float parameter becomes a float
    assert demo.metrics == {"a": "metric a", "b": "metric b"}


def test_unknown_top_level_keys_are_kept_as_extra(make_home):
    home = make_home({"demo.yaml": GOOD + "timing:\n  ci_stage_s: [30, 90]\n"})
    sc = scenario.load(home / "scenarios" / "demo.yaml", base=home)
    assert sc.extra == {"timing": {"ci_stage_s": [30, 90]}}


def test_discovery_uses_labkit_home(make_home, monkeypatch):
    home = make_home({"demo.yaml": GOOD})
    monkeypatch.setenv("LABKIT_HOME", str(home))
    assert scenario.home() == home.resolve()
    assert scenario.names() == ["demo"]
    assert scenario.get("demo").parameters["replicas"].default == 3


def test_default_home_is_the_repository_root(monkeypatch):
    monkeypatch.delenv("LABKIT_HOME", raising=False)
    repo = Path(__file__).resolve().parents[2]
    assert scenario.home() == repo
    assert scenario.scenarios_dir() == repo / "scenarios"


def test_unknown_scenario_lists_the_known_ones(make_home, monkeypatch):
    home = make_home({"demo.yaml": GOOD})
    monkeypatch.setenv("LABKIT_HOME", str(home))
    err = error_of(scenario.get, "demp")
    assert "unknown scenario 'demp'" in str(err)
    assert "known scenarios: demo" in str(err)


@pytest.mark.parametrize(
    "text, field, words",
    [
        ("name: demo\ntitle: a: b\n", None, ["malformed YAML", "mapping values are not allowed", "line 2, column 9"]),
        ("name: demo\ntitle: [unclosed\n", None, ["malformed YAML", "line 3"]),
        ("- just\n- a list\n", None, ["must be a YAML mapping"]),
        (GOOD.replace("title: Demo\n", ""), "title", ["missing required field 'title'"]),
        (GOOD.replace("parameters:\n", "paramters:\n"), "parameters", ["missing required field 'parameters'"]),
        (GOOD.replace("name: demo", "name: other"), "name", ["does not match the file name"]),
        (GOOD.replace("name: demo", "name: Demo_1"), "name", ["not a valid scenario name"]),
        (GOOD.replace("notebooks/nb.ipynb", "notebooks/absent.ipynb"), "notebook", ["does not exist"]),
        (GOOD.replace("notebooks/nb.ipynb", "notebooks/nb.py"), "notebook", ["not a .ipynb notebook"]),
        (GOOD.replace("type: int", "type: integer"), "parameters.replicas.type", ["type must be one of"]),
        (GOOD.replace("default: 3", "default: three"), "parameters.replicas.default", ["expects an int", "three"]),
        (GOOD.replace("default: 3", "default: 11"), "parameters.replicas.default", ["above the maximum 10"]),
        (GOOD.replace("default: flux", "default: helm"), "parameters.provider.default", ["not one of the choices"]),
        (GOOD.replace("default: [30, 60]", "default: [30, x]"), "parameters.sweep.default", ["list of float"]),
        (GOOD.replace("    min: 0\n    max: 10", "    min: 10\n    max: 0"), "parameters.replicas", ["greater than max"]),
        (GOOD.replace("    help: how many replicas", "    hlep: how many replicas"), "parameters.replicas", ["unknown key(s) hlep"]),
        (GOOD.replace("    help: how many replicas\n", ""), "parameters.replicas", ["missing required key 'help'"]),
        (GOOD.replace("  webhook:", "  seed:"), "parameters.seed", ["set by the runner"]),
        (GOOD.replace("  webhook:", "  2fast:"), "parameters.2fast", ["not a valid Python identifier"]),
        (GOOD.replace("choices: [flux, argo]", "choices: [flux, 3]"), "parameters.provider.choices", ["choice 3 is not a string"]),
        (GOOD.replace("    default: flux\n", "    default: flux\n    min: 1\n"), "parameters.provider.min", ["only applies to"]),
        (GOOD.replace("parameters:\n", "parameters: 3\nx:\n"), "parameters", ["must be a mapping"]),
        (GOOD.replace("  a: metric a\n  b: metric b\n", "  {}\n").replace("metrics:\n", "metrics:"), "metrics", ["non-empty mapping"]),
        (GOOD.replace("  a: metric a", "  a:"), "metrics.a", ["needs a description"]),
    ],
)
def test_malformed_scenario_names_file_and_field(make_home, text, field, words):
    home = make_home({"demo.yaml": text})
    err = error_of(scenario.load, home / "scenarios" / "demo.yaml", base=home)
    assert err.file is not None and err.file.endswith("demo.yaml")
    assert err.field == field
    for word in words:
        assert word in str(err)
    assert str(err).startswith(err.file)


def test_load_all_stops_at_a_malformed_file(make_home, monkeypatch):
    home = make_home({"demo.yaml": GOOD, "broken.yaml": "name: broken\ntitle: : :\n"})
    monkeypatch.setenv("LABKIT_HOME", str(home))
    err = error_of(scenario.load_all)
    assert err.file.endswith("broken.yaml")


# ------------------------------------------------------------------ --param coercion


@pytest.mark.parametrize(
    "assignment, key, expected",
    [
        ("replicas=7", "replicas", 7),
        ("replicas= 0 ", "replicas", 0),
        ("interval=2.5", "interval", 2.5),
        ("interval=1e3", "interval", 1000.0),
        ("interval=30", "interval", 30.0),
        ("webhook=false", "webhook", False),
        ("webhook=No", "webhook", False),
        ("webhook=1", "webhook", True),
        ("webhook=on", "webhook", True),
        ("provider=argo", "provider", "argo"),
        ("sweep=5,10.5", "sweep", [5.0, 10.5]),
        ("sweep=[5, 10]", "sweep", [5.0, 10.0]),
        ("sweep=", "sweep", []),
        ("tags=a,1,true", "tags", ["a", 1, True]),
        ("tags=[x, y]", "tags", ["x", "y"]),
    ],
)
def test_param_coercion(demo, assignment, key, expected):
    values = demo.resolve_params([assignment])
    assert values[key] == expected
    assert type(values[key]) is type(expected)
    others = {k: v for k, v in values.items() if k != key}
    assert others == {k: v for k, v in demo.defaults().items() if k != key}


def test_later_param_wins_and_value_may_contain_equals(make_home):
    home = make_home({"demo.yaml": GOOD.replace("    choices: [flux, argo]\n", "")})
    sc = scenario.load(home / "scenarios" / "demo.yaml", base=home)
    assert sc.resolve_params(["provider=a=b"])["provider"] == "a=b"
    assert sc.resolve_params(["replicas=1", "replicas=2"])["replicas"] == 2


def test_resolve_accepts_a_mapping_of_typed_values(demo):
    assert demo.resolve_params({"replicas": 4, "interval": "7"}) == {**demo.defaults(), "replicas": 4, "interval": 7.0}


@pytest.mark.parametrize(
    "assignment, field, words",
    [
        ("replicas=many", "parameters.replicas", ["expects an int, got 'many'"]),
        ("replicas=2.5", "parameters.replicas", ["expects an int"]),
        ("replicas=11", "parameters.replicas", ["11 is above the maximum 10"]),
        ("replicas=-1", "parameters.replicas", ["-1 is below the minimum 0"]),
        ("interval=fast", "parameters.interval", ["expects a float"]),
        ("interval=nan", "parameters.interval", ["expects a float"]),
        ("interval=0.5", "parameters.interval", ["below the minimum 1"]),
        ("webhook=maybe", "parameters.webhook", ["expects a bool"]),
        ("provider=helm", "parameters.provider", ["'helm' is not one of the choices: 'flux', 'argo'"]),
        ("sweep=5,x", "parameters.sweep", ["list of float", "'x'"]),
        ("sweep=5,0.5", "parameters.sweep", ["item 1 (0.5) is below the minimum 1"]),
        ("sweep=[5, [6]]", "parameters.sweep", ["plain values"]),
        ("sweep=[5", "parameters.sweep", ["expects a list"]),
    ],
)
def test_bad_param_values_name_the_file_and_field(demo, assignment, field, words):
    err = error_of(demo.resolve_params, [assignment])
    assert err.field == field
    assert err.file.endswith("demo.yaml")
    for word in words:
        assert word in str(err)


def test_unknown_param_lists_the_valid_names(demo):
    err = error_of(demo.resolve_params, ["replica=3"])
    assert "unknown parameter 'replica' for scenario 'demo'" in str(err)
    assert "valid parameters: interval, provider, replicas, sweep, tags, webhook" in str(err)
    assert err.file.endswith("demo.yaml")


def test_unknown_param_on_a_scenario_without_parameters(make_home):
    text = GOOD.split("parameters:")[0] + "parameters: {}\nmetrics:\n  a: metric a\n"
    home = make_home({"demo.yaml": text})
    sc = scenario.load(home / "scenarios" / "demo.yaml", base=home)
    assert sc.resolve_params([]) == {}
    err = error_of(sc.resolve_params, ["x=1"])
    assert "declares no parameters" in str(err)


@pytest.mark.parametrize("key, flag", [("seed", "--seed"), ("cluster", "--cluster"), ("out_dir", "--out")])
def test_runner_parameters_are_not_params(demo, key, flag):
    err = error_of(demo.resolve_params, [f"{key}=1"])
    assert f"use {flag}" in str(err)


@pytest.mark.parametrize("item", ["novalue", "=3", ""])
def test_param_without_key_value_shape(demo, item):
    err = error_of(demo.resolve_params, [item])
    assert "--param expects KEY=VALUE" in str(err)
