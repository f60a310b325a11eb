"""labkit — a notebook-first GitOps simulation and learning lab.

The curated public API.  Layers (see docs/ARCHITECTURE.md):

* ``labkit.sim`` — the embedded Kubernetes simulator (``SimCluster``) in virtual time;
* ``labkit.engine`` — the dialect-free plan / apply / prune / health stages;
* ``labkit.gitops`` — real git repositories (``ManifestRepo``), webhooks, kustomize;
* ``labkit.flux`` — the Flux dialect (``FluxSystem``);
* ``labkit.events`` — the one event log every component writes to.
"""
from labkit.cluster import Cluster
from labkit.errors import ApiError, LabkitError, PermanentError, RetryAfter, TemporaryError
from labkit.events import Event, EventLog
from labkit.flux.system import FluxSystem, FluxTimings
from labkit.gitops.repo import ManifestRepo
from labkit.sim.cluster import SimCluster

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "Cluster",
    "Event",
    "EventLog",
    "FluxSystem",
    "FluxTimings",
    "LabkitError",
    "ManifestRepo",
    "PermanentError",
    "RetryAfter",
    "SimCluster",
    "TemporaryError",
    "__version__",
]
