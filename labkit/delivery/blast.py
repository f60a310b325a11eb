"""Blast radius of a leaked CI credential, push model versus pull model.

The question: an attacker has the CI system's credentials (a leaked token in a
build log, a compromised third-party action).  What can they change in
production, and would anything that people review notice?

**Push model.**  The deploy stage applies manifests to the cluster, so the CI
system holds a Kubernetes credential: a ServiceAccount token bound to a role.
Whatever that role allows, the attacker can do directly against the API
server.  ``ClusterAccess`` models RBAC as data — rules of verbs × API groups ×
resources, bound cluster-wide (ClusterRoleBinding) or per namespace
(RoleBinding) — and ``cluster_exposure`` lists every live object of the
organisation through the ``Cluster`` seam and counts those the credential may
``update``, ``patch`` or ``delete``.  Nothing in git changes, so no review gate
and no ``git log`` shows it; only the API server's audit log (if enabled) does.
A shared deployer for many services is typically bound cluster-wide to an
``edit``-like role (``deployer_access``): one token reaches every namespace.

**Pull model.**  CI never talks to the cluster.  Its credentials are a git
token for the configuration repository and a registry token for pushing
images; the in-cluster controller pulls.  ``GitAccess`` describes what the
token may do to the branch the controller reconciles:

* with **branch protection** (a merge needs an approving review) and the token
  not listed as a bypass actor, a push to the branch is refused and a pull
  request waits for a reviewer: **0 objects** change without review, and every
  attempt is in the git host's audit trail;
* **without branch protection** (or with the CI token as a bypass actor — the
  usual way to let CI commit image tags straight to ``main``), the attacker's
  commit is deployed by the controller with *its* permissions, which are
  typically cluster-admin: every object the controller reconciles is exposed
  (and anything new the attacker adds).  The commit is still in ``git log`` —
  the audit trail survives, the review gate does not;
* with **image automation** and a registry token, the attacker can push an
  image whose tag the ImagePolicy selects; the automation commits it with its
  own (bypassing) identity.  Only the image field of the marked workloads
  changes, but that is the code that runs.  This channel is reported
  separately (``pull_image_channel``) because review does not cover it unless
  the policy is pinned or images are signed and verified.

``measure`` builds the same organisation for both models
(``build_organisation``), loads it into a ``SimCluster`` and counts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from labkit.core.cluster import Cluster

WRITE_VERBS = ("update", "patch", "delete")

#: Kinds of the simulated organisation: (apiVersion, kind, API group, resource).
KINDS: tuple[tuple[str, str, str, str], ...] = (
    ("v1", "Namespace", "", "namespaces"),
    ("apps/v1", "Deployment", "apps", "deployments"),
    ("v1", "Service", "", "services"),
    ("v1", "ConfigMap", "", "configmaps"),
    ("v1", "Secret", "", "secrets"),
    ("v1", "ServiceAccount", "", "serviceaccounts"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "autoscaling", "horizontalpodautoscalers"),
)
PLATFORM_NAMESPACES = ("flux-system", "kube-system", "monitoring", "ingress-nginx")


@dataclass(frozen=True)
class Rule:
    """An RBAC PolicyRule: verbs × apiGroups × resources ("*" wildcards allowed)."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]

    def allows(self, verb: str, group: str, resource: str) -> bool:
        return (("*" in self.verbs or verb in self.verbs)
                and ("*" in self.api_groups or group in self.api_groups)
                and ("*" in self.resources or resource in self.resources))


@dataclass(frozen=True)
class Binding:
    """A role's rules bound in ``namespaces`` (RoleBindings) or cluster-wide (``None``: ClusterRoleBinding)."""

    rules: tuple[Rule, ...]
    namespaces: tuple[str, ...] | None = None

    def allows(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        if self.namespaces is not None and (namespace is None or namespace not in self.namespaces):
            return False
        return any(r.allows(verb, group, resource) for r in self.rules)


@dataclass(frozen=True)
class ClusterAccess:
    """What a Kubernetes credential may do (RBAC as data)."""

    name: str
    bindings: tuple[Binding, ...]

    def allows(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        return any(b.allows(verb, group, resource, namespace) for b in self.bindings)

    def can_modify(self, group: str, resource: str, namespace: str | None) -> bool:
        return any(self.allows(v, group, resource, namespace) for v in WRITE_VERBS)


#: The rules of a typical deployer role (Kubernetes' aggregated ``edit`` role, trimmed to these kinds).
EDIT_RULES = (
    Rule(("create", "update", "patch", "delete", "get", "list", "watch"), ("apps",), ("deployments",)),
    Rule(("create", "update", "patch", "delete", "get", "list", "watch"), ("",),
         ("services", "configmaps", "secrets", "serviceaccounts")),
    Rule(("create", "update", "patch", "delete", "get", "list", "watch"), ("autoscaling",), ("horizontalpodautoscalers",)),
)


def deployer_access(scope: str = "cluster", namespaces: Sequence[str] = ()) -> ClusterAccess:
    """The push model's ``ci-deployer``: the edit-like rules bound cluster-wide or in ``namespaces``."""
    if scope == "cluster":
        return ClusterAccess("ci-deployer", (Binding(EDIT_RULES, None),))
    if scope == "namespaces":
        return ClusterAccess("ci-deployer", (Binding(EDIT_RULES, tuple(namespaces)),))
    raise ValueError(f"scope must be 'cluster' or 'namespaces', got {scope!r}")


@dataclass(frozen=True)
class GitAccess:
    """What the pull model's CI credentials may do to the reconciled branch and the registry."""

    can_push: bool = True
    branch_protection: bool = True
    bypass: bool = False
    registry_push: bool = True

    @property
    def unreviewed_push(self) -> bool:
        return self.can_push and (not self.branch_protection or self.bypass)


@dataclass
class Exposure:
    model: str
    channel: str
    objects: int
    by_kind: dict[str, int] = field(default_factory=dict)
    namespaces: int = 0
    reviewed: bool = False
    in_git_log: bool = False
    note: str = ""


# ---------------------------------------------------------------------- the organisation

def service_objects(service: str, image: str = "registry.local/{service}:1.0.0", replicas: int = 2) -> list[dict]:
    """The manifests of one service (its namespace holds the rest)."""
    ns = service
    labels = {"app": service}
    img = image.format(service=service)
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": service, "namespace": ns, "labels": labels},
         "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"serviceAccountName": service,
                                        "containers": [{"name": "app", "image": img, "ports": [{"containerPort": 8080}]}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": service, "namespace": ns},
         "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{service}-config", "namespace": ns},
         "data": {"LOG_LEVEL": "info"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{service}-db", "namespace": ns},
         "type": "Opaque", "stringData": {"url": "postgres://example"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": service, "namespace": ns}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": service, "namespace": ns},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service},
                  "minReplicas": 2, "maxReplicas": 10,
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                                 "target": {"type": "Utilization", "averageUtilization": 70}}}]}},
    ]


def platform_objects() -> list[dict]:
    """What every cluster of the organisation runs besides the services (not in the app repo)."""
    out: list[dict] = []
    for ns in PLATFORM_NAMESPACES:
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    workloads = {"flux-system": ["source-controller", "kustomize-controller", "notification-controller",
                                 "image-reflector-controller", "image-automation-controller"],
                 "kube-system": ["coredns", "metrics-server"],
                 "monitoring": ["prometheus", "alertmanager", "grafana"],
                 "ingress-nginx": ["ingress-nginx-controller"]}
    for ns, names in workloads.items():
        for n in names:
            labels = {"app": n}
            out.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": n, "namespace": ns}})
            out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": n, "namespace": ns},
                        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                                 "template": {"metadata": {"labels": labels},
                                              "spec": {"serviceAccountName": n,
                                                       "containers": [{"name": n, "image": f"registry.local/{n}:1"}]}}}})
    out.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "flux-system", "namespace": "flux-system"},
                "type": "Opaque", "stringData": {"identity": "deploy-key"}})
    out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"},
                "data": {"Corefile": ".:53 {}"}})
    return out


@dataclass
class Organisation:
    services: list[str]
    app_objects: list[dict]  # what the configuration repository holds (reconciled by Flux in the pull model)
    platform: list[dict]
    automated_workloads: int = 0  # Deployments whose image carries an ImagePolicy marker

    def all_objects(self) -> list[dict]:
        return self.platform + self.app_objects


def build_organisation(services: int = 50, *, image_automation: bool = True) -> Organisation:
    names = [f"svc-{i:02d}" for i in range(services)]
    app = [o for s in names for o in service_objects(s)]
    return Organisation(names, app, platform_objects(), services if image_automation else 0)


def load(cluster: Cluster, org: Organisation, *, field_manager: str = "bootstrap") -> None:
    """Create the organisation's objects in ``cluster`` (namespaces first)."""
    objs = org.all_objects()
    for o in sorted(objs, key=lambda o: o["kind"] != "Namespace"):
        cluster.apply(o, field_manager=field_manager)


# ---------------------------------------------------------------------- counting

def _live(cluster: Cluster) -> Iterable[tuple[str, str, str, str | None]]:
    for api_version, kind, group, resource in KINDS:
        for o in cluster.list(api_version, kind):
            yield kind, group, resource, (o.get("metadata") or {}).get("namespace")


def cluster_exposure(cluster: Cluster, access: ClusterAccess) -> Exposure:
    """Count the live objects ``access`` may update, patch or delete (the push model's leaked credential)."""
    by_kind: dict[str, int] = {}
    namespaces: set[str] = set()
    for kind, group, resource, ns in _live(cluster):
        if access.can_modify(group, resource, ns):
            by_kind[kind] = by_kind.get(kind, 0) + 1
            if ns:
                namespaces.add(ns)
    return Exposure("push", "cluster-api", sum(by_kind.values()), by_kind, len(namespaces), reviewed=False,
                    in_git_log=False, note="direct API writes: nothing changes in git, no review sees it")


def git_exposure(cluster: Cluster, org: Organisation, access: GitAccess) -> Exposure:
    """Objects the pull model's leaked CI credential changes without review through git."""
    if not access.unreviewed_push:
        why = "no push rights" if not access.can_push else "branch protection: a merge needs an approving review"
        return Exposure("pull", "git", 0, {}, 0, reviewed=True, in_git_log=True, note=why)
    reconciled = {(o["kind"], (o.get("metadata") or {}).get("namespace"), o["metadata"]["name"]) for o in org.app_objects}
    by_kind: dict[str, int] = {}
    namespaces: set[str] = set()
    for api_version, kind, _group, _resource in KINDS:
        for o in cluster.list(api_version, kind):
            md = o.get("metadata") or {}
            if (kind, md.get("namespace"), md.get("name")) in reconciled:
                by_kind[kind] = by_kind.get(kind, 0) + 1
                namespaces.add(md.get("namespace") or md.get("name"))
    why = "no branch protection" if not access.branch_protection else "the CI token bypasses branch protection"
    return Exposure("pull", "git", sum(by_kind.values()), by_kind, len(namespaces), reviewed=False, in_git_log=True,
                    note=f"{why}: the controller applies the attacker's commit (visible in git log)")


def image_exposure(org: Organisation, access: GitAccess) -> Exposure:
    """Workloads whose image the attacker can replace through the registry and image automation."""
    n = org.automated_workloads if access.registry_push else 0
    return Exposure("pull", "registry+image-automation", n, {"Deployment": n} if n else {}, n, reviewed=False,
                    in_git_log=True, note="a pushed tag the ImagePolicy selects is committed by the automation")


@dataclass
class BlastRadius:
    push: Exposure
    pull: Exposure
    pull_image_channel: Exposure
    total_objects: int
    variants: list[dict[str, Any]] = field(default_factory=list)

    def as_rows(self) -> list[dict[str, Any]]:
        rows = []
        for e in (self.push, self.pull, self.pull_image_channel):
            rows.append({"model": e.model, "channel": e.channel, "objects_exposed": e.objects,
                         "namespaces": e.namespaces, "reviewed": e.reviewed, "in_git_log": e.in_git_log, "note": e.note})
        return rows


def measure(
    services: int = 50,
    *,
    deployer_scope: str = "cluster",
    git: GitAccess | None = None,
    image_automation: bool = True,
    cluster: Cluster | None = None,
) -> BlastRadius:
    """Build the organisation, load it into a cluster (a fresh ``SimCluster`` by default) and count."""
    org = build_organisation(services, image_automation=image_automation)
    if cluster is None:
        from labkit.sim import SimCluster

        cluster = SimCluster(seed=0, controllers=False)
    load(cluster, org)
    git = git or GitAccess()
    push = cluster_exposure(cluster, deployer_access(deployer_scope, org.services))
    pull = git_exposure(cluster, org, git)
    img = image_exposure(org, git)
    total = sum(1 for _ in _live(cluster))
    variants = []
    for protection, bypass in ((True, False), (True, True), (False, False)):
        g = GitAccess(can_push=git.can_push, branch_protection=protection, bypass=bypass, registry_push=git.registry_push)
        e = git_exposure(cluster, org, g)
        variants.append({"branch_protection": protection, "ci_bypasses_protection": bypass,
                         "objects_exposed_without_review": e.objects, "in_git_log": e.in_git_log})
    return BlastRadius(push, pull, img, total, variants)
