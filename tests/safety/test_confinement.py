"""Writes outside the work area (crafted trees: duplicate entries, .., .git) and reads outside the repository (unknown tags, UTF-16, absolute and ../ paths, symlinks, FIFOs, devices, /proc).

Each case is built by ``tests/safety/hostile.py`` and checked by ``tests/safety/harness.py`` (assertions a-h).
"""
import pytest

from .hostile import names

pytestmark = pytest.mark.safety


@pytest.mark.parametrize("case", names("confinement"))
def test_confinement(case, safety_runner):
    safety_runner.check(case)
