"""Migrations: a PreSync hook Job runs schema migrations against a real database before the rollout.

The pattern (Argo CD's resource hooks)
======================================

The release of a service that owns a database has two halves that must happen
in order: change the schema, then roll the code that needs it.  With Argo CD
the usual answer is a ``Job`` annotated ``argocd.argoproj.io/hook: PreSync``:
every sync creates it (deleting the previous one, ``BeforeHookCreation``),
waits for it to complete, and only then applies the Deployment.  A failed hook
fails the sync, and nothing else is applied.

What the lab runs for real
==========================

* The repository (real git) holds the service: ``db/migrations/NNNN_name.sql``
  (the schema history), and ``deploy/`` with the Namespace, the migration Job
  (image ``ghcr.io/labkit/shop-migrate:<release>``, ``backoffLimit`` from the
  parameter) and the Deployment (``ghcr.io/labkit/shop:<release>``).
* **CI builds the migration image from the commit**: for every release the
  lab reads the ``db/migrations/*.sql`` files of that commit out of git and
  registers ``shop-migrate:<release>`` in the simulated registry with a
  ``program`` — the image's entrypoint.  When the Job's container finishes its
  run time, the kubelet calls the program (``labkit.sim.registry``): it opens
  the SQLite database ``shop.db`` in the lab's workdir (the Job's
  ``DATABASE_URL=sqlite:///shop.db``) and runs the real SQL with Python's
  ``sqlite3``.  Its result is the container's exit code and termination
  message, so the Job controller, ``backoffLimit`` and Argo's hook handling
  see a real success or a real failure.
* The Job's ``args`` choose how the image runs the SQL, as real projects do:

  ``["migrate", "up"]`` — a **versioned** runner (golang-migrate / Flyway
  style): a ``schema_migrations`` table records every applied version; only
  versions above it run, each in its own transaction together with its row in
  the table.  A rerun is a no-op.

  ``["sh", "-c", "for f in /migrations/*.sql; do sqlite3 $DB < $f || exit 1; done"]``
  — **raw scripts**: every file runs on every execution.  The first script is
  written defensively (``CREATE TABLE IF NOT EXISTS``), the second is an
  ``ALTER TABLE orders ADD COLUMN status`` — fine once, and on a rerun SQLite
  raises ``sqlite3.OperationalError: duplicate column name: status``.

The story (two labs, identical except for the runner)
=====================================================

1. release ``1.0.0`` — migration 0001 (orders table), the PreSync Job creates
   the schema, the Deployment rolls;
2. release ``1.1.0`` — adds migration 0002 (``status`` column); the hook runs
   before the Deployment is touched;
3. release ``1.1.1`` — a code-only fix.  Argo runs PreSync hooks on *every*
   sync, so the migration Job runs again.  The versioned runner finds nothing
   to do and the rollout proceeds; the raw scripts re-run 0002 and fail.  With
   ``backoffLimit: 0`` the first failed pod fails the Job
   (``BackoffLimitExceeded``), the hook fails, the sync operation fails (and
   Argo's automated retries fail the same way) — and the Deployment is never
   touched: release 1.1.1 does not reach production until someone fixes the
   script.

``hook=Sync`` moves the Job into the Sync phase, next to the Deployment: the
sync engine then applies both in the same wave (Deployments before Jobs in
Argo's kind order), so the new code rolls *before* its migration has run —
``deployment_rolled_before_migration`` turns true.

Metrics: ``versioned_rerun_ok`` (the 1.1.1 migration Job of the versioned lab
completed and applied nothing, and release 1.1.1 rolled out),
``raw_sql_rerun_failed`` (the raw lab's 1.1.1 Job failed with SQLite's
duplicate-column error), ``sync_halted_on_failed_migration`` (the raw lab's
sync for 1.1.1 failed and its Deployment was not written after the 1.1.1
commit), ``deployment_rolled_before_migration`` (in the versioned lab's 1.1.0
release, the Deployment's new template was written before the migration Job
completed), ``schema_version`` (the highest version in the versioned lab's
``schema_migrations``).
"""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from labkit.core.errors import LabkitError
from labkit.scenarios.applab import AppLab, Target, yaml_docs
from labkit.sim.registry import ImageRegistry, RunContext

__all__ = ["MIGRATIONS", "RUNNERS", "HOOKS", "MigrationImage", "MigrationsResult", "MigrationLab", "run_migrations",
           "applied_versions", "table_columns", "plot_releases", "release_files", "ship_release", "VersionedRunner",
           "RawRunner"]

NAMESPACE = "shop"
APP = "shop"
MIGRATE_IMAGE = "ghcr.io/labkit/shop-migrate"
APP_IMAGE = "ghcr.io/labkit/shop"
DB_URL = "sqlite:///shop.db"
RELEASES = ("1.0.0", "1.1.0", "1.1.1")
RUNNERS = ("versioned", "raw")
HOOKS = ("PreSync", "Sync")
VERSIONED_ARGS = ["migrate", "up"]
RAW_ARGS = ["sh", "-c", 'for f in /migrations/*.sql; do sqlite3 "$DB" < "$f" || exit 1; done']
#: The migrations each release ships (file name → SQL), in the order they were written.
MIGRATIONS: dict[str, dict[str, str]] = {
    "1.0.0": {
        "0001_create_orders.sql": ("CREATE TABLE IF NOT EXISTS orders (\n"
                                   "  id INTEGER PRIMARY KEY,\n  item TEXT NOT NULL,\n  qty INTEGER NOT NULL\n);\n"),
    },
    "1.1.0": {
        "0002_add_order_status.sql": "ALTER TABLE orders ADD COLUMN status TEXT NOT NULL DEFAULT 'new';\n",
    },
    "1.1.1": {},
}
_VERSION = re.compile(r"^(\d+)_([A-Za-z0-9_]+)\.sql$")


# ------------------------------------------------------------------ the migration runners (the image's code)

def _parse(files: dict[str, str]) -> list[tuple[int, str, str]]:
    out = []
    for fname, sql in files.items():
        m = _VERSION.match(fname)
        if not m:
            raise LabkitError(f"migration file names are NNNN_name.sql, got {fname!r}", file=f"db/migrations/{fname}")
        out.append((int(m.group(1)), fname, sql))
    return sorted(out)


class VersionedRunner:
    """``migrate up``: apply the versions above ``schema_migrations``, each in one transaction with its record."""

    def run(self, db: Path, files: dict[str, str], now: str) -> tuple[int, str]:
        con = sqlite3.connect(db, isolation_level=None)
        try:
            con.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                        "name TEXT NOT NULL, applied_at TEXT NOT NULL)")
            done = {v for (v,) in con.execute("SELECT version FROM schema_migrations")}
            applied = []
            for version, fname, sql in _parse(files):
                if version in done:
                    continue
                record = ("INSERT INTO schema_migrations (version, name, applied_at) VALUES "
                          f"({version}, '{fname}', '{now}');")
                try:
                    con.executescript(f"BEGIN;\n{sql}\n{record}\nCOMMIT;")
                except sqlite3.Error as err:
                    if con.in_transaction:
                        con.execute("ROLLBACK")
                    return 1, f"error: migration {fname} failed, rolled back: {type(err).__module__}." \
                              f"{type(err).__name__}: {err}"
                applied.append(fname)
            top = con.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
        finally:
            con.close()
        if not applied:
            return 0, f"no change: schema is at version {top}"
        return 0, f"applied {', '.join(applied)}; schema is at version {top}"


class RawRunner:
    """``for f in *.sql; do sqlite3 $DB < $f || exit 1; done``: every script, every time, autocommitted."""

    def run(self, db: Path, files: dict[str, str], now: str) -> tuple[int, str]:
        con = sqlite3.connect(db, isolation_level=None)
        try:
            for _version, fname, sql in _parse(files):
                try:
                    con.executescript(sql)
                except sqlite3.Error as err:
                    return 1, f"{fname}: {type(err).__module__}.{type(err).__name__}: {err}"
        finally:
            con.close()
        return 0, f"ran {len(files)} script(s)"


class MigrationImage:
    """The ``program`` of one ``shop-migrate`` tag: the migrations baked in at build time, run on exit.

    ``ctx.args`` selects the runner (``migrate up`` → versioned, anything else →
    raw scripts); ``DATABASE_URL`` (``sqlite:///<file>``) names the database
    inside ``data_dir``.  Every run is recorded in ``runs`` and in the event log
    (component ``shop-migrate``, event ``MigrationRun``).
    """

    def __init__(self, tag: str, files: dict[str, str], data_dir: Path, log: Any = None):
        self.tag = tag
        self.files = dict(files)
        self.data_dir = Path(data_dir)
        self.log = log
        self.runs: list[dict[str, Any]] = []

    def database(self, ctx: RunContext) -> Path:
        url = ctx.env.get("DATABASE_URL", "")
        if not url.startswith("sqlite:///"):
            raise ValueError(f"DATABASE_URL must be sqlite:///<file>, got {url!r}")
        name = url[len("sqlite:///"):]
        if "/" in name or not name:
            raise ValueError(f"DATABASE_URL names a file in the data directory, got {url!r}")
        return self.data_dir / name

    def __call__(self, ctx: RunContext) -> tuple[int, str]:
        from labkit.core.clock import timestamp

        runner = VersionedRunner() if ctx.args[:2] == VERSIONED_ARGS else RawRunner()
        db = self.database(ctx)
        code, message = runner.run(db, self.files, timestamp(ctx.now))
        pod = (ctx.pod.get("metadata") or {}).get("name", "")
        entry = {"time": ctx.now, "tag": self.tag, "runner": "versioned" if isinstance(runner, VersionedRunner)
                 else "raw", "pod": pod, "exit_code": code, "message": message}
        self.runs.append(entry)
        if self.log is not None:
            self.log.record("shop-migrate", "MigrationRun", f"Pod/{NAMESPACE}/{pod}",
                            detail={k: v for k, v in entry.items() if k != "time"})
        return code, message


# ------------------------------------------------------------------ the repository

def release_files(release: str, *, runner: str, hook: str, backoff_limit: int,
                  migrations: dict[str, str] | None = None) -> dict[str, str]:
    """Files a release commit writes: its new migrations, the Job and the Deployment at that version.

    ``migrations`` (file name → SQL) are the release's new migrations; by default ``MIGRATIONS[release]``.
    """
    new = MIGRATIONS.get(release, {}) if migrations is None else migrations
    files: dict[str, str] = {f"db/migrations/{f}": sql for f, sql in new.items()}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "shop-migrate", "namespace": NAMESPACE,
                        "annotations": {"argocd.argoproj.io/hook": hook,
                                        "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation"}},
           "spec": {"backoffLimit": backoff_limit,
                    "template": {"spec": {"restartPolicy": "Never", "containers": [{
                        "name": "migrate", "image": f"{MIGRATE_IMAGE}:{release}",
                        "args": VERSIONED_ARGS if runner == "versioned" else RAW_ARGS,
                        "env": [{"name": "DATABASE_URL", "value": DB_URL}, {"name": "DB", "value": "/data/shop.db"}],
                    }]}}}}
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP, "namespace": NAMESPACE},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": APP}},
                    "template": {"metadata": {"labels": {"app": APP}},
                                 "spec": {"containers": [{"name": APP, "image": f"{APP_IMAGE}:{release}",
                                                          "env": [{"name": "DATABASE_URL", "value": DB_URL}],
                                                          "resources": {"requests": {"cpu": "100m"}}}]}}}}
    files["deploy/namespace.yaml"] = yaml_docs(ns)
    files["deploy/migrate-job.yaml"] = yaml_docs(job)
    files["deploy/deployment.yaml"] = yaml_docs(dep)
    return files


# ------------------------------------------------------------------ one lab

def applied_versions(db: Path) -> list[tuple[int, str]]:
    """``SELECT version, name FROM schema_migrations`` (empty when there is no such table or database)."""
    if not Path(db).is_file():
        return []
    con = sqlite3.connect(db)
    try:
        return [(int(v), str(n)) for v, n in con.execute("SELECT version, name FROM schema_migrations ORDER BY 1")]
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def table_columns(db: Path, table: str = "orders") -> list[str]:
    """Column names of ``table`` (``PRAGMA table_info``)."""
    if not Path(db).is_file():
        return []
    con = sqlite3.connect(db)
    try:
        return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
    finally:
        con.close()


@dataclass
class Release:
    version: str
    sha: str
    committed: float
    job_finished: float | None = None
    job_outcome: str = ""  # Complete / Failed / ''
    job_message: str = ""
    deployment_written: float | None = None
    #: positions in the event log (same-instant events keep their order there)
    job_finished_seq: int | None = None
    deployment_written_seq: int | None = None
    operation_phase: str = ""
    operation_message: str = ""
    settled: float | None = None


@dataclass
class MigrationLab:
    """One runner's lab: the AppLab, the images CI built, the database file and one record per release."""

    runner: str
    lab: AppLab
    db: Path
    images: dict[str, MigrationImage]
    releases: list[Release] = field(default_factory=list)

    def release(self, version: str) -> Release:
        return next(r for r in self.releases if r.version == version)

    def deployment_image(self) -> str:
        dep = self.lab.get("apps/v1", "Deployment", APP, NAMESPACE)
        return dep["spec"]["template"]["spec"]["containers"][0]["image"] if dep else ""

    def spans(self) -> pd.DataFrame:
        """From the event log: each migration Job (created → finished), each rollout (written → Healthy)."""
        job_key, dep_key = f"Job/{NAMESPACE}/shop-migrate", f"Deployment/{NAMESPACE}/{APP}"
        bounds = [r.committed for r in self.releases] + [float("inf")]

        def release_at(t: float) -> str:
            for i, r in enumerate(self.releases):
                if bounds[i] <= t < bounds[i + 1]:
                    return r.version
            return ""

        rows: list[dict[str, Any]] = []
        open_job: float | None = None
        for e in self.lab.log:
            if e.component == "api" and e.object == job_key and e.event == "Created":
                open_job = e.time
            elif e.component == "job-controller" and e.object == job_key and open_job is not None and e.event in (
                    "Completed", "BackoffLimitExceeded", "DeadlineExceeded"):
                rows.append({"release": release_at(open_job), "kind": "job", "start": open_job, "end": e.time,
                             "outcome": "Complete" if e.event == "Completed" else "Failed"})
                open_job = None
        for r in self.releases:
            if r.deployment_written is None:
                continue
            done = [e.time for e in self.lab.events(component="argocd-application-controller",
                                                    event="Refreshed", since=r.deployment_written)
                    if e.revision == r.sha and e.detail.get("health") == "Healthy"]
            rows.append({"release": r.version, "kind": "deployment", "start": r.deployment_written,
                         "end": done[0] if done else r.deployment_written, "outcome": "Written"})
        return pd.DataFrame(rows, columns=["release", "kind", "start", "end", "outcome"])

    def runs(self) -> pd.DataFrame:
        rows = [r for img in self.images.values() for r in img.runs]
        return pd.DataFrame(sorted(rows, key=lambda r: r["time"]),
                            columns=["time", "tag", "runner", "pod", "exit_code", "message"])


def _job_finish(lab: AppLab, since: float) -> tuple[float | None, str, str]:
    """When the migration Job created after ``since`` finished, how, and its pods' termination message."""
    obj = f"Job/{NAMESPACE}/shop-migrate"
    created = [e.time for e in lab.events(component="api", event="Created", object=obj, since=since)]
    if not created:
        return None, "", ""
    start = created[0]
    for e in lab.events(component="job-controller", object=obj, since=start):
        if e.event in ("Completed", "BackoffLimitExceeded", "DeadlineExceeded"):
            outcome = "Complete" if e.event == "Completed" else "Failed"
            msgs = [ev.detail.get("message", "") for ev in lab.events(component="shop-migrate", since=start)
                    if ev.time <= e.time]
            return e.time, outcome, msgs[-1] if msgs else ""
    return None, "", ""


def ship_release(ml: MigrationLab, version: str, *, runner: str, hook: str, backoff_limit: int,
                 migrations: dict[str, str] | None = None, message: str | None = None, author: str = "dev") -> str:
    """Commit release ``version`` to the lab's repository and let CI build its images; returns the commit.

    The commit holds the release's new migrations (``MIGRATIONS[version]`` unless
    ``migrations`` is given), the migration Job and the Deployment at that version.
    CI then builds ``shop-migrate:<version>`` from the migrations *at that commit*
    (read back from git) and publishes ``shop:<version>``.  The headless run and the
    notebook's explorer both release through here.
    """
    lab = ml.lab
    new = MIGRATIONS.get(version, {}) if migrations is None else migrations
    files = release_files(version, runner=runner, hook=hook, backoff_limit=backoff_limit, migrations=new)
    if message is None:
        message = f"migrations {', '.join(new)}" if new else "bug fix, no schema change"
    sha = lab.commit(files, f"shop {version}: {message}", author=author)
    # CI: build shop-migrate:<version> from the migrations at this commit (read back from git)
    baked = {p.rsplit("/", 1)[-1]: lab.repo.read(p, sha) for p in lab.repo.files(sha)
             if p.startswith("db/migrations/") and p.endswith(".sql")}
    image = MigrationImage(version, baked, ml.db.parent, lab.log)
    lab.registry.add(MIGRATE_IMAGE, [version], run_seconds=8.0, program=image)
    lab.registry.add(APP_IMAGE, [version])
    ml.images[version] = image
    ml.releases.append(Release(version, sha, lab.now))
    return sha


def _run_lab(runner: str, *, seed: int, hook: str, backoff_limit: int, workdir: Path | None) -> MigrationLab:
    registry = ImageRegistry()
    registry.add(APP_IMAGE, list(RELEASES))
    lab = AppLab("argo", seed=seed, registry=registry,
                 workdir=(workdir / runner) if workdir is not None else None)
    data_dir = lab.workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    ml = MigrationLab(runner, lab, data_dir / "shop.db", {})
    target = Target(APP, "deploy", namespace=NAMESPACE, self_heal=False)
    for i, version in enumerate(RELEASES):
        ship_release(ml, version, runner=runner, hook=hook, backoff_limit=backoff_limit)
        rel = ml.releases[-1]
        if i == 0:
            lab.deploy(target)

        def settled(rel: Release = rel) -> bool:
            op = (lab.argo.status(APP).get("operationState") or {})
            return (op.get("syncResult") or {}).get("revision") == rel.sha and op.get("phase") in (
                "Succeeded", "Failed", "Error")

        lab.run_until(settled, timeout=1200, step=5)
        rel.settled = lab.now
        op = lab.argo.status(APP).get("operationState") or {}
        rel.operation_phase, rel.operation_message = op.get("phase", ""), op.get("message", "")
        rel.job_finished, rel.job_outcome, rel.job_message = _job_finish(lab, rel.committed)
        dep_key, job_key = f"Deployment/{NAMESPACE}/{APP}", f"Job/{NAMESPACE}/shop-migrate"
        for seq, e in enumerate(lab.log):
            if e.time < rel.committed:
                continue
            if (rel.deployment_written_seq is None and e.component == "api" and e.object == dep_key
                    and e.event in ("Created", "Updated") and e.detail.get("manager") == "argocd-controller"):
                rel.deployment_written, rel.deployment_written_seq = e.time, seq
            if (rel.job_finished_seq is None and e.component == "job-controller" and e.object == job_key
                    and e.event in ("Completed", "BackoffLimitExceeded", "DeadlineExceeded")):
                rel.job_finished_seq = seq
        lab.advance(300)
    return ml


@dataclass
class MigrationsResult:
    """Both labs (versioned and raw) and the parameters they ran with."""

    labs: dict[str, MigrationLab]
    hook: str
    backoff_limit: int

    def metrics(self) -> dict[str, Any]:
        v, raw = self.labs["versioned"], self.labs["raw"]
        v_rerun, v_mid = v.release("1.1.1"), v.release("1.1.0")
        r_rerun = raw.release("1.1.1")
        rerun_runs = [r for r in v.images["1.1.1"].runs]
        versioned_ok = (v_rerun.job_outcome == "Complete" and v_rerun.operation_phase == "Succeeded"
                        and v.deployment_image().endswith(":1.1.1")
                        and all(r["message"].startswith("no change") for r in rerun_runs) and bool(rerun_runs))
        raw_failed = r_rerun.job_outcome == "Failed" and "duplicate column name" in r_rerun.job_message
        halted = (r_rerun.operation_phase in ("Failed", "Error") and r_rerun.deployment_written is None
                  and raw.deployment_image().endswith(":1.1.0"))
        rolled_first = (v_mid.deployment_written_seq is not None and v_mid.job_finished_seq is not None
                        and v_mid.deployment_written_seq < v_mid.job_finished_seq)
        versions = applied_versions(v.db)
        return {
            "versioned_rerun_ok": bool(versioned_ok),
            "raw_sql_rerun_failed": bool(raw_failed),
            "sync_halted_on_failed_migration": bool(halted),
            "deployment_rolled_before_migration": bool(rolled_first),
            "schema_version": max((n for n, _ in versions), default=None),
            "raw_error": r_rerun.job_message,
            "hook": self.hook,
            "backoff_limit": self.backoff_limit,
        }

    def releases(self) -> pd.DataFrame:
        rows = []
        for runner, ml in self.labs.items():
            for r in ml.releases:
                rows.append({"runner": runner, "release": r.version, "commit": r.sha[:7],
                             "committed_s": r.committed, "job": r.job_outcome or "-",
                             "job_finished_s": r.job_finished, "deployment_written_s": r.deployment_written,
                             "sync": r.operation_phase, "job_message": r.job_message})
        return pd.DataFrame(rows)


def run_migrations(*, seed: int = 0, hook: str = "PreSync", backoff_limit: int = 0,
                   workdir: str | Path | None = None) -> MigrationsResult:
    """Run the three releases through a versioned-runner lab and a raw-scripts lab (see module docstring)."""
    if hook not in HOOKS:
        raise LabkitError(f"unknown hook {hook!r}: choose PreSync or Sync", field="hook")
    if not isinstance(backoff_limit, int) or isinstance(backoff_limit, bool) or not 0 <= backoff_limit <= 6:
        raise LabkitError(f"backoff_limit must be an integer from 0 to 6, got {backoff_limit!r}",
                          field="backoff_limit")
    wd = Path(workdir) if workdir is not None else None
    labs = {runner: _run_lab(runner, seed=seed, hook=hook, backoff_limit=backoff_limit, workdir=wd)
            for runner in RUNNERS}
    return MigrationsResult(labs, hook, backoff_limit)


def plot_releases(result: MigrationsResult) -> plt.Figure:
    """Per runner and release: each migration Job's run (created → finished) and the Deployment's rollout."""
    fig, axes = plt.subplots(len(result.labs), 1, figsize=(10, 2.8 * len(result.labs)), sharex=True, squeeze=False)
    for ax, (runner, ml) in zip(axes[:, 0], result.labs.items()):
        spans = ml.spans()
        seen: set[str] = set()
        for i, r in enumerate(ml.releases):
            ax.plot(r.committed / 60, i, "o", color="black", label=None if "commit" in seen else "commit")
            seen.add("commit")
            for _, s in spans[spans.release == r.version].iterrows():
                if s.kind == "job":
                    label = f"migration Job ({'complete' if s.outcome == 'Complete' else 'failed'})"
                    color, y = ("tab:green" if s.outcome == "Complete" else "tab:red"), i + 0.15
                else:
                    label, color, y = "Deployment rollout (written → Healthy)", "tab:blue", i - 0.15
                ax.broken_barh([(s.start / 60, max((s.end - s.start) / 60, 0.03))], (y - 0.1, 0.2), color=color,
                               label=None if label in seen else label)
                seen.add(label)
            if r.deployment_written is None:
                ax.annotate("sync halted: Deployment untouched", (r.committed / 60, i - 0.15), xytext=(6, -3),
                            textcoords="offset points", fontsize=8, color="tab:red")
        ax.set_yticks(range(len(ml.releases)), [r.version for r in ml.releases])
        ax.set_ylabel("release")
        ax.set_ylim(-0.5, len(ml.releases) - 0.5)
        ax.set_title(f"{runner} migrations ({result.hook} hook, backoffLimit {result.backoff_limit})")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("minutes (virtual time)")
    fig.tight_layout()
    return fig
