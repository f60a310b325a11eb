"""The dialect-free engine: plan, staged apply, no-op writes, prune safeguards, force, health waiting.

Expected outcomes follow fluxcd/pkg/ssa semantics (dry-run then compare; apply only
what changed; prune only stale inventory entries that still carry the owner labels
and are not prune-disabled).
"""
import copy

import pytest

from labkit.engine.apply import ApplyFailed, ApplyOptions, apply_staged
from labkit.engine.changeset import Action
from labkit.engine.inventory import Inventory
from labkit.engine.plan import DryRunFailed, plan
from labkit.engine.prune import prune
from labkit.engine.policy import Policy, Selector
from labkit.engine.wait import wait_for_set
from labkit.flux.policy import FIELD_MANAGER, FLUX_POLICY
from labkit.sim import SimCluster

OWNER = {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}


def flux(**kw):
    """The options kustomize-controller applies with: its field manager and its annotation policy."""
    return ApplyOptions(field_manager=FIELD_MANAGER, policy=FLUX_POLICY, **kw)


def labelled(obj, **extra):
    obj = copy.deepcopy(obj)
    obj.setdefault("metadata", {}).setdefault("labels", {}).update(OWNER)
    obj["metadata"]["labels"].update(extra)
    return obj


def cm(name, ns="team", **data):
    return labelled({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data})


NS = labelled({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})


def run(cluster, gen):
    """Run an engine generator to completion on the cluster's clock and return its value."""
    proc = cluster.env.process(gen)
    cluster.env.run(until=proc)
    return proc.value


@pytest.fixture
def cluster():
    return SimCluster(seed=1, controllers=False)


def test_first_apply_creates_namespace_first_then_objects(cluster):
    objs = [cm("a", x="1"), NS, cm("b", y="2")]
    res = run(cluster, apply_staged(cluster.env, cluster, objs, flux()))
    assert [str(e) for e in res.changeset] == ["Namespace/team created", "ConfigMap/team/a created", "ConfigMap/team/b created"]
    created = [e.object for e in cluster.log.filter(component="api", event="Created")]
    assert created[-3:] == ["Namespace/team", "ConfigMap/team/a", "ConfigMap/team/b"]


def test_noop_reconcile_writes_nothing(cluster):
    objs = [NS, cm("a", x="1")]
    run(cluster, apply_staged(cluster.env, cluster, objs, flux()))
    before = cluster.store.writes
    res = run(cluster, apply_staged(cluster.env, cluster, objs, flux()))
    assert cluster.store.writes == before
    assert res.changeset.counts() == {"unchanged": 2}


def test_changed_object_is_configured_and_only_it_is_written(cluster):
    objs = [NS, cm("a", x="1"), cm("b", y="2")]
    run(cluster, apply_staged(cluster.env, cluster, objs, flux()))
    before = cluster.store.writes
    objs[2] = cm("b", y="3")
    res = run(cluster, apply_staged(cluster.env, cluster, objs, flux()))
    assert res.changeset.to_map() == {"Namespace/team": "unchanged", "ConfigMap/team/a": "unchanged",
                                      "ConfigMap/team/b": "configured"}
    assert cluster.store.writes == before + 1


def test_failed_dry_run_applies_nothing(cluster):
    bad_deploy = labelled({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": "three", "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "w", "image": "nginx:1"}]}}},
    })
    good = cm("ok", ns="default", a="b")
    with pytest.raises(DryRunFailed) as err:
        run(cluster, apply_staged(cluster.env, cluster, [good, bad_deploy], flux()))
    assert str(err.value) == (
        "Deployment/default/web dry-run failed (InternalError): failed to create typed patch object "
        "(default/web; apps/v1, Kind=Deployment): .spec.replicas: expected numeric (int or float), got string"
    )
    assert cluster.get("v1", "ConfigMap", "ok", "default") is None
    assert cluster.store.writes == 0


def test_unknown_kind_fails_the_whole_set(cluster):
    widget = labelled({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}})
    with pytest.raises(DryRunFailed) as err:
        run(cluster, apply_staged(cluster.env, cluster, [cm("ok", ns="default"), widget], flux()))
    assert 'no matches for kind "Widget" in version "example.com/v1"' in str(err.value)
    assert cluster.get("v1", "ConfigMap", "ok", "default") is None


def test_drift_by_another_manager_is_planned_as_configured_and_reverted(cluster):
    objs = [NS, cm("a", x="1")]
    run(cluster, apply_staged(cluster.env, cluster, objs, flux()))
    cluster.kubectl_edit("v1", "ConfigMap", "a", "team", lambda o: o["data"].update(x="hotfix"))
    p = plan(cluster, objs, field_manager="kustomize-controller")
    entry = [e for e in p.entries if e.desired["kind"] == "ConfigMap"][0]
    assert entry.action == Action.CONFIGURED and entry.drift == ["data.x"]
    run(cluster, apply_staged(cluster.env, cluster, objs, flux()))
    assert cluster.get("v1", "ConfigMap", "a", "team")["data"]["x"] == "1"


def test_ssa_annotations_ignore_and_if_not_present(cluster):
    once = cm("seed", ns="default", v="1")
    once["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}
    ignored = cm("manual", ns="default", v="1")
    ignored["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/ssa": "Ignore"}
    res = run(cluster, apply_staged(cluster.env, cluster, [once, ignored], flux()))
    assert res.changeset.to_map() == {"ConfigMap/default/seed": "created", "ConfigMap/default/manual": "skipped"}
    cluster.kubectl_edit("v1", "ConfigMap", "seed", "default", lambda o: o["data"].update(v="edited"))
    res = run(cluster, apply_staged(cluster.env, cluster, [once, ignored], flux()))
    assert res.changeset.to_map()["ConfigMap/default/seed"] == "skipped"
    assert cluster.get("v1", "ConfigMap", "seed", "default")["data"]["v"] == "edited"
    assert cluster.get("v1", "ConfigMap", "manual", "default") is None


JOB = labelled({
    "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "default"},
    "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "migrate:1"}]}}},
})


def test_immutable_field_fails_without_force_and_recreates_with_force(cluster):
    run(cluster, apply_staged(cluster.env, cluster, [JOB], flux()))
    uid = cluster.get("batch/v1", "Job", "migrate", "default")["metadata"]["uid"]
    v2 = copy.deepcopy(JOB)
    v2["spec"]["template"]["spec"]["containers"][0]["image"] = "migrate:2"
    with pytest.raises(DryRunFailed) as err:
        run(cluster, apply_staged(cluster.env, cluster, [v2], flux()))
    assert "spec.template: Invalid value" in str(err.value) and "field is immutable" in str(err.value)
    res = run(cluster, apply_staged(cluster.env, cluster, [v2], flux(force=True)))
    assert res.recreated == ["Job/default/migrate"]
    live = cluster.get("batch/v1", "Job", "migrate", "default")
    assert live["metadata"]["uid"] != uid
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "migrate:2"


def test_force_annotation_recreates_one_object(cluster):
    run(cluster, apply_staged(cluster.env, cluster, [JOB], flux()))
    v2 = copy.deepcopy(JOB)
    v2["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/force": "Enabled"}
    v2["spec"]["template"]["spec"]["containers"][0]["image"] = "migrate:3"
    res = run(cluster, apply_staged(cluster.env, cluster, [v2], flux()))
    assert res.recreated == ["Job/default/migrate"]


def test_prune_deletes_exactly_stale_entries_with_owner_labels(cluster):
    keep, stale, foreign, protected = cm("keep", ns="default"), cm("stale", ns="default"), cm("foreign", ns="default"), cm("protected", ns="default")
    protected["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/prune": "disabled"}
    run(cluster, apply_staged(cluster.env, cluster, [keep, stale, foreign, protected], flux()))
    # someone else takes "foreign" over: its owner labels now say another Kustomization
    cluster.kubectl_edit("v1", "ConfigMap", "foreign", "default",
                         lambda o: o["metadata"]["labels"].update({"kustomize.toolkit.fluxcd.io/name": "other"}))
    old = Inventory.from_objects([keep, stale, foreign, protected])
    new = Inventory.from_objects([keep])
    res = run(cluster, prune(cluster.env, cluster, old.diff(new), owner_labels=OWNER, exclusions=FLUX_POLICY.prune_exclusions))
    assert res.changeset.to_map() == {
        "ConfigMap/default/stale": "deleted",
        "ConfigMap/default/protected": "skipped",
        "ConfigMap/default/foreign": "skipped",
    }
    cluster.env.run(until=cluster.env.now + 1)
    names = sorted(o["metadata"]["name"] for o in cluster.list("v1", "ConfigMap", "default"))
    assert names == ["foreign", "keep", "protected"]


def test_prune_never_touches_unlabelled_objects(cluster):
    plain = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain", "namespace": "default"}}
    cluster.apply(plain, field_manager="kubectl")
    inv = Inventory.from_objects([plain])
    res = run(cluster, prune(cluster.env, cluster, list(inv), owner_labels=OWNER, exclusions=FLUX_POLICY.prune_exclusions))
    assert res.changeset.to_map() == {"ConfigMap/default/plain": "skipped"}
    assert cluster.get("v1", "ConfigMap", "plain", "default") is not None


def test_wait_times_out_with_flux_message(cluster):
    # with controllers off nothing ever becomes ready: the wait must time out at exactly 10 s
    dep = labelled({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "w", "image": "nginx:1"}]}}},
    })
    cluster.apply(dep, field_manager="kustomize-controller")
    res = run(cluster, wait_for_set(cluster.env, cluster, [dep], timeout=10, interval=2))
    assert not res.ok and res.elapsed == 10
    assert res.message == "health check failed after 10s: timeout waiting for: [Deployment/default/web status: 'InProgress']"


def test_engine_knows_no_dialect_without_a_policy(cluster):
    # the same Flux annotations mean nothing to a caller that passes no policy (a push pipeline, kubectl)
    once = cm("seed", ns="default", v="1")
    once["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}
    ignored = cm("manual", ns="default", v="1")
    ignored["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/ssa": "Ignore"}
    res = run(cluster, apply_staged(cluster.env, cluster, [once, ignored], ApplyOptions(field_manager="ci")))
    assert res.changeset.to_map() == {"ConfigMap/default/seed": "created", "ConfigMap/default/manual": "created"}
    cluster.kubectl_edit("v1", "ConfigMap", "seed", "default", lambda o: o["data"].update(v="edited"))
    res = run(cluster, apply_staged(cluster.env, cluster, [once, ignored], ApplyOptions(field_manager="ci")))
    assert res.changeset.to_map()["ConfigMap/default/seed"] == "configured"
    assert cluster.get("v1", "ConfigMap", "seed", "default")["data"]["v"] == "1"
    protected = cm("protected", ns="default")
    protected["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/prune": "disabled"}
    run(cluster, apply_staged(cluster.env, cluster, [protected], ApplyOptions(field_manager="ci")))
    res = run(cluster, prune(cluster.env, cluster, list(Inventory.from_objects([protected])), owner_labels=OWNER))
    assert res.changeset.to_map() == {"ConfigMap/default/protected": "deleted"}


def test_another_dialect_names_its_own_policy(cluster):
    policy = Policy(skip=(Selector("example.com/sync", "skip", "sync: skip"),),
                    force=(Selector("example.com/replace", "true"),),
                    prune_exclusions={"example.com/keep": "yes"})
    skipped = cm("skipped", ns="default")
    skipped["metadata"]["annotations"] = {"example.com/sync": "SKIP"}
    res = run(cluster, apply_staged(cluster.env, cluster, [skipped], ApplyOptions(field_manager="x", policy=policy)))
    assert res.changeset.to_map() == {"ConfigMap/default/skipped": "skipped"}
    assert res.plan.entries[0].reason == "sync: skip"
    run(cluster, apply_staged(cluster.env, cluster, [JOB], ApplyOptions(field_manager="x", policy=policy)))
    v2 = copy.deepcopy(JOB)
    v2["metadata"]["annotations"] = {"example.com/replace": "True"}
    v2["spec"]["template"]["spec"]["containers"][0]["image"] = "migrate:4"
    res = run(cluster, apply_staged(cluster.env, cluster, [v2], ApplyOptions(field_manager="x", policy=policy)))
    assert res.recreated == ["Job/default/migrate"]
    kept = cm("kept", ns="default")
    kept["metadata"]["labels"]["example.com/keep"] = "yes"
    run(cluster, apply_staged(cluster.env, cluster, [kept], ApplyOptions(field_manager="x", policy=policy)))
    res = run(cluster, prune(cluster.env, cluster, list(Inventory.from_objects([kept])), owner_labels=OWNER,
                             exclusions=policy.prune_exclusions))
    assert res.changeset.to_map() == {"ConfigMap/default/kept": "skipped"}
