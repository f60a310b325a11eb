"""The embedded Kubernetes simulator: API store, server-side apply, admission and controllers on a virtual clock."""
from labkit.sim.cluster import SimCluster
from labkit.sim.store import ApiStore

__all__ = ["SimCluster", "ApiStore"]
