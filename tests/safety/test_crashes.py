"""Crashes (exit 70) and escaping: encodings, file names, homoglyphs, --out on a file, paths over PATH_MAX, ESC / rich markup / HTML in names.

Each case is built by ``tests/safety/hostile.py`` and checked by ``tests/safety/harness.py`` (assertions a-h).
"""
import pytest

from .hostile import names

pytestmark = pytest.mark.safety


@pytest.mark.parametrize("case", names("crashes"))
def test_crashes(case, safety_runner):
    safety_runner.check(case)
