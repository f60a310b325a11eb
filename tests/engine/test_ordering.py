"""Apply order: Flux stages (fluxcd/kustomize-controller ``internal/controller/
kustomization_controller.go`` apply: defStage / classStage / resStage;
fluxcd/pkg ``ssa/utils/is.go`` IsClusterDefinition) and kind order (fluxcd/pkg
``ssa/sort.go``), Argo CD order (argoproj/gitops-engine ``pkg/sync/sync_tasks.go``:
syncPhaseOrder, kindOrder, Less, adjustDeps)."""
from __future__ import annotations

import pytest

from labkit.engine.ordering import (
    STAGE_CLASS_DEFINITIONS,
    STAGE_CLUSTER_DEFINITIONS,
    STAGE_RESOURCES,
    ArgoTask,
    argo_kind_index,
    argo_sort,
    argo_sort_key,
    flux_sort,
    flux_stages,
    stage_of,
    sync_wave,
)
from labkit.core.errors import LabkitError


def o(api_version, kind, name, ns=None, wave=None):
    md = {"name": name}
    if ns:
        md["namespace"] = ns
    if wave is not None:
        md["annotations"] = {"argocd.argoproj.io/sync-wave": str(wave)}
    return {"apiVersion": api_version, "kind": kind, "metadata": md}


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "names": {"kind": "Widget"}},
}
NS = o("v1", "Namespace", "app")
DEPLOY = o("apps/v1", "Deployment", "web", "app")
SVC = o("v1", "Service", "web", "app")
CM = o("v1", "ConfigMap", "web-config", "app")
JOB = o("batch/v1", "Job", "migrate", "app")
WIDGET = o("example.com/v1", "Widget", "w1", "app")
PRE = o("v1", "ConfigMap", "aaa-first", "app", wave=-1)
CLUSTERROLE = o("rbac.authorization.k8s.io/v1", "ClusterRole", "reader")
CRB = o("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "reader")
SC = o("storage.k8s.io/v1", "StorageClass", "fast")
WEBHOOK = o("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "guard")

MIXED = [WIDGET, JOB, DEPLOY, SVC, CM, WEBHOOK, NS, CRD, PRE, CLUSTERROLE, CRB, SC]


def names(objs):
    return [f"{x['kind']}/{x['metadata']['name']}" for x in objs]


# ----------------------------------------------------------------- Flux


def test_stage_of():
    assert stage_of(CRD) == STAGE_CLUSTER_DEFINITIONS
    assert stage_of(NS) == STAGE_CLUSTER_DEFINITIONS
    assert stage_of(CLUSTERROLE) == STAGE_CLUSTER_DEFINITIONS
    assert stage_of(CRB) == STAGE_RESOURCES  # not a cluster definition in fluxcd/pkg
    assert stage_of(SC) == STAGE_CLASS_DEFINITIONS
    assert stage_of(o("networking.k8s.io/v1", "IngressClass", "nginx")) == STAGE_CLASS_DEFINITIONS
    assert stage_of(DEPLOY) == STAGE_RESOURCES
    # the checks look at apiVersion too
    assert stage_of(o("example.com/v1", "Namespace", "fake")) == STAGE_RESOURCES


def test_flux_stages_of_a_mixed_set():
    defs, classes, rest = flux_stages(MIXED)
    assert names(defs) == ["CustomResourceDefinition/widgets.example.com", "Namespace/app", "ClusterRole/reader"]
    assert names(classes) == ["StorageClass/fast"]
    assert names(rest) == [
        "ClusterRoleBinding/reader",
        "ConfigMap/aaa-first",
        "ConfigMap/web-config",
        "Service/web",
        "Deployment/web",
        "Job/migrate",  # unknown to sort.go: index 0, group "batch" < "example.com"
        "Widget/w1",
        "ValidatingWebhookConfiguration/guard",
    ]


def test_flux_sort_is_independent_of_input_order():
    assert flux_sort(MIXED) == flux_sort(list(reversed(MIXED)))


def test_flux_sort_ties_break_on_namespace_then_name():
    objs = [o("v1", "Secret", "b", "x"), o("v1", "Secret", "a", "y"), o("v1", "Secret", "a", "x")]
    assert [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in flux_sort(objs)] == [("x", "a"), ("x", "b"), ("y", "a")]


# ----------------------------------------------------------------- Argo CD


def test_argo_kind_index_unknown_last():
    assert argo_kind_index("Namespace") < argo_kind_index("Deployment") < argo_kind_index("APIService") < argo_kind_index("Widget")
    assert argo_kind_index("Widget") == 0


def test_sync_wave_annotation():
    assert sync_wave(o("v1", "ConfigMap", "a", wave=-5)) == -5
    assert sync_wave(o("v1", "ConfigMap", "a")) == 0
    bad = o("v1", "ConfigMap", "a")
    bad["metadata"]["annotations"] = {"argocd.argoproj.io/sync-wave": "two", "helm.sh/hook-weight": "3"}
    assert sync_wave(bad) == 3


def test_argo_sort_key_order():
    assert argo_sort_key(DEPLOY, "PreSync") < argo_sort_key(NS, "Sync")
    assert argo_sort_key(DEPLOY, "Sync", -1) < argo_sort_key(NS, "Sync", 0)
    assert argo_sort_key(NS) < argo_sort_key(DEPLOY)
    assert argo_sort_key(JOB, "PostSync") < argo_sort_key(NS, "SyncFail")
    with pytest.raises(LabkitError):
        argo_sort_key(NS, "During")


def test_argo_sort_of_a_mixed_set():
    tasks = argo_sort(MIXED)
    assert names(t.obj for t in tasks) == [
        "Namespace/app",  # bubbled up by adjustDeps ahead of the wave -1 object in it
        "ConfigMap/aaa-first",  # wave -1
        "ConfigMap/web-config",
        "StorageClass/fast",
        "CustomResourceDefinition/widgets.example.com",
        "ClusterRole/reader",
        "ClusterRoleBinding/reader",
        "Service/web",
        "Deployment/web",
        "Job/migrate",
        "ValidatingWebhookConfiguration/guard",  # unknown kinds: by name
        "Widget/w1",
    ]
    assert [t.effective_wave for t in tasks[:3]] == [-1, -1, 0]


def test_argo_adjust_deps_moves_namespace_into_earlier_wave():
    """A Namespace in wave 0 is moved before a wave -1 object in it, taking its wave."""
    objs = [o("v1", "ConfigMap", "early", "app", wave=-1), NS]
    tasks = argo_sort(objs)
    assert names(t.obj for t in tasks) == ["Namespace/app", "ConfigMap/early"]
    assert tasks[0].effective_wave == -1


def test_argo_adjust_deps_moves_crd_before_its_resources():
    cr = o("example.com/v1", "Widget", "w0", "app", wave=-2)
    tasks = argo_sort([CRD, cr])
    assert names(t.obj for t in tasks) == ["CustomResourceDefinition/widgets.example.com", "Widget/w0"]
    assert tasks[0].effective_wave == -2


def test_argo_phases():
    tasks = argo_sort([ArgoTask(DEPLOY), ArgoTask(JOB, phase="PreSync"), ArgoTask(o("batch/v1", "Job", "smoke", "app"), phase="PostSync")])
    assert [(t.phase, t.obj["metadata"]["name"]) for t in tasks] == [("PreSync", "migrate"), ("Sync", "web"), ("PostSync", "smoke")]
