"""Automated sync: once per revision, self-heal with its exponential back-off, retries of failed operations."""
from tests.argo.argo_support import Lab, configmap, deployment

from labkit.argo import ArgoTimings

BAD = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: \"two\"\n"
       "  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n"
       "    spec:\n      containers:\n      - name: web\n        image: nginx\n")


def _op_starts(lab):
    return [e.time for e in lab.events(event="OperationStarted")]


def _edit_cm(lab, value):
    lab.mgmt.kubectl_edit("v1", "ConfigMap", "cfg", "default", lambda c: c["data"].update(k=value))


def test_self_heal_backs_off_2_6_18_seconds_after_each_repair(lab):
    lab.commit({"app/c.yaml": configmap("cfg", {"k": "git"})}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto={"selfHeal": True}), file="web.yaml")
    lab.env.run(until=100)
    assert _op_starts(lab) == [0.0]
    # 1st drift: the first self-heal attempt has no back-off
    _edit_cm(lab, "x")
    lab.env.run(until=101)
    # 2nd drift 1 s after the repair: attempt 2 waits 2 s from the end of the last operation (100 -> 102)
    _edit_cm(lab, "y")
    lab.env.run(until=102.5)
    # 3rd drift: attempt 3 waits 6 s from 102 -> 108
    _edit_cm(lab, "z")
    lab.env.run(until=110)
    # 4th drift: attempt 4 waits 18 s from 108 -> 126
    _edit_cm(lab, "w")
    lab.env.run(until=200)
    assert _op_starts(lab) == [0.0, 100.0, 102.0, 108.0, 126.0]
    ops = [e.detail for e in lab.events(event="OperationStarted")]
    assert [d["attempt"] for d in ops] == [0, 1, 2, 3, 4]
    assert lab.mgmt.get("v1", "ConfigMap", "cfg", "default")["data"]["k"] == "git"
    skipped = [e for e in lab.events(event="AutoSyncSkipped") if "backoff" in e.detail]
    assert [(e.time, e.detail["backoff"]) for e in skipped] == [(101.0, 1.0), (102.5, 5.5), (110.0, 16.0)]


def test_self_heal_backoff_resets_after_the_cooldown(lab):
    lab.commit({"app/c.yaml": configmap("cfg", {"k": "git"})}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto={"selfHeal": True}), file="web.yaml")
    lab.env.run(until=10)
    _edit_cm(lab, "x")
    lab.env.run(until=11)
    _edit_cm(lab, "y")
    lab.env.run(until=20)
    assert _op_starts(lab) == [0.0, 10.0, 12.0]
    # 330 s after the last repair the attempt count starts again: no wait
    lab.env.run(until=400)
    _edit_cm(lab, "z")
    lab.env.run(until=401)
    assert _op_starts(lab)[-1] == 400.0
    assert lab.events(event="OperationStarted")[-1].detail["attempt"] == 1


def test_without_self_heal_drift_is_reported_not_reverted(lab):
    lab.commit({"app/c.yaml": configmap("cfg", {"k": "git"})}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=10)
    _edit_cm(lab, "hotfix")
    lab.env.run(until=600)
    assert _op_starts(lab) == [0.0]
    assert lab.argo.status("web")["sync"]["status"] == "OutOfSync"
    assert lab.mgmt.get("v1", "ConfigMap", "cfg", "default")["data"]["k"] == "hotfix"
    reasons = {e.detail["reason"] for e in lab.events(event="AutoSyncSkipped")}
    assert any(r.startswith("Skipping auto-sync: most recent sync already to ") for r in reasons)


def test_automated_sync_runs_once_per_revision_when_retry_is_off(tmp_path):
    lab = Lab(tmp_path)
    lab.argo.automated_retry_limit = 0
    sha = lab.commit({"app/d.yaml": BAD}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=500)
    assert _op_starts(lab) == [0.0]
    st = lab.argo.status("web")
    op = st["operationState"]
    assert op["phase"] == "Failed" and op["message"] == "one or more objects failed to apply (dry run)"
    assert op["syncResult"]["resources"][0]["status"] == "SyncFailed"
    assert "expected numeric (int or float), got string" in op["syncResult"]["resources"][0]["message"]
    conds = {c["type"]: c["message"] for c in st["conditions"]}
    assert conds["SyncError"] == f"Failed last sync attempt to [{sha}]: one or more objects failed to apply (dry run)"
    assert lab.mgmt.get("apps/v1", "Deployment", "web", "default") is None
    # a new revision is a new attempt (webhook-free: found by the 120 s resync)
    lab.commit({"app/d.yaml": deployment("web")}, when=500)
    lab.env.run(until=700)
    assert _op_starts(lab) == [0.0, 600.0]
    assert lab.argo.status("web")["operationState"]["phase"] == "Succeeded"


def test_automated_operation_retries_5_times_by_default_with_backoff(lab):
    lab.commit({"app/d.yaml": BAD}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=1000)
    attempts = [e.time for e in lab.events(event="OperationRetrying")]
    # waits min(3m, 5s * 2^n) for n = 1..5: 10, 20, 40, 80, 160
    assert attempts == [0.0, 10.0, 30.0, 70.0, 150.0]
    op = lab.argo.status("web")["operationState"]
    assert op["phase"] == "Failed"
    assert op["finishedAt"] == "2026-01-01T00:05:10Z"  # 150 + 160
    assert op["message"] == "one or more objects failed to apply (dry run) (retried 5 times)."
    assert op["retryCount"] == 5
    assert _op_starts(lab) == [0.0]


def test_retry_policy_from_the_application(lab):
    retry = ("    retry:\n      limit: 2\n      backoff:\n        duration: 3s\n        factor: 3\n"
             "        maxDuration: 20s\n")
    lab.commit({"app/d.yaml": BAD}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True, retry=retry), file="web.yaml")
    lab.env.run(until=5)
    msg = lab.argo.status("web")["operationState"]["message"]
    assert msg.startswith("one or more objects failed to apply (dry run). Retrying attempt #1 at ")
    lab.env.run(until=200)
    # 3 * 3^1 = 9, then min(20, 3 * 3^2 = 27) = 20
    assert [e.time for e in lab.events(event="OperationRetrying")] == [0.0, 9.0]
    assert lab.argo.status("web")["operationState"]["message"].endswith("(retried 2 times).")
    assert lab.argo.status("web")["operationState"]["finishedAt"] == "2026-01-01T00:00:29Z"


def test_prune_only_changes_are_not_auto_synced_without_prune(lab):
    lab.commit({"app/c.yaml": configmap("cfg"), "app/old.yaml": configmap("old")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=10)
    lab.commit({"app/old.yaml": None}, when=10)
    lab.argo.refresh("web")
    lab.env.run(until=20)
    st = lab.argo.status("web")
    assert st["sync"]["status"] == "OutOfSync"
    assert [r for r in st["resources"] if r.get("requiresPruning")][0]["name"] == "old"
    assert _op_starts(lab) == [0.0]
    assert lab.events(event="AutoSyncSkipped")[-1].detail["reason"] == \
        "Skipping auto-sync: need to prune extra resources only but automated prune is disabled"


def test_allow_empty_guard_refuses_to_wipe_out_everything(lab):
    lab.commit({"app/c.yaml": configmap("cfg"), "app/keep.txt": "not a manifest\n"}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto={"prune": True}), file="web.yaml")
    lab.env.run(until=10)
    sha = lab.commit({"app/c.yaml": None}, when=10)
    lab.argo.refresh("web")
    lab.env.run(until=20)
    conds = {c["type"]: c["message"] for c in lab.argo.status("web")["conditions"]}
    assert conds["SyncError"] == f"Skipping sync attempt to {sha}: auto-sync will wipe out all resources"
    assert lab.mgmt.get("v1", "ConfigMap", "cfg", "default") is not None


def test_self_heal_syncs_only_the_drifted_resource_and_adds_no_history(lab):
    lab.commit({"app/c.yaml": configmap("cfg", {"k": "git"}), "app/d.yaml": deployment("web")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto={"selfHeal": True}), file="web.yaml")
    lab.env.run(until=50)
    _edit_cm(lab, "x")
    lab.env.run(until=60)
    op = lab.argo.status("web")["operationState"]
    assert op["operation"]["sync"]["resources"] == [{"group": "", "kind": "ConfigMap", "name": "cfg"}]
    assert [r["kind"] for r in op["syncResult"]["resources"]] == ["ConfigMap"]
    assert len(lab.argo.status("web")["history"]) == 1


def test_timings_are_injectable(tmp_path):
    lab = Lab(tmp_path, timings=ArgoTimings.fixed(git=1.0, generate=2.0))
    lab.commit({"app/c.yaml": configmap("cfg")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=10)
    # ls-remote (1 s) then manifest generation (2 s, a cache miss) before the first comparison
    assert _op_starts(lab) == [3.0]
    assert lab.created()[-1] == (3.0, "ConfigMap/default/cfg")
