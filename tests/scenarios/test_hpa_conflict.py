"""HPA vs replicas in git: the flapping and each fix follow from SSA ownership, the HPA's writes and the sync loop."""
import pytest

from labkit.core.errors import LabkitError
from labkit.scenarios import hpa_conflict as hc

KCM = hc.HPA_MANAGER


def _after(changes, t):
    return changes[changes.time > t].reset_index(drop=True)


@pytest.fixture(scope="module")
def flux_none():
    return hc.run_hpa_conflict(dialect="flux", fix="none", seed=3)


@pytest.fixture(scope="module")
def argo_none():
    return hc.run_hpa_conflict(dialect="argo", fix="none", seed=3)


def test_flux_flaps_back_to_git_at_every_interval_run_and_the_hpa_scales_up_again(flux_none):
    r = flux_none
    m = r.metrics()
    c = r.changes()
    resets = r.resets()
    assert m["replica_resets"] >= 3
    assert m["max_replicas"] == 10  # the HPA's maxReplicas
    assert m["min_replicas_after_peak"] == hc.GIT_REPLICAS  # reset under full load
    # every reset is kustomize-controller taking the field from the HPA's manager back to git's value
    assert set(resets.manager) == {"kustomize-controller"}
    assert set(resets.to) == {hc.GIT_REPLICAS}
    assert all(KCM in o.split(",") for o in resets.owners_before)
    assert all(o == "kustomize-controller" for o in resets.owners)
    # ... and the HPA writes it up again within two of its 15 s sync periods
    for t in resets.time:
        nxt = _after(c, t).iloc[0]
        assert nxt.manager == KCM and nxt.to > hc.GIT_REPLICAS and nxt.time - t <= 30.0
    # each reset is an apply of an interval run (or the release's run): an "Applied" of the Kustomization
    applied = [e.time for e in r.lab.events(component="kustomize-controller", event="Applied")]
    for t in resets.time:
        assert any(abs(t - a) < 1.0 for a in applied)
    # the resets happen only while the HPA is above git's value, i.e. around the spike
    assert resets.time.min() > r.load.start - r.load.ramp


def test_flux_resets_follow_the_kustomization_interval(flux_none):
    fast = hc.run_hpa_conflict(dialect="flux", fix="none", seed=3, interval="2m")
    assert fast.metrics()["replica_resets"] > flux_none.metrics()["replica_resets"]


def test_flux_drop_field_falls_to_one_replica_before_the_hpa_acts():
    r = hc.run_hpa_conflict(dialect="flux", fix="drop-field", seed=3)
    m = r.metrics()
    c = _after(r.changes(), r.marks["fix"])
    first, second = c.iloc[0], c.iloc[1]
    # kustomize-controller was the only owner of spec.replicas: its apply without the field removed it (default 1)
    assert (first.manager, first["from"], first.to) == ("kustomize-controller", hc.GIT_REPLICAS, 1)
    assert first.owners_before == "kustomize-controller" and first.owners == ""
    # the HPA's next sync (15 s period) raises it again, now as the field's only owner
    assert second.manager == KCM and second.to > 1 and second.time - first.time <= 15.0
    assert m["fell_to_default_replicas"] is True
    assert m["replica_resets"] == 0
    assert m["max_replicas"] == 10 and m["min_replicas_after_peak"] == 10


def test_flux_ignore_stops_the_resets():
    r = hc.run_hpa_conflict(dialect="flux", fix="flux-ignore", seed=3)
    m = r.metrics()
    assert m["replica_resets"] == 0 and m["fell_to_default_replicas"] is False
    assert m["min_replicas_after_peak"] == m["max_replicas"] == 10
    # the routine release still reached the cluster
    dep = r.lab.get("apps/v1", "Deployment", hc.APP, hc.NAMESPACE)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.0.1")


def test_argo_self_heal_flaps_as_soon_as_the_hpa_writes(argo_none):
    r = argo_none
    resets = r.resets()
    assert r.metrics()["replica_resets"] >= 3
    assert set(resets.manager) == {"argocd-controller"} and set(resets.to) == {hc.GIT_REPLICAS}
    # each reset is the apply of a sync that started just before it: self-heal syncs, except the release's
    ops = r.lab.events(component="argocd-application-controller", event="OperationStarted")
    for t in resets.time:
        op = [e for e in ops if 0 <= t - e.time <= 1.0]
        assert len(op) == 1
        assert op[0].detail["selfHeal"] is (not r.marks["release"] <= t < r.marks["release"] + 10)


def test_argo_ignore_differences_alone_still_resets_on_the_next_sync():
    r = hc.run_hpa_conflict(dialect="argo", fix="ignore-differences", seed=3)
    resets = r.resets()
    # no self-heal from the HPA's writes any more ... but the routine release's sync resets replicas (argo-cd #7820)
    assert len(resets) == 1
    assert resets.time.iloc[0] > r.marks["release"]
    assert resets.to.iloc[0] == hc.GIT_REPLICAS
    assert r.metrics()["min_replicas_after_peak"] == hc.GIT_REPLICAS


def test_argo_respect_ignore_differences_keeps_the_hpa_value():
    r = hc.run_hpa_conflict(dialect="argo", fix="respect-ignore-differences", seed=3)
    m = r.metrics()
    assert m["replica_resets"] == 0
    assert m["min_replicas_after_peak"] == m["max_replicas"] == 10
    dep = r.lab.get("apps/v1", "Deployment", hc.APP, hc.NAMESPACE)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.0.1")
    assert r.lab.argo.status(hc.APP)["sync"]["status"] == "Synced"


def test_argo_drop_field_during_the_spike_client_side_vs_server_side():
    csa = hc.run_hpa_conflict(dialect="argo", fix="drop-field", seed=3, fix_at_s=1000)
    ssa = hc.run_hpa_conflict(dialect="argo", fix="drop-field", seed=3, fix_at_s=1000, argo_apply="server-side")
    # client-side apply: the three-way merge deletes what left the last-applied manifest, whoever owns it now
    c = csa.changes()
    drop = c[(c.manager == "argocd-controller") & (c.to == 1)]
    assert len(drop) >= 1 and drop.time.min() > csa.marks["fix"]
    assert KCM in drop.iloc[0].owners_before.split(",")
    # server-side apply: no GitOps write leaves the Deployment at 1 replica
    s = ssa.changes()
    assert not ((s.manager == "argocd-controller") & (s.to == 1)).any()
    assert ssa.metrics()["fell_to_default_replicas"] is False


@pytest.mark.parametrize("dialect,fix", [("argo", "flux-ignore"), ("flux", "ignore-differences"),
                                         ("flux", "respect-ignore-differences")])
def test_fixes_of_the_other_dialect_are_refused_naming_the_parameter(dialect, fix):
    with pytest.raises(LabkitError) as err:
        hc.run_hpa_conflict(dialect=dialect, fix=fix)
    assert err.value.field == "fix"
    assert "dialect=" in str(err.value)


def test_bad_parameters_name_their_field():
    with pytest.raises(LabkitError) as err:
        hc.validate("flux", "none", "server-side")
    assert err.value.field == "argo_apply"
    with pytest.raises(LabkitError) as err:
        hc.validate("helm", "none")
    assert err.value.field == "dialect"
    with pytest.raises(LabkitError) as err:
        hc.validate("argo", "scale-to-zero")
    assert err.value.field == "fix"


def test_same_seed_same_run(flux_none):
    again = hc.run_hpa_conflict(dialect="flux", fix="none", seed=3)
    assert again.changes().equals(flux_none.changes())


@pytest.mark.parametrize("kwargs,field", [({"spike_ramp_s": 700.0}, "spike_ramp_s"),
                                          ({"spike_duration_s": 0.0}, "spike_duration_s"),
                                          ({"until_s": 0.0}, "until_s"),
                                          ({"until_s": 120.0, "fix_at_s": 300.0}, "fix_at_s")])
def test_bad_timings_name_their_field(kwargs, field):
    with pytest.raises(LabkitError) as err:
        hc.run_hpa_conflict(**kwargs)
    assert err.value.field == field


def _managed(*owners):
    """managedFields where each (manager, time) owns spec.replicas."""
    return [{"manager": m, "operation": "Update", "time": t, "fieldsV1": {"f:spec": {"f:replicas": {}}}}
            for m, t in owners]


def test_on_a_real_cluster_the_probe_watches_and_credits_the_fields_owner():
    """The watch path (a real cluster's HPA writes never pass the lab's seam): writer = owner of spec.replicas."""
    from types import SimpleNamespace

    from labkit.core.events import EventLog

    watches = []
    cluster = SimpleNamespace(watch=lambda av, kind, cb: watches.append((av, kind, cb)))
    lab = SimpleNamespace(real=True, cluster=cluster, log=EventLog(lambda: 0.0))
    hc.ReplicaProbe(lab)
    [(api_version, kind, cb)] = watches
    assert (api_version, kind) == ("apps/v1", "Deployment")

    def dep(replicas, owners, name="web", namespace="shop"):
        return {"metadata": {"name": name, "namespace": namespace, "managedFields": _managed(*owners)},
                "spec": {"replicas": replicas}}

    ks, t0, t1 = "kustomize-controller", "2026-11-26T10:00:00Z", "2026-11-26T10:00:05Z"
    cb("ADDED", dep(3, [(ks, t0)]))
    cb("MODIFIED", dep(3, [(ks, t0)]))  # a status update: no change of replicas, nothing recorded
    cb("MODIFIED", dep(7, [(KCM, t1)], name="other"))  # another Deployment
    cb("MODIFIED", dep(6, [(KCM, t1)]))
    cb("MODIFIED", dep(3, [(KCM, t0), (ks, t1)]))  # several owners: the latest wrote
    cb("DELETED", dep(3, [(ks, t1)]))
    rows = [e.detail for e in lab.log.filter(component="replicas-probe", event="ReplicasChanged")]
    assert [(r["from"], r["to"], r["manager"]) for r in rows] == [(None, 3, ks), (3, 6, KCM), (6, 3, ks), (3, None, "")]
    assert rows[2]["owners_before"] == [KCM] and rows[2]["owners"] == sorted([KCM, ks])
