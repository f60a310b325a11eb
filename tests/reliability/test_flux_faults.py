"""How the Flux dialect behaves when the cluster, git or kustomize fail under it.

Every test drives the real Flux controllers over real git and kustomize into the
simulator, with faults injected at the seams (``tests/reliability/conftest.py``).
Timings are fixed: git fetch 1 s, build 0.5 s, API calls 0 s, no jitter;
GitRepository interval 1m, Kustomization interval 10m and retryInterval 2m.  So
the first reconcile succeeds at 1.5 (fetch 1.0 + build 0.5), a commit at 5 is
fetched at 62.0 and reconciled at 62.5, and the expected times below follow
from two rules:

* a failure inside a stage (plan, apply, prune, health, build) is
  ``Ready=False`` with the stage's reason and a requeue after ``retryInterval``
  (kustomize-controller's ``RequeueAfter: GetRetryInterval()``);
* an API error outside the stages (reading the object, writing its status) is
  a returned error: ``ReconcileError`` in the log and per-object exponential
  back-off 750 ms, 1.5 s, 3 s, ... (Flux's ``--min-retry-delay``), or the
  server's Retry-After when longer.
"""
from __future__ import annotations

import os
import stat
import sys
import textwrap

import pytest

from labkit.core.clock import rng_for
from labkit.engine.wait import wait_for_set
from labkit.faults import Fault, FaultPlan, FaultyCluster
from labkit.faults import invariants as inv
from labkit.faults.soak import InlineRenderer
from labkit.gitops.render import Renderer, find_kubectl
from labkit.sim import SimCluster
from tests.reliability.conftest import cm

FILES = {"apps/a.yaml": cm("a", greeting="hi"), "apps/b.yaml": cm("b", x="1")}
UNAVAILABLE = "the server is currently unable to handle the request"


def started(make_lab, files=FILES, **kw):
    lab = make_lab(files, **kw)
    lab.source(interval="1m")
    lab.kustomization(interval="10m", retryInterval="2m")
    lab.run(5)
    assert lab.ready()["status"] == "True"
    return lab


def head(lab) -> str:
    return f"main@sha1:{lab.repo.head()}"


def test_api_errors_during_apply_fail_the_reconcile_and_retry_on_retry_interval(make_lab):
    lab = started(make_lab)
    good = lab.ks()["status"]["lastAppliedRevision"]
    lab.fault("unavailable", verbs=("apply",), dry_run=False, start=60, end=200)
    lab.repo.commit({"apps/a.yaml": cm("a", greeting="hello")}, message="c", author="alice", when=5)
    lab.run(63)
    ready = lab.ready()
    assert (ready["status"], ready["reason"]) == ("False", "ReconciliationFailed")
    assert ready["message"] == f"ConfigMap/default/a apply failed (ServiceUnavailable): {UNAVAILABLE}"
    st = lab.ks()["status"]
    assert st["lastAppliedRevision"] == good and st["lastAttemptedRevision"] == head(lab)
    assert lab.data("a") == {"greeting": "hi"}  # the last good revision stays applied
    lab.run(400)
    # 62.5 failed; +2m retry (build 0.5) at 183.0 still inside the window; the next at 303.5 succeeds
    assert lab.times("ReconciliationFailed") == [62.5, 183.0]
    assert lab.times("ReconciliationSucceeded")[-1] == 303.5
    assert lab.data("a") == {"greeting": "hello"}
    assert lab.ks()["status"]["lastAppliedRevision"] == head(lab)


def test_status_write_errors_back_off_exponentially_then_converge(make_lab):
    lab = started(make_lab)
    lab.fault("unavailable", verbs=("patch_status",), kinds=("Kustomization",), start=60, end=70)
    lab.repo.commit({"apps/a.yaml": cm("a", greeting="hello")}, message="c", author="alice", when=5)
    lab.run(100)
    errors = lab.events("ReconcileError")
    # woken at 62.0 by the new artifact: the Reconciling status write fails; retries after 0.75, 1.5, 3, 6 s
    assert [e.time for e in errors] == [62.0, 62.75, 64.25, 67.25]
    assert [e.detail["retry_in"] for e in errors] == [0.75, 1.5, 3.0, 6.0]
    assert errors[0].detail["reason"] == "ServiceUnavailable" and errors[0].detail["code"] == 503
    assert lab.times("ReconciliationSucceeded")[-1] == 73.75  # 67.25 + 6 = 73.25, build 0.5
    assert lab.ready()["status"] == "True" and lab.ks()["status"]["lastAppliedRevision"] == head(lab)
    assert lab.data("a") == {"greeting": "hello"}


def test_a_returned_error_is_reported_as_ready_false_when_status_can_be_written(make_lab):
    lab = started(make_lab)
    lab.fault("internal", verbs=("patch_status",), kinds=("Kustomization",), start=60, limit=1)
    lab.repo.commit({"apps/a.yaml": cm("a", greeting="hello")}, message="c", author="alice", when=5)
    lab.run(62.5)
    ready = lab.ready()
    assert (ready["status"], ready["reason"]) == ("False", "ReconciliationFailed")
    assert ready["message"] == ("reconciliation failed (InternalError): Internal error occurred: "
                                "etcdserver: leader changed; retrying in 750ms")
    lab.run(70)
    assert lab.times("ReconciliationSucceeded")[-1] == 63.25  # 62.0 + 0.75, build 0.5
    assert lab.ready()["status"] == "True"


def test_throttling_honours_retry_after(make_lab):
    lab = started(make_lab)
    # at 62.0 two reads of the Kustomization are throttled: source-controller's look-up of who uses the
    # new artifact (it wakes the Kustomization anyway) and the Kustomization loop's own read
    lab.fault("throttle", verbs=("get",), kinds=("Kustomization",), start=60, limit=2, retry_after=20)
    lab.repo.commit({"apps/a.yaml": cm("a", greeting="hello")}, message="c", author="alice", when=5)
    lab.run(100)
    assert [(i.time, i.verb, i.object) for i in lab.plan.journal] == [(62.0, "get", "Kustomization/flux-system/apps")] * 2
    [err] = lab.events("ReconcileError")
    assert err.time == 62.0 and err.detail["reason"] == "TooManyRequests" and err.detail["retry_in"] == 20.0
    assert lab.times("ReconciliationSucceeded")[-1] == 82.5


def test_prune_failure_keeps_the_object_in_the_inventory_and_retries(make_lab):
    lab = started(make_lab)
    lab.fault("internal", verbs=("delete",), start=60, end=100)
    lab.repo.commit({"apps/b.yaml": None}, message="drop b", author="alice", when=5)
    lab.run(63)
    ready = lab.ready()
    assert ready["reason"] == "PruneFailed"
    assert ready["message"] == ("ConfigMap/default/b delete failed (InternalError): "
                                "Internal error occurred: etcdserver: leader changed")
    assert lab.inventory() == ["default_a__ConfigMap", "default_b__ConfigMap"]
    assert lab.data("b") == {"x": "1"}
    lab.run(200)
    assert lab.times("ReconciliationSucceeded")[-1] == 183.0
    assert lab.data("b") is None and lab.inventory() == ["default_a__ConfigMap"]


def test_objects_written_before_a_failed_apply_join_the_inventory(make_lab):
    """Regression: Flux keeps the old inventory when an apply fails part-way, which orphaned
    objects the failed attempt created if they left git before the next success."""
    lab = started(make_lab)
    lab.fault("internal", verbs=("apply",), names=("d",), dry_run=False, start=60, end=200)
    lab.repo.commit({"apps/c.yaml": cm("c", x="1"), "apps/d.yaml": cm("d", x="1")}, message="add", author="a", when=5)
    lab.run(63)
    assert lab.ready()["message"].startswith("ConfigMap/default/d apply failed (InternalError)")
    assert lab.data("c") == {"x": "1"} and lab.data("d") is None
    assert lab.inventory() == ["default_a__ConfigMap", "default_b__ConfigMap", "default_c__ConfigMap"]
    lab.repo.commit({"apps/c.yaml": None, "apps/d.yaml": None}, message="back out", author="a", when=100)
    lab.run(130)  # fetched at 123.0, reconciled at 123.5
    assert lab.data("c") is None  # pruned: it was in the inventory
    assert lab.inventory() == ["default_a__ConfigMap", "default_b__ConfigMap"]
    dialect = inv.FluxDialect(lab.sim, ["apps"])
    assert inv.no_orphans(lab.sim, [("v1", "ConfigMap")], dialect, ["apps"]) == []


def test_an_inventory_whose_status_write_failed_is_not_forgotten(make_lab):
    """Regression: the inventory lives in status; when writing it fails, the next prune must still see it."""
    lab = started(make_lab, max_retry_delay=60)
    lab.fault("unavailable", verbs=("patch_status",), kinds=("Kustomization",), start=62.25, end=140)
    lab.repo.commit({"apps/c.yaml": cm("c", x="1")}, message="add c", author="a", when=5)
    lab.run(100)
    assert lab.data("c") == {"x": "1"}
    assert "default_c__ConfigMap" not in lab.inventory()  # applied, but the status could not say so
    lab.repo.commit({"apps/c.yaml": None}, message="drop c", author="a", when=100)
    lab.run(300)
    assert lab.data("c") is None
    assert lab.ready()["status"] == "True" and lab.ks()["status"]["lastAppliedRevision"] == head(lab)
    assert lab.inventory() == ["default_a__ConfigMap", "default_b__ConfigMap"]


NS = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n"
BAD_DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: team
spec:
  replicas: -1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
"""


def test_a_namespace_created_before_a_deferred_dry_run_fails_is_recorded(make_lab):
    """Regression: objects in a namespace the same set creates are dry-run after the namespace is
    applied; when that dry-run failed, the namespace already existed but was not in the inventory."""
    lab = make_lab({"apps/ns.yaml": NS, "apps/a.yaml": cm("a", ns="team", x="1"), "apps/web.yaml": BAD_DEPLOY})
    lab.source(interval="1m")
    lab.kustomization(interval="10m", retryInterval="2m")
    lab.run(5)
    ready = lab.ready()
    assert ready["reason"] == "ReconciliationFailed"
    assert ready["message"] == ('Deployment/team/web dry-run failed (Invalid): Deployment.apps "web" is invalid: '
                                "spec.replicas: Invalid value: -1: must be greater than or equal to 0")
    assert lab.sim.get("v1", "Namespace", "team") is not None
    assert lab.inventory() == ["_team__Namespace"]
    lab.repo.commit({"apps/ns.yaml": None, "apps/a.yaml": None, "apps/web.yaml": None,
                     "apps/ok.yaml": cm("ok", x="1")}, message="start over", author="a", when=10)
    lab.run(70)
    assert lab.ready()["status"] == "True"
    ns = lab.sim.get("v1", "Namespace", "team")
    assert ns is None or ns["metadata"].get("deletionTimestamp")  # pruned: Flux created it


@pytest.mark.parametrize("kind", ["git-unavailable", "git-corrupt-ref"])
def test_git_faults_keep_the_last_artifact_and_converge_after(make_lab, kind):
    lab = started(make_lab)
    old = lab.gitrepo()["status"]["artifact"]["revision"]
    lab.fault(kind, start=60, end=130)
    lab.repo.commit({"apps/a.yaml": cm("a", greeting="new")}, message="c", author="a", when=5)
    lab.run(125)
    failed = lab.events("GitOperationFailed", "source-controller")
    assert [e.time for e in failed] == [62.0, 123.0]
    ready = lab.ready(obj=lab.gitrepo())
    assert (ready["status"], ready["reason"]) == ("False", "GitOperationFailed")
    if kind == "git-corrupt-ref":
        assert ready["message"].startswith("failed to checkout and determine revision: ref: unknown revision '")
    else:
        assert "unable to clone 'https://github.com/labkit/fleet'" in ready["message"]
    assert lab.gitrepo()["status"]["artifact"]["revision"] == old
    assert lab.ready()["status"] == "True" and lab.ks()["status"]["lastAppliedRevision"] == old
    assert lab.data("a") == {"greeting": "hi"}
    lab.run(200)
    assert lab.times("NewArtifact", "source-controller")[-1] == 184.0
    assert lab.times("ReconciliationSucceeded")[-1] == 184.5
    assert lab.data("a") == {"greeting": "new"}


def test_kustomize_timeouts_are_build_failed_and_retried(make_lab):
    lab = started(make_lab)
    lab.fault("render-timeout", start=60, end=200)
    lab.repo.commit({"apps/a.yaml": cm("a", greeting="new")}, message="c", author="a", when=5)
    lab.run(63)
    ready = lab.ready()
    assert (ready["reason"], ready["message"]) == ("BuildFailed", "./apps: kustomize build timed out after 30s")
    lab.run(400)
    assert lab.times("ReconciliationFailed") == [62.5, 183.0]
    assert lab.times("ReconciliationSucceeded")[-1] == 303.5
    assert lab.data("a") == {"greeting": "new"}


def slow_kubectl(tmp_path, flag) -> str:
    """A kubectl that sleeps (never finishing in time) while ``flag`` exists, else runs the real one."""
    script = tmp_path / "slow-kubectl"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import os, sys, time
        if os.path.exists({str(flag)!r}):
            time.sleep(60)
        os.execv({find_kubectl()!r}, [{find_kubectl()!r}] + sys.argv[1:])
        """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_a_real_kustomize_timeout_keeps_the_last_good_revision(make_lab, tmp_path):
    flag = tmp_path / "hang"
    lab = started(make_lab, renderer=Renderer(kubectl=slow_kubectl(tmp_path, flag), timeout=3.0))
    good = lab.ks()["status"]["lastAppliedRevision"]
    flag.write_text("")
    lab.repo.commit({"apps/a.yaml": cm("a", greeting="new")}, message="c", author="a", when=5)
    lab.run(63)
    ready = lab.ready()
    assert (ready["reason"], ready["message"]) == ("BuildFailed", "./apps: kustomize build timed out after 3s")
    assert lab.ks()["status"]["lastAppliedRevision"] == good and lab.data("a") == {"greeting": "hi"}
    os.unlink(flag)
    lab.run(200)  # timeouts are not cached: the retry at 182.5 renders for real
    assert lab.times("ReconciliationSucceeded")[-1] == 183.0
    assert lab.data("a") == {"greeting": "new"}


def test_slow_responses_take_time_on_the_clock(make_lab):
    lab = started(make_lab)
    lab.fault("slow", verbs=("apply",), latency=1.0, start=60, end=100)
    lab.repo.commit({"apps/a.yaml": cm("a", greeting="new")}, message="c", author="a", when=5)
    lab.run(100)
    # build ends 62.5; two slow dry-runs (2 s) then one slow apply (1 s): done at 65.5
    [applied] = [e for e in lab.events("Applied") if e.time > 60]
    assert applied.time == 65.5 and applied.detail["duration"] == 3.0
    assert lab.times("ReconciliationSucceeded")[-1] == 65.5


@pytest.mark.parametrize("verb", ["get", "list", "apply", "delete", "patch_status", "is_namespaced"])
@pytest.mark.parametrize("kind", ["internal", "unavailable", "throttle", "conflict", "timeout"])
def test_no_api_fault_escapes_a_reconcile_loop(make_lab, verb, kind):
    """Any verb failing in any way for five minutes: no exception, and convergence once it stops.

    (Rendered in-process: this matrix is about the API seam, and the in-process renderer
    returns what kustomize returns for a plain directory — see test_properties.py.)"""
    lab = started(make_lab, renderer=InlineRenderer())
    lab.fault(kind, verbs=(verb,), start=30, end=330, lost_response=(kind == "timeout"), retry_after=5)
    lab.repo.commit({"apps/a.yaml": cm("a", greeting="new"), "apps/b.yaml": None, "apps/c.yaml": cm("c", y="2")},
                    message="c", author="a", when=5)
    lab.run(330)  # would raise here if an ApiError escaped a SimPy process
    for name in ("apps",):
        r = lab.ready(name)
        assert r["status"] == "True" or r["reason"] in ("ReconciliationFailed", "PruneFailed", "ArtifactFailed")
    lab.run(330 + 600 + 70)  # one Kustomization interval (+ a source interval) after the faults stop
    assert lab.ready()["status"] == "True" and lab.ks()["status"]["lastAppliedRevision"] == head(lab)
    assert lab.data("a") == {"greeting": "new"} and lab.data("b") is None and lab.data("c") == {"y": "2"}
    assert lab.inventory() == ["default_a__ConfigMap", "default_c__ConfigMap"]
    assert lab.plan.journal or verb in ("list", "is_namespaced")  # the fault did fire where Flux calls it


def test_health_checks_treat_read_errors_as_unknown_until_the_timeout():
    sim = SimCluster(seed=1, controllers=False)
    sim.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}},
              field_manager="m")
    c = FaultyCluster(sim, FaultPlan([Fault("unavailable", verbs=("get",), start=0, end=5)]), rng_for(1, "f"))
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}
    out = {}

    def proc():
        out["r"] = yield from wait_for_set(sim.env, c, [obj], timeout=30, interval=2)

    sim.env.process(proc())
    sim.run()
    assert out["r"].ok and out["r"].elapsed == 6.0  # polls at 0, 2, 4 read nothing; 6 sees it Current
    c2 = FaultyCluster(sim, FaultPlan([Fault("unavailable", verbs=("get",))]), rng_for(1, "f"))

    def proc2():
        out["r"] = yield from wait_for_set(sim.env, c2, [obj], timeout=10, interval=2)

    sim.env.process(proc2())
    sim.run()
    assert not out["r"].ok
    assert out["r"].message == ("health check failed after 10s: timeout waiting for: "
                                "[ConfigMap/default/a status: 'Unknown']")


def test_a_failing_dependency_read_backs_off_instead_of_crashing(make_lab):
    lab = make_lab({"infra/a.yaml": cm("infra-cm", x="1"), "apps/b.yaml": cm("b", x="1")})
    lab.source(interval="1m")
    lab.kustomization(name="infra", path="./infra")
    lab.kustomization(name="apps", path="./apps", dependsOn=[{"name": "infra"}])
    lab.fault("unavailable", verbs=("get",), kinds=("Kustomization",), names=("infra",), start=0, end=20)
    lab.run(120)
    errors = lab.events("ReconcileError", obj="Kustomization/flux-system/apps")
    assert errors and all(e.detail["reason"] == "ServiceUnavailable" for e in errors)
    assert all(e.time < 20 for e in errors)
    assert lab.ready("apps")["status"] == "True" and lab.data("b") == {"x": "1"}
