"""Every scenario notebook, executed headless through the runner with its default parameters.

This is how CI executes every notebook: one test per ``scenarios/*.yaml``.  Each checks
the scenario/notebook pair follows the contract (DESIGN.md, "Contracts others rely on"):
the notebook is committed without outputs, has a ``parameters`` cell assigning seed,
cluster, out_dir and every declared parameter, runs to the end on the embedded
simulator, and writes a flat ``metrics.json`` with exactly the keys the YAML declares.

The execution itself is shared (:mod:`tests.notebook_runs`): each notebook runs once per
session, with its defaults and the explorer on, and the other tests that check executed
notebooks read the same run.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from labkit.scenarios import spec as scenario
from tests.notebook_runs import scenario_param

REPO = Path(__file__).resolve().parent.parent
SCENARIO_FILES = sorted((REPO / "scenarios").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _repo_home(monkeypatch):
    monkeypatch.setenv("LABKIT_HOME", str(REPO))


def _assigned_names(source: str) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_notebook_is_committed_clean_with_a_full_parameters_cell(path):
    sc = scenario.load(path, base=REPO)
    nb = nbformat.read(sc.notebook, as_version=4)
    with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not with_outputs, f"{sc.notebook_rel}: commit notebooks without outputs (cells {with_outputs})"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{sc.notebook_rel}: needs exactly one cell tagged 'parameters'"
    missing = {*scenario.RESERVED_PARAMETERS, *sc.parameters} - _assigned_names(tagged[0].source)
    assert not missing, f"{sc.notebook_rel}: the parameters cell does not assign {sorted(missing)}"
    assert "metrics_cell_doc" in nb.cells[0].source, f"{sc.notebook_rel}: the first cell should show spec.metrics_cell_doc({sc.name!r})"


@pytest.mark.notebooks
@pytest.mark.parametrize("name", [scenario_param(p.stem) for p in SCENARIO_FILES])
def test_notebook_runs_headless_and_writes_declared_metrics(name, notebook_runs):
    run = notebook_runs.get(name)
    sc, res = run.scenario, run.result
    assert res.ok, res.error
    metrics = json.loads((run.out_dir / "metrics.json").read_text())
    assert sorted(metrics) == sorted(sc.metrics)
    assert run.executed.is_file()
