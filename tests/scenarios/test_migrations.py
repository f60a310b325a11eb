"""Migrations: a PreSync hook Job runs real SQL; the runner, backoffLimit and the hook phase decide the outcome."""
import sqlite3

import pytest

from labkit.core.errors import LabkitError
from labkit.scenarios import migrations as mg
from labkit.sim.registry import RunContext


@pytest.fixture(scope="module")
def presync(tmp_path_factory):
    return mg.run_migrations(seed=2, workdir=tmp_path_factory.mktemp("presync"))


def test_versioned_runner_records_versions_and_its_rerun_is_a_no_op(presync):
    v = presync.labs["versioned"]
    assert mg.applied_versions(v.db) == [(1, "0001_create_orders.sql"), (2, "0002_add_order_status.sql")]
    assert mg.table_columns(v.db) == ["id", "item", "qty", "status"]
    runs = v.runs()
    assert list(runs.tag) == ["1.0.0", "1.1.0", "1.1.1"]  # one migration pod per release, each succeeded
    assert list(runs.exit_code) == [0, 0, 0]
    assert runs.message.iloc[1].startswith("applied 0002_add_order_status.sql")
    assert runs.message.iloc[2] == "no change: schema is at version 2"
    assert v.deployment_image() == f"{mg.APP_IMAGE}:1.1.1"
    m = presync.metrics()
    assert m["versioned_rerun_ok"] is True and m["schema_version"] == 2


def test_presync_hook_completes_before_the_deployment_is_written(presync):
    v = presync.labs["versioned"]
    for rel in v.releases:
        assert rel.job_outcome == "Complete"
        assert rel.deployment_written_seq is not None and rel.job_finished_seq is not None
        assert rel.job_finished_seq < rel.deployment_written_seq
    assert presync.metrics()["deployment_rolled_before_migration"] is False


def test_raw_scripts_fail_on_rerun_and_backoff_limit_zero_halts_the_sync(presync):
    raw = presync.labs["raw"]
    rerun = raw.release("1.1.1")
    assert rerun.job_outcome == "Failed"
    assert rerun.job_message == "0002_add_order_status.sql: sqlite3.OperationalError: duplicate column name: status"
    # backoffLimit 0: each Job ran exactly one pod (Argo's automated retries re-create the hook Job)
    spans = raw.spans()
    failed = spans[(spans.release == "1.1.1") & (spans.kind == "job")]
    assert len(failed) >= 1 and set(failed.outcome) == {"Failed"}
    pods = raw.runs()
    assert len(pods[pods.tag == "1.1.1"]) == len(failed)
    # the sync failed and the Deployment was never written after the 1.1.1 commit
    assert rerun.operation_phase == "Failed"
    assert rerun.deployment_written is None
    writes = [e for e in raw.lab.events(component="api", event=("Created", "Updated"),
                                        object=f"Deployment/{mg.NAMESPACE}/{mg.APP}", since=rerun.committed)
              if e.detail.get("manager") == "argocd-controller"]
    assert writes == []
    assert raw.deployment_image() == f"{mg.APP_IMAGE}:1.1.0"
    m = presync.metrics()
    assert m["raw_sql_rerun_failed"] is True and m["sync_halted_on_failed_migration"] is True
    # the raw lab has no schema_migrations table, but its schema did reach 0002 once
    assert mg.applied_versions(raw.db) == []
    assert mg.table_columns(raw.db) == ["id", "item", "qty", "status"]


def test_backoff_limit_retries_the_failing_pod_before_the_job_fails(tmp_path):
    r = mg.run_migrations(seed=2, backoff_limit=2, workdir=tmp_path)
    raw = r.labs["raw"]
    first_job = raw.spans()
    first_job = first_job[(first_job.release == "1.1.1") & (first_job.kind == "job")].iloc[0]
    pods = raw.runs()
    in_first = pods[(pods.time >= first_job.start) & (pods.time <= first_job.end)]
    assert len(in_first) == 3  # backoffLimit 2: three failed pods, then BackoffLimitExceeded
    assert set(in_first.exit_code) == {1}
    assert r.metrics()["sync_halted_on_failed_migration"] is True


def test_a_sync_hook_lets_the_deployment_roll_before_its_migration(tmp_path):
    r = mg.run_migrations(seed=2, hook="Sync", workdir=tmp_path)
    m = r.metrics()
    assert m["deployment_rolled_before_migration"] is True
    rel = r.labs["versioned"].release("1.1.0")
    assert rel.deployment_written < rel.job_finished
    # the raw rerun still fails, but the new code is already out: nothing halted
    assert m["raw_sql_rerun_failed"] is True and m["sync_halted_on_failed_migration"] is False
    assert r.labs["raw"].deployment_image() == f"{mg.APP_IMAGE}:1.1.1"


def test_the_migration_program_runs_real_sql(tmp_path):
    files = {**mg.MIGRATIONS["1.0.0"], **mg.MIGRATIONS["1.1.0"]}
    image = mg.MigrationImage("x", files, tmp_path)

    def ctx(args):
        return RunContext(pod={"metadata": {"name": "p"}}, container={"args": args}, image="m:x", attempt=0, now=0.0,
                          env={"DATABASE_URL": "sqlite:///t.db"})

    assert image(ctx(mg.VERSIONED_ARGS))[0] == 0
    assert image(ctx(mg.VERSIONED_ARGS)) == (0, "no change: schema is at version 2")
    con = sqlite3.connect(tmp_path / "t.db")
    assert con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall() == [(1,), (2,)]
    con.close()
    code, message = image(ctx(mg.RAW_ARGS))
    assert code == 1 and "duplicate column name: status" in message
    # a failing versioned migration is rolled back with its record
    broken = mg.MigrationImage("y", {**files, "0003_bad.sql": "ALTER TABLE orders ADD COLUMN note TEXT;\nSELEC 1;\n"},
                               tmp_path)
    code, message = broken(ctx(mg.VERSIONED_ARGS))
    assert code == 1 and message.startswith("error: migration 0003_bad.sql failed, rolled back")
    assert mg.table_columns(tmp_path / "t.db") == ["id", "item", "qty", "status"]
    assert [v for v, _ in mg.applied_versions(tmp_path / "t.db")] == [1, 2]


def test_bad_parameters_name_their_field():
    with pytest.raises(LabkitError) as err:
        mg.run_migrations(hook="PostSync")
    assert err.value.field == "hook"
    with pytest.raises(LabkitError) as err:
        mg.run_migrations(backoff_limit=-1)
    assert err.value.field == "backoff_limit"
