"""Shared fixtures for the gitops tests: the sample fleet tree and a seeded repository."""
from __future__ import annotations

from pathlib import Path

import pytest

from labkit.core.events import EventLog
from labkit.gitops import ManifestRepo

from gitops_support import CLUSTERS


@pytest.fixture
def log() -> EventLog:
    return EventLog()


@pytest.fixture
def repo(tmp_path: Path, log: EventLog):
    r = ManifestRepo(tmp_path / "fleet", log=log)
    r.seed(CLUSTERS, author="platform", when=0.0, exclude=["README.md", "kind"])
    yield r
    r.close()
