"""Object ids: cli-utils' ``ObjMetadata`` string, the key of inventories and change sets.

An id is cli-utils' ``ObjMetadata.String()`` (``pkg/object/objmetadata.go``):
``<namespace>_<name>_<group>_<kind>`` joined with ``_``, which Kubernetes names
can never contain.  Cluster-scoped objects have an empty namespace (the id
starts with ``_``); core-group objects an empty group (``__`` before the kind):

* ``default_web_apps_Deployment``
* ``default_web-config__ConfigMap``
* ``_team-a__Namespace``
* ``_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition``

RBAC names may contain ``:`` (``system:controller:foo``); for Role,
ClusterRole, RoleBinding and ClusterRoleBinding in ``rbac.authorization.k8s.io``
the colon is written as ``__`` and restored when parsing
(``_system__aggregate-to-view_rbac.authorization.k8s.io_ClusterRole``).  Parsing
takes the namespace up to the first ``_``, the kind after the last, the group
before that, and rejects a name that still contains ``_``.  The version is not
part of the id — the API server does not treat a new version as a new object —
and is kept next to it as ``v``: only the version part (``v1``), as Flux stores
it, so ``InventoryEntry.api_version`` rebuilds ``apps/v1`` from the id's group.

This module depends on nothing else in the engine: the change set
(``labkit.engine.changeset``) labels every entry with an id, and the inventory
(``labkit.engine.inventory``) stores change sets — both build on it, neither on
the other's internals.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from labkit.core.errors import LabkitError

__all__ = ["ObjectId", "object_id", "parse_object_id", "split_api_version"]

_SEP = "_"
_COLON = "__"
_RBAC_GROUP = "rbac.authorization.k8s.io"
_RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


def split_api_version(api_version: str) -> tuple[str, str]:
    """``("apps", "v1")`` for ``apps/v1``, ``("", "v1")`` for the core group."""
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


@dataclass(frozen=True, order=True)
class ObjectId:
    """cli-utils ``ObjMetadata``: namespace, name, group and kind (no version)."""

    namespace: str
    name: str
    group: str
    kind: str

    def __str__(self) -> str:
        name = self.name
        if self.group == _RBAC_GROUP and self.kind in _RBAC_KINDS:
            name = name.replace(":", _COLON)
        return _SEP.join((self.namespace, name, self.group, self.kind))

    @property
    def subject(self) -> str:
        """``Kind/namespace/name`` (``Kind/name`` when cluster-scoped), as Flux logs it."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> "ObjectId":
        md = obj.get("metadata") or {}
        group, _ = split_api_version(obj.get("apiVersion") or "")
        return cls(md.get("namespace") or "", md.get("name") or "", group, obj.get("kind") or "")


def object_id(obj: Mapping[str, Any]) -> str:
    """The Flux inventory id of an object dict: ``<namespace>_<name>_<group>_<kind>``."""
    return str(ObjectId.of(obj))


def parse_object_id(text: str) -> ObjectId:
    """Parse an inventory id back (cli-utils ``ParseObjMetadata``); LabkitError if malformed."""
    if not isinstance(text, str):
        raise LabkitError(f"unable to parse stored object metadata: {text!r}")
    i = text.find(_SEP)
    if i == -1:
        raise LabkitError(f"unable to parse stored object metadata: {text}")
    namespace, rest = text[:i], text[i + 1 :]
    j = rest.rfind(_SEP)
    if j == -1:
        raise LabkitError(f"unable to parse stored object metadata: {text}")
    kind, rest = rest[j + 1 :], rest[:j]
    k = rest.rfind(_SEP)
    if k == -1:
        raise LabkitError(f"unable to parse stored object metadata: {text}")
    group, name = rest[k + 1 :], rest[:k]
    name = name.replace(_COLON, ":")
    if _SEP in name:
        raise LabkitError(f"too many fields within: {text}")
    name, kind, group, namespace = name.strip(), kind.strip(), group.strip(), namespace.strip()
    if not name:
        raise LabkitError(f"empty name for object: {text}")
    if not kind:
        raise LabkitError(f"empty GroupKind for object: {text}")
    return ObjectId(namespace, name, group, kind)
