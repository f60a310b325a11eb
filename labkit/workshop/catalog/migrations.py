"""migrations exercises: order the schema change before the rollout, and stop at once when it fails.

The folder is the migrations scenario's repository, reconciled by Argo CD:
``db/migrations/NNNN_*.sql``, ``deploy/`` (Namespace, the migration Job — image
``ghcr.io/labkit/shop-migrate:<release>``, args ``migrate up`` — and the
Deployment ``shop``) and ``gitops/shop.yaml`` (the Application).  The judge
replays the participant's commits into a fresh lab with the scenario's
mechanism: **CI builds** ``shop-migrate:<tag>`` from every pushed commit
(the ``db/migrations`` files of that commit baked into the image, whose
entrypoint runs real SQL against the lab's SQLite database when the Job's pod
finishes — ``labkit.scenarios.migrations.MigrationImage``), and Argo CD, the
Job controller (``backoffLimit``) and the hook machinery react to what SQLite
really did.  After the participant's commits a colleague ships the next
release on top of whatever is in git then (new migration file, both image
tags bumped), and the judge reads the outcome from the event log:

``migrations-presync``
    Release 1.1.0 adds ``0002_add_order_status.sql``.  Solved when the
    migration Job completed *before* Argo CD wrote the new Deployment template
    (order of the two events in the log), the sync Succeeded, ``shop:1.1.0``
    runs and ``schema_migrations`` is at version 2.
``migrations-fail-fast``
    Release 1.2.0 ships a broken migration (``0003`` updates a column that does
    not exist).  Solved when it ran against the database exactly once, the sync
    operation failed within 3 minutes of the release commit, and the
    Deployment was never given ``shop:1.2.0``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from labkit.workshop.model import Change, Exercise, History, Verdict
from labkit.workshop.replay import AppReplay, argo_gitops_yaml
from labkit.workshop.replay_extra import annotate, edit_docs, fmt_s, times

SCENARIO = "migrations"
GITOPS = "gitops/shop.yaml"
JOB = "deploy/migrate-job.yaml"
FIX_AT, GAP, RELEASE_AFTER = 300.0, 60.0, 300.0
HOOK = "argocd.argoproj.io/hook"
BROKEN = {"0003_backfill_status.sql": "UPDATE orders SET status = 'legacy' WHERE created_at < '2026-01-01';\n"}


_LAYOUT = ("This folder is the shop's repository, reconciled by Argo CD: `db/migrations/` holds the SQL "
           "migrations (CI bakes them into the image `ghcr.io/labkit/shop-migrate:<release>` on every push), "
           f"`deploy/` is what Argo CD syncs (Namespace `shop`, the migration Job in `{JOB}`, the Deployment `shop`) "
           f"and `{GITOPS}` is the Argo CD Application (automated sync).")
_READMES = {
    "1.0.0": ("# migrations-presync\n\nshop 1.0.0 runs; the next release, 1.1.0, adds migration "
              "`0002_add_order_status.sql`, and shop:1.1.0 needs that column. Today the migration Job is a Sync-phase "
              "hook: Argo CD applies it in the same phase as the Deployment. Make the migration finish before Argo "
              f"CD touches the Deployment.\n\n{_LAYOUT}\n\nEdit `{JOB}` (its Argo CD annotations), commit, then "
              "run `labkit check migrations-presync`: the judge ships release 1.1.0 after your commit.\n"),
    "1.1.0": ("# migrations-fail-fast\n\nshop 1.1.0 runs (schema version 2). The next release, 1.2.0, ships a "
              "broken migration. When it fails it must run against the database once, the sync must report Failed "
              "within 3 minutes, and the Deployment must never get shop:1.2.0.\n\n"
              f"{_LAYOUT}\n\nEdit `{JOB}` and/or `{GITOPS}`, commit, then run `labkit check migrations-fail-fast`: "
              "the judge ships release 1.2.0 after your commit.\n"),
}


def _start(release: str, hook: str, backoff_limit: int, previous: tuple[str, ...] = ()) -> dict[str, str]:
    from labkit.scenarios.migrations import APP, NAMESPACE, release_files

    files: dict[str, str] = {"README.md": _READMES[release]}
    for r in (*previous, release):
        files.update({p: t for p, t in release_files(r, runner="versioned", hook=hook,
                                                     backoff_limit=backoff_limit).items() if t is not None})
    files[GITOPS] = argo_gitops_yaml(APP, "deploy", NAMESPACE, self_heal=False)
    return files


class _CI:
    """CI: on every push, build ``shop-migrate:<tag>`` for each tag the commit references that is not built yet."""

    def __init__(self, lab: Any, data_dir: Path):
        from labkit.scenarios.migrations import MIGRATE_IMAGE

        self.lab = lab
        self.data_dir = data_dir
        self.images: dict[str, Any] = {}
        self._rx = re.compile(re.escape(MIGRATE_IMAGE) + r":([A-Za-z0-9._-]+)")
        lab.repo.on_push(lambda ev: self.build(ev.after))

    def build(self, sha: str) -> None:
        from labkit.scenarios.migrations import MIGRATE_IMAGE, MigrationImage

        repo = self.lab.repo
        paths = repo.files(sha)
        tags = set()
        for p in paths:
            if p.endswith((".yaml", ".yml")):
                tags.update(self._rx.findall(repo.read(p, sha)))
        for tag in sorted(tags - set(self.images)):
            baked = {p.rsplit("/", 1)[-1]: repo.read(p, sha) for p in paths
                     if p.startswith("db/migrations/") and p.endswith(".sql")}
            try:
                image = MigrationImage(tag, baked, self.data_dir, self.lab.log)
            except Exception:  # noqa: BLE001 - a bad file name fails the image at run time instead
                continue
            self.lab.registry.add(MIGRATE_IMAGE, [tag], run_seconds=8.0, program=image)
            self.images[tag] = image


def _lab_factory(holder: dict[str, Any]):
    def factory() -> Any:
        from labkit.scenarios.applab import AppLab
        from labkit.scenarios.migrations import APP_IMAGE, RELEASES
        from labkit.sim.registry import ImageRegistry

        registry = ImageRegistry()
        registry.add(APP_IMAGE, [*RELEASES, "1.2.0"])
        lab = AppLab("argo", registry=registry)
        data_dir = lab.workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        holder["lab"], holder["db"] = lab, data_dir / "shop.db"
        holder["ci"] = _CI(lab, data_dir)
        return lab
    return factory


def _release(lab: Any, old: str, new: str, migrations: Mapping[str, str]) -> str:
    """A colleague's release on top of whatever is in git: new migration files, every ``:old`` tag bumped."""
    from labkit.scenarios.migrations import APP_IMAGE, MIGRATE_IMAGE

    changes: dict[str, str | None] = {f"db/migrations/{f}": sql for f, sql in migrations.items()}
    for p in lab.repo.files():
        if not p.endswith((".yaml", ".yml")) or p.startswith("gitops/"):
            continue
        text = lab.repo.read(p)
        bumped = text.replace(f"{MIGRATE_IMAGE}:{old}", f"{MIGRATE_IMAGE}:{new}").replace(f"{APP_IMAGE}:{old}",
                                                                                        f"{APP_IMAGE}:{new}")
        if bumped != text:
            changes[p] = bumped
    names = ", ".join(migrations) or "no schema change"
    return lab.repo.commit(changes, message=f"shop {new}: {names}", author="dev", when=lab.now)


def _operation(lab: Any, sha: str) -> dict[str, Any]:
    from labkit.scenarios.migrations import APP

    op = lab.argo.status(APP).get("operationState") or {}
    return op if (op.get("syncResult") or {}).get("revision") == sha else {}


def _settle(lab: Any, sha: str, timeout: float) -> tuple[str, str, float | None]:
    """Run until Argo's operation for ``sha`` finished; its phase, message, and when it was seen finished."""
    at = lab.run_until(lambda: _operation(lab, sha).get("phase") in ("Succeeded", "Failed", "Error"),
                       timeout=timeout, step=5)
    op = _operation(lab, sha)
    return op.get("phase", ""), op.get("message", ""), at


def _after(lab: Any, since: float) -> dict[str, Any]:
    """From the event log, after ``since``: when the Deployment got the new template, when the Job finished."""
    from labkit.scenarios.migrations import APP, NAMESPACE

    out: dict[str, Any] = {"dep_seq": None, "dep_at": None, "job_seq": None, "job_at": None,
                           "job_outcome": ""}
    dep_key = f"Deployment/{NAMESPACE}/{APP}"
    for seq, e in enumerate(lab.log):
        if e.time < since:
            continue
        if (out["dep_seq"] is None and e.component == "api" and e.object == dep_key
                and e.event in ("Created", "Updated") and e.detail.get("manager") == "argocd-controller"):
            out["dep_seq"], out["dep_at"] = seq, e.time
        if (out["job_seq"] is None and e.component == "job-controller" and e.object.startswith(f"Job/{NAMESPACE}/")
                and e.event in ("Completed", "BackoffLimitExceeded", "DeadlineExceeded")):
            out["job_seq"], out["job_at"] = seq, e.time
            out["job_outcome"] = "Complete" if e.event == "Completed" else f"Failed ({e.event})"
    return out


def _image(lab: Any) -> str:
    from labkit.scenarios.migrations import APP, NAMESPACE

    dep = lab.get("apps/v1", "Deployment", APP, NAMESPACE)
    return dep["spec"]["template"]["spec"]["containers"][0]["image"] if dep else ""


def _short(msg: str, n: int = 220) -> str:
    msg = " ".join(msg.split())
    msg = re.sub(r"Invalid value: .*?: field is immutable", "Invalid value: …: field is immutable", msg)
    return msg if len(msg) <= n else msg[: n - 1] + "…"


def _replay(history: History, holder: dict[str, Any]) -> AppReplay:
    """The participant's commits replayed into the migrations lab, the clock at the release time."""
    rep = AppReplay.run(history, dialect="argo", first_at=FIX_AT, gap=GAP, lab_factory=_lab_factory(holder))
    if not rep.refused:
        rep.lab.run((rep.pushed_at[-1] if rep.pushed_at else FIX_AT) + RELEASE_AFTER)
    return rep


# ------------------------------------------------------------------ migrations-presync

def _judge_presync(history: History) -> Verdict:
    from labkit.scenarios.migrations import APP_IMAGE, MIGRATIONS, applied_versions

    ex = "migrations-presync"
    holder: dict[str, Any] = {}
    rep = _replay(history, holder)
    lab = rep.lab
    try:
        if rep.refused:
            return Verdict(ex, False, f"Argo CD refused your Application: {rep.refused[0]}")
        release_at = lab.now
        sha = _release(lab, "1.0.0", "1.1.0", MIGRATIONS["1.1.0"])
        phase, message, _ = _settle(lab, sha, 1200)
        lab.advance(120)
        seen = _after(lab, release_at)
        versions = [v for v, _ in applied_versions(holder["db"])]
        image = _image(lab)
        figures = {"sync": phase, "deployment_written_s": seen["dep_at"], "migration_finished_s": seen["job_at"],
                   "schema_version": max(versions, default=None), "image": image, "commits": len(history.commits)}
        head = "release 1.1.0 (migration 0002):"
        order = ""
        if seen["dep_seq"] is not None and (seen["job_seq"] is None or seen["dep_seq"] < seen["job_seq"]):
            gap = (f"{fmt_s(seen['job_at'] - seen['dep_at'])} before the migration Job finished"
                   if seen["job_at"] is not None else "and the migration Job never finished")
            order = (f"Argo CD updated Deployment shop to the new template at t={seen['dep_at']:.0f}s, {gap} — "
                     "pods of 1.1.0 started against a schema without column status")
        if not history.commits:
            return Verdict(ex, False, f"no commit yet: {head} {order or 'deployed'}", figures=figures)
        if order:
            failed = f"; the sync {phase}: {_short(message)}" if phase in ("Failed", "Error") else ""
            return Verdict(ex, False, f"{head} {order}{failed}", figures=figures)
        if phase != "Succeeded":
            if not _operation(lab, sha):
                return Verdict(ex, False, f"{head} Argo CD never started a sync of it; the Deployment runs {image}",
                               figures=figures)
            return Verdict(ex, False, f"{head} the sync did not succeed ({phase or 'still running'}): "
                           f"{_short(message)}; the Deployment runs {image}", figures=figures)
        if not image.endswith(":1.1.0") or 2 not in versions:
            return Verdict(ex, False, f"{head} the Deployment runs {image} and the schema is at version "
                           f"{max(versions, default=0)} (goal: {APP_IMAGE}:1.1.0 on schema version 2)", figures=figures)
        return Verdict(ex, True, f"{head} the migration Job completed at t={seen['job_at']:.0f}s, before Argo CD "
                       f"touched the Deployment (t={seen['dep_at']:.0f}s); sync Succeeded, {image} runs on schema "
                       "version 2", figures=figures)
    finally:
        lab.close()


# ------------------------------------------------------------------ migrations-fail-fast

FAIL_WITHIN = 180.0


def _judge_fail_fast(history: History) -> Verdict:
    from labkit.scenarios.migrations import MIGRATE_IMAGE

    ex = "migrations-fail-fast"
    holder: dict[str, Any] = {}
    rep = _replay(history, holder)
    lab = rep.lab
    try:
        if rep.refused:
            return Verdict(ex, False, f"Argo CD refused your Application: {rep.refused[0]}")
        release_at = lab.now
        sha = _release(lab, "1.1.0", "1.2.0", BROKEN)
        phase, message, done_at = _settle(lab, sha, 1800)
        lab.advance(60)
        runs = [e for e in lab.events(component="shop-migrate", event="MigrationRun", since=release_at)
                if e.detail.get("tag") == "1.2.0"]
        failed_runs = [e for e in runs if e.detail.get("exit_code")]
        retries = len(lab.events(component="argocd-application-controller", event="OperationRetrying",
                                 since=release_at))
        pods = len([e for e in lab.events(component="job-controller", event="SuccessfulCreate", since=release_at)])
        seen = _after(lab, release_at)
        image = _image(lab)
        took = None if done_at is None else done_at - release_at
        figures = {"migration_runs": len(runs), "job_pods": pods, "sync_retries": retries, "sync": phase,
                   "sync_finished_after_s": took, "image": image, "commits": len(history.commits)}
        error = _short(failed_runs[0].detail.get("message", ""), 160) if failed_runs else ""
        ran = f"the broken migration of release 1.2.0 ran {times(len(runs))} against the database"
        if not runs:
            ran = "the migration of release 1.2.0 never ran"
        sync = (f"the sync {phase} {fmt_s(took)} after the release commit" if took is not None
                else f"the sync was still running {fmt_s(1800)} after the release commit" if _operation(lab, sha)
                else "Argo CD never started a sync of release 1.2.0")
        rolled = image.endswith(":1.2.0")
        why = []
        if retries:
            why.append(f"Argo CD retried the sync {times(retries)}, each retry running the PreSync hook again")
        if pods > retries + 1:
            why.append(f"the Job controller retried failed pods ({pods} pods for {retries + 1} Job"
                       f"{'s' if retries else ''})")
        ran += f" ({error})" if error else ""
        if len(runs) > 1 and why:
            ran += ": " + "; ".join(why)
        text = f"{ran}; {sync}; the Deployment runs {image}"
        if not history.commits:
            return Verdict(ex, False, f"no commit yet: {text}", figures=figures)
        if rolled:
            return Verdict(ex, False, f"the Deployment rolled to {image} although its migration failed: {text}",
                           figures=figures)
        if len(runs) > 1:
            return Verdict(ex, False, text, figures=figures)
        if phase not in ("Failed", "Error") or took is None or took > FAIL_WITHIN:
            return Verdict(ex, False, f"{text} (goal: failed within {fmt_s(FAIL_WITHIN)})", figures=figures)
        if not failed_runs:
            return Verdict(ex, False, f"{text}: the migration did not fail — is the Job still running "
                           f"{MIGRATE_IMAGE}?", figures=figures)
        return Verdict(ex, True, f"{text} — halted: release 1.2.0 never reached the Deployment", figures=figures)
    finally:
        lab.close()


def _job(fn):
    return edit_docs(JOB, fn, kind="Job")


def _set_backoff(n: int):
    def fn(d: dict[str, Any]) -> None:
        d["spec"]["backoffLimit"] = n
    return _job(fn)


def _retry_limit(n: int):
    def fn(d: dict[str, Any]) -> None:
        d["spec"].setdefault("syncPolicy", {})["retry"] = {"limit": n}
    return edit_docs(GITOPS, fn, kind="Application")


def _no_hook(d: dict[str, Any]) -> None:
    ann = d["metadata"].get("annotations") or {}
    for k in [k for k in ann if k.startswith("argocd.argoproj.io/hook")]:
        ann.pop(k)
    if not ann:
        d["metadata"].pop("annotations", None)


def _both(*edits):
    def edit(files: Mapping[str, str]) -> dict[str, str]:
        cur = dict(files)
        out: dict[str, str] = {}
        for e in edits:
            ch = e(cur)
            cur.update(ch)
            out.update(ch)
        return out
    return edit


EXERCISES = (
    Exercise(
        id="migrations-presync",
        scenario=SCENARIO,
        title="Migrate before you roll",
        goal="In the next release (1.1.0, which adds migration 0002), the migration Job completes before Argo CD "
             "touches the Deployment, the sync succeeds and shop:1.1.0 runs on schema version 2.",
        task="Edit the migration Job in fleet/migrations-presync/deploy/migrate-job.yaml (its Argo CD annotations), "
             "commit, then `labkit check migrations-presync`. The judge ships release 1.1.0 after your commit.",
        start=lambda: _start("1.0.0", "Sync", 0),
        judge=_judge_presync,
        solution=Change("hook: PreSync", "shop: run migrations before the sync", _job(annotate(HOOK, "PreSync"))),
        wrong=(
            Change("hook: PostSync", "shop: migrations after the rollout", _job(annotate(HOOK, "PostSync")),
                   expect="before the migration Job finished"),
            Change("a plain Job (no hook)", "shop: migration job as a normal resource", _job(_no_hook),
                   expect="field is immutable"),
        ),
        hints=("A Sync-phase hook is applied together with the Deployment, in the same wave — and Deployments come "
               "before Jobs in Argo CD's kind order.",
               "Argo CD runs each sync in phases: PreSync hooks first (and waits for them to finish), then the "
               "resources, then PostSync hooks.",
               "metadata.annotations: {argocd.argoproj.io/hook: PreSync, argocd.argoproj.io/hook-delete-policy: "
               "BeforeHookCreation}"),
        minutes=10,
    ),
    Exercise(
        id="migrations-fail-fast",
        scenario=SCENARIO,
        title="A failing migration halts the sync",
        goal="When release 1.2.0's migration fails, it runs against the database exactly once, the sync reports "
             "Failed within 3 minutes of the release commit, and the Deployment never gets shop:1.2.0.",
        task="Edit the migration Job (fleet/migrations-fail-fast/deploy/migrate-job.yaml) and/or the Application "
             "(gitops/shop.yaml), commit, then `labkit check migrations-fail-fast`. The judge ships release 1.2.0 "
             "(with a broken migration) after your commit.",
        start=lambda: _start("1.1.0", "PreSync", 6, previous=("1.0.0",)),
        judge=_judge_fail_fast,
        solution=Change("backoffLimit 0 and no automated sync retries",
                        "shop: a failed migration fails the sync at once",
                        _both(_set_backoff(0), _retry_limit(0))),
        wrong=(
            Change("backoffLimit 0 only", "shop: a failed migration fails the Job at once", _set_backoff(0),
                   expect="Argo CD retried the sync 5 times"),
            Change("no sync retries only", "gitops: do not retry failed syncs", _retry_limit(0),
                   expect="the Job controller retried failed pods"),
            Change("a Sync hook, backoffLimit 0, no retries", "shop: fail fast, migrate with the sync",
                   _both(_set_backoff(0), _retry_limit(0), _job(annotate(HOOK, "Sync"))),
                   expect="although its migration failed"),
        ),
        hints=("Two layers retry a failed migration: the Job controller (a new pod until backoffLimit is used up) and "
               "Argo CD (an automated sync that fails is retried, and every attempt runs the PreSync hook again).",
               "Kubernetes defaults a Job's backoffLimit to 6; Argo CD gives automated syncs a retry limit of 5 when "
               "the Application's syncPolicy sets none.",
               "spec.backoffLimit: 0 on the PreSync Job, and spec.syncPolicy.retry: {limit: 0} on the Application."),
        minutes=10,
    ),
)
