"""Unbounded work: alias bombs, deep nesting, ApplicationSet fan-out, substitution, huge files, many objects and files, long history.

Each case is built by ``tests/safety/hostile.py`` and checked by ``tests/safety/harness.py`` (assertions a-h).
"""
import pytest

from .hostile import names

pytestmark = pytest.mark.safety


@pytest.mark.parametrize("case", names("bounds"))
def test_bounds(case, safety_runner):
    safety_runner.check(case)
