"""Each scenario notebook executed headless once per test session, and every test that checks it reads that run.

Executing a notebook is the suite's most expensive single step: a kernel starts,
imports labkit, and runs the whole study (6-20 s each on two cores).  Four test
modules check executed notebooks, each for its own facts: ``tests/test_notebooks.py``
(it runs to the end and writes exactly the declared metrics),
``tests/scenarios/test_explorer_notebooks.py`` (the explorer cell leaves a widget
view), ``tests/scenarios/test_start_here.py`` (the playground widget) and
``tests/reliability/test_safety.py`` (no secret in the executed tour's files).  They
used to execute the notebooks themselves, so most notebooks ran twice and the tour
three times.  Now they ask :class:`NotebookRuns` (the session fixture
``notebook_runs``) for the run of a scenario and make their own assertions on it.

The one run of a scenario is the way a participant runs it from the workshop: every
parameter at its YAML default except ``explorer=true`` where the scenario declares an
explorer (:func:`run_parameters`).  That run executes every cell the default run does
(the explorer flag only decides whether the last expression of the explorer cell is
a widget or ``None``; ``tests/scenarios/test_explorer.py`` checks the ``None``) with
the default, full-size studies, so the metrics contract is checked on the real
sizes, and the widget checks see the explorer of a full run.

Under pytest-xdist each worker has its own session, hence its own ``NotebookRuns``.
The tests that read one scenario's run therefore carry the mark :func:`group` --
``xdist_group("notebook-<name>")`` -- which sends them to one worker: each notebook
is executed once in the whole suite, and different notebooks run on different
workers at the same time (each in its own kernel and output folder).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from labkit.app import runner
from labkit.scenarios import spec as scenario

REPO = Path(__file__).resolve().parent.parent
#: per-cell limit, so a hung notebook fails instead of eating CI's time
CELL_TIMEOUT_S = 900


def run_parameters(sc: scenario.Scenario) -> dict[str, str]:
    """The parameters of the one shared run: the YAML defaults, with the explorer on where there is one."""
    return {"explorer": "true"} if "explorer" in sc.parameters else {}


def group(name: str) -> pytest.MarkDecorator:
    """The xdist group of every test that reads the run of scenario ``name``."""
    from tests.parallel import NOTEBOOK_GROUP_PREFIX

    return pytest.mark.xdist_group(f"{NOTEBOOK_GROUP_PREFIX}{name}")


def scenario_param(name: str) -> object:
    """``name`` as a ``parametrize`` value carrying its :func:`group` mark."""
    return pytest.param(name, id=name, marks=group(name))


@dataclass(frozen=True)
class NotebookRun:
    scenario: scenario.Scenario
    parameters: dict[str, str]
    result: runner.RunResult

    @property
    def out_dir(self) -> Path:
        return self.result.out_dir

    @property
    def executed(self) -> Path:
        """The executed notebook, ``<out_dir>/<name>.ipynb``."""
        return self.result.notebook


class NotebookRuns:
    """Executes a scenario's notebook on first request and hands the same run to every later one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._runs: dict[str, NotebookRun | BaseException] = {}

    def get(self, name: str) -> NotebookRun:
        if name not in self._runs:
            try:
                self._runs[name] = self._execute(name)
            except Exception as e:  # noqa: BLE001 - every test of this scenario reports the same error
                self._runs[name] = e
        run = self._runs[name]
        if isinstance(run, BaseException):
            raise run
        return run

    def _execute(self, name: str) -> NotebookRun:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("LABKIT_HOME", str(REPO))
            sc = scenario.load(REPO / "scenarios" / f"{name}.yaml", base=REPO)
            params = run_parameters(sc)
            res = runner.run_scenario(sc, params, out_dir=self.root / name, timeout=CELL_TIMEOUT_S)
        return NotebookRun(sc, params, res)

