"""The fresh simulated cluster a target is reconciled into: registry, assumed CRDs, and a readiness tracker.

Images.  A real cluster learns whether an image exists only when a kubelet
pulls it.  ``labkit try`` cannot ask the user's registry, so every image is
assumed pullable, except the references given with ``--missing-image``.  For
those the simulated registry (``labkit.sim.registry.ImageRegistry``) is made
strict: the repository is *declared* with every other tag the repository's
manifests use, so exactly the missing tag fails to pull (``ErrImagePull`` →
``ImagePullBackOff`` → the Deployment stalls until its progress deadline), and
a reference given without a tag (``--missing-image ghcr.io/org/app``) makes the
whole repository missing.

Kinds the cluster does not serve.  A repository's custom resources usually
rely on CRDs installed by something else — a HelmRelease of the operator, the
platform team's bootstrap.  Without them every dry-run of the Kustomization
would fail with ``no matches for kind``, which says nothing about the
repository.  So, like images, they are *assumed installed*: a minimal,
schema-less CRD is created for every kind the manifests use that neither the
simulator serves nor a CRD in the manifests defines (its scope guessed from
whether the objects carry a namespace), and the report lists them.  Nothing
reconciles those custom resources: they are created, and kstatus reads them
as Current when they have no status.

Readiness.  ``ObjectTracker`` subscribes to the cluster's event log and, on
every API write to an object a GitOps controller created, evaluates its kstatus
(``labkit.core.health.kstatus``, as Flux's health checks do): the first ``Current``
is its ready time, the first ``Failed`` its failure, with kstatus' message.
Times are exact virtual seconds, not polling artefacts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from labkit.core.errors import ApiError
from labkit.core.events import Event
from labkit.core.health import kstatus
from labkit.sim.registry import ImageRegistry, parse_image

__all__ = ["make_registry", "assumed_crds", "images_of", "ObjectTracker", "Tracked", "GITOPS_MANAGERS"]

#: Field managers whose creations are tracked: the controllers, and ``kubectl`` (the bootstrap apply).
GITOPS_MANAGERS = {"kustomize-controller", "argocd-controller", "argocd-application-controller", "kubectl"}


def images_of(obj: dict[str, Any]) -> list[tuple[list[Any], str]]:
    """``(field path, image)`` of every container of a workload or pod template (or Pod)."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    kind = obj.get("kind")
    if kind == "Pod":
        pod, base = spec, ["spec"]
    elif kind == "CronJob":
        pod = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
        base = ["spec", "jobTemplate", "spec", "template", "spec"]
    else:
        pod = ((spec.get("template") or {}).get("spec")) if isinstance(spec.get("template"), dict) else None
        base = ["spec", "template", "spec"]
    if not isinstance(pod, dict):
        return []
    out = []
    for key in ("initContainers", "containers"):
        for c in pod.get(key) or []:
            if isinstance(c, dict) and isinstance(c.get("image"), str):
                out.append((base + [key, {"name": c.get("name")}, "image"], c["image"]))
    return out


def make_registry(objects: Iterable[dict[str, Any]], missing: Iterable[str]) -> ImageRegistry:
    """A permissive registry where exactly the ``missing`` references fail to pull (see module docstring)."""
    reg = ImageRegistry()
    missing = [m for m in missing if m]
    if not missing:
        return reg
    used: dict[str, set[str]] = {}
    for o in objects:
        for _, image in images_of(o):
            try:
                ref = parse_image(image)
            except Exception:  # noqa: BLE001 - ${VAR} placeholders and the like
                continue
            used.setdefault(ref.repository, set()).add(ref.tag)
    for m in missing:
        ref = parse_image(m)
        whole = ":" not in m.rsplit("/", 1)[-1] and "@" not in m
        tags = set() if whole else used.get(ref.repository, set()) - {ref.tag}
        reg.add(ref.repository, sorted(tags))
    return reg


def assumed_crds(cluster: Any, objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Schema-less CRDs for the kinds ``objects`` use that ``cluster`` does not serve and no CRD in them defines."""
    objects = list(objects)
    defined = set()
    for o in objects:
        if o.get("kind") == "CustomResourceDefinition":
            spec = o.get("spec") or {}
            defined.add((spec.get("group"), (spec.get("names") or {}).get("kind")))
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    for o in objects:
        av, kind = str(o.get("apiVersion") or ""), str(o.get("kind") or "")
        if not av or not kind:
            continue
        group, _, version = av.rpartition("/")
        if (group, kind) in defined:
            continue
        try:
            cluster.is_namespaced(av, kind)
            continue
        except ApiError:
            pass
        entry = wanted.setdefault((group, kind), {"versions": set(), "namespaced": False})
        entry["versions"].add(version)
        if (o.get("metadata") or {}).get("namespace"):
            entry["namespaced"] = True
    crds = []
    for (group, kind), info in sorted(wanted.items()):
        if not group:
            continue  # an unknown core kind: let the API server's answer stand
        plural = kind.lower() + ("es" if kind.lower().endswith("s") else "s")
        versions = sorted(info["versions"])
        crds.append({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}", "labels": {"labkit.dev/assumed": "true"}},
            "spec": {
                "group": group,
                "scope": "Namespaced" if info["namespaced"] else "Cluster",
                "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()},
                "versions": [{"name": v, "served": True, "storage": i == 0,
                              "subresources": {"status": {}},
                              "schema": {"openAPIV3Schema": {"type": "object",
                                                             "x-kubernetes-preserve-unknown-fields": True}}}
                             for i, v in enumerate(versions)],
            },
        })
    return crds


_GITOPS_KINDS = {"Kustomization", "GitRepository", "Application", "ApplicationSet", "AppProject"}


@dataclass
class Tracked:
    """What was seen of one object a GitOps controller created."""

    key: str  # Kind/namespace/name
    api_version: str
    kind: str
    namespace: str
    name: str
    cluster: str
    created_at: float | None = None
    ready_at: float | None = None
    failed_at: float | None = None
    status: str = "NotFound"
    message: str = ""
    deleted_at: float | None = None
    manager: str = ""


@dataclass
class ObjectTracker:
    """Exact creation / ready / failure times of managed objects (see the module docstring)."""

    cluster: Any
    api_versions: dict[str, str]  # kind -> apiVersion, from the rendered manifests
    objects: dict[str, Tracked] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cluster.log.subscribe(self._on_event)

    def _on_event(self, ev: Event) -> None:
        if ev.component != "api" or not ev.object:
            return
        t = self.objects.get(ev.object)
        if t is None:
            if ev.event != "Created" or ev.detail.get("manager") not in GITOPS_MANAGERS:
                return
            parts = ev.object.split("/")
            kind = parts[0]
            ns, name = (parts[1], parts[2]) if len(parts) == 3 else ("", parts[1])
            av = self.api_versions.get(kind) or self._served(kind)
            if av is None:
                return
            t = Tracked(ev.object, av, kind, ns, name, self.cluster.name, manager=ev.detail.get("manager", ""))
            self.objects[ev.object] = t
        now = ev.time
        if ev.event == "Created" and t.created_at is None:
            t.created_at = now
        if ev.event == "Deleted":
            t.deleted_at = now
            t.status = "NotFound"
            return
        live = self.cluster.get(t.api_version, t.kind, t.name, t.namespace or None)
        if live is None:
            return
        st = kstatus(live, now=now)
        t.status, t.message = st.status, st.message
        if st.status == "Current" and t.ready_at is None:
            t.ready_at = now
        elif st.status == "Failed" and t.failed_at is None:
            t.failed_at = now

    def _served(self, kind: str) -> str | None:
        """The apiVersion the cluster serves ``kind`` at, when exactly one group serves it."""
        kinds = getattr(getattr(self.cluster, "store", None), "kinds", None)
        if kinds is None:
            return None
        infos = [i for i in kinds.all() if i.kind == kind]
        if len(infos) != 1 or not infos[0].versions:
            return None
        i = infos[0]
        return f"{i.group}/{i.versions[0]}" if i.group else i.versions[0]

    def refresh(self) -> None:
        """Re-evaluate every tracked object now (kstatus that depends on time alone, e.g. a Pod grace period)."""
        now = self.cluster.env.now
        for t in self.objects.values():
            if t.deleted_at is not None:
                continue
            live = self.cluster.get(t.api_version, t.kind, t.name, t.namespace or None)
            if live is None:
                continue
            st = kstatus(live, now=now)
            t.status, t.message = st.status, st.message
            if st.status == "Current" and t.ready_at is None:
                t.ready_at = now
            elif st.status == "Failed" and t.failed_at is None:
                t.failed_at = now

    def pending(self) -> list[Tracked]:
        """Objects still neither ready nor failed (GitOps objects excluded: their own status decides)."""
        return [t for t in self.objects.values() if t.deleted_at is None and t.status not in ("Current", "Failed")
                and t.kind not in _GITOPS_KINDS]
