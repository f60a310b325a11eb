"""Same seed, same run: the whole event log of a busy cluster is reproducible, across processes too."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from labkit.sim import SimCluster
from labkit.sim.load import DailySinusoid, LoadModel
from labkit.sim.registry import ImageRegistry

ROOT = Path(__file__).resolve().parents[2]


def busy_cluster_log(seed: int) -> list[tuple]:
    """Default (random) timings: rollouts, an HPA on a noisy load, a crash loop, a Job with retries."""
    reg = (ImageRegistry().add("web", ["v1", "v2"]).add("crashy:v1", crashing=True)
           .add("migrate:v1", run_seconds=3, exit_code=1))
    load = LoadModel(seed=seed).set("web", DailySinusoid(600, 400, period=1800), noise=0.2)
    c = SimCluster(seed=seed, registry=reg, load=load)
    web = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                        {"name": "web", "image": "web:v1", "resources": {"requests": {"cpu": "200m"}},
                         "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "initialDelaySeconds": 3}}]}}}}
    c.apply(web, field_manager="gitops")
    c.apply({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
             "metadata": {"name": "web", "namespace": "default"},
             "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                      "minReplicas": 2, "maxReplicas": 12}}, field_manager="gitops")
    crash = json.loads(json.dumps(web).replace('"web', '"crash').replace("crash:v1", "crashy:v1"))
    c.apply(crash, field_manager="gitops")
    c.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "default"},
             "spec": {"backoffLimit": 2, "template": {"spec": {"restartPolicy": "Never", "containers": [
                 {"name": "m", "image": "migrate:v1"}]}}}}, field_manager="gitops")
    c.run(until=600)
    web["spec"]["template"]["spec"]["containers"][0]["image"] = "web:v2"
    c.apply(web, field_manager="gitops", force=True)  # the HPA owns replicas by now
    c.run(until=1800)
    return [(e.time, e.component, e.event, e.object, json.dumps(e.detail, sort_keys=True, default=str)) for e in c.log]


def digest(seed: int) -> str:
    return hashlib.sha256(repr(busy_cluster_log(seed)).encode()).hexdigest()


def test_same_seed_gives_identical_event_logs():
    a = busy_cluster_log(seed=11)
    b = busy_cluster_log(seed=11)
    assert len(a) > 800
    assert a == b
    components = {r[1] for r in a}
    assert {"deployment-controller", "replicaset-controller", "kubelet", "horizontal-pod-autoscaler",
            "job-controller", "default-scheduler"} <= components


def test_a_different_seed_changes_the_run():
    assert busy_cluster_log(seed=11) != busy_cluster_log(seed=12)


def test_same_seed_same_log_in_another_process_with_another_hash_seed():
    code = ("import sys; sys.path.insert(0, %r); sys.path.insert(0, %r); import test_determinism as t; "
            "print(t.digest(11))" % (str(ROOT), str(Path(__file__).parent)))
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == digest(11)
