"""Argo CD's ``Application`` and ``ApplicationSet``, read and validated as Argo's docs write them.

The Argo CD dialect accepts the real YAML (``argoproj.io/v1alpha1``), the way
``docs/operator-manual/application.yaml`` and ``applicationset.yaml`` spell it,
and turns it into frozen dataclasses the controllers work from.  Validation
follows the CRDs' OpenAPI schemas (``required: [destination, project]``, types,
enums) plus the checks Argo's API server and controller make on top
(``application destination can't have both name and server defined``), so that
whatever a real installation would refuse is refused here — with one
``LabkitError`` naming the file and the field path instead of a traceback::

    apps/web.yaml: spec.syncPolicy.syncOptions[1]: unknown sync option "Prune=flase" ...
    apps/web.yaml: spec.destination: application destination can't have both name and server defined: prod https://prod

Application (``ApplicationSpec``)
---------------------------------
``project`` (required), ``destination`` (required: ``server`` *or* ``name``,
and ``namespace``), ``source`` (``repoURL`` required, ``path`` default the
repository root, ``targetRevision`` default ``HEAD``; a ``kustomize`` block is
accepted and kept in ``extra``; ``helm``/``chart``/``plugin`` sources and
multi-source ``sources`` are refused with a clear "not supported by labkit"),
``syncPolicy`` (``automated`` with ``prune``/``selfHeal``/``allowEmpty``/
``enabled``, all default false — ``enabled`` defaults to true when the block is
present; ``syncOptions``; ``retry`` with ``limit`` and ``backoff``
``duration``/``factor``/``maxDuration``, defaults 5s / 2 / 3m — a duration
without a unit is seconds, as Argo reads it), ``ignoreDifferences`` (``group``,
``kind`` required, ``name``, ``namespace``, ``jsonPointers``,
``jqPathExpressions``, ``managedFieldsManagers``), ``revisionHistoryLimit``
(default 10).  Unknown fields are errors (``kubectl apply`` strict field
validation), except ``info`` and ``syncPolicy.managedNamespaceMetadata`` which
are accepted and ignored.

Sync options are ``Key=Value`` strings from a closed list (Argo's
``common.SyncOption*`` constants): ``Validate``, ``SkipDryRunOnMissingResource``,
``Prune`` (``false``/``confirm``), ``Delete`` (``false``/``confirm``),
``PruneLast``, ``PrunePropagationPolicy`` (``foreground``/``background``/
``orphan``), ``Replace``, ``Force``, ``ServerSideApply``, ``CreateNamespace``,
``RespectIgnoreDifferences``, ``ApplyOutOfSyncOnly``, ``FailOnSharedResource``,
``ClientSideApplyMigration``.  ``SyncOptions`` answers "is ``Key=Value`` set",
with the object's own ``argocd.argoproj.io/sync-options`` annotation winning
over the application-wide list for the keys it names.

ApplicationSet (``ApplicationSetSpec``)
---------------------------------------
``generators`` (``list``, ``clusters``, ``git`` with ``directories`` or
``files``, ``matrix`` of exactly two children), ``template`` (an Application
``metadata`` + ``spec``, checked after rendering), ``goTemplate``,
``goTemplateOptions``, ``syncPolicy.applicationsSync`` (``create-only``,
``create-update``, ``create-delete``, ``sync`` — the default) and
``syncPolicy.preserveResourcesOnDeletion``.  Generator-level ``template``
overrides are accepted and merged.  Whatever depends on generated parameters
(rendered names, destinations) is validated per generated Application by
``parse_application`` and reported as an ApplicationSet condition.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from labkit.core.duration import parse_duration
from labkit.core.errors import LabkitError
from labkit.core.specreader import SpecReader, show

__all__ = [
    "API_VERSION",
    "GROUP",
    "APPLICATION_KIND",
    "APPLICATIONSET_KIND",
    "RESOURCES_FINALIZER",
    "RESOURCES_FINALIZERS",
    "SYNC_OPTIONS_ANNOTATION",
    "SYNC_OPTION_VALUES",
    "APPLICATIONS_SYNC_POLICIES",
    "Destination",
    "Source",
    "Automated",
    "Backoff",
    "Retry",
    "SyncPolicy",
    "IgnoreDifference",
    "ApplicationSpec",
    "SyncOptions",
    "parse_sync_options",
    "parse_application",
    "ListGenerator",
    "ClusterGenerator",
    "GitDirectory",
    "GitGenerator",
    "MatrixGenerator",
    "Generator",
    "ApplicationSetSpec",
    "parse_applicationset",
    "parse_backoff_duration",
    "validate_name",
]

GROUP = "argoproj.io"
API_VERSION = f"{GROUP}/v1alpha1"
APPLICATION_KIND = "Application"
APPLICATIONSET_KIND = "ApplicationSet"
RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
RESOURCES_FINALIZERS = (
    RESOURCES_FINALIZER,
    f"{RESOURCES_FINALIZER}/foreground",
    f"{RESOURCES_FINALIZER}/background",
)
SYNC_OPTIONS_ANNOTATION = "argocd.argoproj.io/sync-options"

#: Every sync option Argo CD knows, with the values it acts on (None: any value).
SYNC_OPTION_VALUES: dict[str, tuple[str, ...] | None] = {
    "Validate": ("true", "false"),
    "SkipDryRunOnMissingResource": ("true", "false"),
    "Prune": ("true", "false", "confirm"),
    "Delete": ("true", "false", "confirm"),
    "PruneLast": ("true", "false"),
    "PrunePropagationPolicy": ("foreground", "background", "orphan"),
    "Replace": ("true", "false"),
    "Force": ("true", "false"),
    "ServerSideApply": ("true", "false"),
    "ClientSideApplyMigration": ("true", "false"),
    "CreateNamespace": ("true", "false"),
    "RespectIgnoreDifferences": ("true", "false"),
    "ApplyOutOfSyncOnly": ("true", "false"),
    "FailOnSharedResource": ("true", "false"),
}
APPLICATIONS_SYNC_POLICIES = ("create-only", "create-update", "create-delete", "sync")

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

DEFAULT_RETRY_DURATION = 5.0
DEFAULT_RETRY_FACTOR = 2.0
DEFAULT_RETRY_MAX_DURATION = 180.0
DEFAULT_REVISION_HISTORY_LIMIT = 10


# ------------------------------------------------------------------ reading helpers


_show = show


class _Reader(SpecReader):
    """``SpecReader`` plus Argo's integers and string lists."""

    def integer(self, m: Mapping[str, Any], key: str, path: str, default: int | None = None) -> int | None:
        v = m.get(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(f"{path}.{key}", f"must be an integer, got {_show(v)}")
        return v

    def strings(self, m: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        out = []
        for i, v in enumerate(self.items(m, key, path)):
            if not isinstance(v, str):
                raise self.fail(f"{path}.{key}[{i}]", f"must be a string, got {_show(v)}")
            out.append(v)
        return tuple(out)


def validate_name(name: str, *, file: str | None = None, field_path: str = "metadata.name") -> None:
    """A Kubernetes object name (DNS-1123 subdomain), with the API server's message."""
    if len(name) > 253:
        raise LabkitError(f'Invalid value: "{name}": must be no more than 253 characters', file=file, field=field_path)
    if not _DNS_SUBDOMAIN.match(name):
        raise LabkitError(
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
            "characters, '-' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            file=file, field=field_path,
        )


def parse_backoff_duration(value: Any, *, field_path: str, file: str | None = None) -> float:
    """Argo's backoff durations: a bare integer string is seconds, otherwise a Go duration (``"2m"``)."""
    if isinstance(value, bool):
        raise LabkitError(f"must be a duration such as \"5s\", got {_show(value)}", file=file, field=field_path)
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise LabkitError(f"must be a duration such as \"5s\", got {_show(value)}", file=file, field=field_path)
    if re.fullmatch(r"[0-9]+", value.strip()):
        return float(int(value.strip()))
    return parse_duration(value, field=field_path, file=file)


# ------------------------------------------------------------------ sync options


def parse_sync_options(items: Iterable[str], *, field_path: str = "", file: str | None = None,
                       strict: bool = True) -> dict[str, str]:
    """``["Prune=false", "ServerSideApply=true"]`` → ``{"Prune": "false", ...}``.

    ``strict`` (the Application spec) refuses unknown keys and values; the
    per-object annotation is read leniently, as Argo does (an option it does not
    know is simply never matched).
    """
    out: dict[str, str] = {}
    for i, raw in enumerate(items):
        item = raw.strip()
        if not item:
            continue
        where = f"{field_path}[{i}]" if field_path else field_path
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if strict:
            if not sep or key not in SYNC_OPTION_VALUES:
                known = ", ".join(f"{k}=..." for k in SYNC_OPTION_VALUES)
                raise LabkitError(f'unknown sync option "{raw}" (known options: {known})', file=file, field=where)
            allowed = SYNC_OPTION_VALUES[key]
            if allowed is not None and value not in allowed:
                raise LabkitError(f'invalid value "{value}" for sync option {key}: expected one of {", ".join(allowed)}',
                                  file=file, field=where)
        if sep:
            out[key] = value
    return out


@dataclass(frozen=True)
class SyncOptions:
    """The effective sync options of one object: its annotation wins over the app-wide list per key."""

    app: Mapping[str, str] = field(default_factory=dict)
    obj: Mapping[str, str] = field(default_factory=dict)

    def value(self, key: str) -> str | None:
        if key in self.obj:
            return self.obj[key]
        return self.app.get(key)

    def has(self, key: str, value: str) -> bool:
        v = self.value(key)
        return v is not None and v == value

    def enabled(self, key: str) -> bool:
        return self.has(key, "true")

    @classmethod
    def for_object(cls, app_options: Mapping[str, str], obj: Mapping[str, Any] | None) -> "SyncOptions":
        if not obj:
            return cls(app_options, {})
        ann = ((obj.get("metadata") or {}).get("annotations") or {}).get(SYNC_OPTIONS_ANNOTATION)
        if not ann or not isinstance(ann, str):
            return cls(app_options, {})
        return cls(app_options, parse_sync_options(ann.split(","), strict=False))


# ------------------------------------------------------------------ Application


@dataclass(frozen=True)
class Destination:
    server: str = ""
    name: str = ""
    namespace: str = ""


@dataclass(frozen=True)
class Source:
    repo_url: str
    path: str = ""
    target_revision: str = "HEAD"
    directory_recurse: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[str, str]:
        """What identifies the source apart from its target revision (Argo compares sources without it)."""
        return (self.repo_url, self.path)


@dataclass(frozen=True)
class Automated:
    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class Backoff:
    duration: float = DEFAULT_RETRY_DURATION
    factor: float = DEFAULT_RETRY_FACTOR
    max_duration: float = DEFAULT_RETRY_MAX_DURATION

    def wait(self, retry_count: int) -> float:
        """``NextRetryAt``: ``min(maxDuration, duration * factor ** retryCount)``."""
        w = self.duration * (self.factor ** retry_count)
        return min(self.max_duration, w) if self.max_duration > 0 else w


@dataclass(frozen=True)
class Retry:
    limit: int = 0
    backoff: Backoff = field(default_factory=Backoff)
    refresh: bool = False

    def allows(self, retry_count: int) -> bool:
        return self.limit < 0 or retry_count < self.limit


@dataclass(frozen=True)
class SyncPolicy:
    automated: Automated | None = None
    sync_options: Mapping[str, str] = field(default_factory=dict)
    retry: Retry | None = None

    @property
    def auto(self) -> bool:
        return self.automated is not None and self.automated.enabled


@dataclass(frozen=True)
class IgnoreDifference:
    """One ``ignoreDifferences`` entry (or a system-wide one from argocd-cm)."""

    kind: str
    group: str = ""
    name: str = ""
    namespace: str = ""
    json_pointers: tuple[str, ...] = ()
    jq_path_expressions: tuple[str, ...] = ()
    managed_fields_managers: tuple[str, ...] = ()
    where: str = ""  # field path or config key, for error messages

    def matches(self, group: str, kind: str, name: str, namespace: str) -> bool:
        if self.kind not in ("", "*") and self.kind != kind:
            return False
        if self.group not in ("*",) and self.group != group:
            return False
        if self.name and self.name != name:
            return False
        if self.namespace and self.namespace != namespace:
            return False
        return True


@dataclass(frozen=True)
class ApplicationSpec:
    """A validated ``argoproj.io/v1alpha1`` Application."""

    name: str
    namespace: str
    project: str
    destination: Destination
    source: Source
    sync_policy: SyncPolicy = field(default_factory=SyncPolicy)
    ignore_differences: tuple[IgnoreDifference, ...] = ()
    revision_history_limit: int = DEFAULT_REVISION_HISTORY_LIMIT
    finalizers: tuple[str, ...] = ()

    @property
    def cascade(self) -> str | None:
        """``foreground``/``background`` when a resources finalizer asks for cascading deletion, else None."""
        for f in self.finalizers:
            if f in (RESOURCES_FINALIZER, f"{RESOURCES_FINALIZER}/foreground"):
                return "Foreground"
            if f == f"{RESOURCES_FINALIZER}/background":
                return "Background"
        return None


_APP_SPEC_FIELDS = {"project", "destination", "source", "sources", "syncPolicy", "ignoreDifferences",
                    "revisionHistoryLimit", "info", "sourceHydrator"}
_SOURCE_FIELDS = {"repoURL", "path", "targetRevision", "kustomize", "directory", "helm", "chart", "plugin", "ref", "name"}


def _header(obj: Any, kind: str, file: str | None, default_namespace: str) -> tuple[_Reader, str, str, dict[str, Any], dict]:
    if not isinstance(obj, Mapping):
        raise LabkitError(f"expected an {kind} object, got {_show(obj)}", file=file)
    r = _Reader(file)
    if obj.get("kind") != kind:
        raise r.fail("kind", f'expected "{kind}", got {_show(obj.get("kind"))}')
    if obj.get("apiVersion") != API_VERSION:
        raise r.fail("apiVersion", f'unsupported apiVersion {_show(obj.get("apiVersion"))} for {kind}: supported: {API_VERSION}')
    md = r.mapping(obj.get("metadata"), "metadata", required=True) or {}
    name = r.text(md, "name", "metadata", required=True)
    validate_name(name, file=file)
    namespace = r.text(md, "namespace", "metadata", default=default_namespace) or default_namespace
    spec = r.mapping(obj.get("spec"), "spec", required=True) or {}
    for key in obj:
        if key not in ("apiVersion", "kind", "metadata", "spec", "status", "operation"):
            raise r.fail(str(key), "unknown field")
    return r, name, namespace, spec, md


def _source(r: _Reader, m: dict, path: str) -> Source:
    r.known(m, path, _SOURCE_FIELDS)
    for unsupported in ("helm", "chart", "plugin"):
        if unsupported in m:
            raise r.fail(f"{path}.{unsupported}", f"{unsupported} sources are not supported by labkit "
                                                     "(only git directories and kustomize)")
    repo = r.text(m, "repoURL", path, required=True)
    src_path = r.text(m, "path", path)
    if src_path.startswith("/") or ".." in src_path.split("/"):
        raise r.fail(f"{path}.path", f'"{src_path}": the path must be relative to the repository root and stay inside it')
    rev = r.text(m, "targetRevision", path) or "HEAD"
    recurse = False
    directory = r.mapping(m.get("directory"), f"{path}.directory")
    if directory is not None:
        recurse = r.flag(directory, "recurse", f"{path}.directory")
    extra = {k: v for k, v in m.items() if k in ("kustomize", "directory")}
    return Source(repo, src_path.strip("/") if src_path not in ("", ".", "./") else "", rev, recurse, extra)


def _retry(r: _Reader, m: dict, path: str) -> Retry:
    r.known(m, path, {"limit", "backoff", "refresh"})
    limit = r.integer(m, "limit", path, default=0)
    b = r.mapping(m.get("backoff"), f"{path}.backoff") or {}
    r.known(b, f"{path}.backoff", {"duration", "factor", "maxDuration"})
    duration = DEFAULT_RETRY_DURATION
    if b.get("duration") is not None:
        duration = parse_backoff_duration(b["duration"], field_path=f"{path}.backoff.duration", file=r.file)
    factor = b.get("factor", DEFAULT_RETRY_FACTOR)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 1:
        raise r.fail(f"{path}.backoff.factor", f"must be a number >= 1, got {_show(factor)}")
    max_duration = DEFAULT_RETRY_MAX_DURATION
    if b.get("maxDuration") is not None:
        max_duration = parse_backoff_duration(b["maxDuration"], field_path=f"{path}.backoff.maxDuration", file=r.file)
    return Retry(int(limit or 0), Backoff(duration, float(factor), max_duration), r.flag(m, "refresh", path))


def _ignore_differences(r: _Reader, items: list, path: str) -> tuple[IgnoreDifference, ...]:
    out = []
    for i, raw in enumerate(items):
        p = f"{path}[{i}]"
        m = r.mapping(raw, p, required=True) or {}
        r.known(m, p, {"group", "kind", "name", "namespace", "jsonPointers", "jqPathExpressions", "managedFieldsManagers"})
        kind = r.text(m, "kind", p, required=True)
        pointers = r.strings(m, "jsonPointers", p)
        for j, ptr in enumerate(pointers):
            if not ptr.startswith("/"):
                raise r.fail(f"{p}.jsonPointers[{j}]", f'invalid JSON pointer "{ptr}": must start with "/"')
        jq = r.strings(m, "jqPathExpressions", p)
        from labkit.argo.jqpath import compile_path

        for j, expr in enumerate(jq):
            try:
                compile_path(expr)
            except LabkitError as err:
                raise r.fail(f"{p}.jqPathExpressions[{j}]", err.detail) from None
        out.append(IgnoreDifference(
            kind=kind, group=r.text(m, "group", p), name=r.text(m, "name", p), namespace=r.text(m, "namespace", p),
            json_pointers=pointers, jq_path_expressions=jq,
            managed_fields_managers=r.strings(m, "managedFieldsManagers", p), where=p,
        ))
    return tuple(out)


def parse_application(obj: Any, file: str | None = None, *, default_namespace: str = "argocd") -> ApplicationSpec:
    """Validate an Application (see module docstring); raises ``LabkitError`` naming file and field."""
    r, name, namespace, spec, md = _header(obj, APPLICATION_KIND, file, default_namespace)
    r.known(spec, "spec", _APP_SPEC_FIELDS)
    if "sources" in spec and spec.get("sources") is not None:
        raise r.fail("spec.sources", "multiple sources are not supported by labkit: use spec.source")
    if "sourceHydrator" in spec:
        raise r.fail("spec.sourceHydrator", "source hydration is not supported by labkit")
    project = r.text(spec, "project", "spec", required=True)
    dm = r.mapping(spec.get("destination"), "spec.destination", required=True) or {}
    r.known(dm, "spec.destination", {"server", "name", "namespace"})
    dest = Destination(r.text(dm, "server", "spec.destination"), r.text(dm, "name", "spec.destination"),
                       r.text(dm, "namespace", "spec.destination"))
    if dest.server and dest.name:
        raise r.fail("spec.destination", "application destination can't have both name and server defined: "
                                          f"{dest.name} {dest.server}")
    if not dest.server and not dest.name:
        raise r.fail("spec.destination", "application destination server and/or name must be set")
    if dest.namespace and not _DNS_LABEL.match(dest.namespace):
        raise r.fail("spec.destination.namespace", f'Invalid value: "{dest.namespace}": a lowercase RFC 1123 label '
                                                   "must consist of lower case alphanumeric characters or '-'")
    sm = r.mapping(spec.get("source"), "spec.source", required=True) or {}
    source = _source(r, sm, "spec.source")
    policy = SyncPolicy()
    pm = r.mapping(spec.get("syncPolicy"), "spec.syncPolicy")
    if pm is not None:
        r.known(pm, "spec.syncPolicy", {"automated", "syncOptions", "retry", "managedNamespaceMetadata"})
        automated = None
        if "automated" in pm:
            am = r.mapping(pm.get("automated"), "spec.syncPolicy.automated")
            am = am if am is not None else {}
            r.known(am, "spec.syncPolicy.automated", {"prune", "selfHeal", "allowEmpty", "enabled"})
            automated = Automated(r.flag(am, "prune", "spec.syncPolicy.automated"),
                                  r.flag(am, "selfHeal", "spec.syncPolicy.automated"),
                                  r.flag(am, "allowEmpty", "spec.syncPolicy.automated"),
                                  r.flag(am, "enabled", "spec.syncPolicy.automated", default=True))
        options = parse_sync_options(r.strings(pm, "syncOptions", "spec.syncPolicy"),
                                     field_path="spec.syncPolicy.syncOptions", file=file)
        rm = r.mapping(pm.get("retry"), "spec.syncPolicy.retry")
        retry = _retry(r, rm, "spec.syncPolicy.retry") if rm is not None else None
        policy = SyncPolicy(automated, options, retry)
    ignores = _ignore_differences(r, r.items(spec, "ignoreDifferences", "spec"), "spec.ignoreDifferences")
    limit = r.integer(spec, "revisionHistoryLimit", "spec", default=DEFAULT_REVISION_HISTORY_LIMIT)
    finalizers = tuple(f for f in (md.get("finalizers") or []) if isinstance(f, str))
    return ApplicationSpec(name, namespace, project, dest, source, policy, ignores,
                           DEFAULT_REVISION_HISTORY_LIMIT if limit is None else limit, finalizers)


# ------------------------------------------------------------------ ApplicationSet


@dataclass(frozen=True)
class ListGenerator:
    elements: tuple[Mapping[str, Any], ...]
    template: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ClusterGenerator:
    match_labels: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, str] = field(default_factory=dict)
    template: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class GitDirectory:
    path: str
    exclude: bool = False


@dataclass(frozen=True)
class GitGenerator:
    repo_url: str
    revision: str = "HEAD"
    directories: tuple[GitDirectory, ...] = ()
    files: tuple[str, ...] = ()
    requeue_after: float | None = None
    path_param_prefix: str = ""
    values: Mapping[str, str] = field(default_factory=dict)
    template: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class MatrixGenerator:
    generators: tuple["Generator", ...]
    template: Mapping[str, Any] | None = None


Generator = ListGenerator | ClusterGenerator | GitGenerator | MatrixGenerator


@dataclass(frozen=True)
class ApplicationSetSpec:
    name: str
    namespace: str
    generators: tuple[Generator, ...]
    template: Mapping[str, Any]
    go_template: bool = False
    go_template_options: tuple[str, ...] = ()
    applications_sync: str = "sync"
    preserve_resources_on_deletion: bool = False

    @property
    def allows_update(self) -> bool:
        return self.applications_sync in ("sync", "create-update")

    @property
    def allows_delete(self) -> bool:
        return self.applications_sync in ("sync", "create-delete")


def _generator(r: _Reader, raw: Any, path: str, depth: int = 0) -> Generator:
    m = r.mapping(raw, path, required=True) or {}
    kinds = [k for k in m if k != "selector"]
    supported = ("list", "clusters", "git", "matrix")
    if len(kinds) != 1:
        raise r.fail(path, f"a generator must have exactly one of {', '.join(supported)}, got {len(kinds)}")
    kind = kinds[0]
    if kind not in supported:
        raise r.fail(f"{path}.{kind}", f"generator {kind!r} is not supported by labkit (supported: {', '.join(supported)})")
    p = f"{path}.{kind}"
    g = r.mapping(m[kind], p) or {}
    template = r.mapping(g.get("template"), f"{p}.template")
    if kind == "list":
        r.known(g, p, {"elements", "elementsYaml", "template"})
        if "elementsYaml" in g:
            raise r.fail(f"{p}.elementsYaml", "elementsYaml is not supported by labkit: use elements")
        elements = []
        for i, e in enumerate(r.items(g, "elements", p)):
            em = r.mapping(e, f"{p}.elements[{i}]", required=True)
            elements.append(em or {})
        return ListGenerator(tuple(elements), template)
    if kind == "clusters":
        r.known(g, p, {"selector", "values", "template"})
        sel = r.mapping(g.get("selector"), f"{p}.selector") or {}
        r.known(sel, f"{p}.selector", {"matchLabels"})
        labels = r.mapping(sel.get("matchLabels"), f"{p}.selector.matchLabels") or {}
        values = r.mapping(g.get("values"), f"{p}.values") or {}
        return ClusterGenerator({str(k): str(v) for k, v in labels.items()},
                                {str(k): str(v) for k, v in values.items()}, template)
    if kind == "git":
        r.known(g, p, {"repoURL", "revision", "directories", "files", "requeueAfterSeconds", "pathParamPrefix",
                       "values", "template"})
        repo = r.text(g, "repoURL", p, required=True)
        dirs = []
        for i, d in enumerate(r.items(g, "directories", p)):
            dm = r.mapping(d, f"{p}.directories[{i}]", required=True) or {}
            r.known(dm, f"{p}.directories[{i}]", {"path", "exclude"})
            dirs.append(GitDirectory(r.text(dm, "path", f"{p}.directories[{i}]", required=True),
                                     r.flag(dm, "exclude", f"{p}.directories[{i}]")))
        files = []
        for i, f in enumerate(r.items(g, "files", p)):
            fm = r.mapping(f, f"{p}.files[{i}]", required=True) or {}
            r.known(fm, f"{p}.files[{i}]", {"path", "exclude"})
            files.append(r.text(fm, "path", f"{p}.files[{i}]", required=True))
        if not dirs and not files:
            raise r.fail(p, "a git generator needs directories or files")
        if dirs and files:
            raise r.fail(p, "a git generator takes directories or files, not both")
        requeue = r.integer(g, "requeueAfterSeconds", p)
        values = r.mapping(g.get("values"), f"{p}.values") or {}
        return GitGenerator(repo, r.text(g, "revision", p) or "HEAD", tuple(dirs), tuple(files),
                            None if requeue is None else float(requeue), r.text(g, "pathParamPrefix", p),
                            {str(k): str(v) for k, v in values.items()}, template)
    r.known(g, p, {"generators", "template"})
    if depth >= 1:
        raise r.fail(p, "nested matrix generators are not supported by labkit")
    children = r.items(g, "generators", p)
    if len(children) != 2:
        raise r.fail(f"{p}.generators", f"a matrix generator needs exactly 2 child generators, got {len(children)}")
    return MatrixGenerator(tuple(_generator(r, c, f"{p}.generators[{i}]", depth + 1) for i, c in enumerate(children)),
                           template)


def parse_applicationset(obj: Any, file: str | None = None, *, default_namespace: str = "argocd") -> ApplicationSetSpec:
    """Validate an ApplicationSet's structure (see module docstring)."""
    r, name, namespace, spec, _md = _header(obj, APPLICATIONSET_KIND, file, default_namespace)
    r.known(spec, "spec", {"generators", "template", "goTemplate", "goTemplateOptions", "syncPolicy", "strategy",
                           "preservedFields", "ignoreApplicationDifferences", "templatePatch"})
    if "templatePatch" in spec:
        raise r.fail("spec.templatePatch", "templatePatch is not supported by labkit")
    gens = r.items(spec, "generators", "spec")
    if not gens:
        raise r.fail("spec.generators", "required field missing")
    generators = tuple(_generator(r, g, f"spec.generators[{i}]") for i, g in enumerate(gens))
    template = r.mapping(spec.get("template"), "spec.template", required=True) or {}
    r.known(template, "spec.template", {"metadata", "spec"})
    tmd = r.mapping(template.get("metadata"), "spec.template.metadata", required=True) or {}
    r.known(tmd, "spec.template.metadata", {"name", "namespace", "labels", "annotations", "finalizers"})
    r.mapping(template.get("spec"), "spec.template.spec", required=True)
    go = r.flag(spec, "goTemplate", "spec")
    options = r.strings(spec, "goTemplateOptions", "spec")
    for i, o in enumerate(options):
        if o not in ("missingkey=error", "missingkey=zero", "missingkey=default", "missingkey=invalid"):
            raise r.fail(f"spec.goTemplateOptions[{i}]", f'unsupported option "{o}" (supported: missingkey=error|zero|default)')
    policy = "sync"
    preserve = False
    pm = r.mapping(spec.get("syncPolicy"), "spec.syncPolicy")
    if pm is not None:
        r.known(pm, "spec.syncPolicy", {"applicationsSync", "preserveResourcesOnDeletion"})
        policy = r.text(pm, "applicationsSync", "spec.syncPolicy") or "sync"
        if policy not in APPLICATIONS_SYNC_POLICIES:
            raise r.fail("spec.syncPolicy.applicationsSync",
                         f'unsupported value "{policy}": supported values: {", ".join(APPLICATIONS_SYNC_POLICIES)}')
        preserve = r.flag(pm, "preserveResourcesOnDeletion", "spec.syncPolicy")
    return ApplicationSetSpec(name, namespace, generators, template, go, options, policy, preserve)
