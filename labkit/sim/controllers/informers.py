"""Shared informers: indexed, always-current views of the objects controllers read.

In kube-controller-manager every controller reads through shared informers —
an in-memory cache fed by a watch, with indexes — and never lists the API
server in its sync loop.  The simulator's store already calls watchers
synchronously, so an informer here is only the *index*: objects by uid, by
controlling owner (``ownerReferences[controller=true].uid``), the orphans of each
namespace (candidates for adoption), and, for pods, by label so a selector
becomes a dictionary lookup instead of a scan over every pod in the cluster.
That is what keeps an HPA sync or a ReplicaSet sync O(pods of that workload)
when a run holds thousands of pods.

``PodInformer`` keeps a ``PodInfo`` per pod with the facts controllers keep
asking for — phase, ready, the Ready condition's lastTransitionTime, start
time, terminating, restart count, CPU request — derived once per pod change
instead of re-walking the pod's status in every sync.  Handlers registered with
``on_change`` receive ``(event_type, obj, info)`` after the indexes are updated;
controllers use them to enqueue keys, nothing more.

Objects handed out are the store's own dicts (no copies): read-only.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from labkit.sim.controllers.common import controller_ref, cpu_millicores, parse_time, selector_matches

Handler = Callable[[str, dict, Any], None]


class Informer:
    """Index of one kind by uid, by controlling owner uid, and orphans per namespace."""

    def __init__(self, store: Any, group: str, kind: str):
        self.store = store
        self.group, self.kind = group, kind
        self.by_uid: dict[str, dict] = {}
        self.by_owner: dict[str, dict[str, dict]] = {}
        self.orphans: dict[str, dict[str, dict]] = {}
        self._owner_of: dict[str, str | None] = {}
        self._handlers: list[Handler] = []
        store.watch(group, kind, self._on)
        for obj in store.refs(group, kind):
            self._on("ADDED", obj)

    def on_change(self, fn: Handler) -> None:
        self._handlers.append(fn)

    def _index(self, ev: str, obj: dict) -> Any:
        md = obj["metadata"]
        uid = md["uid"]
        old_owner = self._owner_of.get(uid, "")
        if ev == "DELETED":
            self.by_uid.pop(uid, None)
            self._owner_of.pop(uid, None)
            if old_owner:
                d = self.by_owner.get(old_owner)
                if d is not None:
                    d.pop(uid, None)
                    if not d:
                        del self.by_owner[old_owner]
            else:
                o = self.orphans.get(md.get("namespace", ""))
                if o is not None:
                    o.pop(uid, None)
            return None
        self.by_uid[uid] = obj
        ref = controller_ref(obj)
        owner = ref.get("uid") if ref else None
        if old_owner != "" and old_owner != owner:
            if old_owner:
                d = self.by_owner.get(old_owner)
                if d is not None:
                    d.pop(uid, None)
                    if not d:
                        del self.by_owner[old_owner]
            else:
                o = self.orphans.get(md.get("namespace", ""))
                if o is not None:
                    o.pop(uid, None)
        self._owner_of[uid] = owner
        if owner:
            self.by_owner.setdefault(owner, {})[uid] = obj
        else:
            self.orphans.setdefault(md.get("namespace", ""), {})[uid] = obj
        return None

    def _on(self, ev: str, obj: dict) -> None:
        info = self._index(ev, obj)
        for fn in self._handlers:
            fn(ev, obj, info)

    def owned(self, owner_uid: str) -> list[dict]:
        d = self.by_owner.get(owner_uid)
        return list(d.values()) if d else []

    def orphans_in(self, namespace: str) -> list[dict]:
        d = self.orphans.get(namespace)
        return list(d.values()) if d else []

    def in_namespace(self, namespace: str) -> list[dict]:
        return self.store.refs(self.group, self.kind, namespace)


class PodInfo:
    """Facts about one pod, derived once per change (see the module docstring)."""

    __slots__ = ("uid", "namespace", "name", "obj", "owner_uid", "created", "phase", "ready",
                 "ready_transition", "start_time", "terminating", "node", "restarts", "cpu_request",
                 "labels", "deletion_cost", "running_since")

    def __init__(self, obj: dict, now: float):
        md = obj["metadata"]
        self.uid: str = md["uid"]
        self.namespace: str = md.get("namespace", "")
        self.name: str = md["name"]
        self.created: float = now  # exact virtual creation time (creationTimestamp is truncated)
        self.update(obj)

    def update(self, obj: dict) -> None:
        self.obj = obj
        md = obj["metadata"]
        ref = controller_ref(obj)
        self.owner_uid = ref.get("uid") if ref else None
        self.labels = md.get("labels") or {}
        self.terminating = bool(md.get("deletionTimestamp"))
        try:
            self.deletion_cost = int((md.get("annotations") or {}).get("controller.kubernetes.io/pod-deletion-cost", 0))
        except (TypeError, ValueError):
            self.deletion_cost = 0
        spec = obj.get("spec") or {}
        self.node = spec.get("nodeName") or ""
        status = obj.get("status") or {}
        self.phase = status.get("phase") or "Pending"
        ready, transition = False, None
        for c in status.get("conditions") or ():
            if c.get("type") == "Ready":
                ready = c.get("status") == "True"
                transition = parse_time(c.get("lastTransitionTime"))
                break
        self.ready = ready
        self.ready_transition = transition
        self.start_time = parse_time(status.get("startTime"))
        self.restarts = sum(cs.get("restartCount", 0) for cs in status.get("containerStatuses") or ())
        # when the pod's containers have all been running since (what a metrics pipeline can sample)
        since = None
        for cs in status.get("containerStatuses") or ():
            started = ((cs.get("state") or {}).get("running") or {}).get("startedAt")
            if started is None:
                since = None
                break
            t = parse_time(started)
            since = t if since is None or t > since else since
        self.running_since = since
        total, missing = 0, False
        for c in spec.get("containers") or ():
            m = cpu_millicores(((c.get("resources") or {}).get("requests") or {}).get("cpu"))
            if m is None:
                missing = True
            else:
                total += m
        self.cpu_request = None if missing else total

    @property
    def active(self) -> bool:
        """``controller.IsPodActive``: not terminal and not being deleted."""
        return not self.terminating and self.phase not in ("Succeeded", "Failed")

    def available(self, min_ready_seconds: float, now: float) -> bool:
        """``podutil.IsPodAvailable`` (an exactly elapsed minReadySeconds counts: see controllers.common)."""
        if not self.ready:
            return False
        if not min_ready_seconds:
            return True
        return self.ready_transition is not None and self.ready_transition + min_ready_seconds <= now


class PodInformer(Informer):
    """Pods indexed by uid, owner, namespace and label (``PodInfo`` per pod)."""

    def __init__(self, store: Any):
        self.info: dict[str, PodInfo] = {}
        self.by_namespace: dict[str, dict[str, PodInfo]] = {}
        self.by_label: dict[tuple[str, str, str], dict[str, PodInfo]] = {}
        # bumped whenever a pod carrying (namespace, key, value) changes: lets a reader cache what it
        # derived from the pods of a selector until one of them changes
        self.label_version: dict[tuple[str, str, str], int] = {}
        self.namespace_version: dict[str, int] = {}
        super().__init__(store, "", "Pod")

    def _bump(self, ns: str, labels: dict) -> None:
        lv = self.label_version
        for k, v in labels.items():
            t = (ns, k, v)
            lv[t] = lv.get(t, 0) + 1
        self.namespace_version[ns] = self.namespace_version.get(ns, 0) + 1

    def selector_version(self, namespace: str, selector: dict[str, Any] | None) -> tuple:
        """A value that changes whenever a pod that could match ``selector`` changes."""
        ml = (selector or {}).get("matchLabels") or {}
        if not ml or (selector or {}).get("matchExpressions"):
            return (namespace, repr(selector), self.namespace_version.get(namespace, 0))
        lv = self.label_version
        if len(ml) == 1:
            (k, v), = ml.items()
            return (namespace, k, v, lv.get((namespace, k, v), 0))
        return (namespace, tuple(ml.items()), tuple([lv.get((namespace, k, v), 0) for k, v in ml.items()]))

    def single_label(self, namespace: str, selector: dict[str, Any] | None) -> tuple[str, str, str] | None:
        """``(namespace, key, value)`` when ``selector`` is one ``matchLabels`` pair and nothing else:
        then ``label_version[that]`` alone tells when a pod it could match changes."""
        if not selector or selector.get("matchExpressions"):
            return None
        ml = selector.get("matchLabels")
        if not ml or len(ml) != 1:
            return None
        (k, v), = ml.items()
        return (namespace, k, v)

    def _index(self, ev: str, obj: dict) -> PodInfo | None:
        super()._index(ev, obj)
        md = obj["metadata"]
        uid = md["uid"]
        ns = md.get("namespace", "")
        pi = self.info.get(uid)
        if ev == "DELETED":
            if pi is not None:
                self._bump(ns, pi.labels)
                del self.info[uid]
                self.by_namespace.get(ns, {}).pop(uid, None)
                for k, v in pi.labels.items():
                    d = self.by_label.get((ns, k, v))
                    if d is not None:
                        d.pop(uid, None)
                        if not d:
                            del self.by_label[(ns, k, v)]
            return pi
        if pi is None:
            pi = self.info[uid] = PodInfo(obj, self.store.now())
            self.by_namespace.setdefault(ns, {})[uid] = pi
            for k, v in pi.labels.items():
                self.by_label.setdefault((ns, k, v), {})[uid] = pi
            self._bump(ns, pi.labels)
            return pi
        old_labels = pi.labels
        self._bump(ns, old_labels)
        pi.update(obj)
        if pi.labels is not old_labels and pi.labels != old_labels:
            for k, v in old_labels.items():
                d = self.by_label.get((ns, k, v))
                if d is not None:
                    d.pop(uid, None)
            for k, v in pi.labels.items():
                self.by_label.setdefault((ns, k, v), {})[uid] = pi
            self._bump(ns, pi.labels)
        return pi

    def owned_info(self, owner_uid: str) -> list[PodInfo]:
        d = self.by_owner.get(owner_uid)
        if not d:
            return []
        info = self.info
        return [info[u] for u in d]

    def select(self, namespace: str, selector: dict[str, Any] | None) -> list[PodInfo]:
        """Pods of ``namespace`` matching a LabelSelector (empty selector: none)."""
        if not selector:
            return []
        ml = selector.get("matchLabels") or {}
        if ml:
            best: dict[str, PodInfo] | None = None
            for k, v in ml.items():
                d = self.by_label.get((namespace, k, v))
                if not d:
                    return []
                if best is None or len(d) < len(best):
                    best = d
            cands: Iterable[PodInfo] = best.values() if best else ()
        else:
            cands = self.by_namespace.get(namespace, {}).values()
        if len(ml) == 1 and not selector.get("matchExpressions"):
            return list(cands)
        return [p for p in cands if selector_matches(selector, p.labels)]


class Informers:
    """The shared informer factory of one simulated cluster."""

    def __init__(self, store: Any):
        self.store = store
        self.pods = PodInformer(store)
        self.replicasets = Informer(store, "apps", "ReplicaSet")
        self.controller_revisions = Informer(store, "apps", "ControllerRevision")
        self.pvcs = Informer(store, "", "PersistentVolumeClaim")
