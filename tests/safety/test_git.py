"""Git running code from the target repository (fsmonitor, hooks, textconv, external diff, pagers, filters, ssh/credential helpers, include/includeIf), and the user's .git/index left alone.

Each case is built by ``tests/safety/hostile.py`` and checked by ``tests/safety/harness.py`` (assertions a-h).
"""
import pytest

from .hostile import names

pytestmark = pytest.mark.safety


@pytest.mark.parametrize("case", names("git"))
def test_git(case, safety_runner):
    safety_runner.check(case)
