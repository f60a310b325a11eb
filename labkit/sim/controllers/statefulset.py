"""The StatefulSet controller: stable names, ordered start, claims per ordinal, reverse-order updates.

Follows ``pkg/controller/statefulset/stateful_set_control.go``
(``updateStatefulSet``) and ``stateful_set_utils.go``:

Identity and storage
    Pod ``<set>-<ordinal>`` for ordinals ``spec.ordinals.start`` … start +
    replicas − 1, with ``hostname`` = the pod name, ``subdomain`` =
    ``serviceName`` and the labels ``statefulset.kubernetes.io/pod-name``,
    ``apps.kubernetes.io/pod-index`` and ``controller-revision-hash``.  For every
    ``volumeClaimTemplates`` entry a PersistentVolumeClaim
    ``<template>-<set>-<ordinal>`` is created before the pod (event
    ``SuccessfulCreate`` "create Claim data-db-0 Pod db-0 in StatefulSet db
    success") and mounted in its place; the PV controller
    (``labkit.sim.controllers.pvc``) binds it.  Claims outlive their pods:
    ``persistentVolumeClaimRetentionPolicy`` ``whenDeleted: Delete`` gives them an
    ownerReference to the StatefulSet (collected with it) and ``whenScaled:
    Delete`` one to the pod being scaled away; the default ``Retain`` keeps them.

Ordering (``podManagementPolicy``)
    ``OrderedReady`` (the default): pods are created one at a time in ordinal
    order, each only once every lower ordinal is Running and Ready (and
    available for ``minReadySeconds``); scale-down removes the highest ordinal
    first, one at a time, waiting until it is gone.  A failed or succeeded pod is
    deleted and recreated.  ``Parallel``: all creations and deletions at once.

Revisions and updates
    The pod template is recorded as a ``ControllerRevision`` named
    ``<set>-<hash>``; ``status.updateRevision`` is the revision of the current
    template and ``status.currentRevision`` the one the set was at before the
    update started.  ``RollingUpdate`` replaces pods **in reverse ordinal
    order** down to ``partition``: the highest pod not at the update revision is
    deleted (``SuccessfulDelete`` "delete Pod db-2 in StatefulSet db
    successful"), recreated from the new template, and the next one waits until
    it is Running and Ready.  When every pod is updated and ready,
    ``currentRevision`` becomes the update revision.  ``OnDelete`` leaves
    replacement to the user.

Status: ``replicas``, ``readyReplicas``, ``currentReplicas``,
``updatedReplicas``, ``availableReplicas``, ``currentRevision``,
``updateRevision``, ``observedGeneration``, ``collisionCount``.  Revisions beyond
``revisionHistoryLimit`` that no pod uses are deleted.  Component name in the
event log: ``statefulset-controller``.
"""
from __future__ import annotations

from typing import Any

from labkit.core.events import object_key
from labkit.sim import fieldset
from labkit.sim.controllers.common import FIELD_MANAGER, compute_hash, new_controller_ref, selector_matches
from labkit.sim.controllers.informers import Informers, PodInfo
from labkit.sim.controllers.replicaset import pod_from_template
from labkit.sim.controllers.workqueue import Controller

REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def _ordinal(set_name: str, pod_name: str) -> int | None:
    prefix = set_name + "-"
    if not pod_name.startswith(prefix):
        return None
    tail = pod_name[len(prefix):]
    return int(tail) if tail.isdigit() else None


class StatefulSetController(Controller):
    component = "statefulset-controller"

    def __init__(self, cluster: Any, informers: Informers):
        super().__init__(cluster)
        self.pods = informers.pods
        self.revisions = informers.controller_revisions
        self.store.watch("apps", "StatefulSet", self._on_set)
        self.pods.on_change(self._on_pod)

    def _on_set(self, ev: str, obj: dict) -> None:
        md = obj["metadata"]
        self.queue.add((md.get("namespace", ""), md["name"]))

    def _on_pod(self, ev: str, pod: dict, info: PodInfo) -> None:
        if info is None or not info.owner_uid:
            return
        for r in pod["metadata"].get("ownerReferences") or ():
            if r.get("controller") and r.get("kind") == "StatefulSet":
                self.queue.add((info.namespace, r.get("name", "")))
                return

    def object_key(self, key: Any) -> str:
        return object_key("StatefulSet", key[0], key[1])

    # ------------------------------------------------------------------ revisions
    def _revisions(self, sts: dict) -> tuple[dict, dict, list[dict]]:
        md = sts["metadata"]
        ns = md.get("namespace", "")
        revs = sorted(self.revisions.owned(md["uid"]), key=lambda r: (r.get("revision", 0), r["metadata"]["name"]))
        template = fieldset.copy((sts.get("spec") or {}).get("template") or {})
        template["$patch"] = "replace"
        data = {"spec": {"template": template}}
        collision = (sts.get("status") or {}).get("collisionCount") or 0
        h = compute_hash(data, collision)
        name = f"{md['name']}-{h}"
        update = next((r for r in revs if r.get("data") == data), None)
        max_rev = max((r.get("revision", 0) for r in revs), default=0)
        if update is None:
            labels = dict(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
            labels["controller.kubernetes.io/hash"] = h
            cr = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                  "metadata": {"name": name, "namespace": ns, "labels": labels,
                               "ownerReferences": [new_controller_ref(sts)]},
                  "data": data, "revision": max_rev + 1}
            self.store.create(cr, manager=FIELD_MANAGER, render=False)
            update = self.store.ref("apps", "ControllerRevision", ns, name)
            revs.append(update)
        elif update.get("revision", 0) < max_rev:
            bumped = fieldset.copy(update)
            bumped["revision"] = max_rev + 1
            self.store.update(bumped, field_manager=FIELD_MANAGER, render=False)
            update = self.store.ref("apps", "ControllerRevision", ns, update["metadata"]["name"])
            revs = [update if r["metadata"]["name"] == update["metadata"]["name"] else r for r in revs]
        cur_name = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revs if r["metadata"]["name"] == cur_name), None) or update
        return current, update, revs

    # ------------------------------------------------------------------ pods and claims
    def _claim_name(self, tpl: dict, sts: dict, ordinal: int) -> str:
        return f"{(tpl.get('metadata') or {}).get('name', '')}-{sts['metadata']['name']}-{ordinal}"

    def _create_claims(self, sts: dict, ordinal: int, key: tuple) -> None:
        spec = sts.get("spec") or {}
        ns = sts["metadata"].get("namespace", "")
        policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        pod_name = f"{sts['metadata']['name']}-{ordinal}"
        for tpl in spec.get("volumeClaimTemplates") or ():
            claim = self._claim_name(tpl, sts, ordinal)
            if self.store.ref("", "PersistentVolumeClaim", ns, claim) is not None:
                continue
            tmd = tpl.get("metadata") or {}
            labels = dict(tmd.get("labels") or {})
            labels.update((spec.get("selector") or {}).get("matchLabels") or {})
            md: dict[str, Any] = {"name": claim, "namespace": ns, "labels": labels}
            if tmd.get("annotations"):
                md["annotations"] = dict(tmd["annotations"])
            if policy.get("whenDeleted") == "Delete":
                smd = sts["metadata"]
                md["ownerReferences"] = [{"apiVersion": sts["apiVersion"], "kind": "StatefulSet", "name": smd["name"],
                                          "uid": smd["uid"], "controller": True, "blockOwnerDeletion": True}]
            pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md,
                   "spec": fieldset.copy(tpl.get("spec") or {})}
            self.store.create(pvc, manager=FIELD_MANAGER, render=False)
            self.event("SuccessfulCreate", self.object_key(key),
                       f"create Claim {claim} Pod {pod_name} in StatefulSet {sts['metadata']['name']} success")

    def _create_pod(self, sts: dict, ordinal: int, current: dict, update: dict, key: tuple) -> None:
        spec = sts.get("spec") or {}
        strategy = spec.get("updateStrategy") or {}
        partition = ((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        use_current = strategy.get("type", "RollingUpdate") == "RollingUpdate" and \
            strategy.get("rollingUpdate") is not None and ordinal < partition
        rev = current if use_current else update
        template = fieldset.copy((rev.get("data") or {}).get("spec", {}).get("template") or spec.get("template") or {})
        template.pop("$patch", None)
        name = f"{sts['metadata']['name']}-{ordinal}"
        ns = sts["metadata"].get("namespace", "")
        pod = pod_from_template(template, namespace=ns, owner=sts, name=name,
                                extra_labels={REVISION_LABEL: rev["metadata"]["name"], POD_NAME_LABEL: name,
                                              POD_INDEX_LABEL: str(ordinal)})
        pspec = pod["spec"]
        pspec["hostname"] = name
        if spec.get("serviceName"):
            pspec["subdomain"] = spec["serviceName"]
        claims = spec.get("volumeClaimTemplates") or []
        if claims:
            names = {(t.get("metadata") or {}).get("name") for t in claims}
            vols = [v for v in pspec.get("volumes") or [] if v.get("name") not in names]
            for t in claims:
                vols.append({"name": (t.get("metadata") or {}).get("name"),
                             "persistentVolumeClaim": {"claimName": self._claim_name(t, sts, ordinal)}})
            pspec["volumes"] = vols
        self._create_claims(sts, ordinal, key)
        self.store.create(pod, manager=FIELD_MANAGER, render=False)
        self.event("SuccessfulCreate", self.object_key(key),
                   f"create Pod {name} in StatefulSet {sts['metadata']['name']} successful")

    def _delete_pod(self, sts: dict, p: PodInfo, key: tuple, *, scaled_away: bool = False) -> None:
        spec = sts.get("spec") or {}
        if scaled_away and (spec.get("persistentVolumeClaimRetentionPolicy") or {}).get("whenScaled") == "Delete":
            ordinal = _ordinal(sts["metadata"]["name"], p.name)
            for t in spec.get("volumeClaimTemplates") or ():
                claim = self.store.ref("", "PersistentVolumeClaim", p.namespace, self._claim_name(t, sts, ordinal))
                if claim is not None:
                    refs = [r for r in claim["metadata"].get("ownerReferences") or () if r.get("kind") != "Pod"]
                    refs.append({"apiVersion": "v1", "kind": "Pod", "name": p.name, "uid": p.uid,
                                 "controller": False, "blockOwnerDeletion": True})
                    self.store.set_metadata(claim, field_manager=FIELD_MANAGER, owner_references=refs, render=False)
        self.store.delete("v1", "Pod", p.name, p.namespace, manager=FIELD_MANAGER, render=False)
        self.event("SuccessfulDelete", self.object_key(key),
                   f"delete Pod {p.name} in StatefulSet {sts['metadata']['name']} successful")

    def _adopt_orphans(self, sts: dict) -> None:
        """``ClaimPods`` / ``AdoptControllerRevision``: matching orphans become the set's again.

        After ``kubectl delete sts --cascade=orphan`` the pods and ControllerRevisions
        have lost their ownerReference; a StatefulSet created again with the same
        selector adopts them (pods only when named as one of its ordinals, upstream's
        ``isMemberOf``), so the running pods are kept rather than recreated.
        """
        md = sts["metadata"]
        ns = md.get("namespace", "")
        selector = (sts.get("spec") or {}).get("selector")
        for informer, pods in ((self.revisions, False), (self.pods, True)):
            for obj in informer.orphans_in(ns):
                omd = obj["metadata"]
                if omd.get("deletionTimestamp") or (pods and _ordinal(md["name"], omd["name"]) is None):
                    continue
                if selector_matches(selector, omd.get("labels")):
                    refs = list(omd.get("ownerReferences") or []) + [new_controller_ref(sts)]
                    self.store.set_metadata(obj, field_manager=FIELD_MANAGER, owner_references=refs, render=False)

    # ------------------------------------------------------------------ sync
    def sync(self, key: tuple[str, str]) -> None:
        ns, name = key
        sts = self.store.ref("apps", "StatefulSet", ns, name)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        now = self.env.now
        spec = sts.get("spec") or {}
        self._adopt_orphans(sts)
        current, update, revs = self._revisions(sts)
        sts = self.store.ref("apps", "StatefulSet", ns, name) or sts
        replicas = spec.get("replicas", 1)
        start = (spec.get("ordinals") or {}).get("start", 0) or 0
        min_ready = spec.get("minReadySeconds", 0) or 0
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        by_ordinal: dict[int, PodInfo] = {}
        for p in self.pods.owned_info(sts["metadata"]["uid"]):
            o = _ordinal(name, p.name)
            if o is not None:
                by_ordinal[o] = p
        wanted = range(start, start + replicas)
        next_available: float | None = None
        stop = False
        for o in wanted:
            p = by_ordinal.get(o)
            if p is None:
                self._create_pod(sts, o, current, update, key)
                if monotonic:
                    stop = True
                    break
                continue
            if p.phase in ("Failed", "Succeeded") and not p.terminating:
                self._delete_pod(sts, p, key)
                if monotonic:
                    stop = True
                    break
                continue
            if p.terminating or p.phase != "Running" or not p.ready:
                if monotonic:
                    stop = True
                    break
                continue
            if not p.available(min_ready, now):
                if p.ready_transition is not None:
                    t = p.ready_transition + min_ready
                    next_available = t if next_available is None else min(next_available, t)
                if monotonic:
                    stop = True
                    break
        if not stop:
            condemned = sorted((o for o in by_ordinal if o not in wanted), reverse=True)
            for o in condemned:
                p = by_ordinal[o]
                if p.terminating:
                    if monotonic:
                        stop = True
                        break
                    continue
                self._delete_pod(sts, p, key, scaled_away=True)
                if monotonic:
                    stop = True
                    break
        strategy = spec.get("updateStrategy") or {}
        if not stop and strategy.get("type", "RollingUpdate") == "RollingUpdate":
            partition = (strategy.get("rollingUpdate") or {}).get("partition") or 0
            for o in reversed(list(wanted)):
                if o - start < partition:
                    break
                p = by_ordinal.get(o)
                if p is None:
                    break
                if p.labels.get(REVISION_LABEL) != update["metadata"]["name"] and not p.terminating:
                    self._delete_pod(sts, p, key)
                    break
                if p.terminating or p.phase != "Running" or not p.ready or not p.available(min_ready, now):
                    break
        self._update_status(sts, current, update, now)
        self._truncate_history(sts, current, update, revs)
        if next_available is not None:
            self.queue.add_after(key, next_available - now)

    def _update_status(self, sts: dict, current: dict, update: dict, now: float) -> None:
        spec = sts.get("spec") or {}
        min_ready = spec.get("minReadySeconds", 0) or 0
        pods = [p for p in self.pods.owned_info(sts["metadata"]["uid"])
                if _ordinal(sts["metadata"]["name"], p.name) is not None]
        cur_name, upd_name = current["metadata"]["name"], update["metadata"]["name"]
        n = ready = available = n_current = n_updated = 0
        for p in pods:
            n += 1
            if p.phase == "Running" and p.ready and not p.terminating:
                ready += 1
                if p.available(min_ready, now):
                    available += 1
            if not p.terminating:
                rev = p.labels.get(REVISION_LABEL)
                if rev == cur_name:
                    n_current += 1
                if rev == upd_name:
                    n_updated += 1
        if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate" and \
                n_updated == n and ready == n and n == spec.get("replicas", 1):
            n_current, cur_name = n_updated, upd_name
        status: dict[str, Any] = {"observedGeneration": sts["metadata"].get("generation", 1), "replicas": n}
        if ready:
            status["readyReplicas"] = ready
        if n_current:
            status["currentReplicas"] = n_current
        if n_updated:
            status["updatedReplicas"] = n_updated
        status["currentRevision"] = cur_name
        status["updateRevision"] = upd_name
        status["collisionCount"] = (sts.get("status") or {}).get("collisionCount") or 0
        status["availableReplicas"] = available
        if status != (sts.get("status") or {}):
            self.store.update_status(sts, status, field_manager=FIELD_MANAGER)

    def _truncate_history(self, sts: dict, current: dict, update: dict, revs: list[dict]) -> None:
        limit = (sts.get("spec") or {}).get("revisionHistoryLimit", 10)
        live = {current["metadata"]["name"], update["metadata"]["name"]}
        for p in self.pods.owned_info(sts["metadata"]["uid"]):
            if p.labels.get(REVISION_LABEL):
                live.add(p.labels[REVISION_LABEL])
        history = [r for r in revs if r["metadata"]["name"] not in live]
        for r in history[:max(0, len(history) - limit)]:
            self.store.delete("apps/v1", "ControllerRevision", r["metadata"]["name"], r["metadata"].get("namespace"),
                              manager=FIELD_MANAGER, render=False)
