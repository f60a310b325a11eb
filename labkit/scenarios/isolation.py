"""``NamespacedCluster``: one scenario run's private slice of a shared real cluster.

On the embedded simulator every lab owns a whole cluster.  On a real cluster several
labs share one API server — the two labs of the tour, the staging and prod
"clusters" of the promotion scenario, and whatever else runs there (other scenario
runs, the test suite) — yet the sample fleet names its objects the same way
everywhere (``flux-system/flux-system``, ``podinfo-staging/podinfo``).  Rewriting the
repository per run would change what the notebooks show, so the isolation happens at
the ``Cluster`` seam instead:

* every namespace the lab uses, ``X``, is the real namespace ``<prefix>X`` (the
  ``Namespace`` object's own name too), in requests and, mapped back, in answers —
  the GitOps controllers, the scenario code and the repository keep seeing
  ``flux-system`` and ``podinfo-staging``;
* lists across all namespaces return only the lab's own namespaces, so the
  controllers never see another run's objects;
* every ``Namespace`` the lab creates carries the label ``labkit.dev/run=<run id>``,
  so ``cleanup`` (and the runner, after a notebook that died half-way) can delete
  everything a run created;
* watch events (offered only when the inner cluster can watch, i.e. a ``KubeCluster``
  bound to the lab's clock) of other runs' namespaces are dropped, the rest mapped;
* cluster-scoped objects (CRDs, volumes) pass through unchanged: CRDs are the same for
  every run, and a lab labels the volumes it creates with its run;
* objects of the lab's own controllers that carry finalizers only those controllers
  remove (Flux's, Argo CD's, the database operator's: ``FINALIZED_KINDS``) have them
  cleared by ``cleanup`` first — once the lab has stopped nothing else would, and the
  namespace would stay ``Terminating`` forever;
* refusals from the API server (``ApiError``) have the prefix removed from their
  message, so the texts read as they would on a cluster of one's own.

The simulator's API store records every write in the event log (component ``api``:
``Created`` / ``Updated`` / ``Deleted`` with the field manager); the scenarios derive
metrics from those records (the tour's "writes on a no-op reconcile").  A real API
server keeps no such journal for us, so this view records the writes that go through
it the same way: ``Created`` when the object did not exist before the call,
``Updated`` when its ``resourceVersion`` moved (a server-side apply that changed
nothing is not a write, exactly as in the simulator), ``Deleted`` when there was
something to delete.  The writes of the cluster's own controllers (Deployment,
ReplicaSet, the garbage collector) do not pass through the seam and are not recorded.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

from labkit.core.errors import ApiError
from labkit.core.events import EventLog, object_key

Obj = dict[str, Any]

RUN_LABEL = "labkit.dev/run"
#: Kinds whose objects carry finalizers only the lab's own (in-process) controllers remove.  Once the
#: lab stops, nothing would, and their namespaces would stay Terminating: ``cleanup`` clears them.
FINALIZED_KINDS = (
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
    ("source.toolkit.fluxcd.io/v1", "GitRepository"),
    ("argoproj.io/v1alpha1", "Application"),
    ("argoproj.io/v1alpha1", "ApplicationSet"),
    ("db.labkit.io/v1alpha1", "Database"),
)
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _is_namespace(api_version: str, kind: str) -> bool:
    return kind == "Namespace" and api_version == "v1"


class NamespacedCluster:
    """A ``Cluster`` over ``inner`` that maps every namespace ``X`` to ``<prefix>X`` (see module docstring)."""

    def __init__(self, inner: Any, prefix: str, *, run_id: str, name: str, log: EventLog | None = None,
                 env: Any = None):
        self.inner = inner
        self.prefix = prefix
        self.run_id = run_id
        self.name = name
        self.env = env
        self.log = log if log is not None else EventLog(lambda: env.now if env is not None else 0.0)
        self._namespaced: dict[tuple[str, str], bool] = {}
        if callable(getattr(inner, "watch", None)):
            self.watch = self._watch

    # ------------------------------------------------------------------ mapping

    def real_namespace(self, namespace: str) -> str:
        return self.prefix + namespace

    def lab_namespace(self, real: str | None) -> str | None:
        if real is None or not real.startswith(self.prefix):
            return None
        return real[len(self.prefix):]

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        key = (api_version, kind)
        if key not in self._namespaced:
            self._namespaced[key] = bool(self._call(lambda: self.inner.is_namespaced(api_version, kind)))
        return self._namespaced[key]

    def _ns_arg(self, api_version: str, kind: str, namespace: str | None) -> str | None:
        if not self.is_namespaced(api_version, kind):
            return None
        return self.real_namespace(namespace or "default")

    def _name_arg(self, api_version: str, kind: str, name: str) -> str:
        return self.real_namespace(name) if _is_namespace(api_version, kind) else name

    def _out(self, obj: Obj) -> Obj:
        """A lab object as the real cluster must see it."""
        if not isinstance(obj, dict):
            return obj
        out = copy.deepcopy(obj)
        md = out.setdefault("metadata", {})
        api_version, kind = out.get("apiVersion", ""), out.get("kind", "")
        if _is_namespace(api_version, kind):
            if md.get("name"):
                md["name"] = self.real_namespace(md["name"])
            labels = md.get("labels")
            if isinstance(labels, dict) and NAMESPACE_NAME_LABEL in labels:
                labels[NAMESPACE_NAME_LABEL] = md["name"]
            md.setdefault("labels", {})[RUN_LABEL] = self.run_id
        elif api_version and kind and self.is_namespaced(api_version, kind):
            md["namespace"] = self.real_namespace(md.get("namespace") or "default")
        return out

    def _in(self, obj: Obj | None) -> Obj | None:
        """A real object as the lab sees it (None when it is not the lab's)."""
        if obj is None or not isinstance(obj, dict):
            return obj
        md = obj.get("metadata") or {}
        if _is_namespace(obj.get("apiVersion", ""), obj.get("kind", "")):
            name = self.lab_namespace(md.get("name"))
            if name is None:
                return None
            md["name"] = name
            labels = md.get("labels")
            if isinstance(labels, dict) and NAMESPACE_NAME_LABEL in labels:
                labels[NAMESPACE_NAME_LABEL] = name
        elif md.get("namespace"):
            ns = self.lab_namespace(md["namespace"])
            if ns is None:
                return None
            md["namespace"] = ns
        return obj

    def _error(self, err: ApiError) -> ApiError:
        if self.prefix not in err.message and self.prefix not in str(err.details):
            return err
        details = copy.deepcopy(err.details)
        if isinstance(details.get("name"), str):
            details["name"] = details["name"].replace(self.prefix, "")
        return ApiError(err.reason, err.message.replace(self.prefix, ""), code=err.code, details=details,
                        retry_after=err.retry_after)

    def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ApiError as err:
            raise self._error(err) from None

    def _record(self, event: str, obj: Obj, **detail: Any) -> None:
        md = obj.get("metadata") or {}
        self.log.record("api", event, object_key(obj.get("kind", ""), md.get("namespace"), md.get("name", "")),
                        detail=detail)

    # ------------------------------------------------------------------ the seam

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        ns = self._ns_arg(api_version, kind, namespace)
        real = self._call(lambda: self.inner.get(api_version, kind, self._name_arg(api_version, kind, name), ns))
        return self._in(real)

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: dict[str, str] | None = None) -> list[Obj]:
        ns = None
        if namespace is not None and self.is_namespaced(api_version, kind):
            ns = self.real_namespace(namespace)
        items = self._call(lambda: self.inner.list(api_version, kind, ns, label_selector))
        return [m for m in (self._in(item) for item in items) if m is not None]

    def _before(self, obj: Obj) -> Obj | None:
        md = obj.get("metadata") or {}
        try:
            return self.inner.get(obj["apiVersion"], obj["kind"], md.get("name", ""), md.get("namespace"))
        except (ApiError, KeyError):
            return None

    def _write(self, obj: Obj, manager: str, operation: str, fn: Callable[[Obj], Obj]) -> Obj:
        real = self._out(obj)
        before = self._before(real)
        result = self._call(lambda: fn(real))
        after = self._in(result) if isinstance(result, dict) else result
        if isinstance(after, dict):
            rv_before = ((before or {}).get("metadata") or {}).get("resourceVersion")
            rv_after = (after.get("metadata") or {}).get("resourceVersion")
            if before is None:
                self._record("Created", after, manager=manager)
            elif rv_after != rv_before:
                self._record("Updated", after, manager=manager, operation=operation,
                             generation=(after.get("metadata") or {}).get("generation"))
        return after

    def apply(self, obj: Obj, *, field_manager: str, force: bool = False, dry_run: bool = False) -> Obj:
        if dry_run:
            return self._in(self._call(lambda: self.inner.apply(self._out(obj), field_manager=field_manager,
                                                                force=force, dry_run=True)))
        return self._write(obj, field_manager, "Apply",
                           lambda real: self.inner.apply(real, field_manager=field_manager, force=force))

    def update(self, obj: Obj, *, field_manager: str, dry_run: bool = False) -> Obj:
        if dry_run:
            return self._in(self._call(lambda: self.inner.update(self._out(obj), field_manager=field_manager,
                                                                 dry_run=True)))
        return self._write(obj, field_manager, "Update",
                           lambda real: self.inner.update(real, field_manager=field_manager))

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
               propagation: str = "Background", dry_run: bool = False) -> Obj | None:
        ns = self._ns_arg(api_version, kind, namespace)
        real_name = self._name_arg(api_version, kind, name)
        out = self._call(lambda: self.inner.delete(api_version, kind, real_name, ns, propagation=propagation,
                                                   dry_run=dry_run))
        mapped = self._in(out) if isinstance(out, dict) else out
        if not dry_run and isinstance(mapped, dict):
            self._record("Deleted", mapped, manager="", propagation=propagation)
        return mapped

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str | None, status: Obj, *,
                     field_manager: str) -> Obj:
        ns = self._ns_arg(api_version, kind, namespace)
        real_name = self._name_arg(api_version, kind, name)
        return self._in(self._call(lambda: self.inner.patch_status(api_version, kind, real_name, ns, status,
                                                                   field_manager=field_manager)))

    def _watch(self, api_version: str, kind: str, callback: Callable[[str, Obj], None]) -> None:
        def mapped(event_type: str, obj: Obj) -> None:
            mine = self._in(obj)
            if mine is not None:
                callback(event_type, mine)

        self._call(lambda: self.inner.watch(api_version, kind, mapped))

    # ------------------------------------------------------------------ kubectl-style helpers

    def kubectl_edit(self, api_version: str, kind: str, name: str, namespace: str | None,
                     mutate: Callable[[Obj], None], *, field_manager: str = "kubectl-edit") -> Obj:
        """``kubectl edit``: read, mutate, write back as an Update (retried on a resourceVersion conflict)."""
        from labkit.core.cluster import edit

        return edit(self, api_version, kind, name, namespace, mutate, field_manager=field_manager)

    def kubectl_scale(self, api_version: str, kind: str, name: str, namespace: str | None, replicas: int, *,
                      field_manager: str = "kubectl-scale") -> Obj:
        ns = self._ns_arg(api_version, kind, namespace)
        return self._in(self._call(lambda: self.inner.scale(api_version, kind, name, ns, replicas,
                                                            field_manager=field_manager)))

    # ------------------------------------------------------------------ lifecycle

    def namespaces(self) -> list[str]:
        """The real names of the namespaces this view created."""
        return [n["metadata"]["name"] for n in self.inner.list("v1", "Namespace")
                if n["metadata"]["name"].startswith(self.prefix)]

    def cleanup(self) -> list[str]:
        """Delete every namespace of this view (their objects go with them); returns their real names."""
        return delete_namespaces(self.inner, self.namespaces())

    def __repr__(self) -> str:
        return f"NamespacedCluster({self.name!r}, prefix={self.prefix!r}, inner={self.inner!r})"


def strip_finalizers(kube: Any, namespace: str) -> None:
    """Clear the finalizers of the lab controllers' objects in ``namespace`` (see ``FINALIZED_KINDS``)."""
    for api_version, kind in FINALIZED_KINDS:
        try:
            items = kube.list(api_version, kind, namespace)
        except ApiError:
            continue  # the kind is not served on this cluster
        for obj in items:
            if not obj["metadata"].get("finalizers"):
                continue
            obj["metadata"]["finalizers"] = []
            obj["metadata"].pop("managedFields", None)
            try:
                kube.update(obj, field_manager="labkit-cleanup")
            except ApiError:
                pass  # gone already, or changed: the namespace deletion reports what is left


def delete_namespaces(kube: Any, names: list[str]) -> list[str]:
    """Clear lab finalizers in, then delete, each namespace; returns the names a delete was issued for."""
    gone = []
    for name in names:
        strip_finalizers(kube, name)
        try:
            kube.delete("v1", "Namespace", name)
            gone.append(name)
        except ApiError:
            pass
    return gone


#: cluster-scoped kinds a lab may create for a run (pre-provisioned volumes), labelled with the run
RUN_SCOPED_KINDS = (("v1", "PersistentVolume"),)


def delete_run_namespaces(kube: Any, run_id: str) -> list[str]:
    """Delete every namespace (and volume) labelled ``labkit.dev/run=<run_id>``: what a run left behind."""
    names = [ns["metadata"]["name"] for ns in kube.list("v1", "Namespace", None, {RUN_LABEL: run_id})]
    gone = delete_namespaces(kube, names)
    for api_version, kind in RUN_SCOPED_KINDS:
        for obj in kube.list(api_version, kind, None, {RUN_LABEL: run_id}):
            try:
                kube.delete(api_version, kind, obj["metadata"]["name"])
                gone.append(obj["metadata"]["name"])
            except ApiError:
                pass
    return gone
