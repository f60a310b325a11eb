"""The plaintext-secret guard: refused commits, passing encrypted manifests, history scans."""
from __future__ import annotations

import base64

import pytest

from labkit.core.events import EventLog
from labkit.gitops.repo import ManifestRepo
from labkit.secrets import guard, sealed, sops

PLAIN = """apiVersion: v1
kind: Secret
metadata: {name: db, namespace: prod}
data:
  password: aHVudGVyMi1odW50ZXIy
stringData:
  user: admin
"""
TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def cm(**data):
    import yaml

    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "prod"},
                           "data": data})


def test_plain_secret_is_flagged_per_field_without_the_value():
    found = guard.check_changes({"apps/db/secret.yaml": PLAIN})
    assert [(f.path, f.object, f.field, f.rule) for f in found] == [
        ("apps/db/secret.yaml", "Secret/prod/db", "data.password", "plaintext-secret"),
        ("apps/db/secret.yaml", "Secret/prod/db", "stringData.user", "plaintext-secret")]
    err = guard.PlaintextSecretRefused(found)
    assert "apps/db/secret.yaml" in str(err) and "data.password" in str(err)
    assert "aHVudGVyMi1odW50ZXIy" not in str(err) and "hunter2" not in str(err) and "admin" not in str(err)


def test_base64_credentials_in_a_configmap():
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    found = guard.check_changes({"apps/cm.yaml": cm(DB_PASSWORD=b64("s3cret!pw"), blob=b64(TOKEN),
                                                    random=b64("Zq8#vL2$pW9!xR4&kT7@mN1"),
                                                    greeting=b64("hello world"), LOG_LEVEL="debug",
                                                    plain_token="abc123", placeholder_password="${DB_PASSWORD}")})
    got = {f.field: f.rule for f in found}
    assert got == {"data.DB_PASSWORD": "base64-credential", "data.blob": "base64-credential",
                   "data.random": "base64-credential", "data.plain_token": "credential-value"}


def test_token_patterns_anywhere_and_env_values():
    doc = f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: prod}}
spec:
  template:
    spec:
      containers:
      - name: web
        env:
        - {{name: GITHUB_TOKEN, value: {TOKEN}}}
        - {{name: API_KEY, value: not-a-placeholder}}
        - {{name: MODE, value: fast}}
"""
    found = guard.check_changes({"apps/web.yaml": doc})
    assert [(f.field, f.rule) for f in found] == [
        ("spec.template.spec.containers[0].env[0].value", "credential-pattern"),
        ("spec.template.spec.containers[0].env[1].value", "credential-value")]


def test_sops_and_sealed_manifests_and_sops_config_pass():
    age = sops.AgeKey.generate()
    cfg = sops.sops_config([sops.CreationRule(r".*\.yaml$", (age.recipient,))])
    enc = sops.encrypt(PLAIN, path="apps/db/secret.yaml", config=cfg)
    _, cert = sealed.generate_key(2048)
    import yaml

    sealed_text = yaml.safe_dump(sealed.seal(yaml.safe_load(PLAIN), cert))
    assert guard.check_changes({"apps/db/secret.yaml": enc, "apps/db/sealed.yaml": sealed_text,
                                ".sops.yaml": cfg, "README.md": PLAIN}) == []
    # a Secret with a sops stanza but a plaintext value slipped in is still refused
    tampered = enc.replace(enc.split("user: ")[1].split("\n")[0], "admin")
    assert [f.field for f in guard.check_changes({"x.yaml": tampered})] == ["stringData.user"]


def test_guarded_commit_refuses_and_records_then_scan_history_finds_what_got_in(tmp_path):
    log = EventLog()
    repo = ManifestRepo(tmp_path / "repo", log=log)
    repo.commit({"README.md": "fleet\n"}, message="init", author="alice", when=0)
    g = guard.GuardedRepo(repo)
    with pytest.raises(guard.PlaintextSecretRefused, match=r"apps/db/secret.yaml: Secret/prod/db field data.password"):
        g.commit({"apps/db/secret.yaml": PLAIN}, message="add db secret", author="bob", when=10)
    assert "apps/db/secret.yaml" not in repo.files()
    refused = log.first(event="CommitRefused")
    assert refused.detail["findings"][0] == {"path": "apps/db/secret.yaml", "object": "Secret/prod/db",
                                             "field": "data.password", "rule": "plaintext-secret"}
    ok = g.commit({"apps/cm.yaml": cm(LOG_LEVEL="info")}, message="config", author="bob", when=20)
    assert repo.head() == ok
    # something that went around the guard (a plain commit), then was "removed" again: history still has it
    leak = repo.commit({"apps/cm.yaml": cm(TOKEN=base64.b64encode(TOKEN.encode()).decode())}, message="oops",
                       author="carol", when=30)
    repo.commit({"apps/cm.yaml": cm(LOG_LEVEL="info")}, message="remove token", author="carol", when=40)
    assert guard.check_changes({p: repo.read(p) for p in repo.files()}) == []
    found = guard.scan_history(repo)
    assert [(f.commit, f.path, f.field) for f in found] == [(leak, "apps/cm.yaml", "data.TOKEN")]
    repo.close()


def test_working_copy_commit_is_checked(tmp_path):
    repo = ManifestRepo(tmp_path / "repo")
    repo.commit({"README.md": "fleet\n"}, message="init", author="alice", when=0)
    wc = repo.clone("laptop")
    wc.write("apps/db/secret.yaml", PLAIN)
    with pytest.raises(guard.PlaintextSecretRefused):
        guard.guarded_working_copy_commit(wc, "add secret", author="bob", when=5)
    wc.remove("apps/db/secret.yaml")
    wc.write("apps/cm.yaml", cm(LOG_LEVEL="info"))
    assert guard.guarded_working_copy_commit(wc, "config", author="bob", when=6) == wc.head()
    repo.close()
