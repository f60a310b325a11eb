"""Stateful edges: where declarative reconciliation meets state it cannot simply re-create.

Two classic ways GitOps hurts stateful workloads, both reproduced from the
real mechanisms on the embedded cluster, reconciled by Flux or Argo CD
(``dialect``):

1. **StatefulSet ``volumeClaimTemplates`` are immutable.**  The platform repo's
   ``platform/`` directory holds a Postgres-like StatefulSet ``data/pg`` (two
   replicas, a ``data`` claim template of 1Gi, a headless Service).  Somebody
   commits the obvious change — grow the volumes to 2Gi.  The GitOps
   controller's server-side dry-run (Flux's plan, Argo's apply) is refused by
   the API server's StatefulSet validation with its own words::

       StatefulSet.apps "pg" is invalid: spec: Forbidden: updates to statefulset
       spec for fields other than 'replicas', 'ordinals', 'template',
       'updateStrategy', 'revisionHistoryLimit',
       'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden

   and the reconcile fails: Flux reports it in the Kustomization's ``Ready``
   condition (the whole apply is refused, nothing is written), Argo CD in the
   sync operation's message and the StatefulSet's sync result (after its
   automated retries).  ``sts_sync_error`` is that message, read back from the
   GitOps object's status.  The documented way out (kubernetes/kubernetes#68737,
   flux2 #3573) is manual: ``kubectl delete statefulset pg --cascade=orphan``
   — the StatefulSet goes, its pods and PersistentVolumeClaims stay, orphaned —
   then a re-sync (``flux reconcile`` / ``argocd app sync``) creates the
   StatefulSet again from git with the new template, and the StatefulSet
   controller *adopts* the running pods (same names, same uids) and keeps the
   claims.  The run checks pods and claims survived by uid.  (Existing claims
   keep their size: the new template only applies to claims created from now
   on; growing them is a separate per-claim expansion.)

2. **Pruning an operator's custom resource drops the database.**  A
   ``DatabaseOperator`` (``labkit.operators.database``) runs in the cluster:
   each ``Database`` object in git becomes a real SQLite file in the lab's
   workdir, and deleting the object makes the operator drop it.  Git holds two:
   ``orders`` (no safeguard) and ``analytics`` carrying the dialect's prune
   safeguard — ``argocd.argoproj.io/sync-options: Prune=false`` or
   ``kustomize.toolkit.fluxcd.io/prune: disabled``.  The application writes rows
   into both.  Then a clean-up commit removes both files from git.  With prune
   on, the GitOps controller deletes ``orders``; the operator's finalizer runs
   and the file — rows and all — is gone.  ``analytics`` is skipped by the
   pruner (Argo keeps the Application OutOfSync, Flux logs it as skipped) and
   its database survives.  ``deletion_policy=Retain`` sets the operator's own
   safeguard on both resources: then even the pruned ``orders`` keeps its file.

Metrics: ``sts_sync_error`` (the Forbidden message as the GitOps object
reports it), ``database_dropped_without_safeguard`` and
``database_dropped_with_safeguard`` (whether each SQLite file was deleted),
plus ``pods_survived_orphan_delete``, ``pvcs_survived_orphan_delete``,
``rows_lost`` and ``status_after_cleanup`` (Argo's sync status — ``OutOfSync``
while a resource that needs pruning is kept — or Flux's ``Ready`` reason).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from labkit.core.errors import LabkitError
from labkit.operators.database import API_VERSION as DB_API
from labkit.operators.database import KIND as DB_KIND
from labkit.operators.database import DatabaseOperator, database_manifest
from labkit.scenarios.applab import AppLab, Target, check_dialect, yaml_docs

__all__ = ["run_stateful_edges", "StatefulResult", "platform_files", "SAFEGUARD", "plot_timeline",
           "DELETION_POLICIES"]

NAMESPACE = "data"
STS = "pg"
APP = "platform"
DELETION_POLICIES = ("Delete", "Retain")
SAFEGUARD = {
    "argo": ("argocd.argoproj.io/sync-options", "Prune=false"),
    "flux": ("kustomize.toolkit.fluxcd.io/prune", "disabled"),
}
ORDERS_SCHEMA = "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL, qty INTEGER NOT NULL);"
ANALYTICS_SCHEMA = "CREATE TABLE page_views (day TEXT PRIMARY KEY, views INTEGER NOT NULL);"


def platform_files(dialect: str, *, storage: str = "1Gi", databases: bool = True,
                   deletion_policy: str | None = None) -> dict[str, str | None]:
    """The ``platform/`` directory: Namespace, Postgres StatefulSet + headless Service, two Databases."""
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": STS, "namespace": NAMESPACE},
           "spec": {"clusterIP": "None", "selector": {"app": STS}, "ports": [{"name": "pg", "port": 5432}]}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": STS, "namespace": NAMESPACE},
           "spec": {"serviceName": STS, "replicas": 2, "selector": {"matchLabels": {"app": STS}},
                    "template": {"metadata": {"labels": {"app": STS}},
                                 "spec": {"containers": [{"name": "postgres", "image": "postgres:16.4",
                                                          "ports": [{"containerPort": 5432, "name": "pg"}],
                                                          "volumeMounts": [{"name": "data",
                                                                            "mountPath": "/var/lib/postgresql/data"}],
                                                          "resources": {"requests": {"cpu": "250m",
                                                                                     "memory": "256Mi"}}}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                              "spec": {"accessModes": ["ReadWriteOnce"],
                                                       "resources": {"requests": {"storage": storage}}}}]}}
    files: dict[str, str | None] = {"platform/namespace.yaml": yaml_docs(ns),
                                    "platform/postgres.yaml": yaml_docs(svc, sts)}
    key, value = SAFEGUARD[dialect]
    if databases:
        files["platform/database-orders.yaml"] = yaml_docs(database_manifest(
            "orders", NAMESPACE, deletion_policy=deletion_policy, schema=ORDERS_SCHEMA))
        files["platform/database-analytics.yaml"] = yaml_docs(database_manifest(
            "analytics", NAMESPACE, deletion_policy=deletion_policy, schema=ANALYTICS_SCHEMA,
            annotations={key: value}))
    else:
        files["platform/database-orders.yaml"] = None
        files["platform/database-analytics.yaml"] = None
    return files


@dataclass
class StatefulResult:
    """One run: the lab, the operator, what was observed at each step, and marks in virtual time."""

    lab: AppLab
    operator: DatabaseOperator
    dialect: str
    deletion_policy: str
    sts_error: str = ""
    sts_error_phase: str = ""
    pods_before: dict[str, str] = field(default_factory=dict)
    pods_after: dict[str, str] = field(default_factory=dict)
    pvcs_before: dict[str, str] = field(default_factory=dict)
    pvcs_after: dict[str, str] = field(default_factory=dict)
    rows_before: dict[str, int] = field(default_factory=dict)
    storage_after: str = ""
    status_after_cleanup: str = ""
    marks: dict[str, float] = field(default_factory=dict)

    exists_at_end: dict[str, bool] = field(default_factory=dict)  # each database file, when the run ended

    def db_exists(self, name: str) -> bool:
        if name in self.exists_at_end:  # on a real cluster the lab (and its workdir) is gone by now
            return self.exists_at_end[name]
        return self.operator.exists(NAMESPACE, name)

    def metrics(self) -> dict[str, Any]:
        lost = sum(n for db, n in self.rows_before.items() if not self.db_exists(db))
        return {
            "sts_sync_error": self.sts_error.split("\n")[0],
            "database_dropped_without_safeguard": not self.db_exists("orders"),
            "database_dropped_with_safeguard": not self.db_exists("analytics"),
            "pods_survived_orphan_delete": bool(self.pods_before) and self.pods_before == self.pods_after,
            "pvcs_survived_orphan_delete": bool(self.pvcs_before) and self.pvcs_before == self.pvcs_after,
            "rows_lost": lost,
            "status_after_cleanup": self.status_after_cleanup,
            "dialect": self.dialect,
        }

    def timeline(self) -> pd.DataFrame:
        """The steps that matter, from the event log: commits, refusals, deletions, operator actions."""
        rows = []
        for e in self.lab.log:
            what = None
            if e.component == "git" and e.event == "Committed":
                what = f"commit: {e.detail.get('message', '')}"
            elif e.component == "database-operator" and e.event in ("DatabaseCreated", "DatabaseDropped",
                                                                     "DatabaseRetained"):
                what = f"{e.event} {e.object}"
            elif e.component == "api" and e.event == "Deleted" and (
                    e.object.startswith(f"{DB_KIND}/") or e.object.startswith("StatefulSet/")):
                what = f"deleted {e.object} ({e.detail.get('propagation') or e.detail.get('manager', '')})"
            elif e.component == "api" and e.event == "Created" and e.object.startswith("StatefulSet/"):
                what = f"created {e.object}"
            elif e.component == "sts-migration":
                what = e.detail.get("message", e.event)
            if what:
                rows.append({"time": e.time, "component": e.component, "what": what})
        return pd.DataFrame(rows, columns=["time", "component", "what"])


def _uids(lab: AppLab, kind: str) -> dict[str, str]:
    out = {}
    for o in lab.cluster.list("v1", kind, NAMESPACE):
        md = o["metadata"]
        if md.get("deletionTimestamp"):
            continue
        out[md["name"]] = md["uid"]
    return out


def _sts(lab: AppLab) -> dict[str, Any] | None:
    return lab.get("apps/v1", "StatefulSet", STS, NAMESPACE)


def _storage(sts: dict[str, Any] | None) -> str:
    if sts is None:
        return ""
    return sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]


def _ready(lab: AppLab) -> bool:
    sts = _sts(lab)
    return sts is not None and (sts.get("status") or {}).get("readyReplicas") == sts["spec"].get("replicas")


def _provide_volumes(lab: AppLab) -> None:
    """On a real cluster: two pre-provisioned 1Gi volumes reserved for the StatefulSet's claims.

    The simulator binds claims itself; a KWOK cluster has no storage provisioner, so the
    cluster admin's part (static provisioning) is done here: one hostPath PersistentVolume
    per replica, pre-bound (``claimRef``) to ``data-pg-<i>`` in the lab's namespace, which the
    real PV controller then binds.  They carry the run's label and go when the lab closes.
    """
    real_ns = lab.cluster.real_namespace(NAMESPACE)
    for i in range(2):
        lab.provide_cluster_scoped({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": f"{lab.cluster.prefix}pg-{i}"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "",
                     "hostPath": {"path": f"/var/lib/labkit/{lab.cluster.prefix}pg-{i}"},
                     "claimRef": {"namespace": real_ns, "name": f"data-{STS}-{i}"}}})


def run_stateful_edges(*, dialect: str = "argo", seed: int = 0, deletion_policy: str = "Delete",
                       pause_s: float = 60.0, argo_retry_limit: int = -1, cluster: str = "sim") -> StatefulResult:
    """Run both stories on one lab (see the module docstring).

    ``pause_s`` is the wait between steps; ``argo_retry_limit`` >= 0 gives the Application a
    ``syncPolicy.retry.limit`` (-1: none, the default), so a refused sync is reported after
    that many retries instead of the default back-off (minutes of wall time on a real cluster).
    On a real cluster (``cluster`` other than ``sim``) the StatefulSet's two claims get
    pre-provisioned volumes (``_provide_volumes``) and the pods are the real StatefulSet
    controller's (the timeline's pod lanes, drawn from the simulator's API records, stay empty).
    """
    check_dialect(dialect)
    if deletion_policy not in DELETION_POLICIES:
        raise LabkitError(f"unknown deletion_policy {deletion_policy!r}: choose Delete or Retain",
                          field="deletion_policy")
    lab = AppLab(dialect, seed=seed, cluster=cluster)
    try:
        return _stories(lab, dialect, deletion_policy, pause_s, None if argo_retry_limit < 0 else argo_retry_limit)
    finally:
        if lab.real:
            lab.close()  # a real cluster: delete the lab's namespaces and volumes (the result keeps what it saw)


def _stories(lab: AppLab, dialect: str, deletion_policy: str, pause_s: float,
             retry_limit: int | None) -> StatefulResult:
    if lab.real:
        from labkit.operators.database import database_crd
        from labkit.scenarios.backend import ensure_kinds

        ensure_kinds(lab.kube, [database_crd()])  # served before the operator starts watching it
        _provide_volumes(lab)
    operator = DatabaseOperator(lab.cluster, lab.workdir / "databases").install()
    policy = None if deletion_policy == "Delete" else deletion_policy
    res = StatefulResult(lab, operator, dialect, deletion_policy)
    target = Target(APP, APP, namespace=NAMESPACE, interval="10m", retry_limit=retry_limit if dialect == "argo" else None)
    lab.commit(platform_files(dialect, deletion_policy=policy), "platform: postgres and two databases",
               author="platform")
    lab.deploy(target)
    ok = lab.run_until(lambda: _ready(lab) and operator.exists(NAMESPACE, "orders")
                       and operator.exists(NAMESPACE, "analytics"), timeout=900, step=5)
    if ok is None:
        raise LabkitError("the platform did not become ready within 15 minutes", field="platform")
    res.marks["ready"] = lab.now
    # the applications write their data
    for db, sql, rows in (("orders", "INSERT INTO orders (item, qty) VALUES (?, ?)",
                           [("keyboard", 2), ("monitor", 1), ("cable", 5)]),
                          ("analytics", "INSERT INTO page_views (day, views) VALUES (?, ?)",
                           [("2026-01-01", 1200), ("2026-01-02", 1350)])):
        con = operator.connect(NAMESPACE, db)
        with con:
            con.executemany(sql, rows)
        con.close()
        res.rows_before[db] = len(rows)
    lab.advance(pause_s)

    # 1. grow the volumes in git: the API server refuses the StatefulSet change
    res.marks["grow_commit"] = lab.now
    sha = lab.commit({"platform/postgres.yaml": platform_files(dialect, storage="2Gi")["platform/postgres.yaml"]},
                     "pg: grow data volumes to 2Gi", author="dba")

    def refused() -> bool:
        st = lab.state(APP)
        if st.ok is not False:
            return False
        attempted = st.detail.get("lastAttemptedRevision", "") if dialect == "flux" else st.revision
        return sha in attempted

    if lab.run_until(refused, timeout=900, step=5) is None:
        raise LabkitError("the volumeClaimTemplates change was not refused within 15 minutes", field="platform")
    st = lab.state(APP)
    res.sts_error, res.sts_error_phase = st.message, st.phase
    res.marks["refused"] = lab.now
    lab.advance(pause_s)

    # 2. the documented manual migration: delete the StatefulSet, orphaning pods and claims; re-sync
    res.pods_before = _uids(lab, "Pod")
    res.pvcs_before = _uids(lab, "PersistentVolumeClaim")
    lab.log.record("sts-migration", "OrphanDelete", f"StatefulSet/{NAMESPACE}/{STS}",
                   detail={"message": "kubectl delete statefulset pg --cascade=orphan"})
    lab.cluster.delete("apps/v1", "StatefulSet", STS, NAMESPACE, propagation="Orphan")
    res.marks["orphaned"] = lab.now
    lab.advance(5)
    lab.log.record("sts-migration", "Resync", f"{'Kustomization' if dialect == 'flux' else 'Application'}/{APP}",
                   detail={"message": "flux reconcile kustomization platform" if dialect == "flux"
                           else "argocd app sync platform"})
    try:
        lab.sync_now(APP)
    except LabkitError:
        pass  # Argo: self-heal already started a sync of the missing StatefulSet
    lab.run_until(lambda: _storage(_sts(lab)) == "2Gi" and _ready(lab) and lab.state(APP).ok is True,
                  timeout=900, step=5)
    res.marks["resynced"] = lab.now
    res.storage_after = _storage(_sts(lab))
    res.pods_after = _uids(lab, "Pod")
    res.pvcs_after = _uids(lab, "PersistentVolumeClaim")
    lab.advance(pause_s)

    # 3. a clean-up commit removes both Database resources from git
    res.marks["cleanup_commit"] = lab.now
    lab.commit({p: v for p, v in platform_files(dialect, databases=False).items() if p.startswith("platform/database")},
               "platform: remove database manifests (moved to another repo)", author="carol")
    lab.run_until(lambda: lab.get(DB_API, DB_KIND, "orders", NAMESPACE) is None, timeout=900, step=5)
    lab.advance(5 * pause_s)
    res.marks["end"] = lab.now
    res.exists_at_end = {db: operator.exists(NAMESPACE, db) for db in ("orders", "analytics")}
    st = lab.state(APP)
    res.status_after_cleanup = st.sync_status if dialect == "argo" else st.phase
    return res


def plot_timeline(result: StatefulResult) -> plt.Figure:
    """What lived when: the StatefulSet, its pods, and the two databases (files on disk), with the key steps."""
    lab = result.lab
    log = lab.log
    end = result.marks.get("end", lab.now)
    lanes: list[tuple[str, list[tuple[float, float]], str]] = []

    def spans(obj: str, start_ev: str, end_ev: str, component: str) -> list[tuple[float, float]]:
        out, t0 = [], None
        for e in log:
            if e.object != obj or e.component != component:
                continue
            if e.event == start_ev and t0 is None:
                t0 = e.time
            elif e.event == end_ev and t0 is not None:
                out.append((t0, e.time))
                t0 = None
        if t0 is not None:
            out.append((t0, end))
        return out

    lanes.append(("StatefulSet pg", spans(f"StatefulSet/{NAMESPACE}/{STS}", "Created", "Deleted", "api"),
                  "tab:blue"))
    for i in range(2):
        lanes.append((f"pod pg-{i}", spans(f"Pod/{NAMESPACE}/{STS}-{i}", "Created", "Deleted", "api"), "tab:cyan"))
    for db in ("orders", "analytics"):
        lanes.append((f"database {db} (file)", spans(f"{DB_KIND}/{NAMESPACE}/{db}", "DatabaseCreated",
                                                     "DatabaseDropped", "database-operator"), "tab:green"))
    fig, ax = plt.subplots(figsize=(11, 3.8))
    for i, (label, ss, color) in enumerate(lanes):
        ax.broken_barh([(a / 60, max((b - a) / 60, 0.05)) for a, b in ss], (i - 0.35, 0.7), color=color)
    ax.set_yticks(range(len(lanes)), [lab_ for lab_, _, _ in lanes])
    marks = [("grow_commit", "2Gi commit", "tab:orange"), ("refused", "sync refused", "tab:red"),
             ("orphaned", "delete --cascade=orphan", "tab:purple"), ("cleanup_commit", "databases removed from git",
                                                                       "black")]
    for key, label, color in marks:
        if key in result.marks:
            ax.axvline(result.marks[key] / 60, color=color, linestyle="--", linewidth=1, label=label)
    ax.set_xlabel("minutes (wall clock)" if lab.real else "minutes (virtual time)")
    ax.set_ylabel("object")
    ax.set_title(f"Stateful edges under {result.dialect} (deletionPolicy {result.deletion_policy})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
