"""How the Argo CD dialect behaves when the cluster, git or manifest generation fail under it.

Every test drives the real Application controller, repo-server and git into the
simulator with faults injected at the seams (``ArgoFaultLab`` in
``tests/reliability/conftest.py``).  Timings are fixed: git and manifest
generation 0 s, webhook delivery 1 s, no resync jitter, API calls 0 s; the
first sync happens at 0, and a commit pushed at 10 is refreshed and synced at
11.  The expected times follow from Argo's rules:

* a failed sync attempt is retried while ``retryCount < limit`` after
  ``min(maxDuration, duration · factor^retryCount)`` with the count after the
  increment — 10, 20, 40, 80, 160 s for the default 5 s × 2 (max 3 m); an
  automated operation gets ``limit: 5`` when the Application sets none;
* an automated sync of a revision whose last attempt failed is not started
  again (``SyncError: Failed last sync attempt to [<sha>]: ...``) until a new
  revision appears;
* a refresh whose sources cannot be loaded (git unreachable, a ref to a commit
  the remote does not have, manifest generation over its deadline) is a
  ``ComparisonError``, nothing is synced, and the periodic resync (every 120 s,
  only once the last comparison is 120 s old) tries again;
* the final state of an operation is written every second until the write
  succeeds (``RetryUntilSucceed``, 1 s); a refresh that failed on an API error
  is requeued with the per-item back-off (5 ms doubling) or the server's
  Retry-After when longer.
"""
from __future__ import annotations

import pytest

from labkit.faults import FaultyRenderer
from labkit.gitops.render import Renderer
from labkit.core.clock import rng_for
from tests.reliability.conftest import cm

FILES = {"apps/a.yaml": cm("a", greeting="hi"), "apps/b.yaml": cm("b", x="1")}
UNAVAILABLE = "the server is currently unable to handle the request"
FOREVER = {"limit": -1, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}


def started(make_argo_lab, files=FILES, **app_kw):
    lab = make_argo_lab(files)
    lab.application(**app_kw)
    lab.run(5)
    st = lab.status()
    assert st["sync"]["status"] == "Synced" and st["operationState"]["phase"] == "Succeeded"
    return lab


def test_a_failing_apply_is_retried_with_argos_backoff_and_keeps_the_last_good_revision(make_argo_lab):
    lab = started(make_argo_lab)
    good = lab.repo.head()
    lab.fault("unavailable", verbs=("apply",), dry_run=False, start=10, end=100)
    new = lab.commit({"apps/a.yaml": cm("a", greeting="hello")}, at=10)
    lab.run(12)
    op = lab.status()["operationState"]
    assert op["phase"] == "Running" and op["retryCount"] == 1
    assert op["message"].startswith(f"one or more objects failed to apply, reason: {UNAVAILABLE}")
    assert op["message"].endswith(". Retrying attempt #1 at 12:00AM.")
    assert lab.data("a") == {"greeting": "hi"}  # nothing of the new revision was written
    assert lab.status()["history"][-1]["revision"] == good
    lab.run(400)
    # 11 fails, then +10 → 21, +20 → 41, +40 → 81 (all inside the window), +80 → 161 succeeds
    assert lab.times("OperationRetrying") == [11.0, 21.0, 41.0, 81.0]
    [done] = [e for e in lab.events("OperationCompleted") if e.time > 10]
    assert (done.time, done.detail["phase"], done.detail["retries"]) == (161.0, "Succeeded", 4)
    assert lab.data("a") == {"greeting": "hello"}
    assert lab.status()["history"][-1]["revision"] == new and lab.status()["sync"]["status"] == "Synced"


def test_retries_exhausted_park_the_revision_until_a_new_commit(make_argo_lab):
    lab = started(make_argo_lab)
    lab.fault("conflict", verbs=("apply",), kinds=("ConfigMap",), names=("a",), dry_run=False, start=10, end=400)
    sha = lab.commit({"apps/a.yaml": cm("a", greeting="hello")}, at=10)
    lab.run(330)
    # attempts at 11, 21, 41, 81, 161, 321: the sixth failure ends the operation (limit 5)
    op = lab.status()["operationState"]
    assert (op["phase"], op["retryCount"]) == ("Failed", 5)
    conflict = ('Operation cannot be fulfilled on configmaps "a": the object has been modified; '
                "please apply your changes to the latest version and try again")
    assert op["message"] == f"one or more objects failed to apply, reason: {conflict} (retried 5 times)."
    assert lab.conditions()["SyncError"] == f"Failed last sync attempt to [{sha}]: {op['message']}"
    lab.run(700)  # the faults stopped at 400; the revision stays parked (Argo does not retry it)
    assert [e.time for e in lab.events("OperationStarted") if e.time > 10] == [11.0]
    assert lab.data("a") == {"greeting": "hi"} and lab.status()["sync"]["status"] == "OutOfSync"
    lab.commit({"apps/b.yaml": cm("b", x="2")}, at=710)
    lab.run(720)
    assert [e.time for e in lab.events("OperationStarted") if e.time > 10] == [11.0, 711.0]
    assert lab.data("a") == {"greeting": "hello"} and lab.data("b") == {"x": "2"}
    assert lab.status()["sync"]["status"] == "Synced" and "SyncError" not in lab.conditions()


def test_throttled_reads_honour_retry_after(make_argo_lab):
    lab = started(make_argo_lab)
    # at 11 the webhook handler's read of the Application and the refresh's own read are both throttled
    lab.fault("throttle", verbs=("get",), kinds=("Application",), start=10, limit=2, retry_after=20)
    lab.commit({"apps/a.yaml": cm("a", greeting="hello")}, at=10)
    lab.run(40)
    assert [(i.time, i.verb) for i in lab.plan.journal] == [(11.0, "get"), (11.0, "get")]
    [err] = lab.events("ReconcileError")
    assert (err.time, err.detail["reason"], err.detail["code"], err.detail["retry_in"]) == (11.0, "TooManyRequests",
                                                                                             429, 20.0)
    assert [e.time for e in lab.events("OperationStarted") if e.time > 10] == [31.0]
    assert lab.data("a") == {"greeting": "hello"}


def test_an_operation_state_that_cannot_be_written_is_retried_every_second(make_argo_lab):
    lab = started(make_argo_lab)
    lab.fault("unavailable", verbs=("patch_status",), kinds=("Application",), start=10, end=14.5)
    lab.commit({"apps/a.yaml": cm("a", greeting="hello")}, at=10)
    lab.run(30)
    failed = [e.time for e in lab.events("StatusPatchFailed")]
    assert failed[-4:] == [11.0, 12.0, 13.0, 14.0] and all(t >= 11 for t in failed)
    [done] = [e for e in lab.events("OperationCompleted") if e.time > 10]
    assert (done.time, done.detail["phase"]) == (15.0, "Succeeded")
    st = lab.status()
    assert st["operationState"]["phase"] == "Succeeded" and st["sync"]["status"] == "Synced"
    assert lab.data("a") == {"greeting": "hello"}


@pytest.mark.parametrize("kind", ["git-unavailable", "git-corrupt-ref"])
def test_git_faults_are_comparison_errors_and_keep_the_last_good_revision(make_argo_lab, kind):
    lab = started(make_argo_lab)
    good = lab.status()["sync"]["revision"]
    lab.fault(kind, start=10, end=200)
    new = lab.commit({"apps/a.yaml": cm("a", greeting="new")}, at=10)
    lab.run(12)
    st = lab.status()
    msg = lab.conditions()["ComparisonError"]
    prefix = "Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = "
    if kind == "git-unavailable":
        assert msg == prefix + "failed to list refs: dial tcp: connect: connection refused"
    else:
        assert msg.startswith(prefix + "failed to checkout ") and "upload-pack: not our ref" in msg
    assert st["sync"]["status"] == "Unknown" and st["sync"]["revision"] == good
    assert lab.data("a") == {"greeting": "hi"} and len(st["resources"]) == 2  # nothing forgotten, nothing applied
    lab.run(300)
    # the resync at 120 finds the comparison of 11 not yet expired (11 + 120 > 120); at 240 it is, and the
    # faults have stopped
    assert [e.time for e in lab.events("ComparisonError")] == [11.0]
    assert [e.time for e in lab.events("OperationStarted") if e.time > 10] == [240.0]
    assert lab.data("a") == {"greeting": "new"} and lab.status()["sync"]["revision"] == new


def test_manifest_generation_timeouts_are_deadline_errors_and_not_cached(make_argo_lab):
    lab = started(make_argo_lab)
    lab.fault("render-timeout", start=10, end=200)
    lab.commit({"apps/a.yaml": cm("a", greeting="new")}, at=10)
    lab.run(12)
    assert lab.conditions()["ComparisonError"] == ("Failed to load target state: failed to generate manifest for "
                                                   "source 1 of 1: rpc error: code = DeadlineExceeded desc = context "
                                                   "deadline exceeded")
    assert lab.data("a") == {"greeting": "hi"}
    lab.run(300)
    assert [e.time for e in lab.events("OperationStarted") if e.time > 10] == [240.0]
    assert lab.data("a") == {"greeting": "new"}


def test_a_kustomize_timeout_is_not_remembered_for_that_revision(make_argo_lab):
    """Regression: the repo-server cached every failed generation per revision, a timeout included,
    so a revision whose first kustomize build timed out was never built again."""
    kust = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml, b.yaml]\n"
    lab = started(make_argo_lab, {**FILES, "apps/kustomization.yaml": kust})
    rs = lab.argo.repo_server
    rs.renderer = FaultyRenderer(Renderer(), lab.plan, rng_for(1, "faults:kustomize"), env=lab.env)
    lab.argo.repo_server.gate = None
    lab.fault("render-timeout", start=10, limit=1)
    lab.commit({"apps/a.yaml": cm("a", greeting="new")}, at=10)
    lab.run(12)
    assert lab.conditions()["ComparisonError"].endswith("rpc error: code = DeadlineExceeded desc = context deadline "
                                                        "exceeded")
    lab.run(300)
    assert [e.time for e in lab.events("OperationStarted") if e.time > 10] == [240.0]
    assert lab.data("a") == {"greeting": "new"}


def test_an_object_recreated_by_a_retried_sync_after_git_dropped_it_is_pruned(make_argo_lab):
    """Regression (found by the property tests): ``status.resources`` was the only memory of what an
    Application manages.  A sync of an older revision, retrying through an outage, re-created an object
    that a later commit had removed and the refresh in between had dropped from the status: orphaned
    for ever.  Argo finds managed objects by tracking id in its cluster cache, so it is pruned."""
    lab = started(make_argo_lab, retry=FOREVER)
    lab.fault("internal", verbs=("apply",), names=("c",), dry_run=False, start=10, end=100)
    lab.commit({"apps/c.yaml": cm("c", x="1")}, at=10)  # the sync at 11 cannot create c; it retries
    lab.commit({"apps/c.yaml": None}, at=30)  # c leaves git while the operation retries revision 1
    lab.run(300)
    assert lab.data("c") is None
    st = lab.status()
    assert st["sync"]["status"] == "Synced" and st["sync"]["revision"] == lab.repo.head()
    assert sorted(r["name"] for r in st["resources"]) == ["a", "b"]
    assert [e for e in lab.events("Pruned") if e.detail.get("resource") == "ConfigMap/default/c"]


@pytest.mark.parametrize("verb", ["get", "list", "apply", "delete", "patch_status", "is_namespaced"])
@pytest.mark.parametrize("kind", ["internal", "unavailable", "throttle", "conflict", "timeout"])
def test_no_api_fault_escapes_and_argo_converges_after(make_argo_lab, verb, kind):
    """Any verb failing in any way for five minutes: no exception, and convergence once it stops."""
    lab = started(make_argo_lab, retry=FOREVER)
    lab.fault(kind, verbs=(verb,), start=8, end=308, lost_response=(kind == "timeout"), retry_after=5)
    lab.commit({"apps/a.yaml": cm("a", greeting="new"), "apps/b.yaml": None, "apps/c.yaml": cm("c", y="2")}, at=10)
    lab.run(308)  # would raise here if an error escaped a SimPy process
    lab.run(308 + 180 + 300 + 120)  # the longest retry wait, the self-heal cap, one resync
    st = lab.status()
    assert st["sync"]["status"] == "Synced" and st["sync"]["revision"] == lab.repo.head()
    assert lab.data("a") == {"greeting": "new"} and lab.data("b") is None and lab.data("c") == {"y": "2"}
    assert sorted(r["name"] for r in st["resources"]) == ["a", "c"]


def test_the_fleet_converges_under_a_ten_percent_fault_rate_with_nothing_lost():
    """The fleet scenario's ApplicationSet (30 services here; 200 in benchmarks/bench_fleet_faults.py) with every
    API fault kind and both git fault kinds at a combined 10 % per call, never stopping."""
    from labkit.faults.argo import run_fleet_under_faults

    calm = run_fleet_under_faults(30, 0.0, seed=3)
    stormy = run_fleet_under_faults(30, 0.1, seed=3)
    assert calm.ok and stormy.ok, (calm, stormy)
    assert stormy.lost == [] and stormy.wrongly_deleted == [] and stormy.statuses_in_sync == 30
    assert stormy.faults > 0 and stormy.retries > 0
    assert stormy.converged_at > calm.converged_at  # the faults cost time, and it is measured
