"""A container whose env references a missing Secret waits in CreateContainerConfigError until the Secret exists."""
from labkit.secrets.podconfig import install_pod_secret_checks
from labkit.sim import SimCluster
from labkit.sim.timings import Timings

POD = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": "default"},
    "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                             "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}]},
}


def state(cluster):
    pod = cluster.get("v1", "Pod", "app", "default")
    cs = ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]
    return pod["status"].get("phase"), cs.get("state", {})


def test_missing_secret_blocks_start_until_it_exists():
    cluster = SimCluster(seed=0, timings=Timings.deterministic())
    assert install_pod_secret_checks(cluster) is True
    cluster.apply(POD, field_manager="kubectl")
    cluster.advance(30)
    phase, st = state(cluster)
    assert phase == "Pending"
    assert st["waiting"]["reason"] == "CreateContainerConfigError"
    assert st["waiting"]["message"] == 'secret "db" not found'
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default"},
                   "stringData": {"password": "s3cr3t-value"}}, field_manager="kubectl")
    cluster.advance(30)
    phase, st = state(cluster)
    assert phase == "Running" and "running" in st
    assert "s3cr3t-value" not in cluster.log.to_frame().to_string()
