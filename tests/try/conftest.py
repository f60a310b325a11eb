"""Fixtures for the ``labkit try`` tests: run ``try_repo`` on a fixture repository and close it afterwards."""
from __future__ import annotations

from typing import Any, Callable

import pytest

from labkit.tryrepo import TryOptions, TryResult, try_repo


@pytest.fixture
def tryit() -> Callable[..., TryResult]:
    results: list[TryResult] = []

    def run(target: Any, **options: Any) -> TryResult:
        res = try_repo(str(target), TryOptions(**options))
        results.append(res)
        return res

    yield run
    for r in results:
        r.close()


def pitfalls(result: TryResult, pid: str) -> list[Any]:
    return [p for p in result.report.pitfalls if p.id == pid]
