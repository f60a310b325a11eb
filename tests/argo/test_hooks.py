"""Resource hooks: phases, fresh creation each sync, delete policies, failure handling, SyncFail."""
from tests.argo.argo_support import Lab, configmap, deployment, job


def _sync_now(lab, name="web"):
    lab.argo.sync(name)


def test_presync_hook_runs_before_the_resources(lab):
    lab.commit({"app/migrate.yaml": job("migrate", hook="PreSync"), "app/web.yaml": deployment("web")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=1)
    _sync_now(lab)
    lab.env.run(until=40)
    created = [(t, o) for t, o in lab.created() if o.startswith(("Job/", "Deployment/"))]
    # PreSync hook at 1; it completes after its 10 s run (11); only then the Sync phase
    assert created == [(1.0, "Job/default/migrate"), (11.0, "Deployment/default/web")]
    op = lab.argo.status("web")["operationState"]
    assert op["phase"] == "Succeeded"
    hook = next(r for r in op["syncResult"]["resources"] if r["kind"] == "Job")
    assert hook["hookType"] == "PreSync" and hook["hookPhase"] == "Succeeded" and hook["syncPhase"] == "PreSync"
    # hooks are not managed resources: not in status.resources, not part of the sync status
    assert [r["kind"] for r in lab.argo.status("web")["resources"]] == ["Deployment"]


def test_postsync_hook_runs_after_everything_is_healthy(lab):
    lab.commit({"app/smoke.yaml": job("smoke", hook="PostSync"), "app/web.yaml": deployment("web")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=1)
    _sync_now(lab)
    lab.env.run(until=40)
    created = [(t, o) for t, o in lab.created() if o.startswith(("Job/", "Deployment/"))]
    # Deployment at 1, Healthy at 6 (the 2 s wave delay ends at 3 and the wait goes on): PostSync at 6
    assert created == [(1.0, "Deployment/default/web"), (6.0, "Job/default/smoke")]
    op = lab.argo.status("web")["operationState"]
    assert op["phase"] == "Succeeded" and op["finishedAt"] == "2026-01-01T00:00:16Z"
    assert op["message"] == "successfully synced (no more tasks)"


def test_hook_succeeded_policy_deletes_the_hook_when_the_sync_succeeds(lab):
    lab.commit({"app/m.yaml": job("migrate", hook="PreSync", policy="HookSucceeded"),
                "app/c.yaml": configmap("cfg")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=1)
    _sync_now(lab)
    lab.env.run(until=30)
    deleted = [(e.time, e.object) for e in lab.events("api", "Deleted") if e.object.startswith("Job/")]
    assert deleted == [(11.0, "Job/default/migrate")]
    assert lab.mgmt.get("batch/v1", "Job", "migrate", "default") is None


def test_before_hook_creation_recreates_a_named_hook_on_the_next_sync(lab):
    lab.commit({"app/m.yaml": job("migrate", hook="PreSync"), "app/c.yaml": configmap("cfg")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=1)
    _sync_now(lab)
    lab.env.run(until=30)
    first_uid = lab.mgmt.get("batch/v1", "Job", "migrate", "default")["metadata"]["uid"]
    _sync_now(lab)
    lab.env.run(until=60)
    second = lab.mgmt.get("batch/v1", "Job", "migrate", "default")
    assert second["metadata"]["uid"] != first_uid
    jobs = [(e.time, e.event) for e in lab.log.filter(component="api", object="Job/default/migrate")
            if e.event in ("Created", "Deleted")]
    # the old hook is deleted first; the PreSync "wave" then sleeps the 2 s wave delay before creating the new one
    assert jobs == [(1.0, "Created"), (30.0, "Deleted"), (32.0, "Created")]


def test_hook_failed_policy_deletes_a_failed_hook(tmp_path):
    lab = Lab(tmp_path, job_fails=lambda name: name == "check")
    lab.commit({"app/m.yaml": job("check", hook="PreSync", policy="HookFailed"), "app/c.yaml": configmap("cfg")},
               when=0)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=1)
    _sync_now(lab)
    lab.env.run(until=30)
    assert lab.argo.status("web")["operationState"]["phase"] == "Failed"
    assert [(e.time, e.event) for e in lab.log.filter(component="api", object="Job/default/check")
            if e.event in ("Created", "Deleted")] == [(1.0, "Created"), (11.0, "Deleted")]


def test_generate_name_hooks_get_a_new_name_each_sync(lab):
    sha = lab.commit({"app/m.yaml": job("migrate", hook="PreSync", generate=True), "app/c.yaml": configmap("cfg")},
                     when=0)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=1)
    _sync_now(lab)
    lab.env.run(until=100)
    _sync_now(lab)
    lab.env.run(until=200)
    names = sorted(j["metadata"]["name"] for j in lab.mgmt.list("batch/v1", "Job", "default"))
    # <generateName><revision[:7]>-<phase>-<unix start>; runs start at 2026-01-01T00:00:01Z and 00:01:40Z
    assert names == [f"migrate-{sha[:7]}-presync-1767225601", f"migrate-{sha[:7]}-presync-1767225700"]


def test_failed_presync_hook_stops_the_sync_and_runs_syncfail_hooks(tmp_path):
    lab = Lab(tmp_path, job_fails=lambda name: name == "migrate")
    lab.commit({
        "app/migrate.yaml": job("migrate", hook="PreSync"),
        "app/web.yaml": deployment("web"),
        "app/smoke.yaml": job("smoke", hook="PostSync"),
        "app/notify.yaml": configmap("notify-failure", annotations={"argocd.argoproj.io/hook": "SyncFail"}),
    }, when=0)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=1)
    _sync_now(lab)
    lab.env.run(until=100)
    created = [(t, o) for t, o in lab.created() if o.startswith(("Job/", "Deployment/", "ConfigMap/default"))]
    # the PreSync Job fails at 11: no Deployment, no PostSync, the SyncFail hook runs at once
    assert created == [(1.0, "Job/default/migrate"), (11.0, "ConfigMap/default/notify-failure")]
    assert lab.mgmt.get("apps/v1", "Deployment", "web", "default") is None
    op = lab.argo.status("web")["operationState"]
    assert op["phase"] == "Failed"
    assert op["message"] == "one or more synchronization tasks completed unsuccessfully"
    results = {(r["kind"], r["name"]): r for r in op["syncResult"]["resources"]}
    assert results[("Job", "migrate")]["hookPhase"] == "Failed"
    assert results[("Job", "migrate")]["message"] == "Job has reached the specified backoff limit"
    assert results[("ConfigMap", "notify-failure")]["hookType"] == "SyncFail"
    assert results[("ConfigMap", "notify-failure")]["hookPhase"] == "Succeeded"
    assert ("Deployment", "web") not in results
    assert lab.argo.status("web")["sync"]["status"] == "OutOfSync"


def test_skip_hook_is_neither_applied_nor_tracked(lab):
    lab.commit({"app/c.yaml": configmap("skipped", annotations={"argocd.argoproj.io/hook": "Skip"}),
                "app/d.yaml": configmap("kept")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=10)
    assert lab.mgmt.get("v1", "ConfigMap", "skipped", "default") is None
    assert [r["name"] for r in lab.argo.status("web")["resources"]] == ["kept"]
    assert lab.argo.status("web")["sync"]["status"] == "Synced"


def test_reapplying_a_job_hook_without_before_hook_creation_hits_the_immutable_template(tmp_path):
    # argo-cd #7430: a named hook kept by HookFailed-only policy, changed in git, cannot be re-applied
    lab = Lab(tmp_path)
    lab.commit({"app/m.yaml": job("migrate", hook="Sync", policy="HookFailed"), "app/c.yaml": configmap("cfg")},
               when=0)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=1)
    _sync_now(lab)
    lab.env.run(until=30)
    assert lab.argo.status("web")["operationState"]["phase"] == "Succeeded"
    lab.commit({"app/m.yaml": job("migrate", hook="Sync", policy="HookFailed", image="migrate:2")}, when=30)
    lab.argo.refresh("web")
    lab.env.run(until=31)
    _sync_now(lab)
    lab.env.run(until=60)
    op = lab.argo.status("web")["operationState"]
    assert op["phase"] == "Failed"
    assert op["message"].startswith("one or more objects failed to apply, reason: Job.batch \"migrate\" is invalid")
    assert "field is immutable" in op["message"]
