"""The embedded API server's object store.

``ApiStore`` is the heart of the simulator: an in-process model of what
kube-apiserver + etcd do that matters to GitOps.  It keeps objects by
``(group, kind)`` and ``(namespace, name)`` and gives every write the server-side
semantics a GitOps controller depends on:

Identity and versions
    ``uid`` (seeded, so a run is reproducible), a global ``resourceVersion`` bumped
    on every persisted write, ``creationTimestamp`` from the virtual clock, and
    ``metadata.generation`` that moves only when something other than metadata
    or status changes (kinds with a status subresource and custom resources).  A
    write that changes nothing is not persisted: the resourceVersion stays and no
    watcher is woken — which is how a no-op reconcile can be seen to write nothing.

Server-side apply (``apply``)
    Per-manager field ownership (``managedFields``, see ``labkit.sim.fieldset``):
    applying a field another manager owns with a different value is a 409
    ``Conflict`` in the API server's words (``Apply failed with 1 conflict:
    conflict with "kubectl-edit" using apps/v1: .spec.replicas``) unless
    ``force``; forcing takes ownership.  A field the applier owned and no longer
    sends is removed if no other manager owns it, and defaulting then fills the
    default back in (``replicas`` → 1).  ``dry_run`` runs everything — type checks,
    merge, defaulting, admission — and persists nothing.

Update operations (``update``, ``scale``, ``update_status``)
    What ``kubectl edit`` / ``kubectl scale`` and controllers do: the manager takes
    ownership of the fields it changed, never conflicts, and optimistic
    concurrency on ``resourceVersion`` applies when the caller sends one.

Deletion and garbage collection (``delete``)
    Finalizers and ``deletionTimestamp``; propagation ``Background`` (owner gone
    at once, dependents collected by the garbage collector process right after),
    ``Foreground`` (owner kept with the ``foregroundDeletion`` finalizer until its
    blocking dependents are gone) and ``Orphan`` (owner references removed).
    Namespaces terminate by deleting their contents first.  Deleting a
    ``CustomResourceDefinition`` deletes its custom resources.  The collector
    finds dependents through an owner index (owner uid -> the objects naming it),
    kept at every write, and visits them in the order a scan of every object
    would, so its deletions and their events come in the same order.

Admission
    ``labkit.sim.kinds`` (schema-level type checks, undeclared fields) and
    ``labkit.sim.admission`` (validation and immutable fields) run on every write,
    after defaulting, before anything is persisted.

Watches
    ``watch(group, kind, fn)`` calls ``fn(event_type, obj)`` synchronously after each
    persisted change (``ADDED`` / ``MODIFIED`` / ``DELETED``).  Controllers only
    enqueue work in these callbacks; they act in their own SimPy processes.

Reads through the seam (``get`` / ``list``) return deep copies with
``metadata.managedFields`` rendered; controllers use the no-copy ``ref`` /
``refs`` accessors and must treat what they get as read-only.  Writes answer the
same way, a rendered copy, unless the caller passes ``render=False`` (the
simulator's controllers, which never read the answer): then they return the
stored object itself, read-only like ``ref``.

Cost
    A day of 50 autoscaled Deployments is about 300,000 writes, most of them one
    field of an object of a hundred (a status, ``spec.replicas``), so an Update
    diffs the two versions along the keys that differ (``fieldset.diff``) rather
    than walking every field of both, and nothing is copied that nobody reads
    (``benchmarks/bench_sim.py`` measures both cases of this module).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import simpy

from labkit.core.clock import rng_for, timestamp
from labkit.core.errors import ApiError, already_exists, conflict, not_found, qualified_resource
from labkit.core.events import EventLog, object_key
from labkit.sim import admission, fieldset
from labkit.sim.defaults import apply_defaults
from labkit.sim.kinds import KindInfo, KindRegistry, apply_type_error, type_errors, update_type_error

SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
                   "deletionTimestamp", "deletionGracePeriodSeconds")
IDENTITY_PATHS = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_STATUS = frozenset({"status"})

Key = tuple[str, str]  # (namespace, name)
GK = tuple[str, str]  # (group, kind)
Watcher = Callable[[str, dict], None]


iso = timestamp
# uuid.UUID(int=n, version=4): the variant bits (10) and the version nibble (4)
_UUID_CLEAR = ~((0xc000 << 48) | (0xf000 << 64))
_UUID_SET = (0x8000 << 48) | (4 << 76)


@dataclass
class ManagedEntry:
    manager: str
    operation: str  # Apply | Update
    api_version: str
    time: float
    fields: set = field(default_factory=set)
    subresource: str = ""
    _v1: tuple[frozenset, dict] | None = field(default=None, repr=False, compare=False)

    def fields_v1(self) -> dict:
        """The ``fieldsV1`` document of this entry (cached until the field set changes; read-only).

        Documents are also shared between entries with the same field set (``_FIELDS_V1``): ten
        thousand ConfigMaps applied from one template own ten thousand equal sets.
        """
        key = frozenset(self.fields)
        if self._v1 is None or self._v1[0] != key:
            doc = _FIELDS_V1.get(key)
            if doc is None:
                if len(_FIELDS_V1) >= 4096:
                    _FIELDS_V1.clear()
                doc = _FIELDS_V1[key] = fieldset.to_fields_v1(self.fields)
            self._v1 = (key, doc)
        return self._v1[1]


_FIELDS_V1: dict[frozenset, dict] = {}


class ApiStore:
    """An in-process Kubernetes API server: see the module docstring."""

    def __init__(self, env: simpy.Environment, log: EventLog | None = None, *, seed: int = 0,
                 kinds: KindRegistry | None = None, gc_delay: float = 0.0):
        self.env = env
        self.log = log if log is not None else EventLog(lambda: env.now)
        self.kinds = kinds or KindRegistry()
        self._rng = rng_for(seed, "apiserver")
        self._objects: dict[GK, dict[Key, dict]] = defaultdict(dict)
        self._managed: dict[tuple[str, str, str, str], dict[tuple[str, str, str], ManagedEntry]] = {}
        self._by_uid: dict[str, tuple[GK, Key]] = {}
        # the garbage collector's owner index: owner uid -> where the objects naming it in their
        # ownerReferences live, and each object's rank in its kind's map (the order a scan of
        # _objects visits them, which the collector's deletions follow)
        self._dependents_of: dict[str, dict[tuple[GK, Key], None]] = {}
        self._seq: dict[tuple[GK, Key], int] = {}
        self._next_seq = 0
        # where objects in foreground deletion (deletionTimestamp and the foregroundDeletion finalizer)
        # may be: a superset, checked when the collector looks for owners whose dependents are gone
        self._foreground: dict[tuple[GK, Key], None] = {}
        self._watchers: dict[GK, list[Watcher]] = defaultdict(list)
        self._any_watchers: list[Watcher] = []
        self._rv = 0
        self.writes = 0
        self.writes_by_manager: dict[str, int] = defaultdict(int)
        self.gc_delay = gc_delay
        self.graceful_pods = False  # set by the kubelet: pods terminate instead of vanishing
        self.log_status_writes = True
        self._gc_queue: list[str] = []
        self._gc_wakeup: simpy.Event | None = None
        self._cluster_ips = 10
        env.process(self._garbage_collector())
        for ns in DEFAULT_NAMESPACES:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, manager="kube-apiserver")
        self.writes = 0
        self.writes_by_manager.clear()

    # ------------------------------------------------------------------ basics

    def now(self) -> float:
        return self.env.now

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _uid(self) -> str:
        """``str(uuid.UUID(int=<128 seeded bits>, version=4))``, formatted directly."""
        n = self._rng.getrandbits(128)
        n = (n & _UUID_CLEAR) | _UUID_SET
        h = "%032x" % n
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def random_suffix(self, n: int = 5) -> str:
        alphabet = "bcdfghjklmnpqrstvwxz2456789"
        return "".join(self._rng.choice(alphabet) for _ in range(n))

    def info(self, api_version: str, kind: str) -> KindInfo:
        return self.kinds.lookup(api_version, kind)

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        return self.kinds.lookup(api_version, kind).namespaced

    def _key(self, info: KindInfo, obj: dict) -> Key:
        md = obj.setdefault("metadata", {})
        if info.namespaced:
            ns = md.get("namespace") or "default"
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
            ns = ""
        return ns, md.get("name", "")

    def _check_namespace(self, info: KindInfo, ns: str, creating: bool) -> None:
        if not info.namespaced:
            return
        nsobj = self._objects[("", "Namespace")].get(("", ns))
        if nsobj is None:
            raise ApiError("NotFound", f'namespaces "{ns}" not found', details={"name": ns, "kind": "namespaces"})
        if creating and nsobj["metadata"].get("deletionTimestamp"):
            raise ApiError("Forbidden", f"unable to create new content in namespace {ns} because it is being terminated")

    # ------------------------------------------------------------------ reads

    def ref(self, group: str, kind: str, namespace: str, name: str) -> dict | None:
        """The stored object itself (no copy): read-only for callers."""
        return self._objects[(group, kind)].get((namespace or "", name))

    def refs(self, group: str, kind: str, namespace: str | None = None,
             selector: dict[str, str] | None = None) -> list[dict]:
        objs: Iterable[dict] = self._objects[(group, kind)].values()
        out = []
        for o in objs:
            md = o["metadata"]
            if namespace is not None and md.get("namespace", "") != namespace:
                continue
            if selector:
                labels = md.get("labels") or {}
                if any(labels.get(k) != v for k, v in selector.items()):
                    continue
            out.append(o)
        return out

    def by_uid(self, uid: str) -> dict | None:
        loc = self._by_uid.get(uid)
        if loc is None:
            return None
        return self._objects[loc[0]].get(loc[1])

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        info = self.info(api_version, kind)
        obj = self.ref(info.group, kind, (namespace or "default") if info.namespaced else "", name)
        return None if obj is None else self._render(info, obj, api_version)

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: dict[str, str] | None = None) -> list[dict]:
        info = self.info(api_version, kind)
        objs = self.refs(info.group, kind, namespace if info.namespaced else None, label_selector)
        objs.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return [self._render(info, o, api_version) for o in objs]

    def managed_fields(self, group: str, kind: str, namespace: str, name: str) -> list[ManagedEntry]:
        return list(self._managed.get((group, kind, namespace or "", name), {}).values())

    def owners_of(self, group: str, kind: str, namespace: str, name: str, path: tuple) -> list[str]:
        """Managers owning ``path`` (a fieldset path) of an object."""
        return [e.manager for e in self.managed_fields(group, kind, namespace, name) if path in e.fields]

    def _render(self, info: KindInfo, obj: dict, api_version: str | None = None) -> dict:
        """A deep copy of ``obj`` with its ``managedFields``: assembled shallowly, copied once."""
        out = dict(obj)
        if api_version:
            out["apiVersion"] = api_version
        entries = self._managed.get((info.group, info.kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))
        if entries:
            rendered = []
            docs: set[int] = set()
            for e in entries.values():
                doc = e.fields_v1()
                if id(doc) in docs:  # two entries, one shared document: copied apart (one copy would alias them)
                    doc = fieldset.copy(doc)
                docs.add(id(doc))
                item = {
                    "manager": e.manager,
                    "operation": e.operation,
                    "apiVersion": e.api_version,
                    "time": iso(e.time),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": doc,
                }
                if e.subresource:
                    item["subresource"] = e.subresource
                rendered.append(item)
            md = out["metadata"] = dict(obj["metadata"])
            md["managedFields"] = rendered
        return fieldset.copy(out)

    # ------------------------------------------------------------------ watches

    def watch(self, group: str, kind: str, fn: Watcher) -> None:
        self._watchers[(group, kind)].append(fn)

    def watch_all(self, fn: Watcher) -> None:
        self._any_watchers.append(fn)

    def _notify(self, event_type: str, info: KindInfo, obj: dict) -> None:
        for fn in self._watchers.get((info.group, info.kind), ()):
            fn(event_type, obj)
        for fn in self._any_watchers:
            fn(event_type, obj)

    def _count_write(self, manager: str) -> None:
        self.writes += 1
        self.writes_by_manager[manager] += 1

    # ------------------------------------------------------------------ create

    def _prepare_input(self, obj: Any, *, apply: bool) -> tuple[KindInfo, dict]:
        if not isinstance(obj, dict):
            raise ApiError("BadRequest", f"object must be a mapping, got {type(obj).__name__}")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not api_version:
            raise ApiError("BadRequest", "Object 'apiVersion' is missing in object")
        if not isinstance(kind, str) or not kind:
            raise ApiError("BadRequest", "Object 'Kind' is missing in object")
        info = self.info(api_version, kind)
        errs = type_errors(info, obj)
        if errs:
            raise (apply_type_error if apply else update_type_error)(info, obj, errs)
        md = obj.get("metadata") or {}
        if not md.get("name") and not md.get("generateName"):
            if apply:
                raise ApiError("BadRequest", "metadata.name is required")
        new = fieldset.copy(obj)
        new.setdefault("metadata", {})
        for f in SERVER_METADATA:
            if f != "resourceVersion":
                new["metadata"].pop(f, None)
        return info, new

    def create(self, obj: dict, *, manager: str, dry_run: bool = False, render: bool = True) -> dict:
        """POST: create a new object (controllers, kubectl create). Raises AlreadyExists.

        Every write returns the object as the API server answers it, a copy with its
        ``managedFields``; ``render=False`` returns the stored object itself instead (read-only, as
        ``ref``), for the simulator's controllers, which write and move on.
        """
        info, new = self._prepare_input(obj, apply=False)
        new["metadata"].pop("resourceVersion", None)
        md = new["metadata"]
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + self.random_suffix()
        ns, name = self._key(info, new)
        if self.ref(info.group, info.kind, ns, name) is not None:
            raise already_exists(new["apiVersion"], info.kind, name)
        self._check_namespace(info, ns, creating=True)
        if info.has_status is False and info.top_level is not None:
            new.pop("status", None)
        apply_defaults(info.group, info.kind, new)
        self._create_defaults(info, new)
        admission.validate(info, new, None)
        fields = fieldset.fields_of(new) - IDENTITY_PATHS
        fields = {p for p in fields if p[0] != "status"}
        entries = {(manager, "Update", ""): ManagedEntry(manager, "Update", new["apiVersion"], self.now(), fields)}
        return self._persist_new(info, new, entries, manager, dry_run, render)

    def _create_defaults(self, info: KindInfo, new: dict) -> None:
        if info.kind == "Service" and info.group == "":
            spec = new.setdefault("spec", {})
            if "clusterIP" not in spec and spec.get("type", "ClusterIP") != "ExternalName":
                self._cluster_ips += 1
                spec["clusterIP"] = f"10.96.{self._cluster_ips // 250}.{self._cluster_ips % 250 + 1}"
                spec["clusterIPs"] = [spec["clusterIP"]]
        if info.kind == "Job" and info.group == "batch":
            spec = new.setdefault("spec", {})
            if "selector" not in spec:
                uid = new["metadata"].setdefault("uid", self._uid())
                spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
                tpl_md = spec.setdefault("template", {}).setdefault("metadata", {})
                labels = tpl_md.setdefault("labels", {})
                labels.setdefault("batch.kubernetes.io/controller-uid", uid)
                labels.setdefault("batch.kubernetes.io/job-name", new["metadata"]["name"])
                labels.setdefault("controller-uid", uid)
                labels.setdefault("job-name", new["metadata"]["name"])
            # a Job created without labels takes its pod template's, the generated ones included
            # (what a real v1.34 API server returns: tests/kube/test_controller_parity.py)
            tpl_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
            if tpl_labels and not new["metadata"].get("labels"):
                new["metadata"]["labels"] = dict(tpl_labels)

    def _persist_new(self, info: KindInfo, new: dict, entries: dict, manager: str, dry_run: bool,
                     render: bool = True) -> dict:
        md = new["metadata"]
        md.setdefault("uid", self._uid())
        md["creationTimestamp"] = iso(self.now())
        if info.generation:
            md["generation"] = 1
        if dry_run:
            md["resourceVersion"] = ""
            out = fieldset.copy(new)
            return out
        md["resourceVersion"] = self._next_rv()
        ns, name = md.get("namespace", ""), md["name"]
        gk, key = (info.group, info.kind), (ns, name)
        self._objects[gk][key] = new
        self._managed[(info.group, info.kind, ns, name)] = entries
        self._by_uid[md["uid"]] = (gk, key)
        self._seq[(gk, key)] = self._next_seq
        self._next_seq += 1
        if md.get("ownerReferences"):
            self._index_owners((gk, key), None, md["ownerReferences"])
        self._count_write(manager)
        self.log.record("api", "Created", object_key(info.kind, ns, name), detail={"manager": manager})
        if info.group == "apiextensions.k8s.io" and info.kind == "CustomResourceDefinition":
            self._establish_crd(new)
        self._notify("ADDED", info, new)
        return self._render(info, new) if render else new

    # ------------------------------------------------------------------ server-side apply

    def apply(self, obj: dict, *, field_manager: str, force: bool = False, dry_run: bool = False) -> dict:
        """Server-side apply (see module docstring). Returns the resulting object."""
        if not field_manager:
            raise ApiError("BadRequest", "PATCH, application/apply-patch+yaml requests require a fieldManager")
        info, applied = self._prepare_input(obj, apply=True)
        ns, name = self._key(info, applied)
        want_rv = applied["metadata"].pop("resourceVersion", None)
        if info.has_status:
            applied.pop("status", None)
        fields = fieldset.fields_of(applied) - IDENTITY_PATHS
        live = self.ref(info.group, info.kind, ns, name)
        if live is None:
            self._check_namespace(info, ns, creating=True)
            new = applied
            apply_defaults(info.group, info.kind, new)
            self._create_defaults(info, new)
            admission.validate(info, new, None)
            entries = {(field_manager, "Apply", ""): ManagedEntry(field_manager, "Apply", applied["apiVersion"], self.now(), fields)}
            return self._persist_new(info, new, entries, field_manager, dry_run)

        if want_rv and want_rv != live["metadata"]["resourceVersion"]:
            raise self._stale(info, live)
        okey = (info.group, info.kind, ns, name)
        entries = {k: ManagedEntry(e.manager, e.operation, e.api_version, e.time, set(e.fields), e.subresource, e._v1)
                   for k, e in self._managed.get(okey, {}).items()}
        mine_key = (field_manager, "Apply", "")
        conflicts: list[tuple[ManagedEntry, tuple]] = []
        for k, e in entries.items():
            if k == mine_key:
                continue
            shared = e.fields & fields
            for p in shared:
                if isinstance(p[-1], tuple):
                    continue  # an element marker: only its fields can conflict
                if fieldset.get_path(live, p) != fieldset.get_path(applied, p):
                    conflicts.append((e, p))
        if conflicts and not force:
            raise self._conflict_error(info, live, conflicts)
        if force:
            for e, p in conflicts:
                e.fields.discard(p)
        previous = entries.get(mine_key)
        base = live
        new = fieldset.merge(base, applied)
        if previous is not None:
            dropped = previous.fields - fields
            others = [e.fields for k, e in entries.items() if k != mine_key]
            for p in sorted(dropped, key=len, reverse=True):
                if len(p) > 1 and isinstance(p[-2], tuple) and p[-2][0] == "k" and p[-1] in dict(p[-2][1]):
                    continue  # a key field goes with its element marker
                if any(p in f or any(fieldset.is_prefix(p, q) for q in f) for f in others):
                    continue
                fieldset.remove(new, p)
        entries[mine_key] = ManagedEntry(field_manager, "Apply", applied["apiVersion"], self.now(), fields)
        entries = {k: e for k, e in entries.items() if e.fields}
        return self._persist_update(info, live, new, entries, field_manager, "Apply", dry_run)

    def _stale(self, info: KindInfo, live: dict) -> ApiError:
        res = qualified_resource(live["apiVersion"], info.kind)
        return conflict(
            f'Operation cannot be fulfilled on {res} "{live["metadata"]["name"]}": the object has been modified; '
            "please apply your changes to the latest version and try again",
            name=live["metadata"]["name"], kind=info.kind,
        )

    def _conflict_error(self, info: KindInfo, live: dict, conflicts: list[tuple[ManagedEntry, tuple]]) -> ApiError:
        by_mgr: dict[tuple[str, str], list[str]] = {}
        for e, p in conflicts:
            who = f'"{e.manager}" with subresource "{e.subresource}"' if e.subresource else f'"{e.manager}"'
            by_mgr.setdefault((who, e.api_version), []).append(fieldset.format_path(p))
        n = len(conflicts)
        if n == 1:
            (mgr, av), paths = next(iter(by_mgr.items()))
            body = f"conflict with {mgr} using {av}: {paths[0]}"
        else:
            parts = []
            for (mgr, av), paths in by_mgr.items():
                parts.append(f"conflicts with {mgr} using {av}:\n" + "\n".join(f"- {p}" for p in sorted(paths)))
            body = "\n".join(parts)
        causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{e.manager}" using {e.api_version}',
                   "field": fieldset.format_path(p)} for e, p in conflicts]
        return conflict(f"Apply failed with {n} conflict{'s' if n > 1 else ''}: {body}", causes,
                        name=live["metadata"]["name"], kind=info.kind)

    # ------------------------------------------------------------------ update operations

    def update(self, obj: dict, *, field_manager: str, dry_run: bool = False, subresource: str = "",
               render: bool = True) -> dict:
        """PUT (an Update operation): replace the object; the manager owns what it changed.

        ``render``: see ``create``."""
        info, new = self._prepare_input(obj, apply=False)
        ns, name = self._key(info, new)
        live = self.ref(info.group, info.kind, ns, name)
        if live is None:
            raise not_found(new["apiVersion"], info.kind, name)
        want_rv = new["metadata"].pop("resourceVersion", None)
        if want_rv and want_rv != live["metadata"]["resourceVersion"]:
            raise self._stale(info, live)
        if info.has_status:
            if "status" in live:
                new["status"] = fieldset.copy(live["status"])
            else:
                new.pop("status", None)
        apply_defaults(info.group, info.kind, new)
        self._carry_server_fields(info, live, new)
        okey = (info.group, info.kind, ns, name)
        entries = {k: ManagedEntry(e.manager, e.operation, e.api_version, e.time, set(e.fields), e.subresource, e._v1)
                   for k, e in self._managed.get(okey, {}).items()}
        self._take_changed(entries, live, new, field_manager, "Update", subresource, new["apiVersion"])
        return self._persist_update(info, live, new, entries, field_manager, "Update", dry_run, render)

    def _carry_server_fields(self, info: KindInfo, live: dict, new: dict) -> None:
        if info.kind == "Service" and info.group == "":
            spec = new.setdefault("spec", {})
            if "clusterIP" not in spec and "clusterIP" in live.get("spec", {}):
                spec["clusterIP"] = live["spec"]["clusterIP"]
                spec["clusterIPs"] = live["spec"].get("clusterIPs", [live["spec"]["clusterIP"]])
        if info.kind == "Job" and info.group == "batch":
            spec = new.setdefault("spec", {})
            if "selector" not in spec and "selector" in live.get("spec", {}):
                spec["selector"] = fieldset.copy(live["spec"]["selector"])

    def _take_changed(self, entries: dict, live: dict, new: dict, manager: str, operation: str,
                      subresource: str, api_version: str, only: set | None = None) -> None:
        # the paths of new whose value changed and the paths new no longer has, status aside
        # (fieldset.diff walks only what differs: an Update of one field touches one path)
        changed, removed = fieldset.diff(live, new, _STATUS)
        changed -= IDENTITY_PATHS
        removed -= IDENTITY_PATHS
        if only is not None:
            changed &= only
        for e in entries.values():
            e.fields -= changed
            e.fields -= removed
        key = (manager, operation, subresource)
        mine = entries.get(key)
        if mine is None:
            mine = entries[key] = ManagedEntry(manager, operation, api_version, self.now(), set(), subresource)
        if changed:
            mine.time = self.now()
        mine.fields |= changed
        for k in [k for k, e in entries.items() if not e.fields]:
            del entries[k]

    def scale(self, api_version: str, kind: str, name: str, namespace: str, replicas: int, *,
              field_manager: str, dry_run: bool = False, render: bool = True) -> dict:
        """The ``scale`` subresource: an Update of ``spec.replicas`` (HPA, ``kubectl scale``).

        ``render``: see ``create``."""
        info = self.info(api_version, kind)
        live = self.ref(info.group, kind, namespace, name)
        if live is None:
            raise not_found(api_version, kind, name)
        if not isinstance(replicas, int) or replicas < 0:
            raise admission_invalid(info, live, "spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")
        new = fieldset.copy(live)
        new["spec"]["replicas"] = replicas
        okey = (info.group, kind, live["metadata"].get("namespace", ""), name)
        entries = {k: ManagedEntry(e.manager, e.operation, e.api_version, e.time, set(e.fields), e.subresource, e._v1)
                   for k, e in self._managed.get(okey, {}).items()}
        self._take_changed(entries, live, new, field_manager, "Update", "scale", api_version,
                           only={("spec", "replicas")})
        return self._persist_update(info, live, new, entries, field_manager, "Update", dry_run, render)

    def update_status(self, obj: dict, status: dict, *, field_manager: str) -> dict:
        """Write the status subresource of a stored object (controllers). No generation bump."""
        info = self.kinds.known_object(obj["apiVersion"], obj["kind"])
        if info is None:
            raise not_found(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
        md = obj["metadata"]
        live = self.ref(info.group, info.kind, md.get("namespace", ""), md["name"])
        if live is None:
            raise not_found(obj["apiVersion"], obj["kind"], md["name"])
        if live.get("status") == status:
            return live
        live["status"] = status
        live["metadata"]["resourceVersion"] = self._next_rv()
        self._count_write(field_manager)
        if self.log_status_writes:
            self.log.record("api", "StatusUpdated", object_key(info.kind, md.get("namespace"), md["name"]),
                            detail={"manager": field_manager})
        self._notify("MODIFIED", info, live)
        return live

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str | None, status: dict, *,
                     field_manager: str) -> dict:
        """The status subresource through the seam: replace ``status`` (NotFound if absent)."""
        info = self.info(api_version, kind)
        ns = (namespace or "default") if info.namespaced else ""
        live = self.ref(info.group, kind, ns, name)
        if live is None:
            raise not_found(api_version, kind, name)
        self.update_status(live, fieldset.copy(status), field_manager=field_manager)
        return self._render(info, live)

    def set_metadata(self, obj: dict, *, field_manager: str, labels: dict | None = None,
                     annotations: dict | None = None, owner_references: list | None = None,
                     finalizers: list | None = None, render: bool = True) -> dict:
        """A metadata-only Update by a controller (adoption, finalizer removal; ``render``: see ``create``)."""
        info = self.info(obj["apiVersion"], obj["kind"])
        md = obj["metadata"]
        live = self.ref(info.group, info.kind, md.get("namespace", ""), md["name"])
        if live is None:
            raise not_found(obj["apiVersion"], obj["kind"], md["name"])
        new = fieldset.copy(live)
        if labels is not None:
            new["metadata"]["labels"] = labels
        if annotations is not None:
            new["metadata"]["annotations"] = annotations
        if owner_references is not None:
            new["metadata"]["ownerReferences"] = owner_references
        if finalizers is not None:
            new["metadata"]["finalizers"] = finalizers
            if not finalizers:
                new["metadata"].pop("finalizers")
        okey = (info.group, info.kind, md.get("namespace", ""), md["name"])
        entries = {k: ManagedEntry(e.manager, e.operation, e.api_version, e.time, set(e.fields), e.subresource, e._v1)
                   for k, e in self._managed.get(okey, {}).items()}
        self._take_changed(entries, live, new, field_manager, "Update", "", live["apiVersion"])
        return self._persist_update(info, live, new, entries, field_manager, "Update", False, render)

    def _persist_update(self, info: KindInfo, live: dict, new: dict, entries: dict, manager: str,
                        operation: str, dry_run: bool, render: bool = True) -> dict:
        md, lmd = new["metadata"], live["metadata"]
        for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if f in lmd:
                md[f] = lmd[f]
            else:
                md.pop(f, None)
        md["resourceVersion"] = lmd["resourceVersion"]
        if info.generation:
            md["generation"] = lmd.get("generation", 1)
        apply_defaults(info.group, info.kind, new)
        self._carry_server_fields(info, live, new)
        admission.validate(info, new, live)
        if lmd.get("deletionTimestamp"):
            added = set(md.get("finalizers") or []) - set(lmd.get("finalizers") or [])
            if added:
                raise ApiError("Forbidden", f"no new finalizers can be added if the object is being deleted, found new finalizers {sorted(added)}")
        spec_changed = any(new.get(k) != live.get(k) for k in set(new) | set(live) if k not in ("metadata", "status", "apiVersion"))
        if info.generation and spec_changed:
            md["generation"] = lmd.get("generation", 1) + 1
        okey = (info.group, info.kind, lmd.get("namespace", ""), lmd["name"])
        old_entries = self._managed.get(okey, {})
        same_owners = {k: e.fields for k, e in old_entries.items()} == {k: e.fields for k, e in entries.items()}
        unchanged = same_owners and new == live
        if dry_run:
            return self._render_with(info, new, entries)
        if unchanged:
            return self._render(info, live) if render else live
        md["resourceVersion"] = self._next_rv()
        if not same_owners:
            for k, e in entries.items():
                old = old_entries.get(k)
                if old is None or old.fields != e.fields:
                    e.time = self.now()
        loc = ((info.group, info.kind), (lmd.get("namespace", ""), lmd["name"]))
        self._objects[loc[0]][loc[1]] = new
        self._managed[okey] = entries
        if md.get("ownerReferences") != lmd.get("ownerReferences"):
            self._index_owners(loc, lmd.get("ownerReferences"), md.get("ownerReferences"))
        if md.get("deletionTimestamp") and "foregroundDeletion" in (md.get("finalizers") or ()):
            self._foreground[loc] = None
        self._count_write(manager)
        self.log.record("api", "Updated", object_key(info.kind, lmd.get("namespace"), lmd["name"]),
                        detail={"manager": manager, "operation": operation,
                                "generation": md.get("generation")})
        self._notify("MODIFIED", info, new)
        if md.get("deletionTimestamp") and not md.get("finalizers") and not (
                info.kind == "Pod" and info.group == "" and self.graceful_pods and md.get("deletionGracePeriodSeconds")):
            # a pod in graceful termination stays until the kubelet finalizes it
            self.log.record("api", "Deleted", object_key(info.kind, lmd.get("namespace"), lmd["name"]),
                            detail={"manager": manager, "finalized": True})
            self._remove(info, new)
        return self._render(info, new) if render else new

    def _render_with(self, info: KindInfo, obj: dict, entries: dict) -> dict:
        ns, name = obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
        okey = (info.group, info.kind, ns, name)
        saved = self._managed.get(okey)
        self._managed[okey] = entries
        try:
            return self._render(info, obj)
        finally:
            if saved is None:
                self._managed.pop(okey, None)
            else:
                self._managed[okey] = saved

    # ------------------------------------------------------------------ deletion

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
               propagation: str = "Background", dry_run: bool = False, grace: bool = True,
               manager: str = "", render: bool = True) -> dict | None:
        """Delete an object (see module docstring). Returns the object as last seen, None if absent
        (``render``: see ``create``)."""
        info = self.info(api_version, kind)
        ns = (namespace or "default") if info.namespaced else ""
        live = self.ref(info.group, kind, ns, name)
        if live is None:
            return None
        if propagation not in ("Background", "Foreground", "Orphan"):
            raise ApiError("BadRequest", f"propagationPolicy {propagation!r} is not supported")
        if dry_run:
            return self._render(info, live)
        md = live["metadata"]
        finalizers = list(md.get("finalizers") or [])
        if propagation == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if propagation == "Orphan":
            for dep in self._dependents(md["uid"]):
                refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != md["uid"]]
                self.set_metadata(dep, field_manager="garbage-collector", owner_references=refs, render=False)
        graceful_pod = info.kind == "Pod" and info.group == "" and self.graceful_pods and grace
        if graceful_pod and (not (live.get("spec") or {}).get("nodeName")
                             or (live.get("status") or {}).get("phase") in ("Succeeded", "Failed")):
            graceful_pod = False  # pod strategy CheckGracefulDelete: unscheduled or terminal pods go at once
        if info.kind == "Namespace" and info.group == "":
            if not md.get("deletionTimestamp"):
                self._mark_deleting(info, live, finalizers or ["kubernetes"], manager, propagation)
                live["status"] = {"phase": "Terminating"}
                self._enqueue_gc("ns:" + name)
            return self._render(info, live) if render else live
        if finalizers or graceful_pod:
            if not md.get("deletionTimestamp"):
                self._mark_deleting(info, live, finalizers, manager, propagation)
                if graceful_pod:
                    md["deletionGracePeriodSeconds"] = (live.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            if "foregroundDeletion" in finalizers:
                self._enqueue_gc(md["uid"])
            return self._render(info, live) if render else live
        self.log.record("api", "Deleted", object_key(kind, ns or None, name), detail={"manager": manager, "propagation": propagation})
        self._remove(info, live)
        return self._render(info, live) if render else live

    def _mark_deleting(self, info: KindInfo, live: dict, finalizers: list, manager: str, propagation: str) -> None:
        md = live["metadata"]
        # the API server bumps metadata.generation when it first sets deletionTimestamp
        # (registry/rest BeforeDelete, store markAsDeleting): controllers see the deletion as a new generation
        if md.get("generation"):
            md["generation"] += 1
        md["deletionTimestamp"] = iso(self.now())
        if finalizers:
            md["finalizers"] = finalizers
            if "foregroundDeletion" in finalizers:
                self._foreground[((info.group, info.kind), (md.get("namespace", ""), md["name"]))] = None
        md["resourceVersion"] = self._next_rv()
        self._count_write(manager or "deleter")
        self.log.record("api", "DeletionStarted", object_key(info.kind, md.get("namespace") or None, md["name"]),
                        detail={"manager": manager, "propagation": propagation, "finalizers": list(finalizers)})
        self._notify("MODIFIED", info, live)

    def finalize(self, obj: dict) -> None:
        """Complete deletion of an object whose deletionTimestamp is set (kubelet, namespace controller)."""
        info = self.info(obj["apiVersion"], obj["kind"])
        md = obj["metadata"]
        live = self.ref(info.group, info.kind, md.get("namespace", ""), md["name"])
        if live is not None:
            self.log.record("api", "Deleted", object_key(info.kind, md.get("namespace") or None, md["name"]), detail={})
            self._remove(info, live)

    def _remove(self, info: KindInfo, live: dict) -> None:
        md = live["metadata"]
        ns, name = md.get("namespace", ""), md["name"]
        self._objects[(info.group, info.kind)].pop((ns, name), None)
        self._managed.pop((info.group, info.kind, ns, name), None)
        self._by_uid.pop(md.get("uid", ""), None)
        loc = ((info.group, info.kind), (ns, name))
        self._seq.pop(loc, None)
        self._foreground.pop(loc, None)
        if md.get("ownerReferences"):
            self._index_owners(loc, md["ownerReferences"], None)
        self._rv += 1
        self._count_write("deleter")
        if info.group == "apiextensions.k8s.io" and info.kind == "CustomResourceDefinition":
            spec = live.get("spec") or {}
            gk = (spec.get("group", ""), (spec.get("names") or {}).get("kind", ""))
            for obj in list(self._objects.get(gk, {}).values()):
                ci = self.kinds.known(*gk)
                if ci is not None:
                    self._remove(ci, obj)
            self.kinds.unregister(*gk)
        self._notify("DELETED", info, live)
        self._enqueue_gc(md.get("uid", ""))

    # ------------------------------------------------------------------ garbage collection

    def _index_owners(self, loc: tuple[GK, Key], old_refs: list | None, new_refs: list | None) -> None:
        """Move the object at ``loc`` from the owners in ``old_refs`` to those in ``new_refs``."""
        old = {r.get("uid") for r in old_refs or () if isinstance(r, dict)}
        new = {r.get("uid") for r in new_refs or () if isinstance(r, dict)}
        index = self._dependents_of
        for uid in old - new:
            deps = index.get(uid)
            if deps is not None:
                deps.pop(loc, None)
                if not deps:
                    del index[uid]
        for uid in new - old:
            index.setdefault(uid, {})[loc] = None

    def _dependents(self, uid: str) -> list[dict]:
        """The objects whose ownerReferences name ``uid``, in the order a scan of every object finds them."""
        locs = self._dependents_of.get(uid)
        if not locs:
            return []
        order = list(locs)
        if len(order) > 1:
            rank = {gk: i for i, gk in enumerate(self._objects)}
            seq = self._seq
            order.sort(key=lambda loc: (rank[loc[0]], seq[loc]))
        objects = self._objects
        return [objects[gk][key] for gk, key in order]

    def _enqueue_gc(self, token: str) -> None:
        self._gc_queue.append(token)
        if self._gc_wakeup is not None and not self._gc_wakeup.triggered:
            self._gc_wakeup.succeed()

    def _garbage_collector(self):
        """A SimPy process: collects dependents of deleted owners, finishes foreground deletions and namespaces."""
        while True:
            if not self._gc_queue:
                self._gc_wakeup = self.env.event()
                yield self._gc_wakeup
                self._gc_wakeup = None
            if self.gc_delay:
                yield self.env.timeout(self.gc_delay)
            queue, self._gc_queue = self._gc_queue, []
            for token in queue:
                self._collect(token)

    def _collect(self, token: str) -> None:
        if token.startswith("ns:"):
            self._collect_namespace(token[3:])
            return
        owner = self.by_uid(token)
        if owner is not None and owner["metadata"].get("deletionTimestamp") and \
                "foregroundDeletion" in (owner["metadata"].get("finalizers") or []):
            deps = self._dependents(token)
            for d in deps:
                if not d["metadata"].get("deletionTimestamp"):
                    self.delete(d["apiVersion"], d["kind"], d["metadata"]["name"], d["metadata"].get("namespace"),
                                propagation="Foreground", manager="garbage-collector", render=False)
            if not any(self.by_uid(d["metadata"]["uid"]) is not None for d in deps):
                fins = [f for f in owner["metadata"].get("finalizers") or [] if f != "foregroundDeletion"]
                self.set_metadata(owner, field_manager="garbage-collector", finalizers=fins, render=False)
            else:
                self._pending_foreground(token)
            return
        if owner is not None:
            return
        for d in self._dependents(token):
            refs = d["metadata"].get("ownerReferences") or []
            if all(self.by_uid(r.get("uid", "")) is None for r in refs) and not d["metadata"].get("deletionTimestamp"):
                self.delete(d["apiVersion"], d["kind"], d["metadata"]["name"], d["metadata"].get("namespace"),
                            propagation="Background", manager="garbage-collector", render=False)
        # a dependent's removal may complete a foreground owner
        if self._foreground:
            self._finish_foreground()

    def _finish_foreground(self) -> None:
        """Drop the foregroundDeletion finalizer of every owner in foreground deletion whose
        dependents are all gone, visiting them in the order a scan of every object would (kind by
        kind, each kind's objects as they stand when the scan reaches it) — but only the candidates
        of ``_foreground``, not every object of the cluster."""
        rank = {gk: i for i, gk in enumerate(self._objects)}
        by_kind: dict[GK, list[tuple[GK, Key]]] = {}
        for loc in self._foreground:
            by_kind.setdefault(loc[0], []).append(loc)
        seq = self._seq
        for gk in sorted(by_kind, key=rank.__getitem__):
            objs = self._objects[gk]
            snapshot = [(loc, objs.get(loc[1])) for loc in sorted(by_kind[gk], key=seq.__getitem__)
                        if loc in seq]
            for loc, o in snapshot:
                if o is None:
                    continue
                md = o["metadata"]
                if md.get("deletionTimestamp") and "foregroundDeletion" in (md.get("finalizers") or []):
                    if not self._dependents(md["uid"]):
                        fins = [f for f in md.get("finalizers") or [] if f != "foregroundDeletion"]
                        self.set_metadata(o, field_manager="garbage-collector", finalizers=fins, render=False)
                elif objs.get(loc[1]) is o:
                    self._foreground.pop(loc, None)  # no longer in foreground deletion

    def _pending_foreground(self, uid: str) -> None:
        def later():
            yield self.env.timeout(1.0)
            self._enqueue_gc(uid)
        self.env.process(later())

    def _collect_namespace(self, name: str) -> None:
        remaining = 0
        for (group, kind), objs in list(self._objects.items()):
            if (group, kind) == ("", "Namespace"):
                continue
            for (ns, oname), o in list(objs.items()):
                if ns != name:
                    continue
                remaining += 1
                if not o["metadata"].get("deletionTimestamp"):
                    self.delete(o["apiVersion"], kind, oname, ns, propagation="Background", manager="namespace-controller",
                                render=False)
        still = sum(1 for objs in self._objects.values() for (ns, _n) in objs if ns == name)
        nsobj = self.ref("", "Namespace", "", name)
        if nsobj is None:
            return
        if still == 0:
            self.log.record("api", "Deleted", object_key("Namespace", None, name), detail={"manager": "namespace-controller"})
            self._remove(self.kinds.known("", "Namespace"), nsobj)
        else:
            self._pending_namespace(name)

    def _pending_namespace(self, name: str) -> None:
        def later():
            yield self.env.timeout(1.0)
            self._enqueue_gc("ns:" + name)
        self.env.process(later())

    # ------------------------------------------------------------------ CRDs

    def _establish_crd(self, crd: dict) -> None:
        info = self.kinds.register_crd(crd)
        crd["status"] = {
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": iso(self.now())},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": iso(self.now())},
            ],
            "acceptedNames": (crd.get("spec") or {}).get("names", {}),
            "storedVersions": [v for v in info.versions[:1]],
        }


def admission_invalid(info: KindInfo, obj: dict, field_path: str, message: str) -> ApiError:
    from labkit.core.errors import FieldCause, invalid
    return invalid(obj["apiVersion"], info.kind, obj["metadata"]["name"], [FieldCause(field_path, message)])
