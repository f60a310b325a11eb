"""External secrets: refresh timings in virtual time, rotation, access policy, an unreachable store; moto."""
from __future__ import annotations

import base64

import pytest

from labkit.secrets import external as ext
from labkit.secrets import podconfig
from labkit.sim import SimCluster

SA = "system:serviceaccount:default:app"


def setup(refresh="1h", allow=True, **es_spec):
    c = SimCluster(seed=1, controllers=False)
    m = ext.SecretsManager(c.env, c.log, seed=1)
    m.create_secret("staging/db", {"password": "v1-pass", "user": "app"})
    if allow:
        m.allow(SA, "staging/*")
    op = ext.install_external_secrets(c, m)
    c.apply({"apiVersion": ext.API_VERSION, "kind": "SecretStore", "metadata": {"name": "aws", "namespace": "default"},
             "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "eu-west-1",
                                           "auth": {"jwt": {"serviceAccountRef": {"name": "app"}}}}}}},
            field_manager="kubectl")
    spec = {"refreshInterval": refresh, "secretStoreRef": {"name": "aws", "kind": "SecretStore"},
            "target": {"name": "db-creds"},
            "data": [{"secretKey": "password", "remoteRef": {"key": "staging/db", "property": "password"}}]}
    spec.update(es_spec)
    c.apply({"apiVersion": ext.API_VERSION, "kind": "ExternalSecret", "metadata": {"name": "db", "namespace": "default"},
             "spec": spec}, field_manager="kubectl")
    return c, m, op


def value(c, key="password"):
    s = c.get("v1", "Secret", "db-creds", "default")
    return None if s is None else base64.b64decode(s["data"][key]).decode()


def reads(c):
    return [e.time for e in c.log.filter(component="secrets-manager", event="GetSecretValue")]


def test_sync_creates_an_owned_secret_and_refreshes_exactly_every_interval():
    c, m, op = setup(refresh="1h")
    c.run(3 * 3600 + 1)
    assert value(c) == "v1-pass"
    assert reads(c) == [0.0, 3600.0, 7200.0, 10800.0]
    s = c.get("v1", "Secret", "db-creds", "default")
    es = c.get(ext.API_VERSION, "ExternalSecret", "db", "default")
    assert s["metadata"]["ownerReferences"][0]["uid"] == es["metadata"]["uid"]
    assert op.ready("default", "db") == {"type": "Ready", "status": "True", "reason": "SecretSynced",
                                         "message": "Secret was synced", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    assert es["status"]["refreshTime"] == "2026-01-01T03:00:00Z"
    # only the first sync created, later refreshes with the same value wrote nothing
    assert [e.event for e in c.log.filter(component="external-secrets", object="ExternalSecret/default/db")] == ["Created"]


def test_rotation_propagates_within_the_refresh_interval_without_a_commit():
    c, m, op = setup(refresh="15m")
    c.run(1000)
    m.rotate("staging/db", {"password": "v2-pass", "user": "app"})
    c.run(1799)
    assert value(c) == "v1-pass"
    c.run(1801)
    assert value(c) == "v2-pass"  # the refresh at 1800 s, 800 s after the rotation (< 900 s)
    updated = c.log.first(component="external-secrets", event="Updated")
    assert updated.time == 1800.0


def test_version_pinning_and_dataFrom_extract():
    c, m, op = setup(refresh="1h", dataFrom=[{"extract": {"key": "staging/db"}}])
    first = m.current_version("staging/db")
    m.rotate("staging/db", {"password": "v2-pass", "user": "app"})
    es = c.get(ext.API_VERSION, "ExternalSecret", "db", "default")
    es["spec"]["data"][0]["remoteRef"]["version"] = "uuid/" + first
    c.apply({k: es[k] for k in ("apiVersion", "kind", "spec")} | {"metadata": {"name": "db", "namespace": "default"}},
            field_manager="kubectl")
    c.run(10)
    assert value(c) == "v1-pass"  # data[] (pinned) wins over dataFrom (current)
    assert value(c, "user") == "app"


def test_access_policy_refusal_is_a_sync_error():
    c, m, op = setup(allow=False)
    c.run(10)
    assert op.ready("default", "db")["reason"] == "SecretSyncedError"
    assert c.get("v1", "Secret", "db-creds", "default") is None
    ev = c.log.first(component="external-secrets", event="UpdateFailed")
    assert ev.detail["message"].startswith("error processing spec.data[0] (key: staging/db), err: AccessDeniedException: "
                                           f"User: {SA} is not authorized to perform: secretsmanager:GetSecretValue")
    assert c.log.first(component="secrets-manager", event="AccessDenied").detail == {"principal": SA}


def test_unreachable_store_at_start_leaves_no_secret_and_retries_with_backoff():
    c = SimCluster(seed=1, controllers=False)
    m = ext.SecretsManager(c.env, c.log, seed=1)
    m.create_secret("staging/db", {"password": "v1-pass"})
    m.allow(SA, "*")
    m.available = False
    op = ext.install_external_secrets(c, m)
    c.apply({"apiVersion": ext.API_VERSION, "kind": "SecretStore", "metadata": {"name": "aws", "namespace": "default"},
             "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "eu-west-1",
                                           "auth": {"jwt": {"serviceAccountRef": {"name": "app"}}}}}}},
            field_manager="kubectl")
    c.apply({"apiVersion": ext.API_VERSION, "kind": "ExternalSecret", "metadata": {"name": "db", "namespace": "default"},
             "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "aws"}, "target": {"name": "db-creds"},
                      "data": [{"secretKey": "password", "remoteRef": {"key": "staging/db", "property": "password"}}]}},
            field_manager="kubectl")
    c.run(60)
    assert op.ready("default", "db") == {"type": "Ready", "status": "False", "reason": "SecretSyncedError",
                                         "message": "could not get secret data from provider",
                                         "lastTransitionTime": "2026-01-01T00:00:00Z"}
    assert c.get("v1", "Secret", "db-creds", "default") is None
    store = c.get(ext.API_VERSION, "SecretStore", "aws", "default")
    assert store["status"]["conditions"][0]["reason"] == "ValidationFailed"
    fails = [round(e.time, 3) for e in c.log.filter(component="external-secrets", event="UpdateFailed")]
    assert fails[:5] == [0.0, 0.005, 0.015, 0.035, 0.075]
    # the pod that needs it cannot start
    container = {"name": "app", "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-creds",
                                                                                             "key": "password"}}}]}
    assert podconfig.container_config_error(c.store, "default", container) == (
        "CreateContainerConfigError", 'secret "db-creds" not found')
    # the service comes back: the next back-off retry syncs
    m.available = True
    c.run(2000)
    assert value(c) == "v1-pass" and op.ready("default", "db")["status"] == "True"
    assert podconfig.container_config_error(c.store, "default", container) is None
    missing_key = {"name": "app", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "nope"}}}]}
    assert podconfig.container_config_error(c.store, "default", missing_key) == (
        "CreateContainerConfigError", "couldn't find key nope in Secret default/db-creds")


def test_deleted_target_is_restored_and_values_stay_out_of_events():
    c, m, op = setup()
    c.run(10)
    c.delete("v1", "Secret", "db-creds", "default")
    c.run(20)
    assert value(c) == "v1-pass"
    frame = c.log.to_frame().astype(str)
    assert not frame.apply(lambda col: col.str.contains("v1-pass")).any().any()
    assert "v1-pass" not in str(c.get(ext.API_VERSION, "ExternalSecret", "db", "default"))


def test_aws_secrets_manager_api_served_by_moto():
    pytest.importorskip("moto.server", reason="the AWS backend needs the optional 'aws' extra (moto[server], boto3)")
    pytest.importorskip("boto3", reason="the AWS backend needs the optional 'aws' extra (moto[server], boto3)")
    with ext.MotoSecretsManagerServer() as server:
        c = SimCluster(seed=1, controllers=False)
        backend = server.backend(c.env)
        backend.create_secret("staging/db", {"password": "aws-v1"})
        ext.install_external_secrets(c, backend)
        c.apply({"apiVersion": ext.API_VERSION, "kind": "SecretStore", "metadata": {"name": "aws", "namespace": "default"},
                 "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "eu-west-1"}}}},
                field_manager="kubectl")
        c.apply({"apiVersion": ext.API_VERSION, "kind": "ExternalSecret",
                 "metadata": {"name": "db", "namespace": "default"},
                 "spec": {"refreshInterval": "10m", "secretStoreRef": {"name": "aws"}, "target": {"name": "db-creds"},
                          "data": [{"secretKey": "password", "remoteRef": {"key": "staging/db", "property": "password"}}]}},
                field_manager="kubectl")
        c.run(10)
        assert value(c) == "aws-v1"
        backend.rotate("staging/db", {"password": "aws-v2"})
        c.run(601)
        assert value(c) == "aws-v2"
        backend.available = False
        c.delete("v1", "Secret", "db-creds", "default")
        c.run(700)
        assert c.get("v1", "Secret", "db-creds", "default") is None
        assert c.external_secrets.ready("default", "db")["reason"] == "SecretSyncedError"
