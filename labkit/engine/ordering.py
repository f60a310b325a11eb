"""Apply order: Flux's stages and kind order, Argo CD's phases, waves and kind order.

Order matters to a reconcile in two ways.  Some objects must *exist* before others
can be admitted (a Namespace before the Deployments in it, a CRD before its
custom resources), and some must be *healthy* before others are worth applying
(Argo CD's waves).  The two tools solve it differently, and labkit reproduces
both so the scenarios can show the difference.

Flux (kustomize-controller + fluxcd/pkg/ssa)
--------------------------------------------
kustomize-controller's ``apply`` splits the built objects into three stages and
applies them in turn, waiting (with kstatus, 2 s poll, ``spec.timeout``) for each
of the first two to become ready before moving on:

0. **cluster definitions** — ``ssa.IsClusterDefinition``: CustomResourceDefinitions
   (``apiextensions.k8s.io/*``), Namespaces (``v1``) and ClusterRoles
   (``rbac.authorization.k8s.io/*``).  ClusterRoleBindings are *not* in this
   stage (``fluxcd/pkg/ssa/utils/is.go``);
1. **class definitions** — any kind whose name ends in ``Class`` (StorageClass,
   IngressClass, PriorityClass, RuntimeClass, GatewayClass, ...);
2. **everything else.**

Within a stage, ``ApplyAll`` sorts with ``ssa.SortableUnstructureds``
(``fluxcd/pkg/ssa/sort.go``, derived from kustomize's legacy ordering): kinds in
this list come first, in this order — CustomResourceDefinition, Namespace,
ResourceQuota, StorageClass, ServiceAccount, PodSecurityPolicy, Role,
ClusterRole, RoleBinding, ClusterRoleBinding, ConfigMap, Secret, Service,
LimitRange, PriorityClass, Deployment, StatefulSet, CronJob,
PodDisruptionBudget — then every other kind (index 0), then
MutatingWebhookConfiguration and ValidatingWebhookConfiguration last.  Ties on
the kind index break on API group, then kind name, then namespace, then name,
so the order never depends on the order of the input.

Argo CD (argoproj/gitops-engine pkg/sync/sync_tasks.go)
-------------------------------------------------------
Sync tasks are sorted by **phase** (PreSync -1, Sync 0, PostSync 1, SyncFail 2),
then **wave** (annotation ``argocd.argoproj.io/sync-wave``, an integer, default
0, falling back to Helm's ``helm.sh/hook-weight``; negative waves run first),
then **kind** in Helm's install order (``kindOrder``: Namespace, NetworkPolicy,
ResourceQuota, LimitRange, PodSecurityPolicy, PodDisruptionBudget,
ServiceAccount, Secret, SecretList, ConfigMap, StorageClass, PersistentVolume,
PersistentVolumeClaim, CustomResourceDefinition, ClusterRole, ClusterRoleList,
ClusterRoleBinding, ClusterRoleBindingList, Role, RoleList, RoleBinding,
RoleBindingList, Service, DaemonSet, Pod, ReplicationController, ReplicaSet,
Deployment, HorizontalPodAutoscaler, StatefulSet, Job, CronJob, IngressClass,
Ingress, APIService — each mapped to a negative index so that unknown kinds,
index 0, sort *last*), then **name**.  (labkit adds the namespace as a final
tie-breaker; Go's sort is not stable and leaves such ties unspecified.)

After sorting, gitops-engine bubbles dependencies up (``adjustDeps``): a
Namespace is moved before the first task in that namespace, and a CRD before
the first custom resource of its group/kind, taking over that task's phase and
wave.  ``argo_sort`` does the same.  Each wave is then applied and must be
healthy before the next starts (the sync engine's job, not this module's).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from labkit.core.errors import LabkitError

__all__ = [
    "STAGE_CLUSTER_DEFINITIONS",
    "STAGE_CLASS_DEFINITIONS",
    "STAGE_RESOURCES",
    "FLUX_KIND_ORDER_FIRST",
    "FLUX_KIND_ORDER_LAST",
    "is_crd",
    "is_namespace",
    "is_cluster_role",
    "is_cluster_definition",
    "is_class_definition",
    "stage_of",
    "flux_kind_index",
    "flux_sort_key",
    "flux_sort",
    "flux_stages",
    "ARGO_KIND_ORDER",
    "ARGO_PHASE_ORDER",
    "SYNC_WAVE_ANNOTATION",
    "HELM_HOOK_WEIGHT_ANNOTATION",
    "argo_kind_index",
    "sync_wave",
    "argo_sort_key",
    "ArgoTask",
    "argo_sort",
]

Obj = Mapping[str, Any]

STAGE_CLUSTER_DEFINITIONS = 0
STAGE_CLASS_DEFINITIONS = 1
STAGE_RESOURCES = 2


def _group(obj: Obj) -> str:
    api_version = obj.get("apiVersion") or ""
    return api_version.split("/")[0] if "/" in api_version else ""


def _md(obj: Obj) -> Mapping[str, Any]:
    md = obj.get("metadata")
    return md if isinstance(md, Mapping) else {}


def is_crd(obj: Obj) -> bool:
    """``CustomResourceDefinition`` in ``apiextensions.k8s.io/*`` (kind compared case-insensitively, as Flux does)."""
    return (obj.get("kind") or "").lower() == "customresourcedefinition" and (
        obj.get("apiVersion") or ""
    ).startswith("apiextensions.k8s.io/")


def is_namespace(obj: Obj) -> bool:
    """A core ``v1`` Namespace."""
    return (obj.get("kind") or "").lower() == "namespace" and obj.get("apiVersion") == "v1"


def is_cluster_role(obj: Obj) -> bool:
    """A ``rbac.authorization.k8s.io/*`` ClusterRole."""
    return (obj.get("kind") or "").lower() == "clusterrole" and (obj.get("apiVersion") or "").startswith(
        "rbac.authorization.k8s.io/"
    )


def is_cluster_definition(obj: Obj) -> bool:
    """fluxcd/pkg ``IsClusterDefinition``: CRD, Namespace or ClusterRole."""
    return is_crd(obj) or is_namespace(obj) or is_cluster_role(obj)


def is_class_definition(obj: Obj) -> bool:
    """A kind ending in ``Class`` (StorageClass, IngressClass, PriorityClass, ...)."""
    return (obj.get("kind") or "").endswith("Class")


def stage_of(obj: Obj) -> int:
    """Flux's apply stage: 0 cluster definitions, 1 class definitions, 2 everything else."""
    if is_cluster_definition(obj):
        return STAGE_CLUSTER_DEFINITIONS
    if is_class_definition(obj):
        return STAGE_CLASS_DEFINITIONS
    return STAGE_RESOURCES


FLUX_KIND_ORDER_FIRST = (
    "CustomResourceDefinition",
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "PriorityClass",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
)
FLUX_KIND_ORDER_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")

_FLUX_INDEX: dict[str, int] = {k: i - len(FLUX_KIND_ORDER_FIRST) for i, k in enumerate(FLUX_KIND_ORDER_FIRST)}
_FLUX_INDEX.update({k: 1 + i for i, k in enumerate(FLUX_KIND_ORDER_LAST)})


def flux_kind_index(kind: str) -> int:
    """The kind's position in fluxcd/pkg/ssa's order (negative first, 0 unknown, positive last)."""
    return _FLUX_INDEX.get(kind, 0)


def flux_sort_key(obj: Obj) -> tuple[int, str, str, str, str]:
    """Sort key of ``ssa.SortableUnstructureds``: kind index, group, kind, namespace, name."""
    md = _md(obj)
    kind = obj.get("kind") or ""
    return (flux_kind_index(kind), _group(obj), kind, md.get("namespace") or "", md.get("name") or "")


def flux_sort(objs: Iterable[Obj]) -> list[Obj]:
    """Objects in fluxcd/pkg/ssa apply order (a new list)."""
    return sorted(objs, key=flux_sort_key)


def flux_stages(objs: Iterable[Obj]) -> list[list[Obj]]:
    """The three apply stages of kustomize-controller, each sorted; stages may be empty."""
    stages: list[list[Obj]] = [[], [], []]
    for o in objs:
        stages[stage_of(o)].append(o)
    return [flux_sort(s) for s in stages]


# ------------------------------------------------------------------ Argo CD

ARGO_KIND_ORDER = (
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
)
_ARGO_INDEX = {k: i - len(ARGO_KIND_ORDER) for i, k in enumerate(ARGO_KIND_ORDER)}
ARGO_PHASE_ORDER = {"PreSync": -1, "Sync": 0, "PostSync": 1, "SyncFail": 2}
SYNC_WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
HELM_HOOK_WEIGHT_ANNOTATION = "helm.sh/hook-weight"
_ATOI = re.compile(r"[+-]?[0-9]+")


def argo_kind_index(kind: str) -> int:
    """The kind's index in Argo's ``kindOrder`` (negative; 0 for unknown kinds, which sort last)."""
    return _ARGO_INDEX.get(kind, 0)


def sync_wave(obj: Obj) -> int:
    """``argocd.argoproj.io/sync-wave`` as an int (Go ``strconv.Atoi``), else Helm's hook weight, else 0."""
    annotations = _md(obj).get("annotations") or {}
    for key in (SYNC_WAVE_ANNOTATION, HELM_HOOK_WEIGHT_ANNOTATION):
        text = annotations.get(key)
        if isinstance(text, str) and _ATOI.fullmatch(text):
            return int(text)
    return 0


def _phase_order(phase: str) -> int:
    try:
        return ARGO_PHASE_ORDER[phase]
    except KeyError:
        raise LabkitError(
            f'unknown sync phase "{phase}" (expected one of {", ".join(ARGO_PHASE_ORDER)})'
        ) from None


def argo_sort_key(obj: Obj, phase: str = "Sync", wave: int | None = None) -> tuple[int, int, int, str, str]:
    """gitops-engine's sync order: phase, wave (from the annotation when None), kind, name (then namespace)."""
    md = _md(obj)
    w = sync_wave(obj) if wave is None else wave
    return (
        _phase_order(phase),
        w,
        argo_kind_index(obj.get("kind") or ""),
        md.get("name") or "",
        md.get("namespace") or "",
    )


@dataclass
class ArgoTask:
    """One object to sync in a phase; ``wave`` None means "read the annotation"."""

    obj: Obj
    phase: str = "Sync"
    wave: int | None = None

    @property
    def effective_wave(self) -> int:
        return sync_wave(self.obj) if self.wave is None else self.wave

    def sort_key(self) -> tuple[int, int, int, str, str]:
        return argo_sort_key(self.obj, self.phase, self.effective_wave)


def _crd_key(obj: Obj) -> str | None:
    if (obj.get("kind") or "") != "CustomResourceDefinition" or _group(obj) != "apiextensions.k8s.io":
        return None
    spec = obj.get("spec") or {}
    group = spec.get("group")
    kind = (spec.get("names") or {}).get("kind")
    if not isinstance(group, str) or not isinstance(kind, str):
        return None
    return f"{group}/{kind}"


def _adjust_deps(tasks: list[ArgoTask], is_dep: Any, refs_dep: Any) -> None:
    first_index: dict[str, int] = {}
    i = 0
    while i < len(tasks):
        t = tasks[i]
        dep_key = is_dep(t.obj)
        if dep_key is not None:
            if dep_key in first_index:
                index = first_index[dep_key]
                t.wave = tasks[index].effective_wave
                t.phase = tasks[index].phase
                tasks.pop(i)
                tasks.insert(index, t)
                for k, v in first_index.items():
                    if v >= index:
                        first_index[k] = v + 1
        else:
            ref_key = refs_dep(t.obj)
            if ref_key is not None and ref_key not in first_index:
                first_index[ref_key] = i
        i += 1


def argo_sort(tasks: Iterable[ArgoTask | Obj]) -> list[ArgoTask]:
    """Sort sync tasks as gitops-engine ``syncTasks.Sort`` does, including ``adjustDeps``.

    Plain object dicts are wrapped as Sync-phase tasks with their annotated wave.
    A Namespace or CRD moved ahead of its dependants takes their phase and wave.
    """
    items = [t if isinstance(t, ArgoTask) else ArgoTask(t) for t in tasks]
    items.sort(key=ArgoTask.sort_key)

    def ns_dep(obj: Obj) -> str | None:
        if obj.get("kind") == "Namespace" and _group(obj) == "":
            return _md(obj).get("name") or ""
        return None

    def ns_ref(obj: Obj) -> str | None:
        ns = _md(obj).get("namespace")
        return ns if ns else None

    def cr_ref(obj: Obj) -> str | None:
        return f"{_group(obj)}/{obj.get('kind') or ''}"

    _adjust_deps(items, ns_dep, ns_ref)
    _adjust_deps(items, _crd_key, cr_ref)
    return items
