"""The Deployment controller: ReplicaSets per template, rolling updates, rollout status.

A port of ``pkg/controller/deployment`` (``deployment_controller.go``,
``sync.go``, ``rolling.go``, ``recreate.go``, ``progress.go`` and
``util/deployment_util.go``), function for function, because every number a
GitOps user watches during a rollout comes out of these rules.

ReplicaSets and revisions (``sync.go: getNewReplicaSet``)
    The Deployment owns one ReplicaSet per distinct pod template, named
    ``<deployment>-<pod-template-hash>``; the hash (``controller.ComputeHash``:
    FNV-32a of the template, decimal digits mapped onto
    ``bcdfghjklmnpqrstvwxz2456789``) is also added as the ``pod-template-hash``
    label to the ReplicaSet's selector, template and labels, so the
    ReplicaSets' pods never overlap.  ReplicaSets carry a controller
    ownerReference (``controller: true``, ``blockOwnerDeletion: true``) and the
    annotations ``deployment.kubernetes.io/revision`` (one more than the highest
    revision among the old ReplicaSets), ``desired-replicas`` and
    ``max-replicas`` (replicas + maxSurge, used by proportional scaling).  When
    the template goes back to one an old ReplicaSet already has (a rollback, or
    reverting a commit), that ReplicaSet becomes the new one again: it gets the
    next revision and its previous revision is appended to
    ``deployment.kubernetes.io/revision-history``.  The Deployment mirrors the
    new ReplicaSet's revision in its own ``revision`` annotation.  Creating a
    new ReplicaSet sets ``Progressing=True/NewReplicaSetCreated`` ("Created new
    replica set "web-5d9c8f7b4""), finding one with no Progressing condition yet
    ``FoundNewReplicaSet``.

Rolling update (``rolling.go``)
    Each sync either scales up or scales down, never both, and returns:
    *scale up* the new ReplicaSet to at most ``replicas + maxSurge`` pods in total
    (counting ``spec.replicas`` of all ReplicaSets) and never beyond
    ``replicas``; otherwise *scale down* old ReplicaSets — first old replicas
    that are not available ("cleanupUnhealthyReplicas", oldest ReplicaSet
    first), then available ones while ``available pods > replicas −
    maxUnavailable``.  ``maxSurge`` and ``maxUnavailable`` are ints or
    percentages of ``replicas``; surge rounds *up*, unavailable rounds *down*, and
    if both resolve to 0 unavailable becomes 1 (``ResolveFenceposts``).  Every
    change of an old or new ReplicaSet's size is an event ``ScalingReplicaSet``
    "Scaled up replica set web-5d9c8f7b4 from 0 to 1" / "Scaled down replica set
    web-6f7d9b5c8 from 4 to 3".  The rollout therefore advances one step each
    time a new pod becomes available or an old one goes away, and the bounds
    hold at every instant: no more than replicas + maxSurge non-terminating
    pods, and no fewer than replicas − maxUnavailable available ones.

Recreate (``recreate.go``)
    Scale every old ReplicaSet to 0, wait until none of their pods exists any
    more (terminating pods count), then create / scale up the new one.

Scaling (``sync.go: isScalingEvent / scale``)
    A change of ``spec.replicas`` alone (kubectl scale, the HPA, a GitOps apply)
    is not a rollout: the active ReplicaSets are resized, proportionally to
    their size when a rollout is in flight (``getReplicaSetFraction`` with the
    ``max-replicas`` annotation, leftovers to the largest), and nothing else
    happens.  A paused Deployment only scales (``Progressing=Unknown/
    DeploymentPaused``) and ``DeploymentResumed`` when unpaused.

Status and conditions (``sync.go: calculateStatus``, ``progress.go``)
    ``replicas`` / ``updatedReplicas`` / ``readyReplicas`` /
    ``availableReplicas`` sum the ReplicaSets' statuses, ``unavailableReplicas``
    is desired − available (never negative), ``observedGeneration`` the
    generation acted on.  ``Available`` is True/MinimumReplicasAvailable while
    available ≥ replicas − maxUnavailable, else False/MinimumReplicasUnavailable.
    ``Progressing`` is True/ReplicaSetUpdated ("ReplicaSet "x" is progressing.")
    whenever the new ReplicaSet gained updated / ready / available pods or old
    ones lost pods — each time refreshing ``lastUpdateTime`` — and
    True/NewReplicaSetAvailable ("ReplicaSet "x" has successfully progressed.")
    once the rollout is complete.  If no progress is made for
    ``progressDeadlineSeconds`` after ``lastUpdateTime`` it becomes
    False/ProgressDeadlineExceeded ("ReplicaSet "x" has timed out
    progressing.").  The controller notices at the re-sync upstream schedules
    at ``lastUpdateTime + progressDeadlineSeconds + 1 s`` ("add a second to avoid
    milliseconds skew", ``requeueStuckDeployment``); ``lastUpdateTime`` has
    one-second resolution.  A timed-out Deployment keeps its old ReplicaSet
    serving: nothing is rolled back.

Cleanup (``sync.go: cleanupDeployment``)
    After a complete rollout, old ReplicaSets with no replicas beyond
    ``revisionHistoryLimit`` are deleted, lowest revision first.

Deleting a Deployment is the garbage collector's job (the store): its
ReplicaSets, then their pods, follow by ownerReference, in the background or
in the foreground.  Component name in the event log: ``deployment-controller``.
"""
from __future__ import annotations

import math
from typing import Any

from labkit.core.errors import ApiError
from labkit.core.events import object_key
from labkit.sim import fieldset
from labkit.sim.controllers.common import (FIELD_MANAGER, compute_hash, controller_ref, iso, new_controller_ref,
                                           parse_time, selector_matches)
from labkit.sim.controllers.informers import Informers
from labkit.sim.controllers.workqueue import Controller

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
SKIP_ANNOTATIONS = {"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY,
                    DESIRED_REPLICAS, MAX_REPLICAS, "deprecated.deployment.rollback.to"}
MAX_INT32 = 2 ** 31 - 1
REV_HISTORY_LIMIT_CHARS = 2000

# ---------------------------------------------------------------- deploymentutil


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: an int, or a percentage of ``total``."""
    if isinstance(value, str):
        if not value.endswith("%"):
            return int(value)
        pct = int(value[:-1])
        x = pct * total / 100
        return int(math.ceil(x)) if round_up else int(math.floor(x))
    return int(value)


def resolve_fenceposts(d: dict) -> tuple[int, int]:
    """``ResolveFenceposts``: (maxSurge, maxUnavailable); both 0 → unavailable 1."""
    spec = d["spec"]
    ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    desired = spec.get("replicas", 1)
    surge = scaled_value(ru.get("maxSurge", 0) if ru.get("maxSurge") is not None else 0, desired, True)
    unavailable = scaled_value(ru.get("maxUnavailable", 0) if ru.get("maxUnavailable") is not None else 0, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def is_rolling(d: dict) -> bool:
    return ((d["spec"].get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def max_unavailable(d: dict) -> int:
    replicas = d["spec"].get("replicas", 1)
    if not is_rolling(d) or replicas == 0:
        return 0
    _, unavailable = resolve_fenceposts(d)
    return min(unavailable, replicas)


def max_surge(d: dict) -> int:
    if not is_rolling(d):
        return 0
    return resolve_fenceposts(d)[0]


def rs_replicas(rs: dict | None) -> int:
    return 0 if rs is None else (rs.get("spec") or {}).get("replicas", 1)


def rs_status(rs: dict | None, field: str) -> int:
    return 0 if rs is None else (rs.get("status") or {}).get(field, 0)


def replica_count(rss: list) -> int:
    return sum(rs_replicas(rs) for rs in rss if rs is not None)


def actual_replica_count(rss: list) -> int:
    return sum(rs_status(rs, "replicas") for rs in rss if rs is not None)


def ready_replica_count(rss: list) -> int:
    return sum(rs_status(rs, "readyReplicas") for rs in rss if rs is not None)


def available_replica_count(rss: list) -> int:
    return sum(rs_status(rs, "availableReplicas") for rs in rss if rs is not None)


def filter_active(rss: list) -> list:
    return [rs for rs in rss if rs is not None and rs_replicas(rs) > 0]


def creation_key(rs: dict) -> tuple:
    md = rs["metadata"]
    return (parse_time(md.get("creationTimestamp")) or 0.0, md["name"])


def revision_of(rs: dict) -> int:
    try:
        return int(((rs["metadata"].get("annotations") or {}).get(REVISION)) or 0)
    except (TypeError, ValueError):
        return 0


def equal_ignore_hash(a: dict | None, b: dict | None) -> bool:
    """``EqualIgnoreHash``: two pod templates equal but for the pod-template-hash label."""
    a, b = a or {}, b or {}
    if a.get("spec") != b.get("spec"):
        return False
    ma, mb = a.get("metadata") or {}, b.get("metadata") or {}
    la = {k: v for k, v in (ma.get("labels") or {}).items() if k != HASH_LABEL}
    lb = {k: v for k, v in (mb.get("labels") or {}).items() if k != HASH_LABEL}
    if la != lb:
        return False
    ra = {k: v for k, v in ma.items() if k != "labels"}
    rb = {k: v for k, v in mb.items() if k != "labels"}
    return ra == rb


def has_progress_deadline(d: dict) -> bool:
    pds = d["spec"].get("progressDeadlineSeconds")
    return pds is not None and pds != MAX_INT32


def get_condition(status: dict, ctype: str) -> dict | None:
    for c in status.get("conditions") or ():
        if c.get("type") == ctype:
            return c
    return None


def new_condition(ctype: str, status: str, reason: str, message: str, now: float) -> dict:
    ts = iso(now)
    return {"type": ctype, "status": status, "lastUpdateTime": ts, "lastTransitionTime": ts,
            "reason": reason, "message": message}


def set_condition(status: dict, cond: dict) -> None:
    """``SetDeploymentCondition``: same status and reason → unchanged; same status keeps the transition time."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond = dict(cond, lastTransitionTime=cur.get("lastTransitionTime"))
    status["conditions"] = [c for c in status.get("conditions") or () if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: dict, ctype: str) -> None:
    if status.get("conditions"):
        status["conditions"] = [c for c in status["conditions"] if c.get("type") != ctype]
        if not status["conditions"]:
            del status["conditions"]


def deployment_complete(d: dict, st: dict) -> bool:
    r = d["spec"].get("replicas", 1)
    return (st.get("updatedReplicas", 0) == r and st.get("replicas", 0) == r
            and st.get("availableReplicas", 0) == r
            and st.get("observedGeneration", 0) >= d["metadata"].get("generation", 1))


def deployment_progressing(d: dict, st: dict) -> bool:
    old = d.get("status") or {}
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = st.get("replicas", 0) - st.get("updatedReplicas", 0)
    return (st.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or new_old < old_old
            or st.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or st.get("availableReplicas", 0) > old.get("availableReplicas", 0))


def deployment_timed_out(d: dict, st: dict, now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(st, "Progressing")
    if cond is None:
        return False
    if cond.get("reason") == "NewReplicaSetAvailable":
        return False
    if cond.get("reason") == "ProgressDeadlineExceeded":
        return True
    since = parse_time(cond.get("lastUpdateTime")) or 0.0
    return since + d["spec"]["progressDeadlineSeconds"] <= now


class DeploymentController(Controller):
    component = "deployment-controller"

    def __init__(self, cluster: Any, informers: Informers):
        super().__init__(cluster)
        self.replicasets = informers.replicasets
        self.pods = informers.pods
        self.store.watch("apps", "Deployment", self._on_deployment)
        self.replicasets.on_change(self._on_rs)
        self.pods.on_change(self._on_pod)

    # ------------------------------------------------------------------ handlers
    def _on_deployment(self, ev: str, obj: dict) -> None:
        md = obj["metadata"]
        self.queue.add((md.get("namespace", ""), md["name"]))

    def _owner_deployment(self, rs: dict) -> dict | None:
        ref = controller_ref(rs)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        d = self.store.by_uid(ref.get("uid", ""))
        return d if d is not None and d.get("kind") == "Deployment" else None

    def _on_rs(self, ev: str, rs: dict, info: Any) -> None:
        d = self._owner_deployment(rs)
        if d is not None:
            self.queue.add((d["metadata"].get("namespace", ""), d["metadata"]["name"]))
            return
        if controller_ref(rs) is None and ev != "DELETED":
            ns = rs["metadata"].get("namespace", "")
            for dep in self.store.refs("apps", "Deployment", ns):
                if selector_matches((dep.get("spec") or {}).get("selector"), rs["metadata"].get("labels")):
                    self.queue.add((ns, dep["metadata"]["name"]))

    def _on_pod(self, ev: str, pod: dict, info: Any) -> None:
        if ev != "DELETED" or info is None or not info.owner_uid:
            return
        rs = self.replicasets.by_uid.get(info.owner_uid)
        if rs is None:
            return
        d = self._owner_deployment(rs)
        if d is not None and not is_rolling(d):
            self.queue.add((d["metadata"].get("namespace", ""), d["metadata"]["name"]))

    def object_key(self, key: Any) -> str:
        return object_key("Deployment", key[0], key[1])

    # ------------------------------------------------------------------ writes
    def _live(self, d: dict) -> dict | None:
        md = d["metadata"]
        live = self.store.ref("apps", "Deployment", md.get("namespace", ""), md["name"])
        return live if live is not None and live["metadata"]["uid"] == md["uid"] else None

    def _write_status(self, d: dict, status: dict) -> None:
        """``UpdateStatus``: the status (and the revision annotation, which upstream writes in the same call)."""
        live = self._live(d)
        if live is None:
            return
        want_rev = (d["metadata"].get("annotations") or {}).get(REVISION)
        have_rev = (live["metadata"].get("annotations") or {}).get(REVISION)
        if want_rev is not None and want_rev != have_rev:
            ann = dict(live["metadata"].get("annotations") or {})
            ann[REVISION] = want_rev
            self.store.set_metadata(live, field_manager=FIELD_MANAGER, annotations=ann, render=False)
            live = self._live(d)
            if live is None:
                return
        d["status"] = status  # never mutated after this: every status edit works on a fresh dict
        self.store.update_status(live, status, field_manager=FIELD_MANAGER)

    def _scale_replica_set(self, rs: dict, new_scale: int, d: dict) -> tuple[bool, dict]:
        """``scaleReplicaSet``: size and replicas annotations in one Update; event when the size changed."""
        desired = d["spec"].get("replicas", 1)
        max_r = desired + max_surge(d)
        ann = rs["metadata"].get("annotations") or {}
        size_changes = rs_replicas(rs) != new_scale
        ann_changes = ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_r)
        if not (size_changes or ann_changes):
            return False, rs
        old = rs_replicas(rs)
        # the store copies what it is given: only the maps edited here need to be new
        new = dict(rs)
        new["spec"] = dict(rs["spec"])
        new["spec"]["replicas"] = new_scale
        new_md = new["metadata"] = dict(rs["metadata"])
        if isinstance(new_md.get("annotations"), dict):
            new_md["annotations"] = dict(new_md["annotations"])
        new_ann = new_md.setdefault("annotations", {})
        new_ann[DESIRED_REPLICAS] = str(desired)
        new_ann[MAX_REPLICAS] = str(max_r)
        self.store.update(new, field_manager=FIELD_MANAGER, render=False)
        md = rs["metadata"]
        rs = self.store.ref("apps", "ReplicaSet", md.get("namespace", ""), md["name"]) or rs
        if size_changes:
            verb = "up" if old < new_scale else "down"
            self.event("ScalingReplicaSet", self._dkey(d),
                       f"Scaled {verb} replica set {md['name']} from {old} to {new_scale}",
                       replicaset=md["name"], old=old, new=new_scale)
        return size_changes, rs

    def _scale_and_record(self, rs: dict, new_scale: int, d: dict) -> tuple[bool, dict]:
        if rs_replicas(rs) == new_scale:
            return False, rs
        return self._scale_replica_set(rs, new_scale, d)

    def _dkey(self, d: dict) -> str:
        return object_key("Deployment", d["metadata"].get("namespace"), d["metadata"]["name"])

    # ------------------------------------------------------------------ sync
    def sync(self, key: tuple[str, str]) -> None:
        ns, name = key
        live = self.store.ref("apps", "Deployment", ns, name)
        if live is None:
            return
        # a private view: status and annotations are edited during the sync, spec is only read
        d = dict(live)
        d["metadata"] = dict(live["metadata"])
        if "annotations" in d["metadata"]:
            d["metadata"]["annotations"] = dict(d["metadata"]["annotations"])
        d["status"] = fieldset.copy(live.get("status") or {})
        selector = d["spec"].get("selector")
        if not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions")):
            self.event("SelectingAll", self._dkey(d), "This deployment is selecting all pods. A non-empty selector "
                                                      "is required.", type="Warning")
            if d["status"].get("observedGeneration") != d["metadata"].get("generation"):
                st = dict(d["status"], observedGeneration=d["metadata"].get("generation", 1))
                self._write_status(d, st)
            return
        rs_list = self._replica_sets_for(d)
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old_rss = self._get_all_and_sync_revision(d, rs_list, False)
            self._sync_deployment_status(old_rss + [new_rs], new_rs, d)
            return
        self._check_paused_conditions(d)
        if d["spec"].get("paused"):
            self._sync(d, rs_list)
            return
        if self._is_scaling_event(d, rs_list):
            self._sync(d, rs_list)
            return
        if is_rolling(d):
            self._rollout_rolling(d, rs_list)
        else:
            self._rollout_recreate(d, rs_list)

    def _replica_sets_for(self, d: dict) -> list[dict]:
        """``getReplicaSetsForDeployment``: owned ReplicaSets, adopting matching orphans."""
        uid = d["metadata"]["uid"]
        owned = self.replicasets.owned(uid)
        ns = d["metadata"].get("namespace", "")
        if not d["metadata"].get("deletionTimestamp"):
            for rs in self.replicasets.orphans_in(ns):
                if rs["metadata"].get("deletionTimestamp"):
                    continue
                if selector_matches(d["spec"].get("selector"), rs["metadata"].get("labels")):
                    refs = list(rs["metadata"].get("ownerReferences") or []) + [new_controller_ref(d)]
                    self.store.set_metadata(rs, field_manager=FIELD_MANAGER, owner_references=refs, render=False)
                    adopted = self.store.ref("apps", "ReplicaSet", ns, rs["metadata"]["name"])
                    if adopted is not None:
                        owned.append(adopted)
        return owned

    def _check_paused_conditions(self, d: dict) -> None:
        if not has_progress_deadline(d):
            return
        cond = get_condition(d["status"], "Progressing")
        if cond is not None and cond.get("reason") == "ProgressDeadlineExceeded":
            return
        paused_exists = cond is not None and cond.get("reason") == "DeploymentPaused"
        now = self.env.now
        st = fieldset.copy(d["status"])
        if d["spec"].get("paused") and not paused_exists:
            set_condition(st, new_condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now))
        elif not d["spec"].get("paused") and paused_exists:
            set_condition(st, new_condition("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", now))
        else:
            return
        self._write_status(d, st)

    # ------------------------------------------------------------------ revisions / new RS
    def _get_all_and_sync_revision(self, d: dict, rs_list: list, create: bool) -> tuple[dict | None, list]:
        new = self._find_new(d, rs_list)
        old = [rs for rs in rs_list if rs is not new]
        new_rs = self._get_new_replica_set(d, rs_list, new, old, create)
        return new_rs, old

    def _find_new(self, d: dict, rs_list: list) -> dict | None:
        tpl = d["spec"].get("template")
        for rs in sorted(rs_list, key=creation_key):
            if equal_ignore_hash((rs.get("spec") or {}).get("template"), tpl):
                return rs
        return None

    def _set_new_rs_annotations(self, d: dict, rs: dict, new_revision: int, exists: bool) -> bool:
        """``SetNewReplicaSetAnnotations`` on ``rs`` (a mutable copy)."""
        ann = rs["metadata"].setdefault("annotations", {})
        changed = False
        for k, v in (d["metadata"].get("annotations") or {}).items():
            if k in SKIP_ANNOTATIONS:
                continue
            if ann.get(k) != v:
                ann[k] = v
                changed = True
        old_rev_s = ann.get(REVISION)
        try:
            old_rev = int(old_rev_s) if old_rev_s else 0
        except ValueError:
            return False
        if old_rev < new_revision:
            ann[REVISION] = str(new_revision)
            changed = True
            if old_rev_s:
                history = ann.get(REVISION_HISTORY, "")
                parts = history.split(",") if history else []
                parts.append(old_rev_s)
                while len(",".join(parts)) > REV_HISTORY_LIMIT_CHARS and len(parts) > 1:
                    parts.pop(0)
                ann[REVISION_HISTORY] = ",".join(parts)
        if not exists:
            desired = d["spec"].get("replicas", 1)
            ann[DESIRED_REPLICAS] = str(desired)
            ann[MAX_REPLICAS] = str(desired + max_surge(d))
            changed = True
        return changed

    def _set_deployment_revision(self, d: dict, revision: str) -> bool:
        ann = d["metadata"].setdefault("annotations", {})
        if ann.get(REVISION) != revision:
            ann[REVISION] = revision
            return True
        return False

    def _get_new_replica_set(self, d: dict, rs_list: list, existing: dict | None, old: list,
                             create: bool) -> dict | None:
        now = self.env.now
        max_old = max((revision_of(rs) for rs in old), default=0)
        new_revision = max_old + 1
        if existing is not None:
            probe = {"metadata": {"annotations": dict(existing["metadata"].get("annotations") or {})}}
            ann_updated = self._set_new_rs_annotations(d, probe, new_revision, True)
            min_ready_update = existing["spec"].get("minReadySeconds", 0) != d["spec"].get("minReadySeconds", 0)
            rs_copy = probe
            if ann_updated or min_ready_update:
                rs_copy = fieldset.copy(existing)
                rs_copy["metadata"]["annotations"] = probe["metadata"]["annotations"]
                if d["spec"].get("minReadySeconds"):
                    rs_copy["spec"]["minReadySeconds"] = d["spec"]["minReadySeconds"]
                else:  # an int32 with omitempty: 0 is not serialised
                    rs_copy["spec"].pop("minReadySeconds", None)
                self.store.update(rs_copy, field_manager=FIELD_MANAGER, render=False)
                md = existing["metadata"]
                return self.store.ref("apps", "ReplicaSet", md.get("namespace", ""), md["name"]) or existing
            needs_update = self._set_deployment_revision(
                d, (rs_copy["metadata"].get("annotations") or {}).get(REVISION, ""))
            st = d["status"]
            if has_progress_deadline(d) and get_condition(st, "Progressing") is None:
                st = fieldset.copy(st)
                set_condition(st, new_condition("Progressing", "True", "FoundNewReplicaSet",
                                                f'Found new replica set "{existing["metadata"]["name"]}"', now))
                needs_update = True
            if needs_update:
                self._write_status(d, st)
            return existing
        if not create:
            return None
        template = fieldset.copy(d["spec"].get("template") or {})
        collision = (d["status"] or {}).get("collisionCount")
        h = compute_hash(template, collision)
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels[HASH_LABEL] = h
        template.setdefault("metadata", {})["labels"] = labels
        selector = fieldset.copy(d["spec"].get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        ns = d["metadata"].get("namespace", "")
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{d['metadata']['name']}-{h}", "namespace": ns,
                           "ownerReferences": [new_controller_ref(d)], "labels": dict(labels)},
              "spec": {"replicas": 0, "selector": selector, "template": template}}
        if d["spec"].get("minReadySeconds"):  # omitempty upstream: a 0 is not written (parity test)
            rs["spec"]["minReadySeconds"] = d["spec"]["minReadySeconds"]
        new_count = self._new_rs_new_replicas(d, old + [rs], rs)
        rs["spec"]["replicas"] = new_count
        self._set_new_rs_annotations(d, rs, new_revision, False)
        already = False
        try:
            self.store.create(rs, manager=FIELD_MANAGER, render=False)
            created = self.store.ref("apps", "ReplicaSet", ns, rs["metadata"]["name"])
        except ApiError as exc:
            if exc.reason != "AlreadyExists":
                msg = f'Failed to create new replica set "{rs["metadata"]["name"]}": {exc.message}'
                if has_progress_deadline(d):
                    st = fieldset.copy(d["status"])
                    set_condition(st, new_condition("Progressing", "False", "ReplicaSetCreateError", msg, now))
                    self._write_status(d, st)
                self.event("ReplicaSetCreateError", self._dkey(d), msg, type="Warning")
                raise
            created = self.store.ref("apps", "ReplicaSet", ns, rs["metadata"]["name"])
            ref = controller_ref(created) if created is not None else None
            if created is not None and ref is not None and ref.get("uid") == d["metadata"]["uid"] and \
                    equal_ignore_hash(created["spec"].get("template"), d["spec"].get("template")):
                already = True
            else:
                st = fieldset.copy(d["status"])
                st["collisionCount"] = (st.get("collisionCount") or 0) + 1
                self._write_status(d, st)
                raise
        if not already and new_count > 0:
            self.event("ScalingReplicaSet", self._dkey(d),
                       f"Scaled up replica set {created['metadata']['name']} from 0 to {new_count}",
                       replicaset=created["metadata"]["name"], old=0, new=new_count)
        needs_update = self._set_deployment_revision(d, str(new_revision))
        st = d["status"]
        if not already and has_progress_deadline(d):
            st = fieldset.copy(st)
            set_condition(st, new_condition("Progressing", "True", "NewReplicaSetCreated",
                                            f'Created new replica set "{created["metadata"]["name"]}"', now))
            needs_update = True
        if needs_update:
            self._write_status(d, st)
        return created

    def _new_rs_new_replicas(self, d: dict, all_rss: list, new_rs: dict) -> int:
        """``NewRSNewReplicas``."""
        desired = d["spec"].get("replicas", 1)
        if not is_rolling(d):
            return desired
        ru = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        surge = scaled_value(ru.get("maxSurge") if ru.get("maxSurge") is not None else 0, desired, True)
        current = replica_count(all_rss)
        max_total = desired + surge
        if current >= max_total:
            return rs_replicas(new_rs)
        up = min(max_total - current, desired - rs_replicas(new_rs))
        return rs_replicas(new_rs) + up

    # ------------------------------------------------------------------ scaling (sync.go)
    def _is_scaling_event(self, d: dict, rs_list: list) -> bool:
        new_rs, old = self._get_all_and_sync_revision(d, rs_list, False)
        desired = d["spec"].get("replicas", 1)
        for rs in filter_active(old + [new_rs]):
            ann = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS)
            if ann is None:
                continue
            try:
                if int(ann) != desired:
                    return True
            except ValueError:
                continue
        return False

    def _sync(self, d: dict, rs_list: list) -> None:
        new_rs, old = self._get_all_and_sync_revision(d, rs_list, False)
        new_rs, old = self._scale(d, new_rs, old)
        if d["spec"].get("paused"):
            self._cleanup(old, d)
        self._sync_deployment_status(old + [new_rs], new_rs, d)

    def _scale(self, d: dict, new_rs: dict | None, old: list) -> tuple[dict | None, list]:
        desired = d["spec"].get("replicas", 1)
        active_or_latest = self._find_active_or_latest(new_rs, old)
        if active_or_latest is not None:
            if rs_replicas(active_or_latest) == desired:
                return new_rs, old
            _, updated = self._scale_and_record(active_or_latest, desired, d)
            return self._replace(new_rs, old, active_or_latest, updated)
        if self._is_saturated(d, new_rs):
            for rs in filter_active(old):
                _, updated = self._scale_and_record(rs, 0, d)
                new_rs, old = self._replace(new_rs, old, rs, updated)
            return new_rs, old
        if is_rolling(d):
            all_rss = filter_active(old + [new_rs])
            all_replicas = replica_count(all_rss)
            allowed = desired + max_surge(d) if desired > 0 else 0
            to_add = allowed - all_replicas
            if to_add > 0:
                # ReplicaSetsBySizeNewer: larger first, equal sizes newer first
                all_rss.sort(key=creation_key, reverse=True)
                all_rss.sort(key=lambda rs: -rs_replicas(rs))
            elif to_add < 0:
                # ReplicaSetsBySizeOlder: larger first, equal sizes older first
                all_rss.sort(key=creation_key)
                all_rss.sort(key=lambda rs: -rs_replicas(rs))
            added = 0
            sizes: dict[str, int] = {}
            for rs in all_rss:
                if to_add != 0:
                    prop = self._proportion(rs, d, to_add, added)
                    sizes[rs["metadata"]["name"]] = rs_replicas(rs) + prop
                    added += prop
                else:
                    sizes[rs["metadata"]["name"]] = rs_replicas(rs)
            for i, rs in enumerate(all_rss):
                name = rs["metadata"]["name"]
                if i == 0 and to_add != 0:
                    sizes[name] = max(0, sizes[name] + (to_add - added))
                _, updated = self._scale_replica_set(rs, sizes[name], d)
                new_rs, old = self._replace(new_rs, old, rs, updated)
        return new_rs, old

    @staticmethod
    def _replace(new_rs: dict | None, old: list, before: dict, after: dict) -> tuple[dict | None, list]:
        if new_rs is before:
            return after, old
        return new_rs, [after if rs is before else rs for rs in old]

    @staticmethod
    def _find_active_or_latest(new_rs: dict | None, old: list) -> dict | None:
        if new_rs is None and not old:
            return None
        old_sorted = sorted(old, key=creation_key, reverse=True)
        active = filter_active(old_sorted + [new_rs])
        if len(active) == 0:
            return new_rs if new_rs is not None else old_sorted[0]
        if len(active) == 1:
            return active[0]
        return None

    @staticmethod
    def _is_saturated(d: dict, rs: dict | None) -> bool:
        if rs is None:
            return False
        try:
            desired_ann = int((rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS, ""))
        except ValueError:
            return False
        desired = d["spec"].get("replicas", 1)
        return rs_replicas(rs) == desired and desired_ann == desired and rs_status(rs, "availableReplicas") == desired

    @staticmethod
    def _proportion(rs: dict, d: dict, to_add: int, added: int) -> int:
        """``GetReplicaSetProportion`` / ``getReplicaSetFraction``."""
        if rs_replicas(rs) == 0 or to_add == 0 or to_add == added:
            return 0
        desired = d["spec"].get("replicas", 1)
        if desired == 0:
            fraction = -rs_replicas(rs)
        else:
            max_now = desired + max_surge(d)
            try:
                before = int((rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS, ""))
            except ValueError:
                before = 0
            if before == 0:
                before = (d.get("status") or {}).get("replicas", 0)
            if before == 0:
                fraction = 0
            else:
                size = rs_replicas(rs) * max_now / before
                fraction = int(math.floor(size + 0.5)) - rs_replicas(rs)
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    # ------------------------------------------------------------------ rolling (rolling.go)
    def _rollout_rolling(self, d: dict, rs_list: list) -> None:
        new_rs, old = self._get_all_and_sync_revision(d, rs_list, True)
        all_rss = old + [new_rs]
        scaled_up, new_rs = self._reconcile_new(all_rss, new_rs, d)
        if scaled_up:
            self._sync_rollout_status(old + [new_rs], new_rs, d)
            return
        scaled_down, old = self._reconcile_old(old + [new_rs], filter_active(old), old, new_rs, d)
        if scaled_down:
            self._sync_rollout_status(old + [new_rs], new_rs, d)
            return
        if deployment_complete(d, d["status"]):
            self._cleanup(old, d)
        self._sync_rollout_status(old + [new_rs], new_rs, d)

    def _reconcile_new(self, all_rss: list, new_rs: dict, d: dict) -> tuple[bool, dict]:
        desired = d["spec"].get("replicas", 1)
        if rs_replicas(new_rs) == desired:
            return False, new_rs
        if rs_replicas(new_rs) > desired:
            return self._scale_and_record(new_rs, desired, d)
        count = self._new_rs_new_replicas(d, all_rss, new_rs)
        return self._scale_and_record(new_rs, count, d)

    def _reconcile_old(self, all_rss: list, active_old: list, old: list, new_rs: dict,
                       d: dict) -> tuple[bool, list]:
        old_pods = replica_count(active_old)
        if old_pods == 0:
            return False, old
        all_pods = replica_count(all_rss)
        max_unav = max_unavailable(d)
        min_available = d["spec"].get("replicas", 1) - max_unav
        new_unavailable = rs_replicas(new_rs) - rs_status(new_rs, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False, old
        active_old, cleaned = self._cleanup_unhealthy(active_old, d, max_scaled_down)
        old = self._merge(old, active_old)
        all_rss = active_old + [new_rs]
        scaled = self._scale_down_old_for_rolling(all_rss, active_old, d)
        old = self._merge(old, scaled[1])
        return cleaned + scaled[0] > 0, old

    def _merge(self, old: list, updated: list) -> list:
        by_uid = {rs["metadata"]["uid"]: rs for rs in updated}
        return [by_uid.get(rs["metadata"]["uid"], rs) for rs in old]

    def _cleanup_unhealthy(self, old_rss: list, d: dict, max_cleanup: int) -> tuple[list, int]:
        old_rss = sorted(old_rss, key=creation_key)
        total = 0
        for i, rs in enumerate(old_rss):
            if total >= max_cleanup:
                break
            if rs_replicas(rs) == 0 or rs_replicas(rs) == rs_status(rs, "availableReplicas"):
                continue
            count = min(max_cleanup - total, rs_replicas(rs) - rs_status(rs, "availableReplicas"))
            _, updated = self._scale_and_record(rs, rs_replicas(rs) - count, d)
            total += count
            old_rss[i] = updated
        return old_rss, total

    def _scale_down_old_for_rolling(self, all_rss: list, old_rss: list, d: dict) -> tuple[int, list]:
        min_available = d["spec"].get("replicas", 1) - max_unavailable(d)
        available = available_replica_count(all_rss)
        if available <= min_available:
            return 0, old_rss
        old_rss = sorted(old_rss, key=creation_key)
        total = 0
        to_scale = available - min_available
        for i, rs in enumerate(old_rss):
            if total >= to_scale:
                break
            if rs_replicas(rs) == 0:
                continue
            count = min(rs_replicas(rs), to_scale - total)
            _, updated = self._scale_and_record(rs, rs_replicas(rs) - count, d)
            old_rss[i] = updated
            total += count
        return total, old_rss

    # ------------------------------------------------------------------ recreate (recreate.go)
    def _rollout_recreate(self, d: dict, rs_list: list) -> None:
        new_rs, old = self._get_all_and_sync_revision(d, rs_list, False)
        scaled_down = False
        for rs in filter_active(old):
            changed, updated = self._scale_and_record(rs, 0, d)
            old = [updated if x is rs else x for x in old]
            scaled_down = scaled_down or changed
        if scaled_down:
            self._sync_rollout_status(old + [new_rs], new_rs, d)
            return
        if self._old_pods_running(new_rs, old):
            self._sync_rollout_status(old + [new_rs], new_rs, d)
            return
        if new_rs is None:
            new_rs, old = self._get_all_and_sync_revision(d, self._replica_sets_for(d), True)
        _, new_rs = self._scale_and_record(new_rs, d["spec"].get("replicas", 1), d)
        if deployment_complete(d, d["status"]):
            self._cleanup(old, d)
        self._sync_rollout_status(old + [new_rs], new_rs, d)

    def _old_pods_running(self, new_rs: dict | None, old: list) -> bool:
        if actual_replica_count(old) > 0:
            return True
        new_uid = new_rs["metadata"]["uid"] if new_rs is not None else None
        for rs in old:
            if rs["metadata"]["uid"] == new_uid:
                continue
            for p in self.pods.owned_info(rs["metadata"]["uid"]):
                if p.phase not in ("Succeeded", "Failed"):
                    return True
        return False

    # ------------------------------------------------------------------ cleanup
    def _cleanup(self, old: list, d: dict) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None or limit == MAX_INT32:
            return
        cleanable = [rs for rs in old if rs is not None and not rs["metadata"].get("deletionTimestamp")]
        diff = len(cleanable) - limit
        if diff <= 0:
            return
        cleanable.sort(key=lambda rs: (revision_of(rs), creation_key(rs)))
        for rs in cleanable[:diff]:
            md = rs["metadata"]
            if rs_status(rs, "replicas") != 0 or rs_replicas(rs) != 0 or \
                    md.get("generation", 1) > rs_status(rs, "observedGeneration") or md.get("deletionTimestamp"):
                continue
            self.store.delete("apps/v1", "ReplicaSet", md["name"], md.get("namespace"), manager=FIELD_MANAGER,
                              render=False)

    # ------------------------------------------------------------------ status (sync.go / progress.go)
    def _calculate_status(self, all_rss: list, new_rs: dict | None, d: dict) -> dict:
        available = available_replica_count(all_rss)
        total = replica_count(all_rss)
        unavailable = max(0, total - available)
        old = d.get("status") or {}
        st: dict[str, Any] = {"observedGeneration": d["metadata"].get("generation", 1)}
        for k, v in (("replicas", actual_replica_count(all_rss)),
                     ("updatedReplicas", actual_replica_count([new_rs])),
                     ("readyReplicas", ready_replica_count(all_rss)),
                     ("availableReplicas", available),
                     ("unavailableReplicas", unavailable)):
            if v:
                st[k] = v
        if old.get("conditions"):
            st["conditions"] = [dict(c) for c in old["conditions"]]
        if old.get("collisionCount") is not None:
            st["collisionCount"] = old["collisionCount"]
        now = self.env.now
        if available >= d["spec"].get("replicas", 1) - max_unavailable(d):
            set_condition(st, new_condition("Available", "True", "MinimumReplicasAvailable",
                                            "Deployment has minimum availability.", now))
        else:
            set_condition(st, new_condition("Available", "False", "MinimumReplicasUnavailable",
                                            "Deployment does not have minimum availability.", now))
        return st

    def _sync_deployment_status(self, all_rss: list, new_rs: dict | None, d: dict) -> None:
        st = self._calculate_status(all_rss, new_rs, d)
        if st != d["status"]:
            self._write_status(d, st)

    def _sync_rollout_status(self, all_rss: list, new_rs: dict | None, d: dict) -> None:
        now = self.env.now
        st = self._calculate_status(all_rss, new_rs, d)
        if not has_progress_deadline(d):
            remove_condition(st, "Progressing")
        current = get_condition(d["status"], "Progressing")
        complete_rollout = (st.get("replicas", 0) == st.get("updatedReplicas", 0) and current is not None
                            and current.get("reason") == "NewReplicaSetAvailable")
        rs_name = new_rs["metadata"]["name"] if new_rs is not None else None
        if has_progress_deadline(d) and not complete_rollout:
            if deployment_complete(d, st):
                msg = (f'ReplicaSet "{rs_name}" has successfully progressed.' if rs_name
                       else f'Deployment "{d["metadata"]["name"]}" has successfully progressed.')
                set_condition(st, new_condition("Progressing", "True", "NewReplicaSetAvailable", msg, now))
            elif deployment_progressing(d, st):
                msg = (f'ReplicaSet "{rs_name}" is progressing.' if rs_name
                       else f'Deployment "{d["metadata"]["name"]}" is progressing.')
                cond = new_condition("Progressing", "True", "ReplicaSetUpdated", msg, now)
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    remove_condition(st, "Progressing")
                set_condition(st, cond)
            elif deployment_timed_out(d, st, now):
                msg = (f'ReplicaSet "{rs_name}" has timed out progressing.' if rs_name
                       else f'Deployment "{d["metadata"]["name"]}" has timed out progressing.')
                set_condition(st, new_condition("Progressing", "False", "ProgressDeadlineExceeded", msg, now))
        remove_condition(st, "ReplicaFailure")
        if st == d["status"]:
            self._requeue_stuck(d, st)
            return
        timed_out_now = (get_condition(st, "Progressing") or {}).get("reason") == "ProgressDeadlineExceeded" and \
            (current or {}).get("reason") != "ProgressDeadlineExceeded"
        self._write_status(d, st)
        if timed_out_now:
            self.event("ProgressDeadlineExceeded", self._dkey(d), get_condition(st, "Progressing")["message"],
                       type="Warning")

    def _requeue_stuck(self, d: dict, st: dict) -> None:
        current = get_condition(d["status"], "Progressing")
        if not has_progress_deadline(d) or current is None:
            return
        if deployment_complete(d, st) or current.get("reason") == "ProgressDeadlineExceeded":
            return
        if current.get("reason") == "NewReplicaSetAvailable":
            # Upstream re-queues here too (every 5 ms once the deadline has passed), but a Deployment
            # whose condition says NewReplicaSetAvailable cannot time out (DeploymentTimedOut is false
            # for that reason): those syncs change nothing, and the next real change re-syncs it anyway.
            return
        since = parse_time(current.get("lastUpdateTime")) or 0.0
        after = since + d["spec"]["progressDeadlineSeconds"] - self.env.now
        key = (d["metadata"].get("namespace", ""), d["metadata"]["name"])
        if after < 1.0:
            # upstream: enqueueRateLimited (5 ms); the deadline is less than a second away
            self.queue.add_after(key, max(after, 0.005))
            return
        self.queue.add_after(key, after + 1.0)
