"""stateful-edges exercises: state that declarative reconciliation must not destroy.

The folders hold the stateful-edges scenario's ``platform/`` directory
(Namespace ``data``, and either the database operator's ``Database`` objects or
the Postgres StatefulSet) and ``gitops/platform.yaml`` (the Flux
Kustomization, or the Argo CD Application).  The judge replays the
participant's commits into a fresh lab with the scenario's mechanisms — the
``DatabaseOperator`` (each ``Database`` is a real SQLite file; deleting the
object drops it through the operator's finalizer), the simulator's
StatefulSet and PersistentVolumeClaim controllers, the API server's
StatefulSet validation — and reads the outcome from the lab:

``stateful-protect-database`` / ``stateful-protect-database-argo``
    The application writes 3 orders into the ``orders`` database as soon as it
    exists.  After the participant's commits, a colleague's clean-up commit
    removes the ``Database`` ``orders`` *and* an obsolete ConfigMap from git
    (wherever they are in ``platform/``).  Solved when, 15 minutes later, the
    database file still holds its 3 rows, ``Database data/orders`` is still in
    the cluster (so the operator still manages it), and the ConfigMap was
    pruned (pruning still works for everything else).
``stateful-grow-volumes``
    Solved when, after the participant's commits, the StatefulSet's
    ``volumeClaimTemplates`` ask for 2Gi (the size of claims it creates from now
    on; compared as quantities: 2048Mi is 2Gi), the Kustomization is Ready at
    the last commit (the sync is not wedged), the two claims created at the
    start were never deleted, and the StatefulSet's ready pods mount them.  The
    judge does not claim the existing claims grew: a template change never
    resizes a PersistentVolumeClaim the StatefulSet already made (growing one
    is a separate step — its own ``spec.resources.requests.storage``, on a
    StorageClass with ``allowVolumeExpansion``); the verdict says so and
    reports the claims' requested size.
"""
from __future__ import annotations

import sqlite3
from typing import Any

from labkit.engine.normalize import quantities_equal
from labkit.workshop.model import Change, Exercise, History, Verdict
from labkit.workshop.replay import AppReplay, argo_gitops_yaml, flux_gitops_yaml
from labkit.workshop.replay_extra import annotate, docs_of, dump_docs, edit_docs, fmt_s

SCENARIO = "stateful-edges"
NS = "data"
APP = "platform"
GITOPS = "gitops/platform.yaml"
FIX_AT, GAP = 300.0, 60.0
ORDERS = "platform/database-orders.yaml"
LEGACY = "platform/legacy-config.yaml"
ROWS = [("keyboard", 2), ("monitor", 1), ("cable", 5)]


def _gitops(dialect: str) -> str:
    if dialect == "flux":
        return flux_gitops_yaml(APP, APP, interval="10m")
    return argo_gitops_yaml(APP, APP, NS)


def _namespace() -> str:
    return dump_docs([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}])


# ------------------------------------------------------------------ protect the database

def _db_start(dialect: str) -> dict[str, str]:
    from labkit.operators.database import database_manifest
    from labkit.scenarios.stateful_edges import ORDERS_SCHEMA

    kind = "Kustomization" if dialect == "flux" else "Application"
    return {
        "README.md": (f"# stateful-edges: protect a database ({dialect})\n\n`platform/` is what "
                      f"{'Flux' if dialect == 'flux' else 'Argo CD'} deploys: the Database `orders` (the database "
                      "operator turns it into a real database and drops the database when the object is deleted) and "
                      f"an old ConfigMap. `{GITOPS}` is the {kind} (prune on).\n"),
        "platform/namespace.yaml": _namespace(),
        ORDERS: dump_docs([dict(database_manifest("orders", NS, schema=ORDERS_SCHEMA))]),
        LEGACY: dump_docs([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "legacy-config",
                                                                                 "namespace": NS},
                            "data": {"FEATURE_FLAGS": "v1-checkout"}}]),
        GITOPS: _gitops(dialect),
    }


def _rows(operator: Any) -> int | None:
    if not operator.exists(NS, "orders"):
        return None
    con = operator.connect(NS, "orders")
    try:
        return int(con.execute("SELECT COUNT(*) FROM orders").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        con.close()


def _cleanup(lab: Any) -> str | None:
    """The colleague's clean-up commit: every Database ``orders`` and ConfigMap ``legacy-config`` leaves git."""
    changes: dict[str, str | None] = {}
    for p in lab.repo.files():
        if p.startswith("gitops/") or not p.endswith((".yaml", ".yml")):
            continue
        try:
            docs = docs_of(lab.repo.read(p))
        except Exception:  # noqa: BLE001 - not YAML the colleague can edit: leave it
            continue
        keep = [d for d in docs if not ((d.get("kind"), (d.get("metadata") or {}).get("name")) in
                                        (("Database", "orders"), ("ConfigMap", "legacy-config")))]
        if len(keep) != len(docs):
            changes[p] = dump_docs(keep) if keep else None
    if not changes:
        return None
    return lab.repo.commit(changes,
                           message="platform: remove orders database and legacy config (moved to another repo)",
                           author="carol", when=lab.now)


def _judge_db(dialect: str, ex_id: str):
    def judge(history: History) -> Verdict:
        from labkit.operators.database import API_VERSION as DB_API
        from labkit.operators.database import DatabaseOperator

        holder: dict[str, Any] = {}

        def factory() -> Any:
            from labkit.scenarios.applab import AppLab

            lab = AppLab(dialect)
            holder["operator"] = DatabaseOperator(lab.cluster, lab.workdir / "databases").install()
            return lab

        def app_writes(lab: Any) -> None:
            operator, env = holder["operator"], lab.env

            def writer():
                while not operator.exists(NS, "orders"):
                    yield env.timeout(5.0)
                con = operator.connect(NS, "orders")
                with con:
                    con.executemany("INSERT INTO orders (item, qty) VALUES (?, ?)", ROWS)
                con.close()
                lab.log.record("shop-app", "RowsWritten", f"Database/{NS}/orders", detail={"rows": len(ROWS)})
            env.process(writer())

        rep = AppReplay.run(history, dialect=dialect, first_at=FIX_AT, gap=GAP, lab_factory=factory,
                            on_start=app_writes)
        lab, operator = rep.lab, holder["operator"]
        gm = lab.field_manager()
        try:
            if rep.refused:
                return Verdict(ex_id, False, f"the platform could not apply your change: {rep.refused[0]}")
            lab.run(lab.now + 300)
            before = _rows(operator)
            if before is None:
                return Verdict(ex_id, False, f"the database orders does not exist before the clean-up commit "
                               f"(the {'Kustomization' if dialect == 'flux' else 'Application'} reports: "
                               f"{lab.state(APP).message or 'nothing'})")
            cleanup_at = lab.now
            sha = _cleanup(lab)
            if sha is None:
                return Verdict(ex_id, False, "there is no Database orders or ConfigMap legacy-config left in git for "
                               "the clean-up commit to remove — keep them in platform/")
            lab.run(cleanup_at + 900)
            after = _rows(operator)
            cr = lab.get(DB_API, "Database", "orders", NS)
            cr_live = cr is not None and not cr["metadata"].get("deletionTimestamp")
            cm = lab.get("v1", "ConfigMap", "legacy-config", NS)
            dropped = [e for e in lab.events(component="database-operator", event="DatabaseDropped", since=cleanup_at)]
            st = lab.state(APP)
            status = st.sync_status if dialect == "argo" else (st.phase or "")
            figures = {"rows_before": before, "rows_after": after, "database_cr_present": cr_live,
                       "legacy_config_present": cm is not None, "status_after_cleanup": status,
                       "commits": len(history.commits)}
            head = "after the clean-up commit removed Database data/orders and ConfigMap legacy-config from git"
            if after is None:
                when = f" at t={dropped[0].time:.0f}s ({fmt_s(dropped[0].time - cleanup_at)} after the commit)" \
                    if dropped else ""
                obs = (f"{head}, {gm} pruned Database data/orders and the operator's finalizer dropped the database "
                       f"orders{when}: {before} rows lost — the database was dropped")
                if not history.commits:
                    obs = "no commit yet: " + obs
                return Verdict(ex_id, False, obs, figures=figures)
            if not history.commits:
                return Verdict(ex_id, False, f"no commit yet: {head}, the database survived", figures=figures)
            if not cr_live:
                return Verdict(ex_id, False, f"{head}, Database data/orders was deleted from the cluster by {gm}; the "
                               f"file survived ({after} rows, deletionPolicy Retain) but no operator manages it any "
                               "more — the resource itself must be protected from prune", figures=figures)
            if cm is not None:
                return Verdict(ex_id, False, f"{head}, the database survived ({after} rows) — but ConfigMap "
                               "data/legacy-config was not pruned either: protect the database, not switch pruning "
                               "off", figures=figures)
            if after != before:
                return Verdict(ex_id, False, f"{head}, the database orders holds {after} of its {before} rows",
                               figures=figures)
            return Verdict(ex_id, True, f"{head}, {gm} pruned the ConfigMap and left Database data/orders in the "
                           f"cluster; the database still holds its {after} rows"
                           + (f" (status: {status})" if status else ""), figures=figures)
        finally:
            lab.close()
    return judge


def _ks(fn):
    return edit_docs(GITOPS, lambda d: fn(d["spec"]), kind="Kustomization")


def _app(fn):
    return edit_docs(GITOPS, lambda d: fn(d["spec"]), kind="Application")


def _db(fn):
    return edit_docs(ORDERS, fn, kind="Database")


def _retain(d: dict[str, Any]) -> None:
    d["spec"]["deletionPolicy"] = "Retain"


FLUX_PRUNE = "kustomize.toolkit.fluxcd.io/prune"
ARGO_OPTIONS = "argocd.argoproj.io/sync-options"


# ------------------------------------------------------------------ grow the volumes

POSTGRES = "platform/postgres.yaml"


def _sts_start() -> dict[str, str]:
    from labkit.scenarios.stateful_edges import platform_files

    return {
        "README.md": ("# stateful-grow-volumes\n\n`platform/postgres.yaml` holds the StatefulSet `pg` (2 replicas, "
                      "a `data` claim of 1Gi each, from its `volumeClaimTemplates`); Flux reconciles `platform/` "
                      "(`gitops/platform.yaml`).\n\nMake the StatefulSet's claim template ask for 2Gi — the size "
                      "of every claim it creates from now on — without wedging the sync and without losing the "
                      "data: the pods keep their original claims `data-pg-0` and `data-pg-1`.\n\n"
                      "What this does *not* do: the claims that already exist stay 1Gi. A StatefulSet never "
                      "resizes a PersistentVolumeClaim it has already made; growing one is a separate step (edit "
                      "that PVC's `spec.resources.requests.storage`, which works only when its StorageClass has "
                      "`allowVolumeExpansion: true`). The check tells you the claims' size too.\n"),
        "platform/namespace.yaml": _namespace(),
        POSTGRES: platform_files("flux", databases=False)[POSTGRES] or "",
        GITOPS: _gitops("flux"),
    }


def _sts_of(lab: Any) -> dict[str, Any] | None:
    found = [s for s in lab.cluster.list("apps/v1", "StatefulSet", NS) if not s["metadata"].get("deletionTimestamp")]
    return next((s for s in found if s["metadata"]["name"] == "pg"), found[0] if found else None)


def _judge_sts(history: History) -> Verdict:
    ex = "stateful-grow-volumes"
    rep = AppReplay.run(history, dialect="flux", first_at=FIX_AT, gap=GAP)
    lab = rep.lab
    try:
        if rep.refused:
            return Verdict(ex, False, f"the platform could not apply your change: {rep.refused[0]}")
        first = rep.pushed_at[0] if rep.pushed_at else FIX_AT
        lab.run(lab.now + 900)
        created = [(e.time, e.object.rsplit("/", 1)[-1]) for e in lab.events(component="api", event="Created")
                   if e.object.startswith(f"PersistentVolumeClaim/{NS}/")]
        original = sorted({n for t, n in created if t < first})
        deleted = sorted({e.object.rsplit("/", 1)[-1] for e in lab.events(component="api", event="Deleted")
                          if e.object.startswith(f"PersistentVolumeClaim/{NS}/")})
        sts = _sts_of(lab)
        storage = ""
        if sts is not None:
            storage = sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
        ready = int(((sts or {}).get("status") or {}).get("readyReplicas") or 0)
        mounted = sorted({v["persistentVolumeClaim"]["claimName"]
                          for p in lab.cluster.list("v1", "Pod", NS) if not p["metadata"].get("deletionTimestamp")
                          for v in (p.get("spec") or {}).get("volumes") or [] if v.get("persistentVolumeClaim")})
        claim_sizes = {c["metadata"]["name"]: ((c.get("spec") or {}).get("resources") or {}).get("requests", {})
                       .get("storage") for c in lab.cluster.list("v1", "PersistentVolumeClaim", NS)
                       if not c["metadata"].get("deletionTimestamp")}
        recreated = len([e for e in lab.events(component="api", event="Deleted", since=first)
                         if e.object.startswith(f"Pod/{NS}/")])
        st = lab.state(APP)
        head = lab.repo.head()
        at_head = head in (st.revision or "")
        name = sts["metadata"]["name"] if sts else "pg"
        figures = {"storage": storage, "ready": ready, "original_claims": original, "deleted_claims": deleted,
                   "mounted_claims": mounted, "claim_sizes": claim_sizes, "pods_recreated": recreated,
                   "kustomization_ready": st.ok, "commits": len(history.commits)}
        if not history.commits:
            return Verdict(ex, False, f"no commit yet: StatefulSet data/{name}'s claim template asks for "
                           f"{storage or '?'} per claim (goal: 2Gi)", figures=figures)
        if st.ok is not True or not at_head:
            return Verdict(ex, False, f"the sync is wedged: Kustomization {APP} is not Ready at your last commit: "
                           f"{' '.join((st.message or 'no reconcile finished').split())}", figures=figures)
        if not quantities_equal(storage, "2Gi"):  # 2048Mi is 2Gi: compare values, not spellings
            return Verdict(ex, False, f"StatefulSet data/{name}'s claim template asks for {storage or 'nothing'} per "
                           "claim (goal: 2Gi)", figures=figures)
        lost = [c for c in original if c in deleted]
        if lost:
            return Verdict(ex, False, f"the claims {', '.join(lost)} were deleted: the data is gone", figures=figures)
        if not set(mounted) >= set(original) or ready < 2:
            new = [c for c in mounted if c not in original]
            if new:
                return Verdict(ex, False, f"StatefulSet data/{name} asks for 2Gi, but its pods mount new, empty "
                               f"claims {', '.join(new)}: the data in {', '.join(original)} is no longer mounted",
                               figures=figures)
            return Verdict(ex, False, f"StatefulSet data/{name} has {ready}/2 pods ready", figures=figures)
        note = f" ({recreated} pods were recreated on the way)" if recreated else ""
        sizes = ", ".join(f"{c} {claim_sizes.get(c) or '?'}" for c in original)
        return Verdict(ex, True, f"Kustomization {APP} is Ready at your last commit; StatefulSet data/{name}'s claim "
                       f"template asks for {storage} for new claims and its 2 ready pods still mount "
                       f"{', '.join(original)} (never deleted){note}. Those existing claims still request {sizes}: "
                       "a template change never resizes a PVC the StatefulSet already made — growing them is a "
                       "separate step (each PVC's spec.resources.requests.storage, on a StorageClass with "
                       "allowVolumeExpansion: true)", figures=figures)
    finally:
        lab.close()


def _sts(fn):
    return edit_docs(POSTGRES, fn, kind="StatefulSet")


def _grow(d: dict[str, Any]) -> None:
    d["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "2Gi"


def _grow_forced(d: dict[str, Any]) -> None:
    _grow(d)
    annotate("kustomize.toolkit.fluxcd.io/force", "enabled")(d)


def _rename(d: dict[str, Any]) -> None:
    _grow(d)
    d["metadata"]["name"] = "pg-v2"


def _db_exercise(dialect: str) -> Exercise:
    ex_id = "stateful-protect-database" + ("" if dialect == "flux" else "-argo")
    tool = "Flux" if dialect == "flux" else "Argo CD"
    if dialect == "flux":
        solution = Change("prune: disabled on the Database", "platform: never prune the orders database",
                          _db(annotate(FLUX_PRUNE, "disabled")))
        wrong = (
            Change("Argo CD's annotation", "platform: Prune=false on the orders database",
                   _db(annotate(ARGO_OPTIONS, "Prune=false")), expect="the database was dropped"),
            Change("prune: false on the Kustomization", "gitops: no pruning",
                   _ks(lambda s: s.__setitem__("prune", False)), expect="was not pruned"),
            Change("deletionPolicy: Retain", "platform: retain the orders database", _db(_retain),
                   expect="was deleted from the cluster"),
        )
        hints = ("The clean-up commit makes kustomize-controller prune everything it applied that is no longer in "
                 "git — including the Database; the operator then drops the real database.",
                 "Flux skips pruning an object that carries its prune annotation; the annotation goes on the object "
                 "in git, not on the Kustomization.",
                 "metadata.annotations: {kustomize.toolkit.fluxcd.io/prune: disabled} on the Database orders.")
    else:
        solution = Change("Prune=false on the Database", "platform: never prune the orders database",
                          _db(annotate(ARGO_OPTIONS, "Prune=false")))
        wrong = (
            Change("Flux's annotation", "platform: prune disabled on the orders database",
                   _db(annotate(FLUX_PRUNE, "disabled")), expect="the database was dropped"),
            Change("automated prune off", "gitops: no automated pruning",
                   _app(lambda s: s["syncPolicy"]["automated"].__setitem__("prune", False)), expect="was not pruned"),
            Change("deletionPolicy: Retain", "platform: retain the orders database", _db(_retain),
                   expect="was deleted from the cluster"),
        )
        hints = ("The clean-up commit makes Argo CD's automated sync prune every resource no longer in git — "
                 "including the Database; the operator then drops the real database.",
                 "Argo CD reads per-resource sync options from an annotation on the resource itself.",
                 "metadata.annotations: {argocd.argoproj.io/sync-options: Prune=false} on the Database orders.")
    return Exercise(
        id=ex_id,
        scenario=SCENARIO,
        title=f"{tool}: a database CR protected from prune",
        goal="After a clean-up commit removes the Database orders (and an old ConfigMap) from git, the database keeps "
             "its 3 rows and Database data/orders stays in the cluster — while the old ConfigMap is still pruned.",
        task=f"Edit fleet/{ex_id}/platform/database-orders.yaml (or {GITOPS}), commit, then `labkit check {ex_id}`. "
             "The judge then plays the clean-up commit.",
        start=lambda: _db_start(dialect),
        judge=_judge_db(dialect, ex_id),
        solution=solution,
        wrong=wrong,
        hints=hints,
        minutes=10,
    )


EXERCISES = (
    _db_exercise("flux"),
    _db_exercise("argo"),
    Exercise(
        id="stateful-grow-volumes",
        scenario=SCENARIO,
        title="Change a StatefulSet's claim template to 2Gi without wedging the sync",
        goal="StatefulSet data/pg's volumeClaimTemplates ask for 2Gi (the size of claims it creates from now on), the "
             "Kustomization is Ready at your last commit (the sync is not wedged), and its 2 ready pods keep their "
             "original claims data-pg-0 and data-pg-1 (never deleted). Those existing claims are not resized by "
             "this: a template change never grows a PVC already made.",
        task="Edit fleet/stateful-grow-volumes/platform/postgres.yaml (and, if you need it, gitops/platform.yaml), "
             "commit, then `labkit check stateful-grow-volumes`.",
        start=_sts_start,
        judge=_judge_sts,
        solution=Change("2Gi with force on the StatefulSet", "pg: grow data volumes to 2Gi (recreate the StatefulSet)",
                        _sts(_grow_forced)),
        wrong=(
            Change("just change the size", "pg: grow data volumes to 2Gi", _sts(_grow),
                   expect='StatefulSet.apps "pg" is invalid'),
            Change("a new StatefulSet name", "pg: pg-v2 with 2Gi volumes", _sts(_rename),
                   expect="no longer mounted"),
        ),
        hints=("Try the obvious change and read the Kustomization's Ready message: the API server refuses most changes "
               "to a StatefulSet's spec, volumeClaimTemplates included — and Flux applies nothing while one object "
               "is refused.",
               "The StatefulSet has to be deleted and created again with the new template; its claims survive "
               "(their retention policy is Retain) and the new StatefulSet adopts them by name. Flux can do that "
               "recreate for you.",
               "metadata.annotations: {kustomize.toolkit.fluxcd.io/force: enabled} on the StatefulSet, together with "
               "storage: 2Gi."),
        minutes=15,
    ),
)
