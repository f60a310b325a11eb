"""Faults in the build step: kustomize that does not finish in time.

``FaultyRenderer(inner, plan, rng)`` wraps a ``labkit.gitops.render.Renderer``
(what ``FluxSystem.renderer`` holds) and, when the plan says
``render-timeout``, raises ``RenderTimeoutError`` — the error the real
``render`` raises when ``kubectl kustomize`` outlives its timeout — instead of
rendering.  Timeouts are not cached by ``Renderer`` (only deterministic
failures are), so the next attempt renders for real once the fault stops;
the wrapper keeps that property by never touching the cache.

To exercise the *real* timeout path instead of a simulated one, build a
``Renderer(kubectl=<a script that sleeps>, timeout=<small>)``; the reliability
tests do both.
"""
from __future__ import annotations

import os
import random
from typing import Any, Callable, Mapping

from labkit.faults.plan import FaultPlan
from labkit.gitops.render import RenderTimeoutError

__all__ = ["FaultyRenderer"]


class FaultyRenderer:
    """A ``Renderer`` whose renders time out as a ``FaultPlan`` says (see the module docstring)."""

    def __init__(self, inner: Any, faults: FaultPlan, rng: random.Random, *, env: Any = None,
                 clock: Callable[[], float] | None = None):
        self.inner = inner
        self.faults = faults
        self.rng = rng
        if clock is None:
            clock = (lambda: float(env.now)) if env is not None else (lambda: 0.0)
        self._now = clock

    def __getattr__(self, item: str) -> Any:
        if item == "inner":
            raise AttributeError(item)
        return getattr(self.inner, item)

    def gate(self, directory: str | os.PathLike[str]) -> None:
        """Raise ``RenderTimeoutError`` when the plan says this render times out (for generators without ``render``,
        such as Argo's repo-server: ``argo.repo_server.gate = faulty_renderer.gate``)."""
        self._gate(directory)

    def _gate(self, directory: str | os.PathLike[str]) -> None:
        display = os.fspath(directory)
        fault = self.faults.draw("render", "render", "Kustomization", self._now(), self.rng, obj=display)
        if fault is not None:
            raise RenderTimeoutError(display, float(getattr(self.inner, "timeout", 30.0)))

    def render(self, directory: str | os.PathLike[str], *, root: Any = None, key: str | None = None,
               overrides: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self._gate(directory)
        return self.inner.render(directory, root=root, key=key, overrides=overrides)

    def render_documents(self, directory: str | os.PathLike[str], *, root: Any = None, key: str | None = None,
                         overrides: Mapping[str, Any] | None = None) -> list[str]:
        self._gate(directory)
        return self.inner.render_documents(directory, root=root, key=key, overrides=overrides)
