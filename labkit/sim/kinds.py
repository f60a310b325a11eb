"""The kinds the embedded API server serves, and their schema-level rules.

A real API server knows every built-in type's schema (OpenAPI), which kinds are
namespaced, which have a ``status`` subresource, and how to default omitted
fields.  ``KindRegistry`` is labkit's compact model of that: one ``KindInfo`` per
``(group, kind)`` with

* ``namespaced`` and ``has_status`` (status changes never bump
  ``metadata.generation``; for kinds without a spec/status split — ConfigMap,
  Secret — there is no generation at all);
* ``top_level``: the top-level fields the type declares, so server-side apply of
  an object carrying an undeclared field (``.sops`` on a Secret) fails with
  ``field not declared in schema``, as it does against a real cluster;
* ``typed``: dotted field patterns with their JSON type (``int``, ``str``,
  ``map``, ``list``), ``[]`` marking every element of a list.  A value of the
  wrong type fails with the API server's own wording, which differs between the
  apply path (``expected numeric (int or float), got string``) and the update path
  (``json: cannot unmarshal string into Go struct field ...``).

Custom resources are registered when a ``CustomResourceDefinition`` is created
(``register_crd``); their schemas are not validated beyond the object envelope.
An unknown kind is answered like the API server's discovery does:
``no matches for kind "X" in version "g/v"``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labkit.core.errors import ApiError

META = ("apiVersion", "kind", "metadata")


@dataclass
class KindInfo:
    group: str
    versions: tuple[str, ...]
    kind: str
    namespaced: bool = True
    has_status: bool = False
    top_level: tuple[str, ...] | None = None  # None: anything goes (custom resources)
    typed: dict[str, str] = field(default_factory=dict)
    go_spec_type: str = ""  # e.g. DeploymentSpec, for update-path decode errors
    custom: bool = False

    @property
    def generation(self) -> bool:
        return self.has_status or self.custom


_POD_TEMPLATE = {
    "template": "map",
    "template.metadata.labels": "map",
    "template.spec": "map",
    "template.spec.containers": "list",
    "template.spec.containers[].name": "str",
    "template.spec.containers[].image": "str",
    "template.spec.containers[].ports": "list",
    "template.spec.containers[].ports[].containerPort": "int",
    "template.spec.containers[].env": "list",
    "template.spec.terminationGracePeriodSeconds": "int",
}


def _spec(prefix: str, d: dict[str, str]) -> dict[str, str]:
    return {f"{prefix}.{k}": v for k, v in d.items()}


_META_TYPES = {"metadata": "map", "metadata.name": "str", "metadata.labels": "map", "metadata.annotations": "map"}

BUILTINS: list[KindInfo] = [
    KindInfo("", ("v1",), "Namespace", namespaced=False, has_status=True, top_level=META + ("spec", "status")),
    KindInfo("", ("v1",), "ConfigMap", top_level=META + ("data", "binaryData", "immutable"), typed={"data": "map"}),
    KindInfo("", ("v1",), "Secret", top_level=META + ("data", "stringData", "type", "immutable"), typed={"data": "map", "stringData": "map"}),
    KindInfo("", ("v1",), "ServiceAccount", top_level=META + ("secrets", "imagePullSecrets", "automountServiceAccountToken")),
    KindInfo("", ("v1",), "Service", has_status=True, top_level=META + ("spec", "status"),
             typed={"spec.ports": "list", "spec.ports[].port": "int"}, go_spec_type="ServiceSpec"),
    KindInfo("", ("v1",), "Pod", has_status=True, top_level=META + ("spec", "status"), go_spec_type="PodSpec"),
    KindInfo("", ("v1",), "PersistentVolumeClaim", has_status=True, top_level=META + ("spec", "status")),
    KindInfo("", ("v1",), "PersistentVolume", namespaced=False, has_status=True, top_level=META + ("spec", "status")),
    KindInfo("", ("v1",), "Endpoints", top_level=META + ("subsets",)),
    KindInfo("", ("v1",), "Event", top_level=None),
    KindInfo("", ("v1",), "ResourceQuota", has_status=True, top_level=META + ("spec", "status")),
    KindInfo("", ("v1",), "LimitRange", top_level=META + ("spec",)),
    KindInfo("apps", ("v1",), "Deployment", has_status=True, top_level=META + ("spec", "status"), go_spec_type="DeploymentSpec",
             typed=_spec("spec", {"replicas": "int", "minReadySeconds": "int", "revisionHistoryLimit": "int",
                                  "progressDeadlineSeconds": "int", "selector": "map", "strategy": "map", **_POD_TEMPLATE})),
    KindInfo("apps", ("v1",), "ReplicaSet", has_status=True, top_level=META + ("spec", "status"), go_spec_type="ReplicaSetSpec",
             typed=_spec("spec", {"replicas": "int", "minReadySeconds": "int", "selector": "map", **_POD_TEMPLATE})),
    KindInfo("apps", ("v1",), "StatefulSet", has_status=True, top_level=META + ("spec", "status"), go_spec_type="StatefulSetSpec",
             typed=_spec("spec", {"replicas": "int", "minReadySeconds": "int", "revisionHistoryLimit": "int",
                                  "serviceName": "str", "selector": "map", "volumeClaimTemplates": "list", **_POD_TEMPLATE})),
    KindInfo("apps", ("v1",), "DaemonSet", has_status=True, top_level=META + ("spec", "status"), go_spec_type="DaemonSetSpec",
             typed=_spec("spec", {"selector": "map", **_POD_TEMPLATE})),
    KindInfo("apps", ("v1",), "ControllerRevision", top_level=META + ("data", "revision")),
    KindInfo("batch", ("v1",), "Job", has_status=True, top_level=META + ("spec", "status"), go_spec_type="JobSpec",
             typed=_spec("spec", {"backoffLimit": "int", "completions": "int", "parallelism": "int",
                                  "activeDeadlineSeconds": "int", "ttlSecondsAfterFinished": "int", **_POD_TEMPLATE})),
    KindInfo("batch", ("v1",), "CronJob", has_status=True, top_level=META + ("spec", "status"), go_spec_type="CronJobSpec",
             typed={"spec.schedule": "str"}),
    KindInfo("autoscaling", ("v2", "v1"), "HorizontalPodAutoscaler", has_status=True, top_level=META + ("spec", "status"),
             go_spec_type="HorizontalPodAutoscalerSpec",
             typed={"spec.minReplicas": "int", "spec.maxReplicas": "int", "spec.scaleTargetRef": "map", "spec.metrics": "list"}),
    KindInfo("policy", ("v1",), "PodDisruptionBudget", has_status=True, top_level=META + ("spec", "status")),
    KindInfo("networking.k8s.io", ("v1",), "Ingress", has_status=True, top_level=META + ("spec", "status")),
    KindInfo("networking.k8s.io", ("v1",), "IngressClass", namespaced=False, top_level=META + ("spec",)),
    KindInfo("networking.k8s.io", ("v1",), "NetworkPolicy", top_level=META + ("spec", "status")),
    KindInfo("rbac.authorization.k8s.io", ("v1",), "Role", top_level=META + ("rules",)),
    KindInfo("rbac.authorization.k8s.io", ("v1",), "RoleBinding", top_level=META + ("subjects", "roleRef")),
    KindInfo("rbac.authorization.k8s.io", ("v1",), "ClusterRole", namespaced=False, top_level=META + ("rules", "aggregationRule")),
    KindInfo("rbac.authorization.k8s.io", ("v1",), "ClusterRoleBinding", namespaced=False, top_level=META + ("subjects", "roleRef")),
    KindInfo("storage.k8s.io", ("v1",), "StorageClass", namespaced=False, top_level=None),
    KindInfo("apiextensions.k8s.io", ("v1",), "CustomResourceDefinition", namespaced=False, has_status=True,
             top_level=META + ("spec", "status")),
]


def split_api_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        g, v = api_version.split("/", 1)
        return g, v
    return "", api_version


class KindRegistry:
    """Which kinds exist, keyed by ``(group, kind)``; versions checked on lookup."""

    def __init__(self) -> None:
        self._kinds: dict[tuple[str, str], KindInfo] = {}
        self._by_api_version: dict[tuple[str, str], KindInfo | None] = {}  # (apiVersion, kind) -> known(...)
        for info in BUILTINS:
            self._kinds[(info.group, info.kind)] = KindInfo(**{**info.__dict__})

    def lookup(self, api_version: str, kind: str) -> KindInfo:
        group, version = split_api_version(api_version)
        info = self._kinds.get((group, kind))
        if info is None or version not in info.versions:
            raise ApiError("NotFound", f'no matches for kind "{kind}" in version "{api_version}"',
                           details={"group": group, "kind": kind})
        return info

    def known(self, group: str, kind: str) -> KindInfo | None:
        return self._kinds.get((group, kind))

    def known_object(self, api_version: str, kind: str) -> KindInfo | None:
        """``known`` for an object's ``apiVersion`` (version not checked), memoised: controllers
        writing status ask it for the same few kinds hundreds of thousands of times."""
        key = (api_version, kind)
        try:
            return self._by_api_version[key]
        except KeyError:
            info = self._by_api_version[key] = self._kinds.get((split_api_version(api_version)[0], kind))
            return info

    def register_crd(self, crd: dict[str, Any]) -> KindInfo:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        versions = tuple(v.get("name") for v in spec.get("versions") or [] if v.get("served", True))
        has_status = any("status" in ((v.get("subresources") or {})) for v in spec.get("versions") or [])
        info = KindInfo(
            group=spec.get("group", ""),
            versions=versions,
            kind=names.get("kind", ""),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            has_status=has_status,
            top_level=None,
            custom=True,
        )
        self._kinds[(info.group, info.kind)] = info
        self._by_api_version.clear()
        return info

    def unregister(self, group: str, kind: str) -> None:
        info = self._kinds.get((group, kind))
        if info is not None and info.custom:
            del self._kinds[(group, kind)]
            self._by_api_version.clear()

    def all(self) -> list[KindInfo]:
        return list(self._kinds.values())


# ----------------------------------------------------------------- type checks

_JSON_NAMES = {"int": "numeric (int or float)", "str": "string", "map": "map", "list": "list"}
_GO_TYPES = {"int": "int32", "str": "string", "map": "map", "list": "slice"}


def _actual(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "numeric"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "map"
    if isinstance(v, list):
        return "list"
    if v is None:
        return "null"
    return type(v).__name__


# The typed patterns of a kind, compiled once into a trie: each node lists its steps as
# (name, is list, checks ending there, child node), a check being (pattern index, wanted type, steps).
# One walk of the object visits each field the patterns name once, where checking pattern by pattern
# walked spec.template.spec.containers once per container field.
_Check = tuple[int, str, tuple[tuple[str, bool], ...]]
_Node = list[tuple[str, bool, list[_Check], list]]
_COMPILED: dict[int, tuple[dict[str, str], _Node]] = {}
_TYPES: dict[str, type | None] = {"int": None, "str": str, "map": dict, "list": list}


def _compiled(typed: dict[str, str]) -> _Node:
    hit = _COMPILED.get(id(typed))
    if hit is not None and hit[0] is typed:
        return hit[1]
    root: _Node = []
    for idx, (pattern, want) in enumerate({**_META_TYPES, **typed}.items()):
        steps = tuple((part[:-2], True) if part.endswith("[]") else (part, False) for part in pattern.split("."))
        node = root
        for i, step in enumerate(steps):
            entry = next((e for e in node if (e[0], e[1]) == step), None)
            if entry is None:
                entry = (step[0], step[1], [], [])
                node.append(entry)
            if i == len(steps) - 1:
                entry[2].append((idx, want, steps))
            node = entry[3]
    _COMPILED[id(typed)] = (typed, root)
    return root


def _ok(want: str, v: Any) -> bool:
    if v is None:
        return True
    t = _TYPES.get(want, object)
    if t is None:  # int: a JSON number without a fraction
        return isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer()
    return isinstance(v, t)


def _check(obj: Any, node: _Node, picks: tuple, found: list) -> None:
    """Walk ``obj`` along the trie ``node``: ``(pattern index, list positions, check, picks, value)``
    into ``found`` for each value that is not of its pattern's type."""
    if not isinstance(obj, dict):
        return
    for name, is_list, checks, child in node:
        if is_list:
            items = obj.get(name)
            if not isinstance(items, list):
                continue
            for j, item in enumerate(items):
                here = picks + ((j, item),)
                for check in checks:
                    if not _ok(check[1], item):
                        found.append((check[0], tuple(p[0] for p in here), check, here, item))
                if child:
                    _check(item, child, here, found)
        elif name in obj:
            v = obj[name]
            for check in checks:
                if not _ok(check[1], v):
                    found.append((check[0], tuple(p[0] for p in picks), check, picks, v))
            if child:
                _check(v, child, picks, found)


def _label(steps: tuple[tuple[str, bool], ...], picks: tuple) -> str:
    """``.spec.template.spec.containers[name="web"].image``, or ``.ports[0].port`` for an element
    without a name (``picks`` holds the list elements passed on the way)."""
    out = []
    k = 0
    for name, is_list in steps:
        if is_list:
            j, item = picks[k]
            k += 1
            out.append(f'.{name}[name="{item["name"]}"]' if isinstance(item, dict) and "name" in item
                       else f".{name}[{j}]")
        else:
            out.append(f".{name}")
    return "".join(out)


def type_errors(info: KindInfo, obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """``(path, wanted type, value)`` for every declared field holding the wrong JSON type."""
    errs: list[tuple[str, str, Any]] = []
    if info.top_level is not None:
        for k in obj:
            if k not in info.top_level:
                errs.append((f".{k}", "undeclared", obj[k]))
    found: list = []
    _check(obj, _compiled(info.typed), (), found)
    if found:  # in pattern order, each pattern's values in list order, as checking one by one gives them
        found.sort(key=lambda f: (f[0], f[1]))
        errs.extend((_label(check[2], picks), check[1], value) for _i, _j, check, picks, value in found)
    for section in ("labels", "annotations"):
        md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        m = md.get(section)
        if isinstance(m, dict):
            for k, v in m.items():
                if not isinstance(v, str):
                    errs.append((f".metadata.{section}.{k}", "str", v))
    return errs


def apply_type_error(info: KindInfo, obj: dict[str, Any], errs: list[tuple[str, str, Any]]) -> ApiError:
    """The apply path's error: ``failed to create typed patch object (...): .spec.replicas: expected ...``."""
    md = obj.get("metadata") or {}
    ns = (md.get("namespace") or "default") if info.namespaced else ""
    name = md.get("name", "")
    parts = []
    for path, want, value in errs:
        if want == "undeclared":
            parts.append(f"{path}: field not declared in schema")
        else:
            parts.append(f"{path}: expected {_JSON_NAMES[want]}, got {_actual(value)}")
    gv = obj.get("apiVersion", "")
    if "/" not in gv:
        gv = "/" + gv
    body = parts[0] if len(parts) == 1 else "errors:\n  " + "\n  ".join(parts)
    # the real API server answers this one with a 500 InternalError (checked against v1.34.2)
    return ApiError(
        "InternalError",
        f"failed to create typed patch object ({ns}/{name}; {gv}, Kind={info.kind}): {body}",
    )


def update_type_error(info: KindInfo, obj: dict[str, Any], errs: list[tuple[str, str, Any]]) -> ApiError:
    """The update path's error: JSON decoding into the Go type fails."""
    path, want, value = next(((p, w, v) for p, w, v in errs if w != "undeclared"), errs[0])
    version = obj.get("apiVersion", "").split("/")[-1]
    if want == "undeclared":
        msg = f'{info.kind} in version "{version}" cannot be handled as a {info.kind}: strict decoding error: unknown field "{path[1:]}"'
    else:
        go_struct = info.go_spec_type or f"{info.kind}Spec"
        msg = (
            f'{info.kind} in version "{version}" cannot be handled as a {info.kind}: json: cannot unmarshal '
            f"{_actual(value) if _actual(value) != 'numeric' else 'number'} into Go struct field {go_struct}{path} of type {_GO_TYPES[want]}"
        )
    return ApiError("BadRequest", msg)
