"""Fixtures for the Argo CD dialect's tests (helpers live in ``argo_support``)."""
import pytest

from tests.argo.argo_support import Lab


@pytest.fixture
def lab(tmp_path):
    return Lab(tmp_path)
