"""PersistentVolumeClaims: a dynamic provisioner and binder (``Pending`` → ``Bound``).

Stands in for kube-controller-manager's ``persistentvolume-binder`` and a
dynamic provisioner such as kind's ``rancher.io/local-path``: a new claim without
``spec.volumeName`` stays ``Pending`` for ``Timings.pvc_bind``, then a
PersistentVolume ``pvc-<claim uid>`` is provisioned (capacity from
``resources.requests.storage``, the claim's access modes and storage class,
``persistentVolumeReclaimPolicy: Delete``, ``claimRef`` to the claim), the claim's
``spec.volumeName`` is set with the ``pv.kubernetes.io/bind-completed`` and
``bound-by-controller`` annotations, and claim and volume both become
``Bound`` — event ``ProvisioningSucceeded`` "Successfully provisioned volume
pvc-…".  A claim naming an existing volume binds to it.  Deleting a claim
deletes its dynamically provisioned volume (reclaim policy ``Delete``).

Binding is immediate (``volumeBindingMode: Immediate``); the scheduler step in
``labkit.sim.controllers.kubelet`` holds pods until their claims are Bound.  The
``kubernetes.io/pvc-protection`` finalizer is not modelled.  Component name in
the event log: ``persistentvolume-controller``.
"""
from __future__ import annotations

from typing import Any

from labkit.core.errors import ApiError
from labkit.core.events import object_key
from labkit.sim import fieldset
from labkit.sim.controllers.common import FIELD_MANAGER
from labkit.sim.controllers.informers import Informers
from labkit.sim.timings import TimingSampler


class PersistentVolumeController:
    component = "persistentvolume-controller"

    def __init__(self, cluster: Any, informers: Informers, sampler: TimingSampler):
        self.store = cluster.store
        self.env = cluster.env
        self.log = cluster.log
        self.sampler = sampler
        informers.pvcs.on_change(self._on_pvc)

    def _on_pvc(self, ev: str, pvc: dict, info: Any) -> None:
        md = pvc["metadata"]
        if ev == "DELETED":
            vol = (pvc.get("spec") or {}).get("volumeName")
            pv = self.store.ref("", "PersistentVolume", "", vol) if vol else None
            if pv is not None and (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") == "Delete":
                self.store.delete("v1", "PersistentVolume", vol, manager=FIELD_MANAGER, render=False)
            return
        if ev != "ADDED" or (pvc.get("status") or {}).get("phase") == "Bound":
            return
        ns, name, uid = md.get("namespace", ""), md["name"], md["uid"]
        ev_ = self.env.timeout(self.sampler.draw("pvc_bind"))
        ev_.callbacks.append(lambda _e: self._bind(ns, name, uid))

    def _bind(self, ns: str, name: str, uid: str) -> None:
        pvc = self.store.ref("", "PersistentVolumeClaim", ns, name)
        if pvc is None or pvc["metadata"]["uid"] != uid or pvc["metadata"].get("deletionTimestamp"):
            return
        spec = pvc.get("spec") or {}
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        modes = spec.get("accessModes") or ["ReadWriteOnce"]
        key = object_key("PersistentVolumeClaim", ns, name)
        pv_name = spec.get("volumeName") or f"pvc-{uid}"
        try:
            if self.store.ref("", "PersistentVolume", "", pv_name) is None:
                pv = {"apiVersion": "v1", "kind": "PersistentVolume",
                      "metadata": {"name": pv_name,
                                   "annotations": {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}},
                      "spec": {"capacity": {"storage": storage}, "accessModes": list(modes),
                               "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": name,
                                            "namespace": ns, "uid": uid},
                               "persistentVolumeReclaimPolicy": "Delete",
                               "storageClassName": spec.get("storageClassName") or "standard",
                               "volumeMode": spec.get("volumeMode", "Filesystem"),
                               "hostPath": {"path": f"/var/local-path-provisioner/{pv_name}_{ns}_{name}",
                                            "type": "DirectoryOrCreate"}}}
                self.store.create(pv, manager="local-path-provisioner", render=False)
                self.log.record(self.component, "ProvisioningSucceeded", key,
                                detail={"type": "Normal",
                                        "message": f"Successfully provisioned volume {pv_name}"})
            live_pv = self.store.ref("", "PersistentVolume", "", pv_name)
            if live_pv is not None:
                self.store.update_status(live_pv, {"phase": "Bound"}, field_manager=FIELD_MANAGER)
            if spec.get("volumeName") != pv_name:
                bound = fieldset.copy(pvc)
                bound["spec"]["volumeName"] = pv_name
                ann = bound["metadata"].setdefault("annotations", {})
                ann["pv.kubernetes.io/bind-completed"] = "yes"
                ann["pv.kubernetes.io/bound-by-controller"] = "yes"
                ann["volume.kubernetes.io/storage-provisioner"] = "rancher.io/local-path"
                self.store.update(bound, field_manager=FIELD_MANAGER, render=False)
            live = self.store.ref("", "PersistentVolumeClaim", ns, name)
            if live is not None:
                self.store.update_status(live, {"phase": "Bound", "accessModes": list(modes),
                                                "capacity": {"storage": storage}}, field_manager=FIELD_MANAGER)
        except ApiError as exc:
            self.log.record(self.component, "ProvisioningFailed", key,
                            detail={"type": "Warning", "message": exc.message})
