"""The clusters Argo CD deploys to: Argo's cluster secrets, and how an Application names one.

In Argo CD a destination cluster is a Secret labelled
``argocd.argoproj.io/secret-type: cluster`` carrying a name, a server URL and
labels; the management cluster itself is always there as ``in-cluster`` with
server ``https://kubernetes.default.svc``.  ``Destinations`` is that registry:
``add`` registers a cluster (refusing one on another SimPy environment — the
whole lab runs on one clock — and a server URL registered under another name),
``destination(spec)`` resolves an Application's ``spec.destination`` by
``name`` or by ``server`` with Argo's own error messages, and the
ApplicationSet cluster generator iterates ``entries`` and selects on their
labels.

The registry is a collaborator of its own, rather than a dictionary on
``ArgoSystem``, so that the application controller, the ApplicationSet
controller and the live-state cache (``labkit.argo.cluster_cache``) can each be
handed just this.  Who must hear about a new cluster (the ApplicationSets, for
their cluster generators) is the caller's business: ``ArgoSystem.add_cluster``
tells them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from labkit.argo.api import ApplicationSpec
from labkit.core.cluster import Cluster
from labkit.core.errors import LabkitError

__all__ = ["ClusterEntry", "Destinations", "IN_CLUSTER", "IN_CLUSTER_SERVER"]

IN_CLUSTER = "in-cluster"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"


@dataclass
class ClusterEntry:
    """One registered cluster (an Argo cluster secret): name, server URL, the cluster, labels, annotations."""

    name: str
    server: str
    cluster: Any
    labels: dict[str, str]
    annotations: dict[str, str]


class Destinations:
    """The registry of destination clusters, ``in-cluster`` included once it is added (see module docstring)."""

    def __init__(self, env: Any):
        self.env = env
        self.entries: dict[str, ClusterEntry] = {}

    def add(self, name: str, server: str, cluster: Cluster, *, labels: dict[str, str] | None = None,
            annotations: dict[str, str] | None = None) -> ClusterEntry:
        """Register (or replace) cluster ``name``; LabkitError on another environment or a taken server URL."""
        cenv = getattr(cluster, "env", None)
        if cenv is not None and cenv is not self.env:
            raise LabkitError(f"cluster {name!r} runs on another SimPy environment: build every SimCluster "
                              "with env=<the shared environment>", field="cluster")
        for other in self.entries.values():
            if other.server == server and other.name != name:
                raise LabkitError(f"server {server} is already registered as cluster {other.name!r}", field="server")
        entry = ClusterEntry(name, server, cluster, dict(labels or {}), dict(annotations or {}))
        self.entries[name] = entry
        return entry

    def get(self, name: str) -> ClusterEntry | None:
        return self.entries.get(name)

    def __iter__(self) -> Iterator[ClusterEntry]:
        return iter(self.entries.values())

    def cluster(self, name: str) -> Any:
        """The cluster registered as ``name`` (KeyError if there is none)."""
        return self.entries[name].cluster

    def destination(self, spec: ApplicationSpec) -> tuple[str, Any]:
        """``(cluster name, cluster)`` of an Application's destination; LabkitError naming the field if none."""
        d = spec.destination
        if d.name:
            entry = self.entries.get(d.name)
            if entry is None:
                raise LabkitError(f"unable to find destination server: there are no clusters with this name: {d.name}",
                                  field="spec.destination.name")
            return entry.name, entry.cluster
        for entry in self.entries.values():
            if entry.server.rstrip("/") == d.server.rstrip("/"):
                return entry.name, entry.cluster
        raise LabkitError(f"application destination server '{d.server}' and namespace '{d.namespace}' do not match "
                          "any of the allowed destinations in project 'default'", field="spec.destination.server")

    def server_of(self, name: str) -> str:
        """The server URL of cluster ``name`` ("" if it is not registered)."""
        entry = self.entries.get(name)
        return entry.server if entry else ""
