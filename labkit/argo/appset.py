"""``argocd-applicationset-controller``: generators, templates and the applicationsSync policies.

An ApplicationSet turns *parameter sets* into Applications.  Each reconcile:

1. **Generate parameters** (``generate``):

   * ``list`` — one set per element (with ``goTemplate: false`` nested values
     are flattened with dots, ``values.x``; everything becomes a string);
   * ``clusters`` — one set per registered cluster (``labkit.argo.destinations``)
     whose labels match ``selector.matchLabels``; the management cluster
     (``in-cluster``) takes part only when there is no selector, as in Argo.
     Parameters ``name``, ``nameNormalized``, ``server``, ``project``,
     ``metadata.labels.<k>``, ``metadata.annotations.<k>``, ``values.<k>``
     (``values`` may themselves use the other parameters);
   * ``git`` directories — every directory of the repository at ``revision``
     that matches one of the ``directories[].path`` patterns (Go's ``path.Match``:
     ``*`` never crosses ``/``) and none of the ``exclude: true`` ones — an
     exclude always wins, whatever the order.  Parameters ``path``,
     ``path.basename``, ``path.basenameNormalized``, ``path[N]`` segments (and
     under ``goTemplate``: ``.path.path``, ``.path.basename``,
     ``.path.segments``), ``commitSHA``;
   * ``git`` files — every file matching ``files[].path``, parsed as YAML/JSON
     (an object or a list of objects), flattened, plus the path parameters of
     its directory and ``path.filename``;
   * ``matrix`` — the cartesian product of two child generators, parameter sets
     merged (the same key with two different values is an error, as upstream:
     ``found duplicate key <k> with different value``).

   One ApplicationSet generates at most ``MAX_GENERATED_APPLICATIONS``
   (2,000) Applications here — checked as each generator's parameter sets are
   counted (a matrix before its product is built), so a directory generator
   over a huge repository fails fast with a message naming the ApplicationSet
   and the generator, and nothing is generated.  Upstream has no such limit;
   a simulation that renders every Application needs one.  Patterns are
   compiled once per reconcile, not once per directory; git ``files`` are read
   with ``labkit.gitops.yamlbounds`` (the repository is untrusted input).

2. **Render** the template (``labkit.argo.template``) per parameter set, merge a
   generator-level ``template`` over the ApplicationSet's, set the namespace,
   an owner reference to the ApplicationSet (so deleting it deletes them), and
   validate every result as an Application (``labkit.argo.api``).  Any error —
   a template error, an invalid rendered name, two Applications with the same
   name — sets the ``ErrorOccurred`` condition with a message naming the
   ApplicationSet and the field, and **nothing is created, updated or
   deleted** in that reconcile.

3. **Apply** according to ``syncPolicy.applicationsSync``: ``sync`` (default:
   create, update, delete), ``create-update`` (never delete), ``create-delete``
   (never update), ``create-only``.  Updates are server-side applies by
   ``argocd-applicationset-controller``, so fields it set and no longer sets go
   away.  Deleted Applications cascade to their resources when they carry the
   resources finalizer, unless ``preserveResourcesOnDeletion`` (the finalizer is
   removed first).

The controller is given what it works with — the management cluster (the
``Cluster`` seam), ``Settings``, the ``Destinations`` its cluster generator
reads, the ``RepoServer`` its git generators read, the event log and an
``on_gone`` callback — never the ``ArgoSystem`` that assembles it; ``generate``
likewise takes the clusters, the repo-server and the namespace.

Git generators are re-read every ``requeueAfterSeconds`` (default 180 s), and
at once on a webhook for their repository; the cluster generator reacts to a new
cluster; every generator reacts to a change of the ApplicationSet itself.

The loop is the shared reconcile driver (``labkit.core.workqueue``), one
``Driver`` per ApplicationSet, with controller-runtime's outcomes: ``DONE``
(nothing to come back for), ``RequeueAfter(requeueAfterSeconds)`` for git
generators, and temporary errors — an ``ApiError`` (logged as
``ReconcileError``, Retry-After honoured) or ``_ApplyFailed`` when some
Applications could not be written — requeued with client-go's per-item back-off
(5 ms doubling, capped at 1000 s), which a success resets.  A request while a
delayed one is pending keeps the earlier time, as client-go's ``AddAfter`` does.
"""
from __future__ import annotations

import copy
import json
import posixpath
from typing import Any, Callable, Generator, Iterable, Mapping

import simpy
import yaml

from labkit.argo.api import (API_VERSION, APPLICATION_KIND, APPLICATIONSET_KIND, RESOURCES_FINALIZER,
                             ApplicationSetSpec, ClusterGenerator, GitGenerator, ListGenerator, MatrixGenerator,
                             parse_application, parse_applicationset)
from labkit.argo.destinations import IN_CLUSTER, ClusterEntry, Destinations
from labkit.argo.repo_server import RepoServer
from labkit.argo.settings import Settings
from labkit.argo.template import render_template, sanitize_name
from labkit.core.clock import timestamp
from labkit.core.cluster import Cluster
from labkit.core.workqueue import DONE, Driver, Outcome, RateLimiter, RequeueAfter
from labkit.core.errors import ApiError, LabkitError, TemporaryError
from labkit.core.events import EventLog
from labkit.gitops.globmatch import Glob, compile_path_glob
from labkit.gitops.yamlbounds import YamlLimitError, load_documents

__all__ = ["AppSetController", "generate", "path_match", "COMPONENT", "FIELD_MANAGER"]

COMPONENT = "argocd-applicationset-controller"
FIELD_MANAGER = "argocd-applicationset-controller"


def path_match(pattern: str, name: str) -> bool:
    """Go's ``path.Match``: ``*`` and ``?`` never match ``/``; ``[...]`` classes.

    Matched by ``labkit.gitops.globmatch`` in ``O(len(pattern)·len(name))`` steps
    (a regex translation backtracked exponentially on ``*a*a*a…b``).
    """
    glob = _pattern_glob(pattern)
    return glob is not None and glob.match(name)


_PATTERNS: dict[str, "Glob | None"] = {}


def _pattern_glob(pattern: str) -> "Glob | None":
    """The compiled ``path.Match`` pattern (cached), or None for a malformed one."""
    if pattern in _PATTERNS:
        return _PATTERNS[pattern]
    glob = compile_path_glob(pattern)
    if len(_PATTERNS) < 4096:
        _PATTERNS[pattern] = glob
    return glob


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}.{i}" if prefix else str(i), out)
    else:
        out[prefix] = "" if value is None else ("true" if value is True else "false" if value is False else str(value))


def _path_params(directory: str, go: bool, prefix: str, commit: str, filename: str | None = None) -> dict[str, Any]:
    base = posixpath.basename(directory)
    if go:
        p: dict[str, Any] = {"path": directory, "basename": base, "basenameNormalized": sanitize_name(base),
                             "segments": directory.split("/")}
        if filename is not None:
            p["filename"] = filename
            p["filenameNormalized"] = sanitize_name(filename)
        out = {"path": p, "commitSHA": commit}
        return {prefix: out} if prefix else out
    name = f"{prefix}.path" if prefix else "path"
    out = {name: directory, f"{name}.basename": base, f"{name}.basenameNormalized": sanitize_name(base),
           (f"{prefix}.commitSHA" if prefix else "commitSHA"): commit}
    if filename is not None:
        out[f"{name}.filename"] = filename
        out[f"{name}.filenameNormalized"] = sanitize_name(filename)
    for i, seg in enumerate(directory.split("/")):
        if seg:
            out[f"{name}[{i}]"] = seg
    return out


class _Gen:
    """Parameter generation over the registered clusters and the repo-server's repositories."""

    def __init__(self, spec: ApplicationSetSpec, clusters: Iterable[ClusterEntry], repo_server: RepoServer):
        self.clusters = clusters
        self.repo_server = repo_server
        self.spec = spec
        self.git_calls = 0

    def params(self, gen: Any, path: str) -> list[dict[str, Any]]:
        go = self.spec.go_template
        if isinstance(gen, ListGenerator):
            out = []
            for e in gen.elements:
                if go:
                    out.append(copy.deepcopy(dict(e)))
                else:
                    flat: dict[str, Any] = {}
                    _flatten(dict(e), "", flat)
                    out.append(flat)
            return out
        if isinstance(gen, ClusterGenerator):
            out = []
            for entry in self.clusters:
                if gen.match_labels:
                    if entry.name == IN_CLUSTER and not entry.labels:
                        continue
                    if any(entry.labels.get(k) != v for k, v in gen.match_labels.items()):
                        continue
                base = {"name": entry.name, "nameNormalized": sanitize_name(entry.name), "server": entry.server,
                        "project": ""}
                if go:
                    p: dict[str, Any] = dict(base, metadata={"labels": dict(entry.labels),
                                                             "annotations": dict(entry.annotations)})
                    p["values"] = {k: render_template(v, p, go=True, options=self.spec.go_template_options,
                                                      path=f"{path}.values.{k}") for k, v in gen.values.items()}
                else:
                    p = dict(base)
                    for k, v in entry.labels.items():
                        p[f"metadata.labels.{k}"] = v
                    for k, v in entry.annotations.items():
                        p[f"metadata.annotations.{k}"] = v
                    for k, v in gen.values.items():
                        p[f"values.{k}"] = render_template(v, p, path=f"{path}.values.{k}")
                out.append(p)
            return out
        if isinstance(gen, GitGenerator):
            return self._git(gen, path)
        if isinstance(gen, MatrixGenerator):
            left = self.params(gen.generators[0], f"{path}.generators[0]")
            right = self.params(gen.generators[1], f"{path}.generators[1]")
            _check_fanout(self.spec, len(left) * len(right), path)  # before the product is built
            out = []
            for a in left:
                for b in right:
                    out.append(_combine(a, b, path))
            return out
        raise LabkitError("unsupported generator", field=path)

    def _git(self, gen: GitGenerator, path: str) -> list[dict[str, Any]]:
        rs = self.repo_server
        self.git_calls += 1
        try:
            sha = rs.resolve(gen.repo_url, gen.revision)
        except LabkitError as err:
            raise LabkitError(f"error generating params from git: {err.detail}", field=f"{path}.repoURL") from None
        go = self.spec.go_template
        out: list[dict[str, Any]] = []
        if gen.directories:
            dirs = rs.directories(gen.repo_url, sha)
            includes = [_matcher(x.path) for x in gen.directories if not x.exclude]
            excludes = [_matcher(x.path) for x in gen.directories if x.exclude]
            matched = [d for d in dirs if any(m(d) for m in includes) and not any(m(d) for m in excludes)]
            _check_fanout(self.spec, len(matched), path)
            out = [_path_params(d, go, gen.path_param_prefix, sha) for d in matched]
        else:
            repo = rs.repo(gen.repo_url)
            matchers = [_matcher(pat) for pat in gen.files]
            files = sorted({f for f in rs.files(gen.repo_url, sha) if any(m(f) for m in matchers)})
            _check_fanout(self.spec, len(files), path)
            for f in files:
                try:  # repository content: bounded (alias bombs, depth, size), as labkit.gitops.yamlbounds reads it
                    docs = load_documents(repo.read(f, sha), f)
                except YamlLimitError as err:
                    raise LabkitError(f"unable to process file '{f}': {err.detail}", field=f"{path}.files") from None
                except yaml.YAMLError as err:
                    raise LabkitError(f"unable to process file '{f}': unable to parse file: {err}",
                                      field=f"{path}.files") from None
                if len(docs) > 1:
                    raise LabkitError(f"unable to process file '{f}': unable to parse file: expected a single "
                                      "document in the stream", field=f"{path}.files")
                data = docs[0].data if docs else None
                items = data if isinstance(data, list) else [data or {}]
                _check_fanout(self.spec, len(out) + len(items), path)
                for item in items:
                    if not isinstance(item, Mapping):
                        raise LabkitError(f"unable to process file '{f}': not an object", field=f"{path}.files")
                    if go:
                        p = copy.deepcopy(dict(item))
                    else:
                        p = {}
                        _flatten(dict(item), "", p)
                    p.update(_path_params(posixpath.dirname(f), go, gen.path_param_prefix, sha,
                                          filename=posixpath.basename(f)))
                    out.append(p)
        for p in out:
            for k, v in gen.values.items():
                rendered = render_template(v, p, go=go, options=self.spec.go_template_options,
                                           path=f"{path}.values.{k}")
                if go:
                    p.setdefault("values", {})[k] = rendered
                else:
                    p[f"values.{k}"] = rendered
        return out


class _ApplyFailed(TemporaryError):
    """Some Applications could not be created, updated or deleted: requeue with the back-off.

    Unlike an ``ApiError`` it carries no ``Retry-After`` and is not logged as a
    ``ReconcileError`` (the messages are in the status and the ``Reconciled`` event).
    """


#: The most Applications one ApplicationSet may generate here (labkit's bound: a directory generator over a
#: repository of 100,000 directories, or a matrix of two large generators, would otherwise run without end).
MAX_GENERATED_APPLICATIONS = 2_000


def _check_fanout(spec: ApplicationSetSpec, n: int, path: str) -> None:
    if n > MAX_GENERATED_APPLICATIONS:
        raise LabkitError(f"ApplicationSet {spec.name} generates {n:,} parameter sets, more than labkit's limit of "
                          f"{MAX_GENERATED_APPLICATIONS:,} Applications per ApplicationSet; nothing was generated",
                          field=path)


def _matcher(pattern: str) -> Any:
    """``path_match(pattern, name)`` as a one-argument function, the pattern compiled once."""
    glob = _pattern_glob(pattern)
    if glob is None:
        return lambda name: False
    return glob.match


def _combine(a: Mapping[str, Any], b: Mapping[str, Any], path: str) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        if k in out and out[k] != v:
            raise LabkitError(f"found duplicate key {k} with different value, a: {out[k]} ,b: {v}", field=path)
        out[k] = v
    return out


def _merge(base: Mapping[str, Any], over: Mapping[str, Any] | None) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for k, v in (over or {}).items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def generate(spec: ApplicationSetSpec, *, clusters: Iterable[ClusterEntry], repo_server: RepoServer, namespace: str,
             owner: Mapping[str, Any] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Every Application the ApplicationSet should have, validated; ``(apps, git calls)``. Raises LabkitError.

    ``clusters`` are the registered destinations (the cluster generator's
    candidates), ``repo_server`` serves the git generators, ``namespace`` is
    where Argo CD runs (the generated Applications' default namespace), and
    ``owner`` the live ApplicationSet the Applications get an owner reference to.
    """
    g = _Gen(spec, clusters, repo_server)
    apps: list[dict[str, Any]] = []
    names: dict[str, int] = {}
    for i, gen in enumerate(spec.generators):
        path = f"spec.generators[{i}]"
        template = _merge(spec.template, getattr(gen, "template", None))
        sets = g.params(gen, path)
        _check_fanout(spec, len(apps) + len(sets), path)
        for params in sets:
            rendered = render_template(template, params, go=spec.go_template, options=spec.go_template_options)
            md = dict(rendered.get("metadata") or {})
            md["namespace"] = md.get("namespace") or namespace
            app = {"apiVersion": API_VERSION, "kind": APPLICATION_KIND, "metadata": md,
                   "spec": rendered.get("spec") or {}}
            if owner is not None:
                md["ownerReferences"] = [{"apiVersion": API_VERSION, "kind": APPLICATIONSET_KIND,
                                          "name": owner["metadata"]["name"], "uid": owner["metadata"].get("uid", ""),
                                          "controller": True, "blockOwnerDeletion": True}]
            where = f"{APPLICATIONSET_KIND}/{spec.namespace}/{spec.name}"
            try:
                parse_application(app, where, default_namespace=namespace)
            except LabkitError as err:
                raise LabkitError(f"generated Application is invalid: {err.detail}",
                                  field=f"spec.template.{err.field}" if err.field else "spec.template") from None
            name = md.get("name", "")
            if name in names:
                raise LabkitError(f"ApplicationSet {spec.name} contains applications with duplicate name: {name}",
                                  field="spec.template.metadata.name")
            names[name] = 1
            apps.append(app)
    return apps, g.git_calls


def _git_generators(spec: ApplicationSetSpec) -> list[GitGenerator]:
    out: list[GitGenerator] = []

    def walk(gen: Any) -> None:
        if isinstance(gen, GitGenerator):
            out.append(gen)
        elif isinstance(gen, MatrixGenerator):
            for c in gen.generators:
                walk(c)
    for gen in spec.generators:
        walk(gen)
    return out


class AppSetController:
    """The reconcile loop of one ApplicationSet (see module docstring)."""

    def __init__(self, env: simpy.Environment, namespace: str, name: str, generation: Any, *, mgmt: Cluster,
                 settings: Settings, destinations: Destinations, repo_server: RepoServer, log: EventLog,
                 on_gone: Callable[["AppSetController"], None]):
        self.env = env
        self.mgmt = mgmt
        self.settings = settings
        self.destinations = destinations
        self.repo_server = repo_server
        self.log = log
        self.on_gone = on_gone
        self.namespace = namespace
        self.name = name
        self.generation = generation
        self.key = f"{APPLICATIONSET_KIND}/{namespace}/{name}"
        self.rng = settings.rng(f"appset:{namespace}/{name}")
        self.spec: ApplicationSetSpec | None = None
        self.gone = False
        self.reconciles = 0
        # controller-runtime: a returned error is requeued with the per-item exponential back-off (5 ms
        # doubling, capped at 1000 s), or after the server's Retry-After when that is longer
        self.driver = Driver(env, self._run, retryable=(ApiError, _ApplyFailed), on_error=self._on_error,
                             limiter=RateLimiter(honour_retry_after=True))  # client-go's defaults
        self.driver.interleave = False  # one key: the next reconcile of it follows at once, as the loop did
        self.process = self.driver.process
        self.request()

    def request(self, after: float = 0.0) -> None:
        """Reconcile now, or ``after`` seconds from now (an earlier pending request wins)."""
        if self.gone:
            return
        if after > 0:
            self.driver.queue.add_after(self.key, after)
        else:
            self.driver.add(self.key)

    def uses_repo(self, urls: set[str]) -> bool:
        return self.spec is not None and any(g.repo_url.rstrip("/") in urls for g in _git_generators(self.spec))

    def _run(self, key: str) -> Generator[simpy.Event, Any, Outcome]:
        """One reconcile, for the driver: read the ApplicationSet, then generate and apply."""
        if self.gone:
            return DONE
        obj = self.mgmt.get(API_VERSION, APPLICATIONSET_KIND, self.name, self.namespace)
        if obj is None:
            self.gone = True
            self.on_gone(self)
            self.log.record(COMPONENT, "ApplicationSetDeleted", self.key)
            return DONE
        return (yield from self._reconcile(obj))

    def _on_error(self, key: Any, err: BaseException, delay: float | None, obj: Any) -> None:
        """A failed reconcile: an API error is logged (the apply errors are already in the status and log)."""
        if isinstance(err, ApiError):
            self.log.record(COMPONENT, "ReconcileError", self.key,
                            detail={"reason": err.reason, "code": err.code, "message": err.message,
                                    "retry_in": delay})

    def _reconcile(self, obj: dict[str, Any]) -> Generator[simpy.Event, Any, Outcome]:
        ns, mgmt, log = self.settings.namespace, self.mgmt, self.log
        self.reconciles += 1
        try:
            spec = parse_applicationset(obj, self.key, default_namespace=ns)
        except LabkitError as err:
            self._status(obj, error=str(err), reason="ApplicationSetSpecError")
            return DONE  # nothing to retry until the ApplicationSet changes
        self.spec = spec
        gits = _git_generators(spec)
        if gits:
            yield self.env.timeout(sum(self.settings.timings.draw(self.rng, "git_ls_remote") for _ in gits))
        try:
            desired, _ = generate(spec, clusters=self.destinations, repo_server=self.repo_server, namespace=ns,
                                  owner=obj)
        except (LabkitError, TemporaryError) as err:
            msg = str(err) if isinstance(err, LabkitError) else getattr(err, "message", str(err))
            reason = "RenderTemplateParamsError" if "template" in msg or "spec.template" in msg else \
                "ApplicationGenerationFromParamsError"
            self._status(obj, error=f"{self.key}: {msg}", reason=reason)
            log.record(COMPONENT, "GenerationFailed", self.key, detail={"message": msg, "reason": reason})
            return self._requeue(gits)
        uid = obj["metadata"].get("uid")
        existing = {a["metadata"]["name"]: a for a in mgmt.list(API_VERSION, APPLICATION_KIND, ns)
                    if any(r.get("uid") == uid for r in a["metadata"].get("ownerReferences") or [])}
        errors: list[str] = []
        wanted = set()
        for app in desired:
            name = app["metadata"]["name"]
            wanted.add(name)
            if name in existing:
                if not spec.allows_update:
                    continue
                before = existing[name]["metadata"].get("resourceVersion")
                try:
                    res = mgmt.apply(app, field_manager=FIELD_MANAGER, force=True)
                except ApiError as err:
                    errors.append(err.message)
                    continue
                if res["metadata"].get("resourceVersion") != before:
                    log.record(COMPONENT, "ApplicationUpdated", f"{APPLICATION_KIND}/{ns}/{name}",
                                    detail={"applicationSet": self.name})
                continue
            try:
                other = mgmt.get(API_VERSION, APPLICATION_KIND, name, ns)
            except ApiError as err:  # one failed call fails this Application, not the whole reconcile
                errors.append(err.message)
                continue
            if other is not None:
                errors.append(f"attempting to create application {name} but it already exists and is not owned by "
                              f"ApplicationSet {self.name}")
                continue
            try:
                mgmt.apply(app, field_manager=FIELD_MANAGER, force=True)
            except ApiError as err:
                errors.append(err.message)
                continue
            log.record(COMPONENT, "ApplicationCreated", f"{APPLICATION_KIND}/{ns}/{name}",
                            detail={"applicationSet": self.name})
        if spec.allows_delete:
            for name, app in sorted(existing.items()):
                if name in wanted:
                    continue
                try:
                    if spec.preserve_resources_on_deletion:
                        fins = [f for f in app["metadata"].get("finalizers") or []
                                if not f.startswith(RESOURCES_FINALIZER)]
                        if fins != (app["metadata"].get("finalizers") or []):
                            upd = json.loads(json.dumps(app))
                            upd["metadata"]["finalizers"] = fins
                            upd["metadata"].pop("managedFields", None)
                            mgmt.update(upd, field_manager=FIELD_MANAGER)
                    mgmt.delete(API_VERSION, APPLICATION_KIND, name, ns)
                except ApiError as err:
                    errors.append(err.message)
                    continue
                log.record(COMPONENT, "ApplicationDeleted", f"{APPLICATION_KIND}/{ns}/{name}",
                                detail={"applicationSet": self.name})
        self._status(obj, error="; ".join(errors), reason="ApplicationSetUpToDate" if not errors else "CreateApplicationError",
                     apps=sorted(wanted))
        log.record(COMPONENT, "Reconciled", self.key, detail={"applications": len(wanted),
                                                                   "policy": spec.applications_sync,
                                                                   "errors": len(errors)})
        if errors:
            # Reconcile returns the first error: controller-runtime requeues with the per-item back-off
            # (5 ms doubling, capped at 1000 s) instead of waiting for the generators' requeueAfterSeconds
            raise _ApplyFailed(message=errors[0], reason="CreateApplicationError")
        return self._requeue(gits)

    def _requeue(self, gits: list[GitGenerator]) -> Outcome:
        """Git generators are read again after ``requeueAfterSeconds`` (the smallest one); others never."""
        if not gits:
            return DONE
        return RequeueAfter(min(g.requeue_after if g.requeue_after is not None else self.settings.timings.appset_requeue
                                for g in gits))

    def _status(self, obj: dict[str, Any], *, error: str, reason: str, apps: Iterable[str] = ()) -> None:
        now = timestamp(self.env.now)
        if error:
            conds = [{"type": "ErrorOccurred", "status": "True", "reason": reason, "message": error,
                      "lastTransitionTime": now},
                     {"type": "ResourcesUpToDate", "status": "False", "reason": "ErrorOccurred", "message": error,
                      "lastTransitionTime": now}]
        else:
            conds = [{"type": "ErrorOccurred", "status": "False", "reason": reason,
                      "message": "Successfully generated parameters for all Applications", "lastTransitionTime": now},
                     {"type": "ParametersGenerated", "status": "True", "reason": "ParametersGenerated",
                      "message": "Successfully generated parameters for all Applications", "lastTransitionTime": now},
                     {"type": "ResourcesUpToDate", "status": "True", "reason": "ApplicationSetUpToDate",
                      "message": "All applications have been generated successfully", "lastTransitionTime": now}]
        old = obj.get("status") or {}
        prev = {c.get("type"): c for c in old.get("conditions") or []}
        for c in conds:
            p = prev.get(c["type"])
            if p and p.get("status") == c["status"] and p.get("message") == c["message"]:
                c["lastTransitionTime"] = p.get("lastTransitionTime", now)
        status = {"conditions": conds}
        if apps:
            status["resources"] = [{"group": "argoproj.io", "version": "v1alpha1", "kind": APPLICATION_KIND,
                                    "namespace": self.settings.namespace, "name": n} for n in apps]
        try:
            self.mgmt.patch_status(API_VERSION, APPLICATIONSET_KIND, self.name, self.namespace, status,
                                          field_manager=FIELD_MANAGER)
        except ApiError:
            pass

