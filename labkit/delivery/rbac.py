"""Kubernetes RBAC, evaluated from a cluster's live Role / ClusterRole / RoleBinding / ClusterRoleBinding objects.

``labkit.delivery.blast`` counts a leaked credential's reach from RBAC written
as data; this module answers the same question from the *objects* a platform
team applies, the way the API server's RBAC authorizer does
(``plugin/pkg/auth/authorizer/rbac``: ``rbac.go``, ``validation/rule.go``):

* a request — user (with its groups), verb, API group, resource, namespace,
  name — is allowed when **any** rule reachable from a binding whose subjects
  match the user allows it; there are no deny rules;
* a **ClusterRoleBinding** grants its ClusterRole's rules everywhere: in every
  namespace and for cluster-scoped resources;
* a **RoleBinding** in namespace *N* grants the rules of its ``roleRef`` (a
  Role in *N*, or a ClusterRole) for requests in *N* only;
* subjects: ``ServiceAccount`` (name, namespace) is the user
  ``system:serviceaccount:<ns>:<name>``, with the groups
  ``system:serviceaccounts``, ``system:serviceaccounts:<ns>`` and
  ``system:authenticated``; ``User`` and ``Group`` match by name;
* a rule matches when its ``verbs``, ``apiGroups`` and ``resources`` contain
  the request's (or ``*``), and — when ``resourceNames`` is set — the request
  names one of them (a request without a name, such as create or list, never
  matches a rule with resourceNames).  ``aggregationRule`` and
  ``nonResourceURLs`` are not modelled.

``Authorizer(cluster).allowed(...)`` reads the RBAC objects at call time, so a
binding applied a moment ago counts.  ``AuthorizedCluster`` puts the check in
front of the ``Cluster`` seam for one user: ``get`` → get, ``list`` → list,
``apply`` → patch (and create when the object does not exist — server-side
apply of a new object is a create), ``update`` → update, ``delete`` → delete,
``patch_status`` → patch on ``<resource>/status``; a refused request raises
``ApiError`` ``Forbidden`` (403) with the API server's message::

    deployments.apps "shop" is forbidden: User "system:serviceaccount:ci:ci-deployer"
    cannot patch resource "deployments" in API group "apps" in the namespace "shop"
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from labkit.core.errors import ApiError

__all__ = ["RBAC", "Request", "Authorizer", "AuthorizedCluster", "service_account_user", "resource_of",
           "forbidden_message"]

RBAC = "rbac.authorization.k8s.io/v1"


def service_account_user(namespace: str, name: str) -> tuple[str, tuple[str, ...]]:
    """The user name and groups a ServiceAccount token authenticates as."""
    return (f"system:serviceaccount:{namespace}:{name}",
            ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"))


def resource_of(kind: str) -> str:
    """``meta.UnsafeGuessKindToResource``: the plural resource name of a kind."""
    low = kind.lower()
    if not low:
        return low
    if low.endswith("s"):
        return low + "es"
    if low.endswith("y"):
        return low[:-1] + "ies"
    return low + "s"


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


@dataclass(frozen=True)
class Request:
    verb: str
    group: str
    resource: str  # may carry a subresource: "deployments/status"
    namespace: str | None
    name: str = ""


def forbidden_message(user: str, req: Request) -> str:
    res = req.resource.split("/", 1)[0]
    qualified = f"{res}.{req.group}" if req.group else res
    obj = f'{qualified} "{req.name}"' if req.name else qualified
    where = f'in the namespace "{req.namespace}"' if req.namespace else "at the cluster scope"
    sub = f' subresource "{req.resource.split("/", 1)[1]}"' if "/" in req.resource else ""
    return (f'{obj} is forbidden: User "{user}" cannot {req.verb} resource "{res}"{sub} in API group '
            f'"{req.group}" {where}')


def _matches(values: Iterable[str] | None, want: str) -> bool:
    vals = list(values or ())
    return "*" in vals or want in vals


def _rule_allows(rule: dict[str, Any], req: Request) -> bool:
    if not _matches(rule.get("verbs"), req.verb) or not _matches(rule.get("apiGroups"), req.group):
        return False
    resources = list(rule.get("resources") or ())
    base = req.resource.split("/", 1)[0]
    ok = ("*" in resources or req.resource in resources
          or ("/" in req.resource and f"*/{req.resource.split('/', 1)[1]}" in resources)
          or ("/" not in req.resource and base in resources))
    if not ok:
        return False
    names = rule.get("resourceNames") or []
    return not names or (bool(req.name) and req.name in names)


class Authorizer:
    """The RBAC authorizer over the RBAC objects live in ``cluster`` (see the module docstring)."""

    def __init__(self, cluster: Any):
        self.cluster = cluster

    def _subject_matches(self, subject: dict[str, Any], user: str, groups: tuple[str, ...],
                         binding_ns: str | None) -> bool:
        kind = subject.get("kind")
        if kind == "ServiceAccount":
            ns = subject.get("namespace") or binding_ns or ""
            return user == f"system:serviceaccount:{ns}:{subject.get('name', '')}"
        if kind == "User":
            return user == subject.get("name")
        if kind == "Group":
            return subject.get("name") in groups
        return False

    def _role_rules(self, ref: dict[str, Any], namespace: str | None) -> list[dict[str, Any]]:
        kind, name = ref.get("kind"), ref.get("name", "")
        if kind == "ClusterRole":
            role = self.cluster.get(RBAC, "ClusterRole", name)
        elif kind == "Role" and namespace:
            role = self.cluster.get(RBAC, "Role", name, namespace)
        else:
            role = None
        return list((role or {}).get("rules") or [])

    def rules_for(self, user: str, groups: tuple[str, ...], namespace: str | None) -> list[dict[str, Any]]:
        """Every rule that applies to ``user`` for a request in ``namespace`` (None: cluster scope)."""
        rules: list[dict[str, Any]] = []
        for b in self.cluster.list(RBAC, "ClusterRoleBinding"):
            if any(self._subject_matches(s, user, groups, None) for s in b.get("subjects") or []):
                rules += self._role_rules(b.get("roleRef") or {}, None)
        if namespace:
            for b in self.cluster.list(RBAC, "RoleBinding", namespace):
                if any(self._subject_matches(s, user, groups, namespace) for s in b.get("subjects") or []):
                    rules += self._role_rules(b.get("roleRef") or {}, namespace)
        return rules

    def allowed(self, user: str, groups: tuple[str, ...], req: Request) -> bool:
        return any(_rule_allows(r, req) for r in self.rules_for(user, groups, req.namespace))


class AuthorizedCluster:
    """The ``Cluster`` seam as seen with one user's credentials: every request authorized first."""

    def __init__(self, cluster: Any, user: str, groups: tuple[str, ...] = ()):
        self._cluster = cluster
        self.authorizer = Authorizer(cluster)
        self.user = user
        self.groups = tuple(groups) or ("system:authenticated",)
        self.refused: list[str] = []

    def _check(self, verb: str, api_version: str, kind: str, namespace: str | None, name: str = "",
               sub: str = "", all_namespaces: bool = False) -> None:
        namespaced = self._cluster.is_namespaced(api_version, kind)
        ns = None if not namespaced or (all_namespaces and not namespace) else (namespace or "default")
        req = Request(verb, _group(api_version), resource_of(kind) + (f"/{sub}" if sub else ""), ns, name)
        if not self.authorizer.allowed(self.user, self.groups, req):
            msg = forbidden_message(self.user, req)
            self.refused.append(msg)
            raise ApiError("Forbidden", msg, code=403)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        self._check("get", api_version, kind, namespace, name)
        return self._cluster.get(api_version, kind, name, namespace)

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: dict[str, str] | None = None) -> Any:
        self._check("list", api_version, kind, namespace, all_namespaces=True)
        return self._cluster.list(api_version, kind, namespace, label_selector)

    def apply(self, obj: dict, *, field_manager: str, force: bool = False, dry_run: bool = False) -> Any:
        md = obj.get("metadata") or {}
        self._check("patch", obj["apiVersion"], obj["kind"], md.get("namespace"), md.get("name", ""))
        if self._cluster.get(obj["apiVersion"], obj["kind"], md.get("name", ""), md.get("namespace")) is None:
            self._check("create", obj["apiVersion"], obj["kind"], md.get("namespace"), md.get("name", ""))
        return self._cluster.apply(obj, field_manager=field_manager, force=force, dry_run=dry_run)

    def update(self, obj: dict, *, field_manager: str, dry_run: bool = False) -> Any:
        md = obj.get("metadata") or {}
        self._check("update", obj["apiVersion"], obj["kind"], md.get("namespace"), md.get("name", ""))
        return self._cluster.update(obj, field_manager=field_manager, dry_run=dry_run)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, **kw: Any) -> Any:
        self._check("delete", api_version, kind, namespace, name)
        return self._cluster.delete(api_version, kind, name, namespace, **kw)

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str | None, status: dict, *,
                     field_manager: str) -> Any:
        self._check("patch", api_version, kind, namespace, name, sub="status")
        return self._cluster.patch_status(api_version, kind, name, namespace, status, field_manager=field_manager)

    def watch(self, api_version: str, kind: str, callback: Any) -> None:
        self._check("watch", api_version, kind, None, all_namespaces=True)
        self._cluster.watch(api_version, kind, callback)

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        return self._cluster.is_namespaced(api_version, kind)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)
