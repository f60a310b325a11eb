"""Sync options, app-wide and per object: prune safeguards, Replace, ServerSideApply, CreateNamespace, ..."""
from tests.argo.argo_support import configmap, deployment

HPA = "horizontal-pod-autoscaler"


def _start(lab, files, **kw):
    lab.commit(files, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", **kw), file="web.yaml")
    lab.env.run(until=1)


def _sync(lab, until, **kw):
    lab.argo.sync("web", **kw)
    lab.env.run(until=until)
    return lab.argo.status("web")


def _result(st, name):
    return next(r for r in st["operationState"]["syncResult"]["resources"] if r["name"] == name)


def test_prune_false_keeps_the_object_and_the_app_out_of_sync(lab):
    _start(lab, {"app/c.yaml": configmap("cfg"),
                 "app/keep.yaml": configmap("keep", annotations={"argocd.argoproj.io/sync-options": "Prune=false"})})
    _sync(lab, 10)
    lab.commit({"app/keep.yaml": None}, when=10)
    lab.argo.refresh("web")
    lab.env.run(until=11)
    st = _sync(lab, 20, prune=True)
    assert st["operationState"]["phase"] == "Succeeded"
    r = _result(st, "keep")
    assert (r["status"], r["message"]) == ("PruneSkipped", "ignored (no prune)")
    assert lab.mgmt.get("v1", "ConfigMap", "keep", "default") is not None
    assert st["sync"]["status"] == "OutOfSync"
    assert [x["name"] for x in st["resources"] if x.get("requiresPruning")] == ["keep"]


def test_prune_disabled_reports_requires_pruning(lab):
    _start(lab, {"app/c.yaml": configmap("cfg"), "app/old.yaml": configmap("old")})
    _sync(lab, 10)
    lab.commit({"app/old.yaml": None}, when=10)
    lab.argo.refresh("web")
    lab.env.run(until=11)
    st = _sync(lab, 20, prune=False)
    assert _result(st, "old")["message"] == "ignored (requires pruning)"
    assert lab.mgmt.get("v1", "ConfigMap", "old", "default") is not None


def test_prune_runs_in_reverse_wave_order_and_prune_last_goes_after_everything(lab):
    _start(lab, {"app/a.yaml": configmap("a", wave=1), "app/b.yaml": configmap("b", wave=2),
                 "app/c.yaml": configmap("c", wave=0), "app/z.yaml": configmap("z", wave=0)})
    _sync(lab, 20)
    lab.commit({"app/a.yaml": None, "app/b.yaml": None, "app/c.yaml": configmap("c", {"k": "2"}, wave=0)}, when=20)
    lab.argo.refresh("web")
    lab.env.run(until=21)
    _sync(lab, 60, prune=True)
    deleted = [(e.time, e.object) for e in lab.events("api", "Deleted") if e.object.startswith("ConfigMap/default")]
    # waves {1, 2} are mirrored: b (wave 2) goes first, in wave 1; a in wave 2; 2 s apart after wave 0 at 21
    assert deleted == [(23.0, "ConfigMap/default/b"), (25.0, "ConfigMap/default/a")]
    lab.commit({"app/z.yaml": None, "app/c.yaml": configmap("c", {"k": "3"}, wave=0),
                "app/y.yaml": configmap("y", wave=1)}, when=60)
    lab.argo.refresh("web")
    lab.env.run(until=61)
    _sync(lab, 100, prune=True, sync_options=["PruneLast=true"])
    events = [(e.time, e.event, e.object) for e in lab.log.filter(component="api", since=61)
              if e.object in ("ConfigMap/default/z", "ConfigMap/default/y") and e.event in ("Created", "Deleted")]
    assert events == [(63.0, "Created", "ConfigMap/default/y"), (65.0, "Deleted", "ConfigMap/default/z")]


def test_prune_confirm_waits_for_approval(lab):
    _start(lab, {"app/c.yaml": configmap("cfg"),
                 "app/db.yaml": configmap("db", annotations={"argocd.argoproj.io/sync-options": "Prune=confirm"})})
    _sync(lab, 10)
    lab.commit({"app/db.yaml": None}, when=10)
    lab.argo.refresh("web")
    lab.env.run(until=11)
    st = _sync(lab, 50, prune=True)
    assert st["operationState"]["phase"] == "Running"
    assert st["operationState"]["message"] == "Waiting for pruning confirmation of v1/ConfigMap/db"
    assert lab.mgmt.get("v1", "ConfigMap", "db", "default") is not None
    lab.argo.confirm_prune("web")
    lab.env.run(until=60)
    assert lab.argo.status("web")["operationState"]["phase"] == "Succeeded"
    assert lab.mgmt.get("v1", "ConfigMap", "db", "default") is None
    assert [e.time for e in lab.events("api", "Deleted", "ConfigMap/default/db")] == [50.0]


def test_replace_drops_fields_other_managers_added(lab):
    _start(lab, {"app/c.yaml": configmap("cfg", {"k": "v"})})
    _sync(lab, 10)
    lab.mgmt.kubectl_edit("v1", "ConfigMap", "cfg", "default", lambda c: c["data"].update(extra="x"))
    st = _sync(lab, 20)  # client-side apply leaves a field it never set
    assert lab.mgmt.get("v1", "ConfigMap", "cfg", "default")["data"] == {"k": "v", "extra": "x"}
    assert _result(st, "cfg")["message"] == "configmap/cfg unchanged"
    st = _sync(lab, 30, sync_options=["Replace=true"])
    assert lab.mgmt.get("v1", "ConfigMap", "cfg", "default")["data"] == {"k": "v"}
    assert _result(st, "cfg")["message"] == "configmap/cfg replaced"


def test_server_side_apply_uses_argocd_controller_as_field_manager(lab):
    _start(lab, {"app/d.yaml": deployment("web")}, options=["ServerSideApply=true"])
    st = _sync(lab, 10)
    assert _result(st, "web")["message"] == "deployment.apps/web serverside-applied"
    mf = lab.mgmt.get("apps/v1", "Deployment", "web", "default")["metadata"]["managedFields"]
    assert {(m["manager"], m["operation"]) for m in mf if m["manager"] == "argocd-controller"} == \
        {("argocd-controller", "Apply")}


def _drop_replicas_after_hpa(lab, options):
    _start(lab, {"app/d.yaml": deployment("web", replicas=2)}, options=options)
    _sync(lab, 10)
    lab.mgmt.kubectl_scale("apps/v1", "Deployment", "web", "default", 5, field_manager=HPA)
    lab.commit({"app/d.yaml": deployment("web", replicas=None)}, when=10)
    lab.argo.refresh("web")
    lab.env.run(until=11)
    _sync(lab, 20)
    return lab.mgmt.get("apps/v1", "Deployment", "web", "default")["spec"]["replicas"]


def test_client_side_apply_deletes_a_field_dropped_from_git_even_if_the_hpa_owns_it(lab):
    # three-way merge against last-applied-configuration: replicas was applied before, so it is removed
    assert _drop_replicas_after_hpa(lab, None) == 1


def test_server_side_apply_leaves_a_dropped_field_the_hpa_now_owns(lab):
    assert _drop_replicas_after_hpa(lab, ["ServerSideApply=true"]) == 5


def test_server_side_apply_removes_a_dropped_field_it_alone_owned(lab):
    _start(lab, {"app/d.yaml": deployment("web", replicas=3)}, options=["ServerSideApply=true"])
    _sync(lab, 10)
    lab.commit({"app/d.yaml": deployment("web", replicas=None)}, when=10)
    lab.argo.refresh("web")
    lab.env.run(until=11)
    assert lab.argo.status("web")["sync"]["status"] == "OutOfSync"  # the dry-run shows the removal
    _sync(lab, 20)
    assert lab.mgmt.get("apps/v1", "Deployment", "web", "default")["spec"]["replicas"] == 1


def test_create_namespace(lab):
    _start(lab, {"app/c.yaml": configmap("cfg")}, namespace="team", options=["CreateNamespace=true"])
    st = _sync(lab, 10)
    assert st["operationState"]["phase"] == "Succeeded"
    ns = _result(st, "team")
    assert (ns["kind"], ns["syncPhase"], ns["message"]) == ("Namespace", "PreSync", "namespace/team created")
    assert lab.mgmt.get("v1", "ConfigMap", "cfg", "team") is not None
    # the namespace is not a managed resource
    assert [r["kind"] for r in st["resources"]] == ["ConfigMap"]


def test_missing_namespace_without_create_namespace_fails_at_apply_time(lab):
    # Argo's dry-run is client-side and does not look the namespace up: the apply itself is refused
    _start(lab, {"app/c.yaml": configmap("cfg")}, namespace="team")
    st = _sync(lab, 10)
    assert st["operationState"]["phase"] == "Failed"
    assert st["operationState"]["message"] == 'one or more objects failed to apply, reason: namespaces "team" not found'
    assert _result(st, "cfg")["status"] == "SyncFailed"


def test_apply_out_of_sync_only_writes_only_what_changed(lab):
    _start(lab, {"app/a.yaml": configmap("a"), "app/b.yaml": configmap("b")}, options=["ApplyOutOfSyncOnly=true"])
    _sync(lab, 10)
    lab.commit({"app/b.yaml": configmap("b", {"k": "2"})}, when=10)
    lab.argo.refresh("web")
    lab.env.run(until=11)
    st = _sync(lab, 20)
    assert [r["name"] for r in st["operationState"]["syncResult"]["resources"]] == ["b"]
    assert lab.mgmt.get("v1", "ConfigMap", "b", "default")["data"] == {"k": "2"}


def test_object_annotation_wins_over_app_wide_option(lab):
    _start(lab, {"app/a.yaml": configmap("a"),
                 "app/b.yaml": configmap("b", annotations={"argocd.argoproj.io/sync-options": "ServerSideApply=false"})},
           options=["ServerSideApply=true"])
    st = _sync(lab, 10)
    assert _result(st, "a")["message"] == "configmap/a serverside-applied"
    assert _result(st, "b")["message"] == "configmap/b created"


def test_force_recreates_an_object_whose_immutable_field_changed(lab):
    from tests.argo.argo_support import job

    plain_job = job("report")  # a Job that is a resource, not a hook
    _start(lab, {"app/j.yaml": plain_job})
    _sync(lab, 10)
    uid = lab.mgmt.get("batch/v1", "Job", "report", "default")["metadata"]["uid"]
    lab.commit({"app/j.yaml": job("report", image="report:2")}, when=10)
    lab.argo.refresh("web")
    lab.env.run(until=11)
    st = _sync(lab, 20)
    assert st["operationState"]["phase"] == "Failed"
    assert "field is immutable" in _result(st, "report")["message"]
    st = _sync(lab, 30, sync_options=["Force=true"])
    assert st["operationState"]["phase"] == "Succeeded"
    assert _result(st, "report")["message"] == "job.batch/report replaced"
    assert lab.mgmt.get("batch/v1", "Job", "report", "default")["metadata"]["uid"] != uid
