"""SOPS with age through the real binary, and Flux's Kustomization decryption with its failure messages."""
from __future__ import annotations

import base64

import pytest
import yaml

from labkit.secrets import sops

KS_API = "kustomize.toolkit.fluxcd.io/v1"
VALUE = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def age():
    return sops.AgeKey.generate()


def cfg(age):
    return sops.sops_config([sops.CreationRule(r"apps/.*\.yaml$", (age.recipient,))])


def db_secret(**values):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default"},
            "type": "Opaque", "stringData": values or {"password": VALUE}}


def test_sops_yaml_creation_rules(age):
    doc = yaml.safe_load(cfg(age))
    assert doc == {"creation_rules": [{"path_regex": r"apps/.*\.yaml$", "encrypted_regex": "^(data|stringData)$",
                                       "age": age.recipient}]}


def test_encrypt_keeps_keys_readable_and_values_encrypted(age):
    text = sops.encrypt_manifest(db_secret(), path="apps/db.yaml", config=cfg(age))
    doc = yaml.safe_load(text)
    assert VALUE not in text
    assert doc["metadata"] == {"name": "db", "namespace": "default"} and doc["kind"] == "Secret"
    assert doc["stringData"]["password"].startswith("ENC[AES256_GCM,data:")
    assert doc["sops"]["encrypted_regex"] == "^(data|stringData)$"
    assert [r["recipient"] for r in doc["sops"]["age"]] == [age.recipient]
    assert sops.is_encrypted(doc) and sops.encrypted_values(doc)
    plain = yaml.safe_load(sops.decrypt(text, identities=[age.identity]))
    assert plain["stringData"] == {"password": VALUE} and "sops" not in plain


def test_path_without_a_rule_and_wrong_key_are_refused(age):
    with pytest.raises(sops.SopsError, match="no matching creation rules found"):
        sops.encrypt_manifest(db_secret(), path="other/db.yaml", config=cfg(age))
    text = sops.encrypt_manifest(db_secret(), path="apps/db.yaml", config=cfg(age))
    with pytest.raises(sops.SopsError, match="Failed to get the data key"):
        sops.decrypt(text, identities=[sops.AgeKey.generate().identity])


def test_rotating_a_value_changes_only_that_line_of_the_diff(age):
    one = sops.encrypt_manifest(db_secret(password="a", user="u"), path="apps/db.yaml", config=cfg(age))
    # sops --set style: decrypt, change, re-encrypt; the keys stay readable in the diff
    doc = yaml.safe_load(sops.decrypt(one, identities=[age.identity]))
    doc["stringData"]["password"] = "b"
    two = sops.encrypt_manifest(doc, path="apps/db.yaml", config=cfg(age))
    for text in (one, two):
        d = yaml.safe_load(text)
        assert set(d["stringData"]) == {"password", "user"}
    assert "password: ENC[" in two and "user: ENC[" in two


# ------------------------------------------------------------------ Flux


def files(age):
    return {"apps/kustomization.yaml": "resources: [db.yaml, cm.yaml]\n",
            "apps/db.yaml": sops.encrypt_manifest(db_secret(), path="apps/db.yaml", config=cfg(age)),
            "apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\ndata: {a: b}\n",
            ".sops.yaml": cfg(age)}


def applied(lab):
    return [e for e in lab.log.filter(component="api", event="Created") if e.object.startswith(("Secret/default",
                                                                                               "ConfigMap/default"))]


def test_without_decryption_the_encrypted_secret_fails_and_nothing_is_applied(flux_lab, age):
    lab = flux_lab(files(age))
    lab.kustomization()
    lab.run(30)
    ready = lab.ready()
    assert ready["status"] == "False" and ready["reason"] == "ReconciliationFailed"
    assert ready["message"] == ("Secret/default/db is SOPS encrypted, configuring decryption is required for this "
                                "secret to be reconciled")
    assert applied(lab) == []


def test_missing_decryption_secret_fails_the_build_then_decrypts_once_it_exists(flux_lab, age):
    lab = flux_lab(files(age))
    lab.kustomization(decryption={"provider": "sops", "secretRef": {"name": "sops-age"}})
    lab.run(30)
    ready = lab.ready()
    assert (ready["reason"], ready["message"]) == ("BuildFailed", 'secrets "sops-age" not found')
    assert applied(lab) == []
    lab.cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sops-age", "namespace": "flux-system"},
                       "stringData": {"age.agekey": age.keyfile(), "readme.txt": "not a key"}},
                      field_manager="kubectl")
    lab.run(700)  # the retry interval (= interval, 10m) picks it up
    assert lab.ready()["status"] == "True"
    s = lab.cluster.get("v1", "Secret", "db", "default")
    assert base64.b64decode(s["data"]["password"]).decode() == VALUE
    assert "sops" not in s
    # nothing secret in the event log or the Kustomization's status
    frame = lab.log.to_frame().astype(str)
    assert not frame.apply(lambda col: col.str.contains(VALUE)).any().any()
    assert VALUE not in str(lab.cluster.get(KS_API, "Kustomization", "apps", "flux-system"))


def test_wrong_key_is_a_build_failure_naming_the_secret(flux_lab, age):
    lab = flux_lab(files(age))
    other = sops.AgeKey.generate()
    lab.cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sops-age", "namespace": "flux-system"},
                       "stringData": {"age.agekey": other.keyfile()}}, field_manager="kubectl")
    lab.kustomization(decryption={"provider": "sops", "secretRef": {"name": "sops-age"}})
    lab.run(30)
    ready = lab.ready()
    assert ready["reason"] == "BuildFailed"
    assert ready["message"].startswith("decryption failed for 'db': Failed to get the data key")
    assert applied(lab) == []


def test_decrypt_disabled_annotation_skips_the_refusal():
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "annotations": {
        "kustomize.toolkit.fluxcd.io/decrypt": "Disabled"}}, "sops": {"mac": "x"}}
    assert sops.flux_decrypt([obj], None, cluster=None, namespace="flux-system") == 0
