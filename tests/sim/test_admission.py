"""Admission: the refusals of the real API server, with its reason, code and message text.

Expected messages are the API server's (k8s.io/kubernetes pkg/apis/apps/validation,
pkg/apis/batch/validation, apimachinery ValidateImmutableField), as users see them in
Flux and Argo CD status.
"""
import copy

import pytest
import simpy

from labkit.core.errors import ApiError
from labkit.sim.store import ApiStore


@pytest.fixture
def store():
    return ApiStore(simpy.Environment())


STS = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "db", "namespace": "default"},
    "spec": {
        "serviceName": "db",
        "replicas": 1,
        "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "pg", "image": "postgres:16"}]}},
        "volumeClaimTemplates": [
            {"metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
        ],
    },
}
JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "migrate", "namespace": "default"},
    "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                                                      "containers": [{"name": "m", "image": "migrate:1"}]}}},
}


def test_statefulset_volume_claim_templates_are_forbidden(store):
    store.apply(copy.deepcopy(STS), field_manager="flux")
    changed = copy.deepcopy(STS)
    changed["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "5Gi"
    with pytest.raises(ApiError) as err:
        store.apply(changed, field_manager="flux")
    e = err.value
    assert (e.reason, e.code) == ("Invalid", 422)
    assert e.message == (
        'StatefulSet.apps "db" is invalid: spec: Forbidden: updates to statefulset spec for fields other than '
        "'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    )
    assert e.details["causes"][0]["reason"] == "FieldValueForbidden"
    live = store.get("apps/v1", "StatefulSet", "db", "default")
    assert live["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_statefulset_template_and_replicas_may_change(store):
    store.apply(copy.deepcopy(STS), field_manager="flux")
    changed = copy.deepcopy(STS)
    changed["spec"]["replicas"] = 3
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "postgres:17"
    assert store.apply(changed, field_manager="flux")["spec"]["replicas"] == 3


def test_job_template_is_immutable(store):
    store.apply(copy.deepcopy(JOB), field_manager="argocd-controller")
    changed = copy.deepcopy(JOB)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "migrate:2"
    with pytest.raises(ApiError) as err:
        store.apply(changed, field_manager="argocd-controller")
    e = err.value
    assert (e.reason, e.code) == ("Invalid", 422)
    assert e.message.startswith('Job.batch "migrate" is invalid: spec.template: Invalid value: core.PodTemplateSpec{')
    assert e.message.endswith(": field is immutable")
    assert 'Image:"migrate:2"' in e.message


def test_job_reapply_unchanged_is_accepted(store):
    store.apply(copy.deepcopy(JOB), field_manager="argocd-controller")
    store.apply(copy.deepcopy(JOB), field_manager="argocd-controller")


def test_deployment_selector_is_immutable(store):
    dep = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web", "v": "2"}},
                              "spec": {"containers": [{"name": "w", "image": "nginx:1"}]}}},
    }
    store.apply(copy.deepcopy(dep), field_manager="flux")
    dep["spec"]["selector"] = {"matchLabels": {"app": "web", "v": "2"}}
    with pytest.raises(ApiError) as err:
        store.apply(dep, field_manager="flux")
    assert err.value.message == (
        'Deployment.apps "web" is invalid: spec.selector: Invalid value: {"matchLabels":{"app":"web","v":"2"}}: '
        "field is immutable"
    )


def test_selector_must_match_template_labels(store):
    dep = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "other"}},
                              "spec": {"containers": [{"name": "w", "image": "nginx:1"}]}}},
    }
    with pytest.raises(ApiError) as err:
        store.apply(dep, field_manager="flux")
    assert err.value.message == (
        'Deployment.apps "web" is invalid: spec.template.metadata.labels: Invalid value: '
        '{"app":"other"}: `selector` does not match template `labels`'
    )
    assert store.get("apps/v1", "Deployment", "web") is None


def test_service_cluster_ip_may_not_change(store):
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}}
    live = store.apply(copy.deepcopy(svc), field_manager="flux")
    ip = live["spec"]["clusterIP"]
    svc["spec"]["clusterIP"] = "10.96.99.99"
    with pytest.raises(ApiError) as err:
        store.apply(svc, field_manager="flux")
    assert err.value.message == 'Service "web" is invalid: spec.clusterIPs[0]: Invalid value: ["10.96.99.99"]: may not change once set'
    assert store.get("v1", "Service", "web")["spec"]["clusterIP"] == ip


def test_type_error_on_apply_and_on_update(store):
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": "three", "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "w", "image": "nginx:1"}]}}}}
    with pytest.raises(ApiError) as err:
        store.apply(copy.deepcopy(bad), field_manager="flux")
    assert (err.value.reason, err.value.code) == ("InternalError", 500)  # as kube-apiserver v1.34 answers
    assert err.value.message == (
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
        ".spec.replicas: expected numeric (int or float), got string"
    )
    with pytest.raises(ApiError) as err:
        store.create(copy.deepcopy(bad), manager="kubectl")
    assert err.value.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into '
        "Go struct field DeploymentSpec.spec.replicas of type int32"
    )
    assert store.writes == 0


def test_undeclared_field_is_rejected(store):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "Yg=="},
              "sops": {"mac": "x"}}
    with pytest.raises(ApiError) as err:
        store.apply(secret, field_manager="flux")
    assert err.value.message == "failed to create typed patch object (default/s; /v1, Kind=Secret): .sops: field not declared in schema"


def test_unknown_kind_is_not_found(store):
    with pytest.raises(ApiError) as err:
        store.apply({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}, field_manager="flux")
    assert (err.value.reason, err.value.code) == ("NotFound", 404)
    assert err.value.message == 'no matches for kind "Widget" in version "example.com/v1"'


def test_missing_namespace_is_not_found(store):
    with pytest.raises(ApiError) as err:
        store.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "nope"}},
                    field_manager="flux")
    assert err.value.message == 'namespaces "nope" not found'


def test_invalid_name(store):
    with pytest.raises(ApiError) as err:
        store.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}, field_manager="flux")
    assert err.value.message.startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain')
