"""Where a scenario runs: the ``cluster`` parameter resolved to a backend, and one run's isolated slice of it.

No real cluster needed: kubeconfig contexts come from a file written here, local control
planes from a throw-away ``$LABKIT_CACHE``, and the namespace isolation is exercised over
the simulator's API store (the same ``Cluster`` seam a real API server sits behind).
"""
from __future__ import annotations

import json
import os

import pytest
import yaml

from labkit.core.errors import ApiError, LabkitError
from labkit.scenarios import backend as target
from labkit.scenarios.isolation import RUN_LABEL, NamespacedCluster, delete_run_namespaces
from labkit.sim import SimCluster


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def kubeconfig(tmp_path, monkeypatch):
    path = tmp_path / "kubeconfig"
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "dev",
           "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
           "users": [{"name": "u", "user": {"token": "t"}}],
           "contexts": [{"name": n, "context": {"cluster": "c", "user": "u"}} for n in ("dev", "prod-eu")]}
    path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.mark.parametrize("value, kind", [("sim", "sim"), ("kwok", "kwok"), ("kwok:mine", "kwok"), ("kind", "kind"),
                                         ("kind:other", "kind"), ("dev", "context"), ("labkit-x", "context"),
                                         (" sim ", "sim")])
def test_kind_of_names_the_sort_of_target(value, kind):
    assert target.kind_of(value) == kind


def test_sim_resolves_to_no_real_cluster():
    assert target.resolve("sim") is None


def test_a_context_of_the_default_kubeconfig(kubeconfig, cache):
    t = target.resolve("prod-eu")
    assert (t.kind, t.kubeconfig, t.context, t.name) == ("context", str(kubeconfig), "prod-eu", "prod-eu")


def test_an_unknown_context_is_one_error_naming_the_field_and_the_known_contexts(kubeconfig, cache):
    with pytest.raises(LabkitError) as e:
        target.resolve("staging")
    assert e.value.field == "cluster"
    assert "'staging' is not sim, kwok, kind or a context of" in str(e.value)
    assert "(contexts: dev, prod-eu)" in str(e.value)


def test_kwok_needs_a_running_local_control_plane(cache):
    with pytest.raises(LabkitError) as e:
        target.resolve("kwok")
    assert e.value.field == "cluster"
    assert "no local control plane named 'labkit' is running" in str(e.value)
    assert "`labkit cluster create --name labkit`" in str(e.value)
    with pytest.raises(LabkitError, match="no local control plane named 'mine'"):
        target.resolve("kwok:mine")


def _fake_control_plane(cache, name: str, pid: int) -> None:
    d = cache / "clusters" / name
    d.mkdir(parents=True)
    with open(f"/proc/{pid}/stat") as fh:
        start = int(fh.read().rsplit(")", 1)[1].split()[19])
    state = {"name": name, "dir": str(d), "kubeconfig": str(d / "kubeconfig"), "server": "https://127.0.0.1:1",
             "procs": [{"name": "kube-apiserver", "pid": pid, "pgid": os.getpgid(pid), "start": start,
                        "argv": [], "log": "", "port": None}], "status": "running"}
    (d / "state.json").write_text(json.dumps(state))


def test_a_running_local_control_plane_by_kwok_name_or_by_its_context(cache, kubeconfig):
    from labkit.kube import controlplane as cp

    _fake_control_plane(cache, "mine", os.getpid())  # "running": its recorded process is alive (this one)
    st = cp.ClusterState.load("mine")
    assert all(p.alive() for p in st.procs)
    for value in ("kwok:mine", "labkit-mine"):
        t = target.resolve(value)
        assert (t.kind, t.kubeconfig, t.context, t.name) == ("kwok", st.kubeconfig, "labkit-mine", "kwok:mine")


def test_kind_needs_the_kind_cluster_labkit_created(cache):
    with pytest.raises(LabkitError) as e:
        target.resolve("kind")
    assert e.value.field == "cluster" and "no kind cluster 'labkit' created by labkit" in str(e.value)


def test_provision_leaves_sim_alone_and_refuses_an_unbuilt_control_plane(cache, monkeypatch):
    from labkit.kube import controlplane as cp

    with target.provision("sim") as value:
        assert value == "sim"
        assert target.RUN_ID_ENV not in os.environ or os.environ[target.RUN_ID_ENV] != ""
    monkeypatch.setattr(cp, "available", lambda: False)
    with pytest.raises(LabkitError) as e:
        with target.provision("kwok"):
            pass  # pragma: no cover - never reached
    assert e.value.field == "cluster" and "labkit cluster build" in str(e.value)
    assert cp.list_clusters() == []  # nothing was started


def test_provision_checks_a_context_before_anything_runs(kubeconfig, cache):
    with pytest.raises(LabkitError, match="'nope' is not sim, kwok, kind or a context"):
        with target.provision("nope"):
            pass  # pragma: no cover


def test_prefixes_are_unique_short_and_carry_the_run_id(monkeypatch):
    monkeypatch.setenv(target.RUN_ID_ENV, "abc123")
    a, b = target.new_prefix("staging"), target.new_prefix("staging")
    assert a != b and a.startswith("lkabc123-") and b.startswith("lkabc123-") and a.endswith("staging-")
    assert len(a + "podinfo-staging") <= 63


# ---------------------------------------------------------------------- the isolated slice


def cm(ns: str, name: str = "cfg", **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def ns_obj(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


@pytest.fixture
def shared():
    return SimCluster(seed=0, controllers=False)


def test_each_view_sees_its_own_namespaces_under_the_lab_names(shared):
    a = NamespacedCluster(shared, "lkr-1-", run_id="r", name="a")
    b = NamespacedCluster(shared, "lkr-2-", run_id="r", name="b")
    for view, value in ((a, "from-a"), (b, "from-b")):
        view.apply(ns_obj("apps"), field_manager="test")
        view.apply(cm("apps", v=value), field_manager="test")
    # the real cluster holds both, prefixed and labelled with the run
    assert shared.get("v1", "ConfigMap", "cfg", "lkr-1-apps")["data"] == {"v": "from-a"}
    assert shared.get("v1", "Namespace", "lkr-2-apps")["metadata"]["labels"][RUN_LABEL] == "r"
    # each view reads its own, with the lab's namespace names
    got = a.get("v1", "ConfigMap", "cfg", "apps")
    assert got["metadata"]["namespace"] == "apps" and got["data"] == {"v": "from-a"}
    assert [o["data"]["v"] for o in b.list("v1", "ConfigMap")] == ["from-b"]
    assert [n["metadata"]["name"] for n in a.list("v1", "Namespace")] == ["apps"]
    assert a.get("v1", "Namespace", "apps")["metadata"]["name"] == "apps"
    assert a.get("v1", "ConfigMap", "cfg", "default") is None


def test_writes_are_recorded_like_the_simulators_api_and_a_no_op_is_not_a_write(shared):
    view = NamespacedCluster(shared, "lkr-1-", run_id="r", name="a")
    view.apply(ns_obj("apps"), field_manager="kustomize-controller")
    view.apply(cm("apps", v="1"), field_manager="kustomize-controller")
    view.apply(cm("apps", v="1"), field_manager="kustomize-controller")  # unchanged: no write
    view.apply(cm("apps", v="2"), field_manager="kustomize-controller")
    view.apply(cm("apps", v="3"), field_manager="kustomize-controller", dry_run=True)  # a dry run writes nothing
    view.delete("v1", "ConfigMap", "cfg", "apps")
    seen = [(e.event, e.object, e.detail.get("manager")) for e in view.log.filter(component="api")]
    assert seen == [("Created", "Namespace/apps", "kustomize-controller"),
                    ("Created", "ConfigMap/apps/cfg", "kustomize-controller"),
                    ("Updated", "ConfigMap/apps/cfg", "kustomize-controller"),
                    ("Deleted", "ConfigMap/apps/cfg", "")]


def test_refusals_read_as_on_a_cluster_of_ones_own(shared):
    view = NamespacedCluster(shared, "lkr-1-", run_id="r", name="a")
    with pytest.raises(ApiError) as e:
        view.apply(cm("missing"), field_manager="test")
    assert e.value.reason == "NotFound"
    assert "lkr-1-" not in e.value.message and '"missing"' in e.value.message


def test_kubectl_edit_through_the_view_is_an_update_by_its_own_manager(shared):
    view = NamespacedCluster(shared, "lkr-1-", run_id="r", name="a")
    view.apply(ns_obj("apps"), field_manager="test")
    view.apply(cm("apps", v="1"), field_manager="kustomize-controller")
    view.kubectl_edit("v1", "ConfigMap", "cfg", "apps", lambda o: o["data"].update(v="hotfix"))
    live = shared.get("v1", "ConfigMap", "cfg", "lkr-1-apps")
    assert live["data"] == {"v": "hotfix"}
    assert "kubectl-edit" in {m["manager"] for m in live["metadata"]["managedFields"]}


def test_cleanup_deletes_only_the_views_namespaces(shared):
    a = NamespacedCluster(shared, "lkr-1-", run_id="r", name="a")
    other = NamespacedCluster(shared, "lkq-1-", run_id="q", name="other")
    a.apply(ns_obj("apps"), field_manager="t")
    a.apply(ns_obj("flux-system"), field_manager="t")
    other.apply(ns_obj("apps"), field_manager="t")
    assert sorted(a.cleanup()) == ["lkr-1-apps", "lkr-1-flux-system"]
    shared.run(until=shared.now + 60)  # the namespace controller finishes the deletion
    left = sorted(n["metadata"]["name"] for n in shared.list("v1", "Namespace"))
    assert "lkq-1-apps" in left and not any(n.startswith("lkr-1-") for n in left)
    assert delete_run_namespaces(shared, "q") == ["lkq-1-apps"]


def test_the_labs_refuse_an_unknown_cluster_before_building_anything(kubeconfig, cache):
    from labkit.scenarios.applab import AppLab
    from labkit.scenarios.lab import FleetLab

    for build in (lambda: FleetLab(cluster="nope"), lambda: AppLab("flux", cluster="nope")):
        with pytest.raises(LabkitError) as e:
            build()
        assert e.value.field == "cluster" and "'nope' is not sim, kwok, kind or a context" in str(e.value)
