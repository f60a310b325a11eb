"""``SimCluster``: the embedded Kubernetes cluster behind the ``Cluster`` seam.

A ``SimCluster`` bundles one virtual clock (a SimPy environment), one event log,
the API store (``labkit.sim.store.ApiStore``) and the controllers that run as clock
processes (Deployment, ReplicaSet, Pod lifecycle/kubelet, HPA, Job,
StatefulSet ...; see ``labkit.sim.controllers``).  It implements
``labkit.core.cluster.Cluster`` by delegating to the store, so the GitOps engine talks
to it exactly as it talks to a real cluster.

Beyond the seam it offers what a lab needs and a real cluster gives through
kubectl: ``kubectl_edit`` and ``kubectl_scale`` (Update operations under their own
field managers, the 2 a.m. hotfix), ``run(until=...)`` / ``advance(seconds)`` to
move virtual time, and the scenario inputs — the simulated image ``registry``
(which tags exist, pull times) and the ``load`` model (offered load per workload
over time) the HPA reacts to.

Everything is seeded: two clusters built with the same seed and driven the same
way produce the same objects, uids, times and event log.
"""
from __future__ import annotations

from typing import Any, Callable

import simpy

from labkit.core import clock as clocks
from labkit.core.events import EventLog
from labkit.sim import fieldset
from labkit.sim.load import LoadModel
from labkit.sim.registry import ImageRegistry
from labkit.sim.store import ApiStore
from labkit.sim.timings import Timings


class SimCluster:
    """An embedded, virtual-time Kubernetes cluster (see module docstring)."""

    def __init__(
        self,
        *,
        seed: int = 0,
        name: str = "sim",
        env: simpy.Environment | None = None,
        log: EventLog | None = None,
        registry: ImageRegistry | None = None,
        load: LoadModel | None = None,
        timings: Timings | None = None,
        controllers: bool = True,
    ):
        self.name = name
        self.seed = seed
        self.env = env if env is not None else clocks.virtual()
        self.log = log if log is not None else EventLog(lambda: self.env.now)
        if log is not None and log.now() == 0.0:
            log.bind_clock(lambda: self.env.now)
        self.store = ApiStore(self.env, self.log, seed=seed)
        # scenario inputs (see labkit.sim.registry / load / timings): permissive registry,
        # no offered load, KWOK-like default durations unless the caller passes its own
        self.registry = registry if registry is not None else ImageRegistry()
        self.load = load if load is not None else LoadModel(seed=seed)
        self.timings = timings if timings is not None else Timings()
        self.controllers: list[Any] = []
        if controllers:
            from labkit.sim.controllers import start_controllers

            start_controllers(self)

    # ------------------------------------------------------------------ the seam

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        return self.store.get(api_version, kind, name, namespace)

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: dict[str, str] | None = None) -> list[dict]:
        return self.store.list(api_version, kind, namespace, label_selector)

    def apply(self, obj: dict, *, field_manager: str, force: bool = False, dry_run: bool = False) -> dict:
        return self.store.apply(obj, field_manager=field_manager, force=force, dry_run=dry_run)

    def update(self, obj: dict, *, field_manager: str, dry_run: bool = False) -> dict:
        return self.store.update(obj, field_manager=field_manager, dry_run=dry_run)

    def create(self, obj: dict, *, field_manager: str, dry_run: bool = False) -> dict:
        """POST: a new object (``metadata.generateName`` honoured); AlreadyExists if it is there."""
        return self.store.create(obj, manager=field_manager, dry_run=dry_run)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
               propagation: str = "Background", dry_run: bool = False) -> dict | None:
        return self.store.delete(api_version, kind, name, namespace, propagation=propagation, dry_run=dry_run)

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        return self.store.is_namespaced(api_version, kind)

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str | None, status: dict, *,
                     field_manager: str) -> dict:
        return self.store.patch_status(api_version, kind, name, namespace, status, field_manager=field_manager)

    def watch(self, api_version: str, kind: str, callback: Callable[[str, dict], None]) -> None:
        """Call ``callback(event_type, object_copy)`` on every change of that kind."""
        info = self.store.info(api_version, kind)
        self.store.watch(info.group, kind, lambda t, o: callback(t, fieldset.copy(o)))

    # ------------------------------------------------------------------ kubectl-style helpers

    def kubectl_edit(self, api_version: str, kind: str, name: str, namespace: str | None,
                     mutate: Callable[[dict], None], *, field_manager: str = "kubectl-edit") -> dict:
        """Read, mutate in place with ``mutate(obj)``, write back as an Update (like ``kubectl edit``)."""
        obj = self.store.get(api_version, kind, name, namespace)
        if obj is None:
            from labkit.core.errors import not_found

            raise not_found(api_version, kind, name)
        obj["metadata"].pop("managedFields", None)
        mutate(obj)
        return self.store.update(obj, field_manager=field_manager)

    def kubectl_scale(self, api_version: str, kind: str, name: str, namespace: str | None, replicas: int, *,
                      field_manager: str = "kubectl-scale") -> dict:
        return self.store.scale(api_version, kind, name, namespace or "default", replicas, field_manager=field_manager)

    # ------------------------------------------------------------------ time

    @property
    def now(self) -> float:
        return self.env.now

    def run(self, until: float | simpy.Event | None = None) -> None:
        """Advance virtual time to ``until`` (absolute seconds, or an event)."""
        self.env.run(until=until)

    def advance(self, seconds: float) -> None:
        self.env.run(until=self.env.now + seconds)

    def copy_of(self, obj: dict) -> dict:
        return fieldset.copy(obj)
