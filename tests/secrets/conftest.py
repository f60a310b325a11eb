"""Shared fixtures for the secrets tests: a Flux lab on real git, and small key sizes for speed."""
from __future__ import annotations

import pytest

from tests.flux.conftest import URL  # noqa: F401  (re-exported for the secrets tests)
from tests.flux.conftest import FluxLab as _FluxLab

KS_API = "kustomize.toolkit.fluxcd.io/v1"


class FluxLab(_FluxLab):
    """The Flux test lab (tests/flux/conftest.py) with its GitRepository ``fleet`` already applied."""

    def __init__(self, tmp, files: dict[str, str], controllers: bool = False):
        super().__init__(tmp, files, controllers)
        self.source()


@pytest.fixture
def flux_lab(tmp_path):
    labs = []

    def make(files: dict[str, str], controllers: bool = False) -> FluxLab:
        lab = FluxLab(tmp_path, files, controllers)
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.repo.close()
