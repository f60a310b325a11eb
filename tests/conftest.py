import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import parallel  # noqa: E402  (needs ROOT on the path)
from tests.notebook_runs import NotebookRuns  # noqa: E402


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests that share a wide fixture onto one xdist worker, the long groups first (tests/parallel.py)."""
    parallel.assign_groups(items)
    parallel.long_groups_first(items)


@pytest.fixture(scope="session")
def notebook_runs(tmp_path_factory) -> NotebookRuns:
    """Each scenario notebook executed at most once per session (per xdist worker), shared by the tests that check it."""
    return NotebookRuns(tmp_path_factory.mktemp("notebook-runs"))


class _GroupIds:
    @pytest.hookimpl(trylast=True)  # after xdist's own hook, which on pytest 9 does not rename the tests
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        parallel.suffix_node_ids(config, items)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_GroupIds(), "labkit-xdist-group-ids")
