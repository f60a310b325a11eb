"""Sealed secrets: the hybrid scheme's wire format, scopes, the controller, key rotation and key loss."""
from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from labkit.secrets import sealed
from labkit.sim import SimCluster

BITS = 2048
DAY = 86400.0


def secret(name="db", ns="default", annotations=None, **values):
    md = {"name": name, "namespace": ns}
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Secret", "metadata": md, "stringData": values or {"password": "hunter2"}}


@pytest.fixture(scope="module")
def keypair():
    return sealed.generate_key(BITS)


def test_wire_format_is_length_prefix_rsa_oaep_then_aes_gcm_zero_nonce(keypair):
    key, cert = keypair
    out = sealed.seal(secret(), sealed.certificate_pem(cert))
    blob = base64.b64decode(out["spec"]["encryptedData"]["password"])
    (n,) = struct.unpack(">H", blob[:2])
    assert n == BITS // 8  # an RSA ciphertext is exactly the modulus size
    # decrypt the pieces by hand: OAEP(SHA-256, MGF1-SHA-256) with label "namespace/name", then GCM with 12 zero bytes
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=b"default/db")
    session = key.decrypt(blob[2:2 + n], oaep)
    assert len(session) == 32
    assert AESGCM(session).decrypt(b"\0" * 12, blob[2 + n:], None) == b"hunter2"
    assert len(blob) == 2 + n + len(b"hunter2") + 16  # GCM tag
    # and the wrong label fails OAEP's check
    with pytest.raises(ValueError):
        key.decrypt(blob[2:2 + n], padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                                                  label=b"default/other"))


def test_manifest_shape_and_scope_annotations(keypair):
    _, cert = keypair
    out = sealed.seal(secret(), cert, scope="namespace-wide")
    assert out["apiVersion"] == "bitnami.com/v1alpha1" and out["kind"] == "SealedSecret"
    assert out["metadata"]["annotations"] == {"sealedsecrets.bitnami.com/namespace-wide": "true"}
    assert out["spec"]["template"]["metadata"]["annotations"] == {"sealedsecrets.bitnami.com/namespace-wide": "true"}
    assert out["spec"]["template"]["type"] == "Opaque"
    assert "hunter2" not in str(out)


def test_labels_per_scope():
    assert sealed.encryption_label("ns", "n", "strict") == b"ns/n"
    assert sealed.encryption_label("ns", "n", "namespace-wide") == b"ns"
    assert sealed.encryption_label("ns", "n", "cluster-wide") == b""


@pytest.mark.parametrize("scope,rename_ok,move_ok", [("strict", False, False), ("namespace-wide", True, False),
                                                      ("cluster-wide", True, True)])
def test_scope_binding(keypair, scope, rename_ok, move_ok):
    key, cert = keypair
    ss = sealed.seal(secret(), cert, scope=scope)
    assert base64.b64decode(sealed.unseal(ss, [key])["data"]["password"]) == b"hunter2"

    def moved(**md):
        out = {**ss, "metadata": {**ss["metadata"], **md}}
        try:
            sealed.unseal(out, [key])
            return True
        except sealed.UnsealError as err:
            assert str(err) == "no key could decrypt secret (password)"
            return False

    assert moved(name="renamed") is rename_ok
    assert moved(namespace="other") is move_ok


def test_unseal_error_names_every_failed_key(keypair):
    _, cert = keypair
    other, _ = sealed.generate_key(BITS)
    ss = sealed.seal(secret(username="u", password="p"), cert)
    with pytest.raises(sealed.UnsealError, match=r"^no key could decrypt secret \(password, username\)$"):
        sealed.unseal(ss, [other])


def test_fingerprint_is_ssh_sha256(keypair):
    key, _ = keypair
    fp = sealed.public_key_fingerprint(key.public_key())
    assert fp.startswith("SHA256:") and "=" not in fp and len(fp) == 7 + 43


# ------------------------------------------------------------------ the controller


def install(cluster, **kw):
    kw.setdefault("key_bits", BITS)
    return sealed.install_sealed_secrets(cluster, **kw)


def test_controller_unseals_into_an_owned_secret_and_reports_synced():
    c = SimCluster(seed=1, controllers=False)
    ctl = install(c)
    keys = c.list("v1", "Secret", "kube-system", {sealed.KEY_LABEL: "active"})
    assert len(keys) == 1 and keys[0]["type"] == "kubernetes.io/tls" and keys[0]["metadata"]["name"].startswith("sealed-secrets-key")
    ss = c.apply(sealed.seal(secret(), ctl.fetch_cert()), field_manager="kubectl")
    c.advance(1)
    s = c.get("v1", "Secret", "db", "default")
    assert base64.b64decode(s["data"]["password"]) == b"hunter2"
    assert s["metadata"]["ownerReferences"] == [{"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
                                                 "name": "db", "uid": ss["metadata"]["uid"], "controller": True}]
    assert ctl.synced("default", "db")["status"] == "True"
    # a deleted Secret is recreated; deleting the SealedSecret garbage-collects it
    c.delete("v1", "Secret", "db", "default")
    c.advance(1)
    assert c.get("v1", "Secret", "db", "default") is not None
    c.delete("bitnami.com/v1alpha1", "SealedSecret", "db", "default")
    c.advance(1)
    assert c.get("v1", "Secret", "db", "default") is None


def test_unmanaged_existing_secret_is_refused():
    c = SimCluster(seed=1, controllers=False)
    ctl = install(c)
    c.apply(secret(password="theirs"), field_manager="kubectl")
    c.apply(sealed.seal(secret(), ctl.fetch_cert()), field_manager="kubectl")
    c.advance(10)
    cond = ctl.synced("default", "db")
    assert cond["status"] == "False"
    assert cond["message"] == 'failed update: Resource "db" already exists and is not managed by SealedSecret'


def test_failed_unseal_status_event_and_five_retries():
    c = SimCluster(seed=1, controllers=False)
    ctl = install(c)
    ss = sealed.seal(secret(), ctl.fetch_cert())
    ss["metadata"]["name"] = "db2"  # strict scope: sealed for default/db
    c.apply(ss, field_manager="kubectl")
    c.advance(100)
    cond = ctl.synced("default", "db2")
    assert cond == {"type": "Synced", "status": "False", "message": "no key could decrypt secret (password)",
                    "lastUpdateTime": "2026-01-01T00:00:00Z"}
    fails = c.log.filter(component="sealed-secrets", event="ErrUnsealFailed")
    assert [e.detail["message"] for e in fails][:1] == ["Failed to unseal: no key could decrypt secret (password)"]
    assert len(fails) == 1 + sealed.MAX_RETRIES
    # rate-limited retries: 5 ms doubling
    assert [round(e.time, 3) for e in fails] == [0.0, 0.005, 0.015, 0.035, 0.075, 0.155]


def test_key_renewal_adds_keys_and_old_seals_keep_working():
    c = SimCluster(seed=1, controllers=False)
    ctl = install(c, key_renew_period=30 * DAY)
    old_cert = ctl.fetch_cert()
    c.run(65 * DAY)
    written = [e.time for e in c.log.filter(component="sealed-secrets", event="NewKeyWritten")]
    assert written == [0.0, 30 * DAY, 60 * DAY]
    assert ctl.fetch_cert() != old_cert
    c.apply(sealed.seal(secret(), old_cert), field_manager="kubectl")
    c.advance(1)
    assert ctl.synced("default", "db")["status"] == "True"
    # kubeseal --re-encrypt: the same value, now sealed with the newest key only
    fresh = ctl.rotate(c.get("bitnami.com/v1alpha1", "SealedSecret", "db", "default"))
    newest = ctl.most_recent.private_key
    assert base64.b64decode(sealed.unseal(fresh, [newest])["data"]["password"]) == b"hunter2"
    # a restart resumes the schedule from the newest key's age
    c.run(70 * DAY)
    ctl.restart()
    c.run(91 * DAY)
    assert [e.time for e in c.log.filter(component="sealed-secrets", event="NewKeyWritten")][-1] == 90 * DAY


def test_lost_keys_make_git_useless_and_a_backup_saves_it():
    c = SimCluster(seed=1, controllers=False)
    ctl = install(c)
    manifest = sealed.seal(secret(), ctl.fetch_cert())
    backup = ctl.backup_keys()
    # the cluster is rebuilt from git: a fresh controller, the SealedSecret applied again
    for restore, expect in (((), "False"), (backup, "True")):
        fresh = SimCluster(seed=2, controllers=False)
        ctl2 = install(fresh, restore=restore)
        fresh.apply(manifest, field_manager="kustomize-controller")
        fresh.advance(10)
        cond = ctl2.synced("default", "db")
        assert cond["status"] == expect
        if expect == "False":
            assert cond["message"] == "no key could decrypt secret (password)"
            assert fresh.get("v1", "Secret", "db", "default") is None
            assert len(ctl2.keys) == 1  # a brand-new key, not the one the seal used


def test_no_secret_value_in_events_or_status():
    c = SimCluster(seed=1, controllers=False)
    ctl = install(c)
    c.apply(sealed.seal(secret(password="s3cr3t-value-42"), ctl.fetch_cert()), field_manager="kubectl")
    c.advance(1)
    frame = c.log.to_frame().astype(str)
    assert not frame.apply(lambda col: col.str.contains("s3cr3t-value-42")).any().any()
    assert "s3cr3t-value-42" not in str(c.get("bitnami.com/v1alpha1", "SealedSecret", "db", "default"))
