"""``KubeCluster``: the ``Cluster`` seam over a real API server, through the official client.

The GitOps engine (``labkit.engine``) and the Flux dialect (``labkit.flux``) talk to
"a cluster" only through ``labkit.core.cluster.Cluster``: get, list, server-side apply,
update, delete, ``is_namespaced`` and ``patch_status``, plain dicts in and out, and
``labkit.core.errors.ApiError`` for every refusal.  The embedded simulator implements that
seam in-process; this module implements it against any kubeconfig context — the local
control plane built from source (``labkit.kube.controlplane``), a kind cluster
(``labkit.kube.kind``), or a cluster somebody already runs.

How each operation maps onto the API
------------------------------------
The official ``kubernetes`` client's ``DynamicClient`` resolves ``(apiVersion, kind)`` to
a REST resource through API discovery, so custom resources work as soon as their CRD is
served (the lazy discoverer refreshes itself once on a miss; resolved resources are
memoised here per kind).  Then:

* ``get`` / ``list`` are GET requests.  A list response's items carry no
  ``apiVersion``/``kind``; they are filled in so that every object handed to the engine
  looks like what ``get`` returns (and what the simulator returns).
* ``apply`` is server-side apply: ``PATCH`` with ``Content-Type:
  application/apply-patch+yaml`` (the JSON body is valid YAML), ``fieldManager``,
  ``force=true`` when asked, and ``dryRun=All`` for a dry run — the API server runs its
  whole admission chain and returns the object it would have stored.
* ``update`` is ``PUT`` (an Update operation, what ``kubectl edit`` does) with the
  manager name.
* ``create`` (optional on the seam) is ``POST`` to the collection, so the server fills in
  ``metadata.generateName`` — what the sealed-secrets controller names its keys with.
* ``delete`` is ``DELETE`` with ``propagationPolicy``.  The API server answers either
  with the object (still present: finalizers, or ``Foreground`` propagation) or with a
  ``Status``; in the second case the object read just before the delete is returned,
  so callers always get "the object as last seen", or ``None`` if it was already gone.
* ``patch_status`` replaces ``.status`` through the ``status`` subresource with a JSON
  patch (``add /status`` replaces the whole member), so a controller's report never
  conflicts with spec writers; kinds without a status subresource are patched on the
  main resource.
* ``is_namespaced`` comes from discovery.  A kind the server does not serve raises
  ``ApiError("NotFound", 'no matches for kind "X" in version "g/v"')`` — the text of
  client-go's RESTMapper ``NoKindMatchError``, which is what ``kubectl`` and Flux show.

Errors
------
Every ``ApiException`` (and the dynamic client's subclasses) is translated by
``api_error`` into ``labkit.core.errors.ApiError`` carrying the ``Status`` body's own
``reason``, ``code``, ``message`` and ``details`` unchanged — the engine matches on
them (``is_immutable_error``, conflict handling) and shows the messages verbatim, just
as Flux does.  ``Retry-After`` on a 429 (or ``details.retryAfterSeconds``) becomes
``retry_after``.  A body that is not a ``Status`` (a proxy's HTML, "404 page not found")
keeps the HTTP code, takes the reason Kubernetes associates with it, and uses the text as
message.  A request that never reached the server (refused connection, timeout) becomes
``ServiceUnavailable`` (503) naming the server address, so it counts as retryable.

Watching
--------
The simulator calls watch callbacks synchronously inside its clock; a real watch stream
arrives on another thread, and SimPy environments are not thread-safe.  So ``watch``
is offered only when the cluster is bound to the environment the controllers run on
(``KubeCluster(..., env=env)``): one daemon thread per watched kind reads the stream and
only *enqueues* events; a SimPy process on that environment drains the queue every
``watch_tick`` seconds and calls the callbacks on the clock's own thread.  Without an
environment the instance has no ``watch`` attribute at all, and ``FluxSystem`` falls back
to polling — both are correct; the watch only reacts sooner.  ``close()`` stops the
threads.

Reads return fresh dicts decoded from JSON, so mutating them never touches anything
shared.  Time is not part of the seam: against a real cluster the engine runs on
``labkit.core.clock.realtime()``.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

from labkit.core.errors import _CODES, ApiError

Obj = dict[str, Any]

APPLY_PATCH = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"

_REASON_BY_CODE = {code: reason for reason, code in _CODES.items() if reason != "AlreadyExists"}
_REASON_BY_CODE[409] = "Conflict"


# ---------------------------------------------------------------------------- errors

def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    try:
        value = headers.get(name)
        if value is None:
            value = headers.get(name.lower())
    except AttributeError:
        return None
    return value


def _retry_after(headers: Any, details: dict[str, Any]) -> float | None:
    raw = _header(headers, "Retry-After")
    if raw is not None:
        try:
            return float(raw)
        except ValueError:
            pass
    seconds = details.get("retryAfterSeconds") if isinstance(details, dict) else None
    if isinstance(seconds, (int, float)):
        return float(seconds)
    return None


def api_error(exc: Any) -> ApiError:
    """Translate a client ``ApiException`` (or dynamic-client subclass) into ``ApiError``.

    The Status body's reason, code, message and details are kept exactly as the API server
    sent them (see the module docstring).
    """
    status = getattr(exc, "status", None)
    code = int(status) if isinstance(status, int) or (isinstance(status, str) and status.isdigit()) else 500
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    headers = getattr(exc, "headers", None)
    parsed: Any = None
    if isinstance(body, str) and body.strip():
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    if isinstance(parsed, dict) and parsed.get("kind") == "Status":
        details = parsed.get("details") or {}
        reason = parsed.get("reason") or _REASON_BY_CODE.get(int(parsed.get("code") or code), "Unknown")
        return ApiError(
            reason,
            parsed.get("message") or "",
            code=int(parsed.get("code") or code),
            details=details,
            retry_after=_retry_after(headers, details),
        )
    text = (body or "").strip() if isinstance(body, str) else ""
    if not text:
        phrase = getattr(exc, "reason", None) or ""
        text = f"{code} {phrase}".strip()
    return ApiError(_REASON_BY_CODE.get(code, "Unknown"), text, code=code, retry_after=_retry_after(headers, {}))


def transport_error(exc: BaseException, server: str) -> ApiError:
    """A request that never got an answer (connection refused, TLS failure, timeout)."""
    return ApiError("ServiceUnavailable", f"cannot reach the API server at {server}: {exc}", code=503)


def no_kind_match(api_version: str, kind: str) -> ApiError:
    """What client-go's RESTMapper says for a kind the server does not serve."""
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    return ApiError("NotFound", f'no matches for kind "{kind}" in version "{api_version}"',
                    details={"group": group, "kind": kind})


def label_selector_string(selector: dict[str, str] | None) -> str | None:
    """``{"app": "web", "tier": "fe"}`` -> ``"app=web,tier=fe"`` (equality selectors)."""
    if not selector:
        return None
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


# ---------------------------------------------------------------------------- the seam

class KubeCluster:
    """The ``Cluster`` seam over a real API server (see module docstring)."""

    def __init__(
        self,
        kubeconfig: str | Path | None = None,
        context: str | None = None,
        *,
        name: str | None = None,
        env: Any = None,
        api_client: Any = None,
        request_timeout: float = 30.0,
        watch_tick: float = 0.25,
    ):
        from kubernetes import config as kconfig
        from kubernetes.dynamic import DynamicClient

        if api_client is None:
            path = None if kubeconfig is None else str(kubeconfig)
            if path and os.pathsep not in path:  # a $KUBECONFIG-style list is passed through as it is
                path = str(Path(path).expanduser())
            try:
                api_client = kconfig.new_client_from_config(config_file=path, context=context)
            except kconfig.ConfigException as err:
                from labkit.core.errors import LabkitError

                raise LabkitError(f"cannot load kubeconfig context {context or '(current)'}: {err}",
                                  file=path) from None
        self.api_client = api_client
        self.server = api_client.configuration.host
        self.name = name or context or self.server
        self.context = context
        self.kubeconfig = kubeconfig
        self.request_timeout = request_timeout
        self._tmp = tempfile.mkdtemp(prefix="labkit-discovery-")
        self._resources: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()
        try:
            self.dyn = DynamicClient(api_client, cache_file=str(Path(self._tmp) / "discovery.json"))
        except Exception as exc:  # noqa: BLE001 - discovery failed: translate like any request
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise self._translate(exc) from None
        self._watch_threads: list[threading.Thread] = []
        self._watch_stops: list[Any] = []
        self._stop = threading.Event()
        self._events: queue.Queue[tuple[Callable[[str, Obj], None], str, Obj]] = queue.Queue()
        self.env = env
        if env is not None:
            self.watch = self._watch  # only a cluster bound to a clock can deliver watch events safely
            self.watch_tick = watch_tick
            env.process(self._pump())

    # ------------------------------------------------------------------ plumbing

    def _translate(self, exc: BaseException) -> ApiError:
        if isinstance(exc, ApiError):
            return exc
        from kubernetes.client.exceptions import ApiException

        if isinstance(exc, ApiException) or hasattr(exc, "status") and hasattr(exc, "body"):
            return api_error(exc)
        return transport_error(exc, self.server)

    def _resource(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        with self._lock:
            res = self._resources.get(key)
            if res is not None:
                return res
            from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError

            try:
                res = self.dyn.resources.get(api_version=api_version, kind=kind)
            except (ResourceNotFoundError, ResourceNotUniqueError):
                raise no_kind_match(api_version, kind) from None
            except Exception as exc:  # noqa: BLE001
                raise self._translate(exc) from None
            self._resources[key] = res
            return res

    def _forget(self, api_version: str, kind: str) -> None:
        with self._lock:
            self._resources.pop((api_version, kind), None)

    def _request(self, method: str, path: str, body: Any = None, **params: Any) -> Obj:
        params.setdefault("_request_timeout", self.request_timeout)
        try:
            resp = self.dyn.request(method, path, body=body, serialize=False, **params)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an ApiError
            raise self._translate(exc) from None
        data = resp.data
        if not data:
            return {}
        return json.loads(data)

    @staticmethod
    def _namespace(res: Any, namespace: str | None) -> str | None:
        if not res.namespaced:
            return None
        return namespace or "default"

    @staticmethod
    def _complete(obj: Obj, api_version: str, kind: str) -> Obj:
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", kind)
        return obj

    # ------------------------------------------------------------------ reads

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        res = self._resource(api_version, kind)
        path = res.path(name=name, namespace=self._namespace(res, namespace))
        try:
            return self._complete(self._request("get", path), api_version, kind)
        except ApiError as err:
            if err.code == 404:
                if "could not find the requested resource" in err.message:
                    self._forget(api_version, kind)  # the kind went away (CRD deleted)
                return None
            raise

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: dict[str, str] | None = None,
    ) -> list[Obj]:
        res = self._resource(api_version, kind)
        path = res.path(namespace=namespace if res.namespaced else None)
        out: list[Obj] = []
        cont: str | None = None
        while True:
            params: dict[str, Any] = {}
            sel = label_selector_string(label_selector)
            if sel:
                params["label_selector"] = sel
            if cont:
                params["_continue"] = cont
            body = self._request("get", path, **params)
            for item in body.get("items") or []:
                out.append(self._complete(item, api_version, kind))
            cont = (body.get("metadata") or {}).get("continue")
            if not cont:
                return out

    def list_with_version(self, api_version: str, kind: str) -> tuple[list[Obj], str]:
        """All objects of a kind and the list's resourceVersion (where a watch starts)."""
        res = self._resource(api_version, kind)
        body = self._request("get", res.path())
        items = [self._complete(i, api_version, kind) for i in body.get("items") or []]
        return items, (body.get("metadata") or {}).get("resourceVersion", "")

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        return bool(self._resource(api_version, kind).namespaced)

    # ------------------------------------------------------------------ writes

    def _target(self, obj: Obj) -> tuple[Any, str, str, str | None]:
        if not isinstance(obj, dict):
            raise ApiError("BadRequest", f"object must be a mapping, got {type(obj).__name__}")
        api_version, kind = obj.get("apiVersion") or "", obj.get("kind") or ""
        if not api_version:
            raise ApiError("BadRequest", "Object 'apiVersion' is missing in object")
        if not kind:
            raise ApiError("BadRequest", "Object 'Kind' is missing in object")
        md = obj.get("metadata") or {}
        name = md.get("name") or ""
        if not name:
            raise ApiError("BadRequest", "metadata.name is required")
        res = self._resource(api_version, kind)
        return res, api_version, kind, self._namespace(res, md.get("namespace"))

    def apply(self, obj: Obj, *, field_manager: str, force: bool = False, dry_run: bool = False) -> Obj:
        if not field_manager:
            raise ApiError("BadRequest", "PATCH, application/apply-patch+yaml requests require a fieldManager")
        res, api_version, kind, ns = self._target(obj)
        name = obj["metadata"]["name"]
        params: dict[str, Any] = {"field_manager": field_manager, "content_type": APPLY_PATCH}
        if force:
            params["force_conflicts"] = True
        if dry_run:
            params["dry_run"] = "All"
        out = self._request("patch", res.path(name=name, namespace=ns), body=obj, **params)
        return self._complete(out, api_version, kind)

    def create(self, obj: Obj, *, field_manager: str, dry_run: bool = False) -> Obj:
        """``POST`` to the collection: a new object, ``metadata.generateName`` honoured by the server."""
        if not isinstance(obj, dict):
            raise ApiError("BadRequest", f"object must be a mapping, got {type(obj).__name__}")
        api_version, kind = obj.get("apiVersion") or "", obj.get("kind") or ""
        if not api_version or not kind:
            raise ApiError("BadRequest", "Object 'apiVersion' and 'Kind' are required")
        res = self._resource(api_version, kind)
        ns = self._namespace(res, (obj.get("metadata") or {}).get("namespace"))
        params: dict[str, Any] = {"field_manager": field_manager}
        if dry_run:
            params["dry_run"] = "All"
        out = self._request("post", res.path(namespace=ns), body=obj, **params)
        return self._complete(out, api_version, kind)

    def update(self, obj: Obj, *, field_manager: str, dry_run: bool = False) -> Obj:
        res, api_version, kind, ns = self._target(obj)
        params: dict[str, Any] = {"field_manager": field_manager}
        if dry_run:
            params["dry_run"] = "All"
        out = self._request("put", res.path(name=obj["metadata"]["name"], namespace=ns), body=obj, **params)
        return self._complete(out, api_version, kind)

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        dry_run: bool = False,
    ) -> Obj | None:
        res = self._resource(api_version, kind)
        ns = self._namespace(res, namespace)
        before = self.get(api_version, kind, name, ns)
        if before is None:
            return None
        params: dict[str, Any] = {"propagation_policy": propagation}
        if dry_run:
            params["dry_run"] = "All"
        try:
            out = self._request("delete", res.path(name=name, namespace=ns), **params)
        except ApiError as err:
            if err.code == 404:
                return None
            raise
        if out.get("kind") == "Status" or not out.get("metadata"):
            return before
        return self._complete(out, api_version, kind)

    def patch_status(
        self, api_version: str, kind: str, name: str, namespace: str | None, status: Obj, *, field_manager: str
    ) -> Obj:
        res = self._resource(api_version, kind)
        ns = self._namespace(res, namespace)
        path = res.path(name=name, namespace=ns)
        subresources = getattr(res, "subresources", None) or {}
        if "status" in subresources:
            path = path + "/status"
        patch = [{"op": "add", "path": "/status", "value": status}]
        out = self._request("patch", path, body=patch, field_manager=field_manager, content_type=JSON_PATCH)
        return self._complete(out, api_version, kind)

    # ------------------------------------------------------------------ watch (bound to a clock)

    def _watch(self, api_version: str, kind: str, callback: Callable[[str, Obj], None]) -> None:
        """Deliver ``callback(event_type, obj)`` for every change of that kind, on the env's thread."""
        res = self._resource(api_version, kind)
        _, rv = self.list_with_version(api_version, kind)
        t = threading.Thread(target=self._watch_loop, args=(res, api_version, kind, callback, rv),
                             name=f"labkit-watch-{kind}", daemon=True)
        self._watch_threads.append(t)
        t.start()

    def _watch_loop(self, res: Any, api_version: str, kind: str, callback: Callable[[str, Obj], None],
                    rv: str) -> None:
        from kubernetes import watch as kwatch

        while not self._stop.is_set():
            w = kwatch.Watch()
            self._watch_stops.append(w)
            try:
                for ev in self.dyn.watch(res, resource_version=rv or None, timeout=30, watcher=w,
                                         allow_watch_bookmarks=True):
                    if self._stop.is_set():
                        break
                    etype, raw = ev.get("type"), ev.get("raw_object") or {}
                    md = raw.get("metadata") or {}
                    if md.get("resourceVersion"):
                        rv = md["resourceVersion"]
                    if etype in ("ADDED", "MODIFIED", "DELETED"):
                        self._events.put((callback, etype, self._complete(raw, api_version, kind)))
                    elif etype == "ERROR":
                        rv = ""  # 410 Gone and friends: start again from a fresh list
                        break
            except Exception:  # noqa: BLE001 - the stream broke: relist and watch again
                if self._stop.wait(1.0):
                    return
                try:
                    items, rv = self.list_with_version(api_version, kind)
                except ApiError:
                    rv = ""
                    continue
                for item in items:  # resync: the controllers compare markers, duplicates are harmless
                    self._events.put((callback, "MODIFIED", item))
            finally:
                w.stop()
                try:
                    self._watch_stops.remove(w)
                except ValueError:
                    pass

    def _pump(self):
        while not self._stop.is_set():
            while True:
                try:
                    callback, etype, obj = self._events.get_nowait()
                except queue.Empty:
                    break
                callback(etype, obj)
            yield self.env.timeout(self.watch_tick)

    # ------------------------------------------------------------------ kubectl-style helpers

    def scale(self, api_version: str, kind: str, name: str, namespace: str | None, replicas: int, *,
              field_manager: str = "kubectl-scale") -> Obj:
        """Update ``spec.replicas`` through the ``scale`` subresource (what ``kubectl scale`` and the HPA do)."""
        res = self._resource(api_version, kind)
        ns = self._namespace(res, namespace)
        path = res.path(name=name, namespace=ns) + "/scale"
        patch = {"spec": {"replicas": replicas}}
        return self._request("patch", path, body=patch, field_manager=field_manager,
                             content_type="application/merge-patch+json")

    def kubectl_edit(self, api_version: str, kind: str, name: str, namespace: str | None,
                     mutate: Callable[[Obj], None], *, field_manager: str = "kubectl-edit") -> Obj:
        """Read, mutate in place with ``mutate(obj)``, write back as an Update (like ``kubectl edit``).

        The write carries the resourceVersion read, so a controller writing in between
        (a Deployment's status) makes it a 409; like client-go's ``RetryOnConflict`` the
        read-mutate-write is repeated (up to 5 times) on that optimistic-concurrency conflict.
        """
        from labkit.core.cluster import edit

        return edit(self, api_version, kind, name, namespace, mutate, field_manager=field_manager)

    def wait_for_kind(self, api_version: str, kind: str, timeout: float = 30.0, interval: float = 0.2) -> None:
        """Block until discovery serves ``kind`` (a CRD just applied is Established a moment later)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                self._resource(api_version, kind)
                return
            except ApiError as err:
                if err.code != 404 or time.monotonic() >= deadline:
                    raise
            time.sleep(interval)

    def server_version(self) -> str:
        """The API server's ``gitVersion`` (``/version``)."""
        return str(self._request("get", "/version").get("gitVersion", ""))

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop watch threads and drop the discovery cache; the instance must not be used afterwards."""
        self._stop.set()
        for w in list(self._watch_stops):
            try:
                w.stop()
            except Exception:  # noqa: BLE001
                pass
        for t in self._watch_threads:
            t.join(timeout=2.0)
        shutil.rmtree(self._tmp, ignore_errors=True)
        try:
            self.api_client.close()
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self) -> "KubeCluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KubeCluster({self.name!r}, server={self.server!r})"
