"""What Flux's reconcilers need from the controllers' front end, as a typed protocol.

``GitRepositoryReconciler`` (``labkit.flux.source``) and
``KustomizationReconciler`` (``labkit.flux.kustomize``) are built and driven by
``FluxSystem`` (``labkit.flux.system``), and they call back into it for the
services a controller manager shares: the clock and the event log, the seeded
random streams, artifact storage, the status writer, the kustomize renderer.
Typing that back-reference as ``FluxSystem`` would make each reconciler module
import the module that imports it — an import cycle, even behind
``TYPE_CHECKING``.  This protocol names the services instead; ``FluxSystem``
satisfies it structurally, and a test double could too.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Protocol

import simpy

from labkit.core.cluster import Cluster
from labkit.engine.apply import EngineTimings
from labkit.core.events import EventLog
from labkit.gitops.render import Renderer


class FluxServices(Protocol):
    """The services ``FluxSystem`` gives its reconcilers."""

    env: simpy.Environment
    cluster: Cluster
    log: EventLog
    timings: Any  # FluxTimings: seeded durations (``draw(rng, name)``)
    engine_timings: EngineTimings
    interval_jitter: float
    renderer: Renderer

    def rng(self, stream: str) -> random.Random: ...

    def timestamp(self) -> str: ...

    def write_status(self, api_version: str, kind: str, name: str, namespace: str, status: dict) -> None: ...

    def artifact_for(self, kind: str, namespace: str, name: str) -> tuple[str, str, Path] | None: ...

    def store_artifact(self, namespace: str, name: str, sha: str, path: Path) -> None: ...

    def git_remote(self, url: str) -> Any: ...

    def source_changed(self, namespace: str, name: str) -> None: ...
