"""The simulated cluster's controllers, running as processes on the virtual clock.

``start_controllers(cluster)`` wires up, on one ``SimCluster``:

* ``Informers`` (``informers.py``) — indexed views of pods, ReplicaSets,
  ControllerRevisions and PVCs fed by the store's watches;
* the node: ``Kubelet`` (``kubelet.py``) — scheduling, image pulls, container
  lifecycle, readiness, crash loops and graceful termination;
* ``DeploymentController`` (``deployment.py``), ``ReplicaSetController``
  (``replicaset.py``), ``HorizontalPodAutoscalerController`` (``hpa.py``),
  ``JobController`` (``job.py``), ``StatefulSetController`` (``statefulset.py``)
  and ``PersistentVolumeController`` (``pvc.py``).

Each controller follows client-go's shape (``workqueue.py``): watch handlers only
enqueue keys; a SimPy worker process syncs them, reading informers and writing
through the store as ``kube-controller-manager`` (pod status as ``kubelet``,
bindings as ``kube-scheduler``).  Every action is recorded in the run's event log
under the real component's name (``deployment-controller``,
``replicaset-controller``, ``kubelet``, ``default-scheduler``,
``horizontal-pod-autoscaler``, ``job-controller``, ``statefulset-controller``,
``persistentvolume-controller``) with the reason and message Kubernetes uses.

The kubelet terminates pods gracefully, so ``start_controllers`` switches the
store to graceful pod deletion (``ApiStore.graceful_pods``).  Namespace
termination and garbage collection belong to the store itself.

Durations come from ``cluster.timings`` (``labkit.sim.timings.Timings``) drawn with
the cluster's seed, image behaviour from ``cluster.registry``
(``labkit.sim.registry.ImageRegistry``) and CPU demand from ``cluster.load``
(``labkit.sim.load.LoadModel``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labkit.sim.controllers.deployment import DeploymentController
from labkit.sim.controllers.hpa import HorizontalPodAutoscalerController
from labkit.sim.controllers.informers import Informers
from labkit.sim.controllers.job import JobController
from labkit.sim.controllers.kubelet import Kubelet
from labkit.sim.controllers.pvc import PersistentVolumeController
from labkit.sim.controllers.replicaset import ReplicaSetController
from labkit.sim.controllers.statefulset import StatefulSetController
from labkit.sim.controllers.workqueue import Controller

__all__ = ["start_controllers", "ControllerSet", "Controller", "Informers", "Kubelet",
           "DeploymentController", "ReplicaSetController", "HorizontalPodAutoscalerController", "JobController",
           "StatefulSetController", "PersistentVolumeController"]


@dataclass
class ControllerSet:
    """Handles on the running controllers of one cluster (``cluster.controllers``)."""

    informers: Informers
    kubelet: Kubelet
    deployment: DeploymentController
    replicaset: ReplicaSetController
    hpa: HorizontalPodAutoscalerController
    job: JobController
    statefulset: StatefulSetController
    pv: PersistentVolumeController

    def __iter__(self):
        return iter([self.kubelet, self.deployment, self.replicaset, self.hpa, self.job, self.statefulset, self.pv])


def start_controllers(cluster: Any) -> ControllerSet:
    """Start every controller of ``cluster`` as SimPy processes; returns (and attaches) a ``ControllerSet``."""
    from labkit.sim.load import LoadModel
    from labkit.sim.registry import ImageRegistry
    from labkit.sim.timings import Timings

    if getattr(cluster, "timings", None) is None:
        cluster.timings = Timings()
    if getattr(cluster, "registry", None) is None:
        cluster.registry = ImageRegistry()
    if getattr(cluster, "load", None) is None:
        cluster.load = LoadModel(seed=getattr(cluster, "seed", 0))
    store = cluster.store
    store.graceful_pods = True
    sampler = cluster.timings.sampler(getattr(cluster, "seed", 0))
    informers = Informers(store)
    kubelet = Kubelet(cluster, informers, sampler)
    rs = ReplicaSetController(cluster, informers)
    dep = DeploymentController(cluster, informers)
    hpa = HorizontalPodAutoscalerController(cluster, informers, cluster.timings)
    job = JobController(cluster, informers, cluster.timings)
    sts = StatefulSetController(cluster, informers)
    pv = PersistentVolumeController(cluster, informers, sampler)
    cs = ControllerSet(informers, kubelet, dep, rs, hpa, job, sts, pv)
    existing = getattr(cluster, "controllers", None)
    if isinstance(existing, list):
        existing.extend(cs)
    cluster.controller_set = cs
    cluster.kubelet = kubelet
    return cs
