"""The helpers behind the secrets and push-vs-pull exercises: lab keys, offline kubeseal, the RBAC authorizer."""
from __future__ import annotations

import yaml

from labkit.delivery.rbac import AuthorizedCluster, Authorizer, Request, forbidden_message, service_account_user
from labkit.core.errors import ApiError
from labkit.secrets.sealed import unseal
from labkit.workshop import kubeseal
from labkit.workshop.replay_extra import lab_age_key, lab_certificate_pem, lab_rsa_key


def test_lab_keys_are_derived_from_the_seed():
    assert lab_certificate_pem("t") == lab_certificate_pem("t")
    assert lab_certificate_pem("t") != lab_certificate_pem("u")
    assert lab_age_key("t").recipient == lab_age_key("t").recipient
    assert lab_age_key("t").recipient.startswith("age1")


def test_offline_kubeseal_unseals_with_the_lab_key(tmp_path):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"},
              "stringData": {"password": "s3cret-value"}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(secret))
    (tmp_path / "cert.pem").write_text(lab_certificate_pem("t"))
    assert kubeseal.main(["--cert", str(tmp_path / "cert.pem"), "-f", str(tmp_path / "s.yaml"),
                          "-w", str(tmp_path / "out.yaml")]) == 0
    sealed = yaml.safe_load((tmp_path / "out.yaml").read_text())
    assert "s3cret-value" not in (tmp_path / "out.yaml").read_text()
    assert unseal(sealed, [lab_rsa_key("t")])["data"]["password"] == "czNjcmV0LXZhbHVl"
    assert kubeseal.main(["--cert", str(tmp_path / "missing.pem"), "-f", str(tmp_path / "s.yaml")]) == 1


def test_rbac_role_binding_is_confined_to_its_namespace():
    from labkit.sim.cluster import SimCluster

    c = SimCluster(seed=0, controllers=False)
    for ns in ("shop", "other", "ci"):
        c.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, field_manager="t")
    c.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "edit"},
             "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}]},
            field_manager="t")
    c.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "ci", "namespace": "shop"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
             "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}]}, field_manager="t")
    user, groups = service_account_user("ci", "deployer")
    auth = Authorizer(c)
    assert auth.allowed(user, groups, Request("patch", "apps", "deployments", "shop", "web"))
    assert not auth.allowed(user, groups, Request("patch", "apps", "deployments", "other", "web"))
    assert not auth.allowed(user, groups, Request("delete", "apps", "deployments", "shop", "web"))
    assert not auth.allowed(user, groups, Request("list", "apps", "deployments", None))
    ac = AuthorizedCluster(c, user, groups)
    try:
        ac.list("apps/v1", "Deployment")
    except ApiError as err:
        assert err.code == 403 and "at the cluster scope" in err.message
    else:
        raise AssertionError("a cluster-wide list must be refused")
    assert forbidden_message(user, Request("patch", "apps", "deployments", "other", "web")) == (
        'deployments.apps "web" is forbidden: User "system:serviceaccount:ci:deployer" cannot patch resource '
        '"deployments" in API group "apps" in the namespace "other"')
