"""Scenario notebooks run end to end on the real control plane (``labkit run NAME --cluster CONTEXT``).

The session's control plane (``real_cluster``) is reused: its kubeconfig context
``labkit-<name>`` is passed as ``cluster``, which ``labkit.scenarios.backend`` resolves to
that local control plane.  The four supported scenarios run concurrently (each in its own
process, through ``labkit.app.runner.run_scenario`` — the same path as ``labkit run``), with
their real-cluster defaults compressed a little further, so the module takes about as long
as the slowest of them (~2 min with the control plane's start).  Metrics differ from the simulator's (wall time, real
controllers); the checks are on what the mechanisms must produce, with wall-time bounds
loose enough for a loaded 2-core machine.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import time

import pytest

from labkit.app import runner
from labkit.core.errors import LabkitError
from labkit.scenarios.isolation import RUN_LABEL
from tests.kube.conftest import needs_real

pytestmark = needs_real

PODINFO = "ghcr.io/stefanprodan/podinfo"
RUNS = {
    "tour": {"commits": 2, "commit_gap_s": "1,3", "apps_interval_s": 8, "poll_interval_s": 4},
    "drift": {"hotfix_at_s": 12, "oncall_jitter_s": 2, "deploy_at_s": 40, "after_deploy_s": 5,
              "report_every_s": 10},
    "promotion": {"pause_s": 3, "observe_s": 40},  # health_timeout 30s: kustomize-controller's minimum
    "stateful-edges": {},  # Argo CD, its real-cluster defaults (pauses of 3 s, one sync retry)
}


@pytest.fixture(scope="module")
def runs(real_cluster, tmp_path_factory):
    """Each supported scenario on the real control plane, concurrently; ``{name: (RunResult, wall seconds)}``."""
    root = tmp_path_factory.mktemp("real-scenarios")
    started = time.monotonic()
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=len(RUNS), mp_context=ctx) as pool:
        futures = {name: pool.submit(runner.run_scenario, name, params, cluster=real_cluster.context,
                                     out_dir=str(root / name), timeout=240)
                   for name, params in RUNS.items()}
        results = {name: f.result(timeout=400) for name, f in futures.items()}
    return results, time.monotonic() - started


def _ok(runs, name: str) -> dict:
    results, _ = runs
    res = results[name]
    assert res.ok, res.error
    assert res.parameters["cluster"].startswith("labkit-pytest-")
    assert res.notebook.is_file() and res.figures, "executed notebook and figures are written"
    metrics = json.loads((res.out_dir / "metrics.json").read_text())
    assert metrics == res.metrics
    return metrics


def test_tour_on_a_real_cluster(runs):
    m = _ok(runs, "tour")
    poll = RUNS["tour"]["poll_interval_s"]
    # a webhook wakes the source at once; a poll waits up to one interval (plus a 1 s controller poll and load)
    assert 0 <= m["commit_to_applied_s_webhook"] < 5
    assert 0 <= m["commit_to_applied_s_poll"] < poll + 5
    # the periodic reconcile happened and, with nothing changed in git, wrote nothing
    assert m["writes_on_noop_reconcile"] == 0


def test_drift_correction_on_a_real_cluster(runs):
    m = _ok(runs, "drift")
    # the real-cluster default interval is 10s: Flux's next run takes the hotfix back within it
    assert m["hotfix_reverted_after_s"] is not None and 0 < m["hotfix_reverted_after_s"] <= 10 + 5
    assert m["hotfix_lost_on_next_deploy"] is True
    assert isinstance(m["drift_reported"], bool)


def test_promotion_gated_by_health_on_a_real_cluster(runs):
    m = _ok(runs, "promotion")
    good = f"{PODINFO}:6.5.1"
    assert (m["staging_image"], m["prod_image"]) == (good, good)
    # KWOK cannot pull missing-6.5.99: staging's health check fails, the bot blocks it, prod never sees it
    assert m["bad_tag_caught_in_staging"] is True
    assert m["prod_changed_by_bad_tag"] is False
    assert m["deploy_record_commits"] >= 1


def test_stateful_edges_on_a_real_cluster(runs):
    m = _ok(runs, "stateful-edges")
    # the real API server's own refusal, as Argo CD reports it
    assert 'StatefulSet.apps "pg" is invalid: spec: Forbidden: updates to statefulset spec' in m["sts_sync_error"]
    # kubectl delete --cascade=orphan, a re-sync: the real StatefulSet controller adopts pods and claims
    assert m["pods_survived_orphan_delete"] is True and m["pvcs_survived_orphan_delete"] is True
    # pruned from git: the unprotected database is dropped, the one with Prune=false survives
    assert (m["database_dropped_without_safeguard"], m["database_dropped_with_safeguard"]) == (True, False)
    assert m["rows_lost"] > 0 and m["status_after_cleanup"] == "OutOfSync" and m["dialect"] == "argo"


def test_runs_clean_up_their_namespaces_and_stay_within_budget(runs, kube):
    _, wall = runs
    leftovers = [n["metadata"]["name"] for n in kube.list("v1", "Namespace")
                 if RUN_LABEL in (n["metadata"].get("labels") or {}) and not n["metadata"].get("deletionTimestamp")]
    assert leftovers == []
    volumes = [v["metadata"]["name"] for v in kube.list("v1", "PersistentVolume")
               if RUN_LABEL in (v["metadata"].get("labels") or {}) and not v["metadata"].get("deletionTimestamp")]
    assert volumes == []
    assert wall < 300, f"the real-cluster scenario runs took {wall:.0f} s"


def test_a_simulator_only_scenario_is_refused_at_once(real_cluster, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(LabkitError) as e:
        runner.run_scenario("migrations", cluster=real_cluster.context, out_dir=tmp_path / "m")
    assert e.value.field == "cluster"
    assert "cannot run on" in str(e.value) and "KWOK's fake kubelets run no container" in str(e.value)
    assert time.monotonic() - t0 < 10 and not (tmp_path / "m").exists()
