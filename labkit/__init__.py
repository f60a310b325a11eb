"""labkit — a notebook-first GitOps simulation and learning lab.

The curated public API, loaded lazily: ``import labkit`` costs a few milliseconds and
imports nothing else of labkit's; ``labkit.SimCluster`` (or ``from labkit import
FluxSystem``) imports the module that defines the name on first use.  Importing one
engine module (``import labkit.engine.plan``) therefore never pulls in Flux, git, the
simulator or pandas through this file.

The packages, lowest layer first (``docs/ARCHITECTURE.md`` draws them; the import rules
are enforced by ``tests/test_layers.py``):

* ``labkit.core`` — errors, the event log, clocks, the ``Cluster`` seam, health, the
  reconcile driver (``core.workqueue``), the metrics/figure contract;
* ``labkit.sim`` — the embedded Kubernetes simulator (``SimCluster``) in virtual time;
* ``labkit.engine`` — the dialect-free plan / apply / prune / health stages;
* ``labkit.gitops`` — real git repositories (``ManifestRepo``), webhooks, kustomize;
* ``labkit.flux`` / ``labkit.argo`` — the two GitOps dialects;
* ``labkit.app`` — the command line, the scenario runner, ``labkit bench``.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it (imported on first attribute access)
_EXPORTS = {
    "ApiError": "labkit.core.errors",
    "LabkitError": "labkit.core.errors",
    "PermanentError": "labkit.core.errors",
    "RetryAfter": "labkit.core.errors",
    "TemporaryError": "labkit.core.errors",
    "Cluster": "labkit.core.cluster",
    "Event": "labkit.core.events",
    "EventLog": "labkit.core.events",
    "FluxSystem": "labkit.flux.system",
    "FluxTimings": "labkit.flux.system",
    "ManifestRepo": "labkit.gitops.repo",
    "SimCluster": "labkit.sim.cluster",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from labkit.core.cluster import Cluster
    from labkit.core.errors import ApiError, LabkitError, PermanentError, RetryAfter, TemporaryError
    from labkit.core.events import Event, EventLog
    from labkit.flux.system import FluxSystem, FluxTimings
    from labkit.gitops.repo import ManifestRepo
    from labkit.sim.cluster import SimCluster


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'labkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
