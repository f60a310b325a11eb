"""Fixtures for tests against the real control plane (skipped when it is not built).

``real_cluster`` (session scope) starts one local control plane — etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and KWOK, on loopback ports — for the whole
test session, and always stops it: the finalizer is registered *before* ``create``, so
even a start-up that fails half-way leaves no process behind.  Each test gets its own
namespace (``ns``), deleted afterwards.
"""
from __future__ import annotations

import os
import uuid

import pytest

from labkit.kube import controlplane as cp

SKIP_REASON = "real control plane not built: run `labkit cluster build`"
needs_real = pytest.mark.skipif(not cp.available(), reason=SKIP_REASON)
MISSING_IMAGE = "registry.example/web:v9"


def _reap_crashed_sessions() -> None:
    """Delete clusters left by test sessions that died without their finalizers (kill -9)."""
    for name in cp.list_clusters():
        if not name.startswith("pytest-") or not name[7:].isdigit():
            continue
        if not os.path.exists(f"/proc/{name[7:]}"):
            cp.delete(name)


@pytest.fixture(scope="session")
def real_cluster(request):
    if not cp.available():
        pytest.skip(SKIP_REASON)
    from labkit.kube.stages import StageOptions, StageTimings

    _reap_crashed_sessions()
    name = f"pytest-{os.getpid()}"
    request.addfinalizer(lambda: cp.delete(name))
    return cp.create(name, nodes=2, timeout=180,
                     stage_options=StageOptions(timings=StageTimings.fast(), missing_images=[MISSING_IMAGE]))


@pytest.fixture
def kube(real_cluster):
    from labkit.kube.client import KubeCluster

    kc = KubeCluster(real_cluster.kubeconfig, real_cluster.context, name=real_cluster.name)
    yield kc
    kc.close()


@pytest.fixture
def ns(kube):
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, field_manager="pytest")
    yield name
    try:
        kube.delete("v1", "Namespace", name)
    except Exception:  # noqa: BLE001 - best effort; the cluster goes away at session end anyway
        pass
