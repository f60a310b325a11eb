"""The ReplicaSet controller: keep ``spec.replicas`` active pods, report how many are ready.

Mirrors ``pkg/controller/replicaset/replica_set.go`` (``syncReplicaSet``,
``manageReplicas``, ``calculateStatus``) and the pod ranking of
``pkg/controller/controller_utils.go``:

* The pods a ReplicaSet manages are those whose controller ``ownerReference``
  points at it; an orphan pod in the namespace whose labels match the selector
  is *adopted* (ownerReference added by the controller), as
  ``PodControllerRefManager.ClaimPods`` does.
* **Active** pods are those neither terminal (Succeeded / Failed) nor being
  deleted.  Too few → create the difference from ``spec.template`` with
  ``generateName: <rs>-`` and a controller ownerReference (``controller: true``,
  ``blockOwnerDeletion: true``); event ``SuccessfulCreate`` "Created pod:
  web-5d9c8f7b4-x2x8k".  Too many → delete the surplus in the order of
  ``ActivePodsWithRanks``: unscheduled before scheduled; Pending before Running;
  not ready before ready; lower ``controller.kubernetes.io/pod-deletion-cost``
  first; ready for less time before ready for longer; more restarts first;
  newer before older — event ``SuccessfulDelete`` "Deleted pod: ...".  (Upstream
  buckets the "ready for" and creation times logarithmically when
  ``LogarithmicScaleDown`` is on; labkit compares them exactly.)  Deleted pods
  terminate gracefully on the node and stop counting at once.
* Nothing is created while the ReplicaSet itself is being deleted.
* Status: ``replicas`` (active pods), ``fullyLabeledReplicas``,
  ``readyReplicas``, ``availableReplicas`` (ready for at least
  ``minReadySeconds``) and ``observedGeneration``; zero counts are omitted like
  the API's ``omitempty``.  When some pods are ready but not yet available the
  ReplicaSet is re-synced exactly when the next one becomes available.

Component name in the event log: ``replicaset-controller``.
"""
from __future__ import annotations

from typing import Any

from labkit.core.events import object_key
from labkit.sim.controllers.common import FIELD_MANAGER, new_controller_ref, selector_matches
from labkit.sim.controllers.informers import Informers, PodInfo
from labkit.sim.controllers.workqueue import Controller
from labkit.sim import fieldset

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def pod_from_template(template: dict, *, namespace: str, owner: dict, generate_name: str | None = None,
                      name: str | None = None, extra_labels: dict | None = None) -> dict:
    """``controller.GetPodFromTemplate``: a Pod from a PodTemplateSpec with a controller ownerReference."""
    tmd = template.get("metadata") or {}
    md: dict[str, Any] = {"namespace": namespace}
    if name:
        md["name"] = name
    else:
        md["generateName"] = generate_name or owner["metadata"]["name"] + "-"
    labels = dict(tmd.get("labels") or {})
    if extra_labels:
        labels.update(extra_labels)
    md["labels"] = labels
    if tmd.get("annotations"):
        md["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        md["finalizers"] = list(tmd["finalizers"])
    md["ownerReferences"] = [new_controller_ref(owner)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": fieldset.copy(template.get("spec") or {})}


def deletion_order(p: PodInfo) -> tuple:
    """Sort key: pods to delete first come first (``controller.ActivePodsWithRanks.Less``)."""
    return (1 if p.node else 0,
            _PHASE_RANK.get(p.phase, 2),
            1 if p.ready else 0,
            p.deletion_cost,
            -(p.ready_transition or 0.0) if p.ready else 0.0,
            -p.restarts,
            -p.created,
            p.name)


class ReplicaSetController(Controller):
    component = "replicaset-controller"

    def __init__(self, cluster: Any, informers: Informers):
        super().__init__(cluster)
        self.pods = informers.pods
        self.replicasets = informers.replicasets
        self.replicasets.on_change(self._on_rs)
        self.pods.on_change(self._on_pod)

    # ------------------------------------------------------------------ handlers
    def _on_rs(self, ev: str, obj: dict, info: Any) -> None:
        md = obj["metadata"]
        self.queue.add((md.get("namespace", ""), md["name"]))

    def _on_pod(self, ev: str, obj: dict, info: PodInfo) -> None:
        md = obj["metadata"]
        ns = md.get("namespace", "")
        if info is not None and info.owner_uid:
            rs = self.replicasets.by_uid.get(info.owner_uid)
            if rs is not None:
                self.queue.add((ns, rs["metadata"]["name"]))
            return
        if ev != "DELETED" and info is not None:
            for rs in self.replicasets.in_namespace(ns):
                if selector_matches((rs.get("spec") or {}).get("selector"), info.labels):
                    self.queue.add((ns, rs["metadata"]["name"]))

    def object_key(self, key: Any) -> str:
        return object_key("ReplicaSet", key[0], key[1])

    # ------------------------------------------------------------------ sync
    def sync(self, key: tuple[str, str]) -> None:
        ns, name = key
        rs = self.store.ref("apps", "ReplicaSet", ns, name)
        if rs is None:
            return
        md, spec = rs["metadata"], rs.get("spec") or {}
        uid = md["uid"]
        deleting = bool(md.get("deletionTimestamp"))
        if not deleting:
            self._adopt(rs)
        pods = self.pods.owned_info(uid)
        active = [p for p in pods if p.active]
        want = spec.get("replicas", 1)
        now = self.env.now
        if not deleting:
            diff = len(active) - want
            if diff < 0:
                template = spec.get("template") or {}
                for _ in range(-diff):
                    pod = pod_from_template(template, namespace=ns, owner=rs)
                    created = self.store.create(pod, manager=FIELD_MANAGER, render=False)
                    self.event("SuccessfulCreate", self.object_key(key),
                               f"Created pod: {created['metadata']['name']}")
                rs = self.store.ref("apps", "ReplicaSet", ns, name) or rs
                active = [p for p in self.pods.owned_info(uid) if p.active]
            elif diff > 0:
                victims = sorted(active, key=deletion_order)[:diff]
                for p in victims:
                    self.store.delete("v1", "Pod", p.name, ns, manager=FIELD_MANAGER, render=False)
                    self.event("SuccessfulDelete", self.object_key(key), f"Deleted pod: {p.name}")
                rs = self.store.ref("apps", "ReplicaSet", ns, name) or rs
                active = [p for p in self.pods.owned_info(uid) if p.active]
        self._update_status(rs, active, now)

    def _adopt(self, rs: dict) -> None:
        ns = rs["metadata"].get("namespace", "")
        orphans = self.pods.orphans_in(ns)
        if not orphans:
            return
        selector = (rs.get("spec") or {}).get("selector")
        for pod in orphans:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            if selector_matches(selector, pod["metadata"].get("labels")):
                refs = list(pod["metadata"].get("ownerReferences") or []) + [new_controller_ref(rs)]
                self.store.set_metadata(pod, field_manager=FIELD_MANAGER, owner_references=refs, render=False)

    def _update_status(self, rs: dict, active: list[PodInfo], now: float) -> None:
        spec = rs.get("spec") or {}
        min_ready = spec.get("minReadySeconds", 0) or 0
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        ready = available = labeled = 0
        next_available: float | None = None
        for p in active:
            if all(p.labels.get(k) == v for k, v in template_labels.items()):
                labeled += 1
            if p.ready:
                ready += 1
                if p.available(min_ready, now):
                    available += 1
                elif p.ready_transition is not None:
                    t = p.ready_transition + min_ready
                    if next_available is None or t < next_available:
                        next_available = t
        status: dict[str, Any] = {"replicas": len(active)}
        if labeled:
            status["fullyLabeledReplicas"] = labeled
        if ready:
            status["readyReplicas"] = ready
        if available:
            status["availableReplicas"] = available
        status["observedGeneration"] = rs["metadata"].get("generation", 1)
        old = rs.get("status") or {}
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        if old != status:
            self.store.update_status(rs, status, field_manager=FIELD_MANAGER)
        if next_available is not None:
            md = rs["metadata"]
            self.queue.add_after((md.get("namespace", ""), md["name"]), next_available - now)
