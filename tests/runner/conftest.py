"""Fixtures for the runner/CLI/report tests: a small labkit home with fixture scenarios.

``data/home`` holds ``scenarios/*.yaml`` and ``notebooks/*.ipynb``:
``ok`` (succeeds, echoes its parameters and its kernel's interpreter into metrics.json),
``fail`` (a cell raises ValueError) and ``missing-metric`` (writes one of two declared keys).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
FIXTURE_HOME = DATA / "home"


@pytest.fixture
def fixture_home(monkeypatch: pytest.MonkeyPatch) -> Path:
    """LABKIT_HOME pointed at the fixture home for this test."""
    monkeypatch.setenv("LABKIT_HOME", str(FIXTURE_HOME))
    return FIXTURE_HOME


@pytest.fixture
def make_home(tmp_path: Path):
    """Build a throw-away labkit home: ``make_home({"name.yaml": text}, notebooks=["x.ipynb"])``."""

    def make(scenarios: dict[str, str], notebooks: tuple[str, ...] = ("nb.ipynb",)) -> Path:
        home = tmp_path / "home"
        (home / "scenarios").mkdir(parents=True, exist_ok=True)
        (home / "notebooks").mkdir(parents=True, exist_ok=True)
        for nb in notebooks:
            (home / "notebooks" / nb).write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
        for name, text in scenarios.items():
            (home / "scenarios" / name).write_text(textwrap.dedent(text))
        return home

    return make


def run_cli(*args: str, home: Path | None = None, cwd: Path | None = None, timeout: float = 300):
    """``python -m labkit ARGS`` in a subprocess, the way a user runs it."""
    env = dict(os.environ)
    env.pop("LABKIT_DEBUG", None)
    if home is not None:
        env["LABKIT_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "labkit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def cli():
    """The :func:`run_cli` helper."""
    return run_cli
