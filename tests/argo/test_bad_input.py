"""Bad input gives one clear message naming the file and the field, and nothing is applied."""
import pytest
from tests.argo.argo_support import configmap, deployment, job

from labkit.core.errors import LabkitError


def _cond(lab, name="web"):
    return {c["type"]: c["message"] for c in lab.argo.status(name).get("conditions") or []}


def _nothing_applied(lab):
    assert [o for _, o in lab.created() if o.startswith(("ConfigMap/default", "Deployment/", "Job/"))] == []


def test_unknown_hook_phase_is_a_comparison_error(lab):
    lab.commit({"app/m.yaml": job("migrate", hook="PreSinc"), "app/d.yaml": deployment("web")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=30)
    msg = _cond(lab)["ComparisonError"]
    # the repo-server still knows which file the object came from: it is named
    assert msg.endswith('app/m.yaml: metadata.annotations["argocd.argoproj.io/hook"]: Job/migrate: '
                        'unknown hook type "PreSinc" (expected one of PreSync, Sync, PostSync, SyncFail, Skip, '
                        'PreDelete, PostDelete)')
    assert lab.argo.status("web")["sync"]["status"] == "Unknown"
    assert lab.events(event="OperationStarted") == []
    _nothing_applied(lab)


def test_unknown_delete_policy_is_a_comparison_error(lab):
    lab.commit({"app/m.yaml": job("migrate", hook="PreSync", policy="HookSucceded")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=30)
    assert 'unknown hook delete policy "HookSucceded"' in _cond(lab)["ComparisonError"]
    _nothing_applied(lab)


def test_missing_path(lab):
    lab.commit({"app/c.yaml": configmap("cfg")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "apps/nope", auto=True), file="web.yaml")
    lab.env.run(until=30)
    assert _cond(lab)["ComparisonError"] == ("Failed to load target state: failed to generate manifest for source "
                                             "1 of 1: rpc error: code = Unknown desc = apps/nope: app path does not exist")
    assert lab.argo.status("web")["sync"]["status"] == "Unknown"
    _nothing_applied(lab)


def test_malformed_manifest_names_file_and_line(lab):
    lab.commit({"app/c.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  name: y\n"}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=30)
    msg = _cond(lab)["ComparisonError"]
    assert "app/c.yaml" in msg and "line 5" in msg
    _nothing_applied(lab)


def test_kustomize_build_error_is_reported(lab):
    lab.commit({"app/kustomization.yaml": "resources:\n- missing.yaml\n"}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=30)
    assert "missing.yaml" in _cond(lab)["ComparisonError"]
    _nothing_applied(lab)


def test_unregistered_destination_is_an_invalid_spec(lab):
    lab.commit({"app/c.yaml": configmap("cfg")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True, server="https://nowhere.example"), file="web.yaml")
    lab.env.run(until=30)
    assert _cond(lab)["InvalidSpecError"] == ("application destination server 'https://nowhere.example' and "
                                              "namespace 'default' do not match any of the allowed destinations in "
                                              "project 'default'")
    _nothing_applied(lab)


@pytest.mark.parametrize("mutate, field, fragment", [
    (lambda y: y.replace("    server: https://kubernetes.default.svc\n",
                         "    server: https://kubernetes.default.svc\n    name: in-cluster\n"),
     "spec.destination", "can't have both name and server defined"),
    (lambda y: y + "  syncPolicy:\n    syncOptions:\n    - Prune=flase\n",
     "spec.syncPolicy.syncOptions[0]", 'invalid value "flase" for sync option Prune'),
    (lambda y: y.replace("  project: default\n", ""), "spec.project", "required field missing"),
    (lambda y: y.replace("    path: app\n", "    path: app\n    helm:\n      valueFiles: [a.yaml]\n"),
     "spec.source.helm", "not supported by labkit"),
    (lambda y: y + "  ignoreDifferences:\n  - kind: Deployment\n    jqPathExpressions:\n    - '.spec | map(.x)'\n",
     "spec.ignoreDifferences[0].jqPathExpressions[0]", "only paths, '|' and select(...) are supported"),
    (lambda y: y + "  syncPolicy:\n    retry:\n      backoff:\n        duration: 5 minutes\n",
     "spec.syncPolicy.retry.backoff.duration", "invalid duration"),
    (lambda y: y.replace("  project: default\n", "  project: default\n  sourcee: {}\n"),
     "spec.sourcee", "unknown field"),
])
def test_invalid_application_is_refused_naming_file_and_field(lab, mutate, field, fragment):
    good = lab.app_yaml("ok", "app")
    bad = mutate(lab.app_yaml("web", "app"))
    with pytest.raises(LabkitError) as err:
        lab.argo.apply(good + "---\n" + bad, file="apps/web.yaml")
    assert err.value.file == "apps/web.yaml"
    assert err.value.field == field
    assert fragment in str(err.value)
    assert str(err.value).startswith(f"apps/web.yaml: {field}: ")
    # validated before anything is applied: not even the valid first document
    assert lab.mgmt.list("argoproj.io/v1alpha1", "Application", "argocd") == []


def test_invalid_yaml_text(lab):
    with pytest.raises(LabkitError) as err:
        lab.argo.apply("apiVersion: argoproj.io/v1alpha1\nkind: [Application\n", file="apps/web.yaml")
    # one line naming the file, the line and the column
    assert str(err.value) == ("apps/web.yaml: line 3, column 1: did not find expected ',' or ']' "
                              "(while parsing a flow sequence)")


def test_invalid_argocd_cm_customization(lab):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm", "namespace": "argocd"},
          "data": {"resource.customizations.ignoreDifferences.apps_Deployment": "jsonPointer:\n- /spec/replicas\n"}}
    with pytest.raises(LabkitError) as err:
        lab.argo.apply(cm, file="argocd-cm.yaml")
    assert err.value.field == "resource.customizations.ignoreDifferences.apps_Deployment"
    assert "unknown field 'jsonPointer'" in str(err.value)
