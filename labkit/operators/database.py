"""A database operator: a ``Database`` custom resource is a real SQLite database; deleting it drops it.

Why it exists
=============

Operators turn a custom resource into something outside Kubernetes — a cloud
database, a bucket, a DNS zone — and most of them *delete that thing when the
resource is deleted*.  Under GitOps the resource lives in git, so removing a
file from git (a clean-up commit, a bad merge, a path moved) makes the GitOps
controller prune the resource, and the operator faithfully drops the database.
The safeguards are the GitOps ones (Argo CD's
``argocd.argoproj.io/sync-options: Prune=false``, Flux's
``kustomize.toolkit.fluxcd.io/prune: disabled``) and the operator's own
(``spec.deletionPolicy: Retain``, in the spirit of Crossplane's
``deletionPolicy: Orphan`` or a PV's ``persistentVolumeReclaimPolicy``).  The
stateful-edges scenario shows all of them with a database that really exists:
the operator creates a SQLite file and really deletes it.

The resource
============

``DatabaseOperator.install()`` registers the CRD ``databases.db.labkit.io``
(group ``db.labkit.io``, version ``v1alpha1``, kind ``Database``, namespaced,
with a status subresource) in the cluster — what an operator's Helm chart
does — and starts the reconcile loop.  A Database looks like::

    apiVersion: db.labkit.io/v1alpha1
    kind: Database
    metadata:
      name: orders
      namespace: data
    spec:
      engine: sqlite           # the only engine labkit runs
      deletionPolicy: Delete   # Delete (default) | Retain
      schema: |                # optional SQL run once, when the database is created
        CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL);

The reconcile loop
==================

Like controller-runtime operators, it watches its kind (through the cluster's
``watch``), queues keys and reconciles one at a time on the lab's clock:

* a live Database without the finalizer ``db.labkit.io/drop-database`` gets it
  first (an Update by ``database-operator``), so that a deletion waits for the
  operator — the pattern every operator that manages external state uses;
* a Database whose file does not exist is **provisioned**: after
  ``provision_seconds`` (creating a real database takes time) the operator
  creates ``<data_dir>/<namespace>/<name>.sqlite`` with ``sqlite3``, runs
  ``spec.schema``, records its own ``labkit_database`` row (name, uid,
  creation time) and writes ``status`` (``phase: Ready``, ``file``,
  condition ``Ready=True`` reason ``Provisioned``) — event ``DatabaseCreated``;
* a Database being deleted (``deletionTimestamp`` set, finalizer still there)
  is **dropped** — the file and its journal are deleted, event
  ``DatabaseDropped`` — unless ``spec.deletionPolicy`` is ``Retain`` (event
  ``DatabaseRetained``, the file stays); then the finalizer is removed and the
  API server lets the object go.

Invalid specs (an unknown engine or deletion policy) set ``Ready=False`` with
reason ``InvalidSpec`` and a message naming the field; nothing is created.
Everything the operator does is in the event log under component
``database-operator``.

The operator talks to the cluster through the ``Cluster`` seam only (get,
apply, update, patch_status, watch), so it runs unchanged on any backend with
a watch; its timing comes from the cluster's SimPy environment.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import simpy

from labkit.core.clock import timestamp
from labkit.core.errors import ApiError
from labkit.core.events import object_key

__all__ = ["GROUP", "VERSION", "API_VERSION", "KIND", "FINALIZER", "COMPONENT", "database_crd", "DatabaseOperator",
           "database_manifest"]

GROUP = "db.labkit.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Database"
FINALIZER = "db.labkit.io/drop-database"
COMPONENT = "database-operator"
FIELD_MANAGER = "database-operator"
ENGINES = ("sqlite",)
POLICIES = ("Delete", "Retain")


def database_crd() -> dict[str, Any]:
    """The CustomResourceDefinition ``databases.db.labkit.io`` (schema left open, as labkit's other CRDs)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"databases.{GROUP}", "labels": {"app.kubernetes.io/part-of": "database-operator"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": "databases", "singular": "database",
                      "shortNames": ["db"]},
            "versions": [{
                "name": VERSION, "served": True, "storage": True, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }],
        },
    }


def database_manifest(name: str, namespace: str, *, deletion_policy: str | None = None, schema: str | None = None,
                      annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A ``Database`` object as a developer would commit it."""
    md: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        md["annotations"] = dict(annotations)
    spec: dict[str, Any] = {"engine": "sqlite"}
    if deletion_policy is not None:
        spec["deletionPolicy"] = deletion_policy
    if schema:
        spec["schema"] = schema
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": md, "spec": spec}


class DatabaseOperator:
    """Reconciles ``Database`` objects into SQLite files under ``data_dir`` (see the module docstring)."""

    component = COMPONENT

    def __init__(self, cluster: Any, data_dir: str | os.PathLike[str], *, provision_seconds: float = 3.0,
                 env: simpy.Environment | None = None, log: Any = None):
        self.cluster = cluster
        self.env: simpy.Environment = env if env is not None else cluster.env
        self.log = log if log is not None else cluster.log
        self.data_dir = Path(data_dir)
        self.provision_seconds = float(provision_seconds)
        self._queue: list[tuple[str, str]] = []
        self._queued: set[tuple[str, str]] = set()
        self._wake: simpy.Event | None = None
        self._provisioning: set[str] = set()  # uids being created
        self.started = False

    # ------------------------------------------------------------------ set-up

    def install(self) -> "DatabaseOperator":
        """Register the CRD and start watching (idempotent)."""
        if self.started:
            return self
        self.cluster.apply(database_crd(), field_manager=f"{FIELD_MANAGER}-install", force=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cluster.watch(API_VERSION, KIND, self._on_event)
        for obj in self.cluster.list(API_VERSION, KIND):
            self._on_event("ADDED", obj)
        self.env.process(self._worker())
        self.started = True
        return self

    def path_for(self, namespace: str, name: str) -> Path:
        """The database file of ``namespace/name``."""
        return self.data_dir / namespace / f"{name}.sqlite"

    def exists(self, namespace: str, name: str) -> bool:
        return self.path_for(namespace, name).is_file()

    def connect(self, namespace: str, name: str) -> sqlite3.Connection:
        """A connection to an existing database (what an application would open)."""
        path = self.path_for(namespace, name)
        if not path.is_file():
            raise FileNotFoundError(f"database {namespace}/{name} does not exist ({path})")
        return sqlite3.connect(path)

    # ------------------------------------------------------------------ the loop

    def _on_event(self, event_type: str, obj: dict) -> None:
        md = obj.get("metadata") or {}
        key = (md.get("namespace") or "", md.get("name") or "")
        if event_type == "DELETED" or key in self._queued:
            return
        self._queued.add(key)
        self._queue.append(key)
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()

    def _worker(self) -> Any:
        while True:
            if not self._queue:
                self._wake = self.env.event()
                yield self._wake
                continue
            key = self._queue.pop(0)
            self._queued.discard(key)
            try:
                self.reconcile(*key)
            except ApiError as err:  # a conflict or a race with a deletion: try again shortly
                self.log.record(COMPONENT, "ReconcileError", object_key(KIND, key[0], key[1]),
                                detail={"reason": err.reason, "message": err.message})
                self.env.process(self._requeue(key, 1.0))
            yield self.env.timeout(0)

    def _requeue(self, key: tuple[str, str], delay: float) -> Any:
        yield self.env.timeout(delay)
        obj = self.cluster.get(API_VERSION, KIND, key[1], key[0])
        if obj is not None:
            self._on_event("MODIFIED", obj)

    def reconcile(self, namespace: str, name: str) -> None:
        """One reconcile of ``namespace/name`` (see the module docstring)."""
        obj = self.cluster.get(API_VERSION, KIND, name, namespace)
        if obj is None:
            return
        md = obj["metadata"]
        subject = object_key(KIND, namespace, name)
        spec = obj.get("spec") or {}
        finalizers = list(md.get("finalizers") or [])
        if md.get("deletionTimestamp"):
            if FINALIZER not in finalizers:
                return
            path = self.path_for(namespace, name)
            if (spec.get("deletionPolicy") or "Delete") == "Retain":
                self.log.record(COMPONENT, "DatabaseRetained", subject,
                                detail={"file": str(path.name), "message": "deletionPolicy Retain: database kept"})
            else:
                existed = path.is_file()
                for p in (path, path.with_name(path.name + "-journal"), path.with_name(path.name + "-wal")):
                    if p.exists():
                        p.unlink()
                self.log.record(COMPONENT, "DatabaseDropped", subject,
                                detail={"file": str(path.name), "existed": existed,
                                        "message": f"DROP DATABASE {name}: the Database resource was deleted"})
            self._set_finalizers(obj, [f for f in finalizers if f != FINALIZER])
            return
        problem = self._invalid(spec)
        if problem:
            self._status(obj, ready=False, reason="InvalidSpec", message=problem, phase="Failed")
            return
        if FINALIZER not in finalizers:
            self._set_finalizers(obj, finalizers + [FINALIZER])
            return  # the MODIFIED event brings us back
        if self.exists(namespace, name):
            self._status(obj, ready=True, reason="Provisioned", message="database is ready", phase="Ready")
            return
        uid = md.get("uid", "")
        if uid in self._provisioning:
            return
        self._provisioning.add(uid)
        self._status(obj, ready=False, reason="Provisioning", message="creating database", phase="Creating")
        self.env.process(self._provision(namespace, name, uid))

    def _invalid(self, spec: dict) -> str:
        engine = spec.get("engine", "sqlite")
        if engine not in ENGINES:
            return f"spec.engine: Unsupported value: {engine!r}: supported values: {', '.join(ENGINES)}"
        policy = spec.get("deletionPolicy", "Delete")
        if policy not in POLICIES:
            return f"spec.deletionPolicy: Unsupported value: {policy!r}: supported values: {', '.join(POLICIES)}"
        return ""

    def _provision(self, namespace: str, name: str, uid: str) -> Any:
        yield self.env.timeout(self.provision_seconds)
        self._provisioning.discard(uid)
        obj = self.cluster.get(API_VERSION, KIND, name, namespace)
        if obj is None or obj["metadata"].get("uid") != uid or obj["metadata"].get("deletionTimestamp"):
            return
        path = self.path_for(namespace, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        subject = object_key(KIND, namespace, name)
        con = sqlite3.connect(path)
        try:
            con.execute("CREATE TABLE IF NOT EXISTS labkit_database (name TEXT NOT NULL, uid TEXT NOT NULL, "
                        "created_at TEXT NOT NULL)")
            con.execute("INSERT INTO labkit_database VALUES (?, ?, ?)", (name, uid, timestamp(self.env.now)))
            con.commit()
            schema = (obj.get("spec") or {}).get("schema")
            if schema:
                con.executescript(schema)
                con.commit()
        except sqlite3.Error as err:
            con.close()
            self._status(obj, ready=False, reason="SchemaFailed", message=f"spec.schema: {err}", phase="Failed")
            self.log.record(COMPONENT, "SchemaFailed", subject, detail={"message": str(err)})
            return
        finally:
            try:
                con.close()
            except sqlite3.Error:  # pragma: no cover
                pass
        self.log.record(COMPONENT, "DatabaseCreated", subject, detail={"file": path.name})
        self._status(obj, ready=True, reason="Provisioned", message="database is ready", phase="Ready")

    # ------------------------------------------------------------------ writes

    def _set_finalizers(self, obj: dict, finalizers: list[str]) -> None:
        upd = {k: v for k, v in obj.items() if k != "status"}
        upd["metadata"] = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
        upd["metadata"]["finalizers"] = finalizers
        if not finalizers:
            upd["metadata"].pop("finalizers")
        self.cluster.update(upd, field_manager=FIELD_MANAGER)

    def _status(self, obj: dict, *, ready: bool, reason: str, message: str, phase: str) -> None:
        md = obj["metadata"]
        old = obj.get("status") or {}
        cond = {"type": "Ready", "status": "True" if ready else "False", "reason": reason, "message": message,
                "observedGeneration": md.get("generation", 1)}
        prev = next((c for c in old.get("conditions") or [] if c.get("type") == "Ready"), None)
        if prev and all(prev.get(k) == cond[k] for k in ("status", "reason", "message", "observedGeneration")) \
                and old.get("phase") == phase:
            return
        cond["lastTransitionTime"] = timestamp(self.env.now)
        status = {"phase": phase, "file": f"{md.get('namespace', '')}/{md['name']}.sqlite",
                  "observedGeneration": md.get("generation", 1), "conditions": [cond]}
        self.cluster.patch_status(API_VERSION, KIND, md["name"], md.get("namespace"), status,
                                  field_manager=FIELD_MANAGER)
