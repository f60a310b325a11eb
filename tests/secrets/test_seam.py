"""The secrets operators need nothing but the ``Cluster`` seam (plus watch and create).

They are run here on a ``SimCluster`` seen through a wrapper that offers only
the seam's calls — no ``store``, no kubelet — which is all a real API server
(``KubeCluster`` bound to a clock) offers them; the real-cluster run is in
``tests/kube/test_real_cluster.py``.
"""
from __future__ import annotations

import base64

from labkit.secrets import external as ext
from labkit.secrets import sealed
from labkit.sim import SimCluster

SEAM = ("get", "list", "apply", "update", "create", "delete", "patch_status", "is_namespaced", "watch")


class SeamOnly:
    """A backend's seam calls and nothing else (``env`` and ``log`` are handed to the operators)."""

    def __init__(self, backend: SimCluster):
        self.name = backend.name
        for verb in SEAM:
            setattr(self, verb, getattr(backend, verb))


def test_sealed_secrets_controller_runs_on_the_seam_alone():
    sim = SimCluster(seed=1, controllers=False)
    seam = SeamOnly(sim)
    ctl = sealed.install_sealed_secrets(seam, key_bits=2048, key_renew_period=0, env=sim.env, log=sim.log)
    assert not hasattr(seam, "store") and ctl.cluster is seam
    keys = sim.list("v1", "Secret", sealed.CONTROLLER_NAMESPACE, {sealed.KEY_LABEL: "active"})
    assert len(keys) == 1 and keys[0]["metadata"]["name"].startswith(sealed.KEY_PREFIX)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default"},
              "stringData": {"password": "hunter2"}}
    sim.apply(sealed.seal(secret, ctl.fetch_cert()), field_manager="kubectl")
    sim.advance(1)
    live = sim.get("v1", "Secret", "db", "default")
    assert base64.b64decode(live["data"]["password"]) == b"hunter2"
    assert ctl.synced("default", "db")["status"] == "True"
    sim.delete("v1", "Secret", "db", "default")
    sim.advance(1)
    assert sim.get("v1", "Secret", "db", "default") is not None  # the watch on Secrets brought it back


def test_external_secrets_operator_runs_on_the_seam_alone():
    sim = SimCluster(seed=1, controllers=False)
    manager = ext.SecretsManager(sim.env, sim.log, seed=1)
    manager.create_secret("staging/db", {"password": "v1-pass"})
    manager.allow("system:serviceaccount:default:app", "staging/*")
    op = ext.install_external_secrets(SeamOnly(sim), manager, env=sim.env, log=sim.log)
    sim.apply({"apiVersion": ext.API_VERSION, "kind": "SecretStore", "metadata": {"name": "aws", "namespace": "default"},
               "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "eu-west-1",
                                             "auth": {"jwt": {"serviceAccountRef": {"name": "app"}}}}}}},
              field_manager="kubectl")
    sim.apply({"apiVersion": ext.API_VERSION, "kind": "ExternalSecret", "metadata": {"name": "db", "namespace": "default"},
               "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "aws", "kind": "SecretStore"},
                        "target": {"name": "db-creds"},
                        "data": [{"secretKey": "password", "remoteRef": {"key": "staging/db", "property": "password"}}]}},
              field_manager="kubectl")
    sim.advance(5)
    live = sim.get("v1", "Secret", "db-creds", "default")
    assert base64.b64decode(live["data"]["password"]) == b"v1-pass"
    assert op.ready("default", "db")["reason"] == "SecretSynced"
