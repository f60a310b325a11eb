"""``labkit run NAME --param explorer=true`` leaves a widget view in the executed notebook of every scenario but fleet.

The explorer cell (the code cell calling ``explore(...)``) ends with the explorer as
its last expression: Jupyter displays it.  Executed headless through the runner (as
``labkit run`` does, with the same harness as ``tests/test_notebooks.py``), that
cell's outputs must hold an ``application/vnd.jupyter.widget-view+json`` view.
The run is the one shared with ``tests/test_notebooks.py`` (:mod:`tests.notebook_runs`):
each notebook executed once, with its default (full-size) studies and ``explorer=true``;
with ``explorer`` left at the YAML default (false), ``explore`` returns ``None`` and the
cell shows nothing (``tests/scenarios/test_explorer.py``).
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from labkit.scenarios import spec as scenario
from tests.notebook_runs import scenario_param

REPO = Path(__file__).resolve().parent.parent.parent
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: every scenario with a live explorer (all but fleet; 00-start-here has its own playground)
EXPLORER_SCENARIOS = ("tour", "promotion", "drift", "hpa-conflict", "rollback", "secrets", "migrations",
                      "stateful-edges", "push-vs-pull")


def explorer_cell(nb):
    """The code cell that shows the explorer (``explore(...)``): exactly one per notebook."""
    cells = [c for c in nb.cells if c.cell_type == "code" and "explore(" in c.source]
    assert len(cells) == 1, f"expected one explorer cell, found {len(cells)}"
    return cells[0]


@pytest.fixture(autouse=True)
def _repo_home(monkeypatch):
    monkeypatch.setenv("LABKIT_HOME", str(REPO))


def test_every_scenario_but_fleet_declares_the_explorer_parameter_false_by_default():
    names = {sc.name for sc in scenario.load_all(REPO / "scenarios")}
    assert set(EXPLORER_SCENARIOS) <= names
    for name in EXPLORER_SCENARIOS:
        sc = scenario.load(REPO / "scenarios" / f"{name}.yaml", base=REPO)
        p = sc.parameters.get("explorer")
        assert p is not None and p.type == "bool" and p.default is False, name
        cell = explorer_cell(nbformat.read(sc.notebook, as_version=4))
        assert "enabled=explorer" in cell.source, name
        # the explorer is the cell's last expression, never inside a block (Jupyter would display nothing)
        assert cell.source.rstrip().splitlines()[-1].startswith("explore("), name


@pytest.mark.notebooks
@pytest.mark.parametrize("name", [scenario_param(n) for n in EXPLORER_SCENARIOS])
def test_run_with_explorer_true_leaves_a_widget_view(name, notebook_runs):
    run = notebook_runs.get(name)
    assert run.parameters.get("explorer") == "true"
    res = run.result
    assert res.ok, res.error
    cell = explorer_cell(nbformat.read(run.executed, as_version=4))
    views = [o for o in cell.outputs if WIDGET_VIEW in (o.get("data") or {})]
    kinds = [o.get("output_type") for o in cell.outputs]
    assert views, f"{name}: the explorer cell has no widget view (outputs: {kinds})"
    assert not [o for o in cell.outputs if o.get("output_type") == "error"]
