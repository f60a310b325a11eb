"""Unit tests of the dialect's parts: API parsing, jq paths, templates, tracking ids, diff helpers."""
import pytest

from labkit.argo.api import SyncOptions, parse_application, parse_applicationset
from labkit.argo.app_controller import backoff_step_delay
from labkit.argo.appset import path_match
from labkit.argo.diff import managed_field_paths, respect_ignored, system_ignore_rules
from labkit.argo.api import IgnoreDifference
from labkit.argo.jqpath import compile_path, delete_paths
from labkit.argo.template import render_template, sanitize_name
from labkit.argo.tracking import parse_tracking_id, tracking_id
from labkit.core.errors import LabkitError

APP = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "web"},
       "spec": {"project": "default", "source": {"repoURL": "https://git.example/apps.git", "path": "apps/web"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
                "syncPolicy": {"automated": {"prune": True}, "syncOptions": ["CreateNamespace=true"],
                               "retry": {"limit": 3, "backoff": {"duration": "10", "factor": 3, "maxDuration": "1m"}}}}}


def test_application_defaults_and_values():
    spec = parse_application(APP, "web.yaml")
    assert spec.namespace == "argocd" and spec.source.target_revision == "HEAD"
    assert spec.sync_policy.automated.prune and not spec.sync_policy.automated.self_heal
    assert spec.sync_policy.sync_options == {"CreateNamespace": "true"}
    r = spec.sync_policy.retry
    assert (r.limit, r.backoff.duration, r.backoff.factor, r.backoff.max_duration) == (3, 10.0, 3.0, 60.0)
    assert [r.backoff.wait(n) for n in (1, 2, 3)] == [30.0, 60.0, 60.0]
    assert spec.revision_history_limit == 10


def test_object_sync_options_win_per_key():
    obj = {"metadata": {"annotations": {"argocd.argoproj.io/sync-options": "Prune=false, ServerSideApply=false"}}}
    o = SyncOptions.for_object({"ServerSideApply": "true", "Replace": "true"}, obj)
    assert o.has("Prune", "false") and not o.enabled("ServerSideApply") and o.enabled("Replace")


def test_applicationset_matrix_needs_two_children():
    bad = {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "metadata": {"name": "x"},
           "spec": {"generators": [{"matrix": {"generators": [{"list": {"elements": []}}]}}],
                    "template": {"metadata": {"name": "a"}, "spec": {}}}}
    with pytest.raises(LabkitError) as err:
        parse_applicationset(bad, "x.yaml")
    assert err.value.field == "spec.generators[0].matrix.generators"


@pytest.mark.parametrize("expr, expected", [
    (".spec.replicas", [("spec", "replicas")]),
    (".spec.containers[] | select(.name == \"b\") | .image", [("spec", "containers", 1, "image")]),
    (".spec.containers[] | select(.name != \"b\")", [("spec", "containers", 0)]),
    (".metadata.labels[\"app.kubernetes.io/name\"]", [("metadata", "labels", "app.kubernetes.io/name")]),
    (".spec.containers[-1].name", [("spec", "containers", 1, "name")]),
    (".spec.missing", []),
])
def test_jq_paths(expr, expected):
    obj = {"spec": {"replicas": 3, "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]},
           "metadata": {"labels": {"app.kubernetes.io/name": "web"}}}
    assert compile_path(expr).paths(obj) == expected


def test_jq_delete_removes_list_items_from_the_end():
    obj = {"l": [{"n": 1}, {"n": 2}, {"n": 1}]}
    delete_paths(obj, compile_path(".l[] | select(.n == 1)").paths(obj))
    assert obj == {"l": [{"n": 2}]}


def test_go_template_missing_key_and_fast_template_keeps_unknown_tags():
    params = {"path": {"basename": "web"}}
    assert render_template({"a": "{{.path.basename}}-{{.nope}}"}, params, go=True) == {"a": "web-<no value>"}
    assert render_template({"a": "{{path}}-{{ other }}"}, {"path": "x"}) == {"a": "x-{{ other }}"}
    assert sanitize_name("My_App.V2") == "my-app.v2"


def test_path_match_is_go_path_match():
    assert path_match("apps/*", "apps/web") and not path_match("apps/*", "apps/web/sub")
    assert path_match("apps/[a-c]*", "apps/api") and not path_match("apps/[a-c]*", "apps/web")


def test_tracking_id_round_trip():
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"}}
    tid = tracking_id("shop", obj)
    assert tid == "shop:apps/Deployment:prod/web"
    assert parse_tracking_id(tid).name == "web"
    with pytest.raises(LabkitError, match="wrong resource tracking format"):
        parse_tracking_id("shop:Deployment:web")


def test_self_heal_backoff_steps():
    assert [backoff_step_delay(n, 2, 3, 300) for n in range(8)] == [0.0, 2, 6, 18, 54, 162, 300, 300]


def test_managed_fields_paths_and_respect_ignored():
    live = {"spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "web", "image": "a"}]}}},
            "metadata": {"managedFields": [
                {"manager": "hpa", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {
                    "f:containers": {'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}}}}}}]}}
    mf = live["metadata"]["managedFields"]
    assert managed_field_paths(live, mf, ["hpa"]) == [("spec", "replicas")]
    assert managed_field_paths(live, mf, ["kubectl"]) == [("spec", "template", "spec", "containers", 0, "image")]
    target = {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "b"}]}}}}
    rule = IgnoreDifference(kind="*", group="*", managed_fields_managers=("hpa",))
    out = respect_ignored(target, live, [rule])
    assert out["spec"]["replicas"] == 5 and target["spec"]["replicas"] == 2


def test_system_rules_from_argocd_cm():
    rules = system_ignore_rules({"data": {
        "resource.customizations.ignoreDifferences.all": "managedFieldsManagers:\n- kube-controller-manager\n",
        "resource.customizations.ignoreDifferences.Service": "jsonPointers:\n- /spec/clusterIP\n",
        "resource.customizations": "admissionregistration.k8s.io/MutatingWebhookConfiguration:\n"
                                   "  ignoreDifferences: |\n    jqPathExpressions:\n    - .webhooks[]?.clientConfig.caBundle\n"}})
    assert [(r.group, r.kind) for r in rules] == [("", "Service"), ("*", "*"),
                                                  ("admissionregistration.k8s.io", "MutatingWebhookConfiguration")]
    assert rules[1].matches("apps", "Deployment", "x", "y") and not rules[0].matches("apps", "Service", "x", "y")
