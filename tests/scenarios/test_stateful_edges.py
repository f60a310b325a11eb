"""Stateful edges: the API server's StatefulSet refusal, the orphan-delete migration, and pruned operator resources."""
import pytest

from labkit.core.errors import LabkitError
from labkit.operators.database import API_VERSION as DB_API
from labkit.scenarios import stateful_edges as se

# the API server's text (kubernetes pkg/apis/apps/validation, ValidateStatefulSetUpdate)
FORBIDDEN = ('StatefulSet.apps "pg" is invalid: spec: Forbidden: updates to statefulset spec for fields other than '
             "'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
             "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")


@pytest.fixture(scope="module", params=["flux", "argo"])
def run(request):
    return se.run_stateful_edges(dialect=request.param, seed=4)


def test_the_claim_template_change_is_refused_with_the_api_servers_message(run):
    m = run.metrics()
    assert FORBIDDEN in m["sts_sync_error"]
    if run.dialect == "flux":
        assert run.sts_error_phase == "ReconciliationFailed"
        assert m["sts_sync_error"].startswith("StatefulSet/data/pg dry-run failed (Invalid): ")
    else:
        assert run.sts_error_phase == "Failed"
        assert m["sts_sync_error"].startswith("one or more objects failed to apply, reason: ")
    # nothing was written: until the orphan delete the live StatefulSet kept its 1Gi template
    writes = [e for e in run.lab.events(component="api", event="Updated", object="StatefulSet/data/pg",
                                        since=run.marks["grow_commit"])
              if e.time < run.marks["orphaned"] and e.detail.get("manager") == run.lab.field_manager()]
    assert writes == []


def test_orphan_delete_and_resync_keep_pods_and_claims(run):
    m = run.metrics()
    assert len(run.pods_before) == 2 and len(run.pvcs_before) == 2
    assert sorted(run.pvcs_before) == ["data-pg-0", "data-pg-1"]
    assert m["pods_survived_orphan_delete"] is True and m["pvcs_survived_orphan_delete"] is True
    assert run.storage_after == "2Gi"
    sts = run.lab.get("apps/v1", "StatefulSet", "pg", "data")
    assert sts["status"]["readyReplicas"] == 2
    # the pods were adopted by the new StatefulSet (same uid, new owner), not recreated
    for pod in run.lab.cluster.list("v1", "Pod", "data"):
        ref = pod["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["uid"]) == ("StatefulSet", sts["metadata"]["uid"])
    created = run.lab.events(component="api", event="Created", object="Pod/data/pg-0")
    assert len(created) == 1


def test_pruning_drops_the_unprotected_database_and_keeps_the_protected_one(run):
    m = run.metrics()
    assert m["database_dropped_without_safeguard"] is True
    assert m["database_dropped_with_safeguard"] is False
    assert m["rows_lost"] == 3  # the orders rows went with the file
    assert not run.operator.path_for("data", "orders").exists()
    assert run.operator.path_for("data", "analytics").is_file()
    # the drop was the operator's reaction to the GitOps controller deleting the resource
    dropped = run.lab.events(component="database-operator", event="DatabaseDropped")
    assert [e.object for e in dropped] == ["Database/data/orders"]
    assert dropped[0].time >= run.marks["cleanup_commit"]
    assert run.lab.get(DB_API, "Database", "analytics", "data") is not None
    if run.dialect == "argo":
        assert m["status_after_cleanup"] == "OutOfSync"  # Prune=false keeps the app OutOfSync
    else:
        assert m["status_after_cleanup"] == "ReconciliationSucceeded"


def test_retain_policy_keeps_even_the_pruned_database():
    r = se.run_stateful_edges(dialect="flux", seed=4, deletion_policy="Retain")
    m = r.metrics()
    assert m["database_dropped_without_safeguard"] is False and m["rows_lost"] == 0
    assert r.lab.get(DB_API, "Database", "orders", "data") is None  # the resource was pruned ...
    assert [e.object for e in r.lab.events(component="database-operator", event="DatabaseRetained")] == \
        ["Database/data/orders"]  # ... and the operator kept the database


def test_bad_parameters_name_their_field():
    with pytest.raises(LabkitError) as err:
        se.run_stateful_edges(deletion_policy="Orphan")
    assert err.value.field == "deletion_policy"
    with pytest.raises(LabkitError) as err:
        se.run_stateful_edges(dialect="kubectl")
    assert err.value.field == "dialect"


# ------------------------------------------------------------------ the database operator on its own

def _operator(tmp_path):
    from labkit.operators.database import DatabaseOperator
    from labkit.sim import SimCluster

    cluster = SimCluster(seed=1, controllers=False)
    op = DatabaseOperator(cluster, tmp_path, provision_seconds=3.0).install()
    return cluster, op


def test_operator_creates_a_real_database_after_its_provisioning_time_and_drops_it_on_delete(tmp_path):
    import sqlite3

    from labkit.operators.database import FINALIZER, database_manifest

    cluster, op = _operator(tmp_path)
    cluster.apply(database_manifest("shop", "default", schema="CREATE TABLE t (x INTEGER);"), field_manager="kubectl")
    cluster.run(until=2.9)
    assert not op.exists("default", "shop")
    cluster.run(until=3.001)  # SimPy's until is exclusive: the 3 s provisioning ends at t=3
    assert op.exists("default", "shop")
    obj = cluster.get("db.labkit.io/v1alpha1", "Database", "shop", "default")
    assert obj["metadata"]["finalizers"] == [FINALIZER]
    ready = obj["status"]["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "Provisioned")
    con = sqlite3.connect(op.path_for("default", "shop"))
    assert con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY 1").fetchall() == \
        [("labkit_database",), ("t",)]
    con.close()
    cluster.delete("db.labkit.io/v1alpha1", "Database", "shop", "default")
    cluster.run(until=4.0)
    assert not op.exists("default", "shop")
    assert cluster.get("db.labkit.io/v1alpha1", "Database", "shop", "default") is None


def test_operator_refuses_an_unknown_engine(tmp_path):
    from labkit.operators.database import database_manifest

    cluster, op = _operator(tmp_path)
    bad = database_manifest("x", "default")
    bad["spec"]["engine"] = "oracle"
    cluster.apply(bad, field_manager="kubectl")
    cluster.run(until=10)
    cond = cluster.get("db.labkit.io/v1alpha1", "Database", "x", "default")["status"]["conditions"][0]
    assert (cond["status"], cond["reason"]) == ("False", "InvalidSpec")
    assert cond["message"].startswith("spec.engine: Unsupported value: 'oracle'")
    assert not op.exists("default", "x")
