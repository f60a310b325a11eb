"""Commands from manifests: remote bases whose ?ref= becomes a git option, remote fetches, helm, exec KRM functions, plugin and openapi paths.

Each case is built by ``tests/safety/hostile.py`` and checked by ``tests/safety/harness.py`` (assertions a-h).
"""
import pytest

from .hostile import names

pytestmark = pytest.mark.safety


@pytest.mark.parametrize("case", names("commands"))
def test_commands(case, safety_runner):
    safety_runner.check(case)
