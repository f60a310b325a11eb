"""Constants shared by the gitops tests (imported by conftest and the test modules)."""
from __future__ import annotations

from pathlib import Path

#: The sample fleet tree shipped in the repository.
CLUSTERS = Path(__file__).resolve().parents[2] / "clusters"
IMAGE = "ghcr.io/stefanprodan/podinfo"
