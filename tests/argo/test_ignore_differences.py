"""ignoreDifferences hides fields from the diff; only RespectIgnoreDifferences keeps them out of the apply.

The HPA story (argo-cd #5105, #7820): git says ``replicas: 2``, the HPA scales
to 5 through the scale subresource.  Ignoring ``/spec/replicas`` keeps the app
Synced, but the next sync for any other reason — here self-heal of an unrelated
``kubectl edit`` — applies the whole manifest and resets the replicas, unless
``RespectIgnoreDifferences=true``.
"""
from tests.argo.argo_support import configmap, deployment

HPA = "horizontal-pod-autoscaler"
IGNORE_REPLICAS = ("  ignoreDifferences:\n  - group: apps\n    kind: Deployment\n    jsonPointers:\n"
                   "    - /spec/replicas\n")


def _replicas(lab):
    return lab.mgmt.get("apps/v1", "Deployment", "web", "default")["spec"]["replicas"]


def _hpa_then_edit(lab, options=None, extra=IGNORE_REPLICAS):
    lab.commit({"app/web.yaml": deployment("web", replicas=2)}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto={"selfHeal": True}, options=options, extra_spec=extra),
                   file="web.yaml")
    lab.env.run(until=20)
    lab.mgmt.kubectl_scale("apps/v1", "Deployment", "web", "default", 5, field_manager=HPA)
    lab.env.run(until=30)
    assert lab.argo.status("web")["sync"]["status"] == "Synced"  # the ignored field does not show
    assert _replicas(lab) == 5
    ops_before = len(lab.events(event="OperationStarted"))
    lab.mgmt.kubectl_edit("apps/v1", "Deployment", "web", "default",
                          lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="nginx:hotfix"))
    lab.env.run(until=60)
    assert len(lab.events(event="OperationStarted")) == ops_before + 1  # self-heal of the image edit
    dep = lab.mgmt.get("apps/v1", "Deployment", "web", "default")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    return dep


def test_without_respect_a_sync_resets_the_ignored_field(lab):
    _hpa_then_edit(lab)
    assert _replicas(lab) == 2  # argo-cd #7820: hidden from the diff, overwritten by the sync


def test_with_respect_ignore_differences_the_live_value_is_kept(lab):
    _hpa_then_edit(lab, options=["RespectIgnoreDifferences=true"])
    assert _replicas(lab) == 5
    assert lab.argo.status("web")["sync"]["status"] == "Synced"


def test_managed_fields_managers_ignores_what_the_hpa_owns(lab):
    extra = ("  ignoreDifferences:\n  - group: apps\n    kind: Deployment\n    managedFieldsManagers:\n"
             f"    - {HPA}\n")
    _hpa_then_edit(lab, options=["RespectIgnoreDifferences=true"], extra=extra)
    assert _replicas(lab) == 5


def test_system_wide_ignore_from_argocd_cm(lab):
    lab.argo.apply({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "argocd-cm", "namespace": "argocd"},
                    "data": {"resource.customizations.ignoreDifferences.apps_Deployment":
                             "jsonPointers:\n- /spec/replicas\n"}}, file="argocd-cm.yaml")
    _hpa_then_edit(lab, options=["RespectIgnoreDifferences=true"], extra="")
    assert _replicas(lab) == 5


def test_without_ignore_rules_the_scale_is_drift_and_without_self_heal_it_stays(lab):
    lab.commit({"app/web.yaml": deployment("web", replicas=2)}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=20)
    lab.mgmt.kubectl_scale("apps/v1", "Deployment", "web", "default", 5, field_manager=HPA)
    lab.env.run(until=400)
    st = lab.argo.status("web")
    assert st["sync"]["status"] == "OutOfSync"
    assert [r["status"] for r in st["resources"]] == ["OutOfSync"]
    assert _replicas(lab) == 5
    assert len(lab.events(event="OperationStarted")) == 1  # only the initial sync


def test_jq_path_expression_ignores_one_container_image(lab):
    extra = ("  ignoreDifferences:\n  - group: apps\n    kind: Deployment\n    jqPathExpressions:\n"
             "    - '.spec.template.spec.containers[] | select(.name == \"web\") | .image'\n")
    lab.commit({"app/web.yaml": deployment("web")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto={"selfHeal": True}, extra_spec=extra), file="web.yaml")
    lab.env.run(until=20)
    lab.mgmt.kubectl_edit("apps/v1", "Deployment", "web", "default",
                          lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="nginx:hotfix"))
    lab.env.run(until=60)
    assert lab.argo.status("web")["sync"]["status"] == "Synced"
    dep = lab.mgmt.get("apps/v1", "Deployment", "web", "default")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:hotfix"


def test_an_ignore_rule_for_another_kind_changes_nothing(lab):
    extra = ("  ignoreDifferences:\n  - kind: ConfigMap\n    jsonPointers:\n    - /data\n")
    lab.commit({"app/web.yaml": deployment("web"), "app/c.yaml": configmap("cfg", {"a": "1"})}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", extra_spec=extra), file="web.yaml")
    lab.env.run(until=1)
    lab.argo.sync("web")
    lab.env.run(until=20)
    lab.mgmt.kubectl_edit("v1", "ConfigMap", "cfg", "default", lambda c: c["data"].update(a="2"))
    lab.mgmt.kubectl_scale("apps/v1", "Deployment", "web", "default", 3, field_manager=HPA)
    lab.env.run(until=30)
    statuses = {r["kind"]: r["status"] for r in lab.argo.status("web")["resources"]}
    assert statuses == {"ConfigMap": "Synced", "Deployment": "OutOfSync"}
