"""The live explorers, driven headless: press their buttons and read their panels.

Each test runs a scenario (small parameters), opens its explorer on the result
(``labkit.scenarios.explorer.explore``, what the notebooks' last cell does),
presses buttons through their real click handlers (``Explorer.click`` calls
``Button.click``), and checks that the panels say what the simulation did: the
plan names each field's owner, the events carry messages, the timeline grows
with the clock.
"""
from __future__ import annotations

import pytest

from labkit.scenarios import explorer_panels as P
from labkit.scenarios.explorer import CLOCK_STEPS, Explorer, ReconcileExplorer, explore


def timeline_marks(ex: Explorer) -> int:
    return ex.panels["timeline"].value.count("<title>")


# ------------------------------------------------------------------ panels (no simulation)

def _managed(manager, operation, fields, subresource=""):
    e = {"manager": manager, "operation": operation, "apiVersion": "apps/v1", "time": "2026-01-01T00:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": fields}
    if subresource:
        e["subresource"] = subresource
    return e


def test_field_plan_names_owners_of_changed_and_kept_fields():
    c_git = {"name": "app", "image": "web:1", "env": [{"name": "A", "value": "1"}]}
    c_live = {"name": "app", "image": "web:2", "env": [{"name": "A", "value": "1"}, {"name": "HOTFIX", "value": "x"}]}
    live = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "managedFields": [
        _managed("kustomize-controller", "Apply", {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {
            "f:containers": {'k:{"name":"app"}': {".": {}, "f:env": {'k:{"name":"A"}': {".": {}, "f:name": {},
                                                                                         "f:value": {}}},
                                                   "f:name": {}}}}}}}),
        _managed("kubectl-edit", "Update", {"f:spec": {"f:template": {"f:spec": {"f:containers": {
            'k:{"name":"app"}': {"f:image": {}, "f:env": {'k:{"name":"HOTFIX"}': {".": {}, "f:name": {},
                                                                                  "f:value": {}}}}}}}}}),
        _managed("kube-controller-manager", "Update", {"f:spec": {"f:replicas": {}}}, "scale"),
    ]}, "spec": {"replicas": 5, "template": {"spec": {"containers": [c_live]}}}}
    desired = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"replicas": 3, "template": {"spec": {"containers": [c_git]}}}}
    after = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
             "spec": {"replicas": 3, "template": {"spec": {"containers": [dict(c_live, image="web:1")]}}}}
    rows = {r.path: r for r in P.field_plan(live, after, desired, applier="kustomize-controller", cleanup_note=True)}
    image = rows['.spec.template.spec.containers[name="app"].image']
    assert (image.kind, image.before, image.after, image.owners) == ("change", "web:2", "web:1",
                                                                     ["kubectl-edit (Update)"])
    replicas = rows[".spec.replicas"]
    assert replicas.kind == "change" and replicas.owners == ["kustomize-controller (Apply)",
                                                             "kube-controller-manager (Update, scale)"]
    hotfix = rows['.spec.template.spec.containers[name="app"].env[name="HOTFIX"]']
    assert hotfix.kind == "kept" and hotfix.owners == ["kubectl-edit (Update)"] and hotfix.note.endswith("†")
    html = P.plan_html([P.ObjectPlan("Deployment/web", "configured", list(rows.values()))],
                       applier="kustomize-controller")
    assert "fluxcd/pkg ssa cleanup" in html  # the footnote on what real Flux would do


def test_event_messages_for_records_without_one():
    from labkit.core.events import Event

    assert P.event_message(Event(1.0, "api", "Updated", "Deployment/a/b", "",
                                 {"manager": "kubectl-edit", "operation": "Update", "generation": 3})) == \
        "updated by kubectl-edit (Update), generation 3"
    assert P.event_message(Event(1.0, "kustomize-controller", "Applied", "K/x", "",
                                 {"stage": "apply", "changeset": "Deployment/a/b configured"})) == \
        "Deployment/a/b configured"
    assert P.event_message(Event(1.0, "x", "Y", "", "", {"message": "hello"})) == "hello"


# ------------------------------------------------------------------ tour (FleetLab)

@pytest.fixture(scope="module")
def tour_ex():
    from labkit.scenarios import tour

    result = tour.run_tour(seed=1, commits=1)
    return explore(result)


def test_tour_buttons_are_never_cut_off_and_the_clock_is_there(tour_ex):
    for key in ("commit", "bad", "revert", "hotfix", "limit", "reconcile", *CLOCK_STEPS):
        assert key in tour_ex.buttons
    assert all(b.layout.width == "auto" for b in tour_ex.buttons.values())
    assert "lkx-button-plus-10-min" in tour_ex.buttons["+10 min"]._dom_classes  # hooks for the browser tests
    assert "lkx-panel-plan" in tour_ex.panels["plan"]._dom_classes
    assert "lkx-explorer" in tour_ex.widget._dom_classes
    assert "webhook" in tour_ex.toggles
    assert tour_ex.widget._repr_mimebundle_()["application/vnd.jupyter.widget-view+json"]
    assert tour_ex._repr_mimebundle_()["application/vnd.jupyter.widget-view+json"]


def test_tour_hotfix_env_var_is_kept_and_owned_by_kubectl_edit(tour_ex):
    tour_ex.click("hotfix")
    plan = tour_ex.text("plan")
    assert 'env[name=&quot;HOTFIX&quot;]' in plan or 'env[name="HOTFIX"]' in plan
    assert "kubectl-edit (Update)" in plan and "keeps" in plan and "fluxcd/pkg ssa cleanup" in plan
    before = timeline_marks(tour_ex)
    tour_ex.click("+10 min")
    events = tour_ex.text("events")
    assert "ReconciliationSucceeded" in events and "Reconciliation finished in" in events
    assert timeline_marks(tour_ex) > before  # the timeline grew with the clock
    # labkit's engine does not model Flux's kubectl-manager cleanup: the field is still there, and still kept
    dep = tour_ex.driver.lab.deployment("staging")
    assert any(e["name"] == "HOTFIX" for e in dep["spec"]["template"]["spec"]["containers"][0]["env"])
    assert "keeps" in tour_ex.text("plan")


def test_tour_memory_limit_hotfix_is_a_change_the_next_reconcile_takes_back(tour_ex):
    tour_ex.click("limit")
    plan = tour_ex.text("plan")
    assert "resources.limits.memory" in plan and "512Mi" in plan and "128Mi" in plan
    assert "changes" in plan and "kustomize-controller takes it" in plan
    tour_ex.click("reconcile")
    tour_ex.click("+1 min")
    dep = tour_ex.driver.lab.deployment("staging")
    assert dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "128Mi"
    assert "resources.limits.memory" not in tour_ex.text("plan")
    owners = tour_ex.text("owners")
    assert "kubectl-edit" in owners and "kustomize-controller" in owners


def test_tour_commit_without_webhook_waits_for_the_poll(tour_ex):
    tour_ex.toggle("webhook", False)
    assert not tour_ex.driver.webhook.on
    note = tour_ex.click("commit")
    sha = note.rsplit(" ", 1)[-1]
    committed = tour_ex.driver.now()
    assert "not fetched yet" in tour_ex.text("plan")
    assert "git HEAD not applied yet" in tour_ex.text("status")
    tour_ex.click("+1 min")
    tour_ex.click("+1 min")
    revs = tour_ex.driver.target().revisions()
    assert sha in revs["artifact"]  # the next poll (every 1m) fetched it ...
    log = tour_ex.driver.lab.cluster("staging").log
    assert not log.filter(component="webhook", since=committed)  # ... nobody told Flux
    tour_ex.toggle("webhook", True)
    assert tour_ex.driver.webhook.on
    tour_ex.click("bad")
    tour_ex.click("+1 min")
    live = tour_ex.text("live")
    assert "ErrImagePull" in live or "ImagePullBackOff" in live
    assert "InProgress" in tour_ex.text("status")  # the workload's own state, next to the Kustomization's Ready
    tour_ex.click("revert")
    tour_ex.click("+10 min")
    assert "ErrImagePull" not in tour_ex.text("live")
    conditions = tour_ex.text("conditions")
    assert "Applied revision" in conditions and "stored artifact" in conditions


def test_reconcile_explorer_is_kept_for_old_notebooks(tour_ex):
    ex = ReconcileExplorer(tour_ex.driver.lab)
    assert ex.lab is tour_ex.driver.lab and ex.environment == "staging"
    assert "Kustomization/apps" in ex.text("status")


def test_explore_is_none_when_off_and_a_note_on_a_real_cluster(tour_ex):
    assert explore(object(), enabled=False) is None
    note = explore(object(), enabled=True, cluster="kwok")
    assert "cluster='sim'" in note.value


# ------------------------------------------------------------------ promotion and drift

def test_promotion_explorer_promotes_and_shows_both_environments():
    from labkit.scenarios import promotion

    result = promotion.run_promotion(seed=0, observe_s=400, health_timeout="1m", pause_s=15)
    ex = explore(result)
    assert ex.driver.views == ["staging", "prod"] and "promote" in ex.buttons
    ex.click("commit")
    ex.click("+10 min")
    staging_tag = result.lab.image("staging").rsplit(":", 1)[-1]
    ex.select("prod")
    assert result.lab.image("prod").endswith(staging_tag)  # the bot promoted the healthy tag by pull request
    assert "promotion bot: last promoted" in ex.text("status")
    assert "Kustomization/apps" in ex.text("status")


def test_drift_explorer_suspend_reports_and_resume_takes_the_hotfix_back():
    from labkit.scenarios import drift

    result = drift.run_drift(seed=0, hotfix_at_s=600, oncall_jitter_s=60, deploy_at_s=1800, after_deploy_s=60,
                             report_every_s=300)
    ex = explore(result)
    ex.toggle("suspend", True)
    ex.click("limit")
    ex.click("+10 min")
    ex.click("+10 min")
    assert drift.memory_limit(result.lab) == drift.HOTFIX_LIMIT  # suspended: nothing reverts it
    assert "suspended" in ex.text("status") and "512Mi" in ex.text("plan")
    ex.toggle("suspend", False)
    ex.click("+1 min")
    assert drift.memory_limit(result.lab) == "128Mi"
    ex.click("limit")
    ex.click("commit-hotfix")
    ex.click("+1 min")
    assert drift.memory_limit(result.lab) == drift.HOTFIX_LIMIT  # in git now: GitOps keeps it
    assert "resources.limits.memory" not in ex.text("plan")


# ------------------------------------------------------------------ AppLab scenarios

@pytest.mark.parametrize("dialect", ["flux", "argo"])
def test_hpa_explorer_shows_who_owns_replicas_and_the_fix_keeps_it(dialect):
    from labkit.scenarios import hpa_conflict

    result = hpa_conflict.run_hpa_conflict(dialect=dialect, spike_start_s=300, spike_ramp_s=60,
                                           spike_duration_s=300, until_s=900, fix_at_s=100)
    ex = explore(result)
    ex.toggle("load", True)
    ex.click("+1 min")
    ex.click("+1 min")
    plan = ex.text("plan")
    assert ".spec.replicas" in plan and "kube-controller-manager (Update, scale)" in plan
    assert "changes" in plan  # git's 3 would take the field back from the HPA
    ex.click("fix")
    ex.click("+10 min")
    assert "kube-controller-manager (Update, scale)" in ex.text("status")
    replicas = result.lab.get("apps/v1", "Deployment", "web", "shop")["spec"]["replicas"]
    ex.click("+10 min")
    assert result.lab.get("apps/v1", "Deployment", "web", "shop")["spec"]["replicas"] >= min(replicas, 4)
    if dialect == "flux":
        assert "keeps" in ex.text("plan")  # spec.ignore: the apply no longer sends the field
    else:
        assert "RespectIgnoreDifferences" in ex.text("plan")
    ex.toggle("load", False)
    ex.click("release")
    ex.click("+1 min")
    assert "web: release 1.1.1" in ex.text("events") or "1.1.1" in ex.text("live")


def test_hpa_explorer_status_counts_resets_and_reads_git_as_of_each_click():
    import yaml

    from labkit.scenarios import hpa_conflict

    result = hpa_conflict.run_hpa_conflict(dialect="flux", spike_start_s=300, spike_ramp_s=60,
                                           spike_duration_s=300, until_s=900)
    ex = explore(result)
    ex.toggle("load", True)
    seen, counts = set(), set()
    for key in ("+10 min", "release", "+1 min", "+10 min", "drop", "+1 min", "scale", "+10 min"):
        ex.click(key)
        resets = len(result.resets())  # recomputed from the whole log
        in_git = (yaml.safe_load(result.lab.repo.read("app/deployment.yaml")).get("spec") or {}).get("replicas")
        status = " ".join(ex.text("status").split())
        assert f"resets against the HPA so far: {resets}" in status
        assert f"replicas in git: {'none' if in_git is None else in_git}" in status
        seen.add(in_git is None)
        counts.add(resets)
    assert len(counts) > 1 and seen == {True, False}  # new resets while exploring, and git changed under it


def test_stateful_explorer_reports_the_refusal_with_the_api_servers_words():
    from labkit.scenarios import stateful_edges

    result = stateful_edges.run_stateful_edges(dialect="flux", pause_s=30)
    ex = explore(result)
    ex.click("grow")  # the run left 2Gi: back to 1Gi, refused the same way
    ex.click("+1 min")
    ex.click("+1 min")
    assert "Forbidden: updates to statefulset spec" in ex.text("conditions")
    ex.click("dbs")  # the run removed both Database manifests: restore them ...
    ex.click("+1 min")
    assert "orders: DROPPED" in ex.text("status")  # ... but Flux refuses the whole apply while one object fails
    ex.click("grow")  # git back to the live 2Gi
    ex.click("+1 min")
    ex.click("+1 min")
    assert "orders: database file present" in ex.text("status")


def test_migrations_explorer_runs_the_hook_in_the_chosen_lab():
    from labkit.scenarios import migrations

    result = migrations.run_migrations(seed=0)
    ex = explore(result)
    assert ex.driver.views == ["versioned", "raw"]
    ex.select("raw")
    ex.click("patch")
    ex.click("+1 min")
    ex.click("+1 min")
    status = ex.text("status")
    assert "raw lab" in status and "1.1.2 exit 1" in status and "duplicate column name" in status
    ex.select("versioned")
    released = ex.driver.now()
    ex.click("migration")
    ex.click("+1 min")
    ex.click("+1 min")
    assert "schema_migrations [1, 2, 3]" in ex.text("status")
    hooks = [e for e in ex.driver.journal() if e.event == "HookCreated" and e.time >= released]
    assert hooks and "job.batch/shop-migrate created" in P.event_message(hooks[0])


# ------------------------------------------------------------------ delivery and secrets

def _delivery_ex(scenario: str):
    from labkit.delivery.rollback import RollbackParams
    from labkit.delivery.stream import StreamConfig
    from labkit.scenarios.explorer import driver_for

    if scenario == "rollback":
        study = type("RollbackStudy", (), {"params": RollbackParams()})()
    else:
        study = type("PushVsPullStudy", (), {"config": StreamConfig()})()
    return Explorer(driver_for(study))


def test_rollback_explorer_times_both_rollbacks():
    ex = _delivery_ex("rollback")
    assert ex.driver.views == ["pull", "push"]
    ex.click("release")
    for _ in range(3):
        ex.click("+10 min")
    status = ex.text("status")
    assert "release v2 done in" in status
    ex.click("rollback")
    ex.click("+1 min")
    ex.click("+1 min")
    assert "pull: rollback to v1 done in" in ex.text("status")  # git revert + webhook: about a minute
    assert "push: rollback to v1 running" in ex.text("status")  # the pipeline is still rebuilding
    ex.click("+10 min")
    ex.click("+10 min")
    assert "push: rollback to v1 done in" in ex.text("status")
    ex.select("push")
    assert "no reconcile" in ex.text("plan")


def test_push_vs_pull_explorer_hand_fix_survives_only_in_the_push_world():
    ex = _delivery_ex("push-vs-pull")
    ex.click("release")
    for _ in range(3):
        ex.click("+10 min")
    ex.click("hand")
    ex.select("pull")
    plan = ex.text("plan")
    assert "kubectl-set (Update)" in plan and ".image" in plan  # git says v2: the next reconcile takes it back
    ex.click("reconcile")
    ex.click("+1 min")
    d = ex.driver
    assert d._deployment("pull")["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v2")
    assert d._deployment("push")["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1")
    ex.toggle("load", True)
    assert "CI busy" in ex.last_note


def test_secrets_explorer_never_shows_a_value_and_seals_with_the_views_key():
    from labkit.scenarios import secrets

    result = secrets.run_secrets(seed=0, key_bits=2048, keep=True)
    try:
        ex = explore(result)
        note = ex.click("plaintext")
        assert note.startswith("refused before commit") and "stringData.key" in note
        ex.click("seal")
        ex.click("+1 min")
        assert "token-2: Synced=True" in ex.text("status")
        ex.click("rotate")
        ex.toggle("store", False)
        ex.click("+10 min")
        assert not result.world.manager.available
        ex.select("prod-rebuilt")
        assert "Synced=False" in ex.text("status")  # the rebuilt controller has none of the old keys
        everything = "".join(w.value for w in ex.panels.values())
        assert "values hidden" in ex.text("live")
        assert not any(len(v) >= 20 and v in everything for v in _secret_values(result))
    finally:
        result.world.close()


def _secret_values(result):
    """The run's secret values, from the live Secrets (never printed)."""
    import base64

    out = []
    for cluster in result.world.clusters.values():
        for s in cluster.list("v1", "Secret", "shop"):
            for v in (s.get("data") or {}).values():
                out.append(base64.b64decode(v).decode(errors="replace"))
    return out


def test_every_click_is_recorded_with_its_latency(tour_ex):
    n = len(tour_ex.latencies)
    tour_ex.click("+10 s")
    assert len(tour_ex.latencies) == n + 1 and tour_ex.latencies[-1] > 0


def test_timeline_marks_read_incrementally_equal_a_full_reading():
    from labkit.scenarios import stateful_edges
    from labkit.scenarios.explorer_labs import mark_of

    ex = explore(stateful_edges.run_stateful_edges(dialect="flux", pause_s=30))
    d = ex.driver
    for key in ("grow", "+1 min", "dbs", "+10 min"):
        before = len(d.journal())
        ex.click(key)
        assert len(d.journal()) > before
        assert d.marks() == [m for m in map(mark_of, d.journal()) if m is not None] + d.actions
