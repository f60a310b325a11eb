"""Flux's ``GitRepository`` and ``Kustomization`` objects, read and validated.

The Flux dialect accepts the real YAML, exactly as Flux's documentation writes it
(source-controller ``docs/spec/v1/gitrepositories.md``, kustomize-controller
``docs/spec/v1/kustomizations.md``), and turns it into typed dataclasses the
controllers work from.  Validation follows the CRDs' OpenAPI schemas
(``api/v1/*_types.go`` kubebuilder markers) so that what a real API server would
reject is rejected here, with one clear ``LabkitError`` naming the file and the
field path instead of a traceback::

    clusters/dev/apps.yaml: spec.prune: required field missing
    clusters/dev/apps.yaml: spec.interval: invalid duration "1x": must match ^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$

Supported API versions: ``source.toolkit.fluxcd.io/v1`` (GitRepository) and
``kustomize.toolkit.fluxcd.io/v1`` (Kustomization); anything else for these kinds
is an error that lists the supported version.  Unknown spec fields are errors
too (``spec.intervl: unknown field``, as ``kubectl apply``'s strict field
validation reports them); upstream fields labkit does not model (``patches``,
``images``, ``verify``, ``include``, ...) are accepted and kept in ``extra``.

GitRepository (``GitRepositorySpec``)
-------------------------------------
``url`` (required; ``http``, ``https`` or ``ssh`` as in the CRD pattern, and
``file://`` which labkit adds for its local bare repositories), ``interval``
(required), ``timeout`` (default ``60s``; the CRD pattern has no hours), ``ref``
(``branch`` / ``tag`` / ``semver`` / ``name`` / ``commit``, later ones taking
precedence, ``commit`` over all; default branch ``master``), ``secretRef``,
``ignore`` (a ``.gitignore``-syntax string), ``suspend``.

Kustomization (``KustomizationSpec``)
-------------------------------------
``interval`` (required), ``retryInterval`` (defaults to ``interval``), ``timeout``
(``GetTimeout`` in ``api/v1/kustomization_types.go``: when unset,
``interval - 30s``; the result is never below 30 s — note the docs' "defaults to
interval" is older than the code, and where docs and code disagree the code
wins), ``sourceRef`` (required; kind GitRepository, OCIRepository, Bucket or
ExternalArtifact; namespace defaults to the Kustomization's), ``path`` (default
root, ``"./"``), ``prune`` (required boolean), ``wait``, ``healthChecks``
(``apiVersion``, ``kind``, ``name``, ``namespace``), ``dependsOn`` (``name``,
``namespace`` defaulting to the Kustomization's), ``force``, ``suspend``,
``targetNamespace`` (1-63 characters), ``postBuild`` (``substitute``: string
values only — quote numbers and booleans, as Flux requires — with names
matching ``^[_[:alpha:]][_[:alpha:][:digit:]]*$``; ``substituteFrom``: ``kind``
ConfigMap or Secret, ``name``, ``optional``), ``decryption`` (``provider: sops``,
``secretRef``), ``deletionPolicy`` (``MirrorPrune`` — the default: delete the
inventory on deletion when ``prune`` is true — ``Delete``, ``WaitForTermination``
or ``Orphan``).

``ignore`` is the newest field (kustomize-controller PR #1627, "drift ignore
rules"): a list of ``{paths: [JSON pointers], target: {group, version, kind,
name, namespace, labelSelector, annotationSelector}}``; the listed fields are
excluded from drift detection and from the apply, which is the official fix for
the HPA-vs-``replicas`` fight.  labkit also accepts a bare JSON-pointer string
as a list item (``ignore: ["/spec/replicas"]``), the shorthand of the shared
reference notes, read as a rule with no target.  Rules become
``labkit.engine.normalize.IgnoreRule`` objects.

Durations are stored in seconds (floats); the original text is not kept.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from labkit.core.duration import FLUX_DURATION_PATTERN, FLUX_GIT_TIMEOUT_PATTERN, parse_duration
from labkit.engine.normalize import IgnoreRule, Selector
from labkit.core.errors import LabkitError
from labkit.core.specreader import SpecReader, show

__all__ = [
    "SOURCE_API_VERSION",
    "KUSTOMIZE_API_VERSION",
    "GIT_REPOSITORY_KIND",
    "KUSTOMIZATION_KIND",
    "SOURCE_KINDS",
    "LocalObjectReference",
    "GitRepositoryRef",
    "GitRepositorySpec",
    "CrossNamespaceSourceReference",
    "HealthCheckReference",
    "DependencyReference",
    "SubstituteReference",
    "PostBuild",
    "Decryption",
    "KustomizationSpec",
    "parse_flux_object",
]

SOURCE_GROUP = "source.toolkit.fluxcd.io"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
SOURCE_API_VERSION = f"{SOURCE_GROUP}/v1"
KUSTOMIZE_API_VERSION = f"{KUSTOMIZE_GROUP}/v1"
GIT_REPOSITORY_KIND = "GitRepository"
KUSTOMIZATION_KIND = "Kustomization"
SOURCE_KINDS = ("OCIRepository", "GitRepository", "Bucket", "ExternalArtifact")
# what the finalizer does with the inventory when the Kustomization is deleted (MirrorPrune: what spec.prune says)
DELETION_POLICIES = ("MirrorPrune", "Delete", "WaitForTermination", "Orphan")
DEFAULT_NAMESPACE = "default"

_GIT_URL = re.compile(r"^(http|https|ssh|file)://.*$")
_VAR_NAME = re.compile(r"^[_A-Za-z][_A-Za-z0-9]*$")


# ------------------------------------------------------------------ reading helpers


class _Reader(SpecReader):
    """``SpecReader`` plus Flux's durations and enums."""

    def duration(
        self, m: Mapping[str, Any], key: str, path: str, *, required: bool = False, pattern: str = FLUX_DURATION_PATTERN
    ) -> float | None:
        v = m.get(key)
        if v is None:
            if required:
                raise self.fail(f"{path}.{key}", "required field missing")
            return None
        return parse_duration(v, field=f"{path}.{key}", file=self.file, pattern=pattern)

    def enum(self, m: Mapping[str, Any], key: str, path: str, allowed: tuple[str, ...], *, required: bool = True) -> str:
        v = self.text(m, key, path, required=required)
        if v and v not in allowed:
            raise self.fail(f"{path}.{key}", f'unsupported value "{v}": supported values: {", ".join(allowed)}')
        return v


_show = show


def _header(obj: Any, kind: str, api_version: str, file: str | None) -> tuple[str, str, dict[str, Any]]:
    """Check apiVersion/kind/metadata; return (name, namespace, spec map)."""
    if not isinstance(obj, Mapping):
        raise LabkitError(f"expected a {kind} object, got {_show(obj)}", file=file)
    r = _Reader(file)
    got_kind = obj.get("kind")
    if got_kind != kind:
        raise r.fail("kind", f'expected "{kind}", got {_show(got_kind)}')
    got_version = obj.get("apiVersion")
    if got_version != api_version:
        raise r.fail("apiVersion", f'unsupported apiVersion {_show(got_version)} for {kind}: supported: {api_version}')
    md = r.mapping(obj.get("metadata"), "metadata", required=True)
    assert md is not None
    name = r.text(md, "name", "metadata", required=True)
    namespace = r.text(md, "namespace", "metadata", default=DEFAULT_NAMESPACE) or DEFAULT_NAMESPACE
    spec = r.mapping(obj.get("spec"), "spec", required=True)
    assert spec is not None
    return name, namespace, spec


def _local_ref(r: _Reader, value: Any, path: str) -> "LocalObjectReference | None":
    m = r.mapping(value, path)
    if m is None:
        return None
    r.check_fields(m, path, {"name"})
    return LocalObjectReference(r.text(m, "name", path, required=True))


# ------------------------------------------------------------------ GitRepository


@dataclass(frozen=True)
class LocalObjectReference:
    """``{name: ...}`` — an object in the same namespace (Flux ``meta.LocalObjectReference``)."""

    name: str


@dataclass(frozen=True)
class GitRepositoryRef:
    """``spec.ref``: later fields take precedence (branch < tag < semver < name < commit)."""

    branch: str = ""
    tag: str = ""
    semver: str = ""
    name: str = ""
    commit: str = ""

    @property
    def resolved(self) -> tuple[str, str]:
        """The reference that wins: ``("commit", sha)``, ``("name", ...)``, ..., default ``("branch", "master")``."""
        for attr in ("commit", "name", "semver", "tag", "branch"):
            value = getattr(self, attr)
            if value:
                return attr, value
        return "branch", "master"


@dataclass(frozen=True)
class GitRepositorySpec:
    """A validated ``source.toolkit.fluxcd.io/v1`` GitRepository."""

    name: str
    namespace: str
    url: str
    interval: float
    timeout: float = 60.0
    ref: GitRepositoryRef = field(default_factory=GitRepositoryRef)
    secret_ref: LocalObjectReference | None = None
    ignore: str | None = None
    suspend: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    api_version = SOURCE_API_VERSION
    kind = GIT_REPOSITORY_KIND

    _KNOWN = {"url", "secretRef", "interval", "timeout", "ref", "ignore", "suspend"}
    _UPSTREAM_UNMODELLED = {
        "provider",
        "serviceAccountName",
        "verify",
        "proxySecretRef",
        "recurseSubmodules",
        "include",
        "sparseCheckout",
    }

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any], file: str | None = None) -> "GitRepositorySpec":
        """Validate a GitRepository object dict; LabkitError naming ``file`` and the field on error."""
        name, namespace, spec = _header(obj, GIT_REPOSITORY_KIND, SOURCE_API_VERSION, file)
        r = _Reader(file)
        r.check_fields(spec, "spec", cls._KNOWN | cls._UPSTREAM_UNMODELLED)
        url = r.text(spec, "url", "spec", required=True)
        if not _GIT_URL.match(url):
            raise r.fail("spec.url", f'invalid value "{url}": must match ^(http|https|ssh)://.*$ (or file://)')
        interval = r.duration(spec, "interval", "spec", required=True)
        timeout = r.duration(spec, "timeout", "spec", pattern=FLUX_GIT_TIMEOUT_PATTERN)
        ref_map = r.mapping(spec.get("ref"), "spec.ref") or {}
        r.check_fields(ref_map, "spec.ref", {"branch", "tag", "semver", "name", "commit"})
        ref = GitRepositoryRef(**{k: r.text(ref_map, k, "spec.ref") for k in ("branch", "tag", "semver", "name", "commit")})
        ignore = spec.get("ignore")
        if ignore is not None and not isinstance(ignore, str):
            raise r.fail("spec.ignore", f"must be a string (.gitignore patterns), got {_show(ignore)}")
        assert interval is not None
        return cls(
            name=name,
            namespace=namespace,
            url=url,
            interval=interval,
            timeout=60.0 if timeout is None else timeout,
            ref=ref,
            secret_ref=_local_ref(r, spec.get("secretRef"), "spec.secretRef"),
            ignore=ignore,
            suspend=r.flag(spec, "suspend", "spec"),
            extra={k: spec[k] for k in cls._UPSTREAM_UNMODELLED if k in spec},
        )


# ------------------------------------------------------------------ Kustomization


@dataclass(frozen=True)
class CrossNamespaceSourceReference:
    """``spec.sourceRef``: the source whose artifact holds the manifests."""

    kind: str
    name: str
    namespace: str
    api_version: str = ""


@dataclass(frozen=True)
class HealthCheckReference:
    """A ``spec.healthChecks`` item (Flux ``meta.NamespacedObjectKindReference``)."""

    kind: str
    name: str
    api_version: str = ""
    namespace: str = ""

    @property
    def resolved_api_version(self) -> str:
        """The apiVersion, ``apps/v1`` when empty (kustomize-controller's backwards-compatible default)."""
        return self.api_version or "apps/v1"


@dataclass(frozen=True)
class DependencyReference:
    """A ``spec.dependsOn`` item; ``namespace`` defaults to the Kustomization's own."""

    name: str
    namespace: str
    ready_expr: str = ""


@dataclass(frozen=True)
class SubstituteReference:
    """A ``spec.postBuild.substituteFrom`` item."""

    kind: str
    name: str
    optional: bool = False


@dataclass(frozen=True)
class PostBuild:
    substitute: dict[str, str] = field(default_factory=dict)
    substitute_from: tuple[SubstituteReference, ...] = ()


@dataclass(frozen=True)
class Decryption:
    provider: str
    secret_ref: LocalObjectReference | None = None


def _timeout(interval: float, timeout: float | None) -> float:
    """kustomize-controller ``GetTimeout``."""
    duration = interval - 30.0 if timeout is None else timeout
    return max(duration, 30.0)


@dataclass(frozen=True)
class KustomizationSpec:
    """A validated ``kustomize.toolkit.fluxcd.io/v1`` Kustomization.

    ``timeout`` and ``retry_interval`` are the effective values the controller
    uses (``GetTimeout`` / ``GetRetryInterval``); ``timeout_spec`` and
    ``retry_interval_spec`` are what the object says (None when unset).
    """

    name: str
    namespace: str
    interval: float
    source_ref: CrossNamespaceSourceReference
    prune: bool
    retry_interval: float
    timeout: float
    retry_interval_spec: float | None = None
    timeout_spec: float | None = None
    path: str = "./"
    wait: bool = False
    health_checks: tuple[HealthCheckReference, ...] = ()
    depends_on: tuple[DependencyReference, ...] = ()
    force: bool = False
    suspend: bool = False
    target_namespace: str = ""
    post_build: PostBuild | None = None
    decryption: Decryption | None = None
    ignore: tuple[IgnoreRule, ...] = ()
    deletion_policy: str = "MirrorPrune"
    extra: dict[str, Any] = field(default_factory=dict)

    api_version = KUSTOMIZE_API_VERSION
    kind = KUSTOMIZATION_KIND

    _KNOWN = {
        "interval",
        "retryInterval",
        "timeout",
        "sourceRef",
        "path",
        "prune",
        "wait",
        "healthChecks",
        "dependsOn",
        "force",
        "suspend",
        "targetNamespace",
        "postBuild",
        "decryption",
        "ignore",
        "deletionPolicy",
    }
    _UPSTREAM_UNMODELLED = {
        "commonMetadata",
        "kubeConfig",
        "patches",
        "images",
        "serviceAccountName",
        "components",
        "ignoreMissingComponents",
        "healthCheckExprs",
        "namePrefix",
        "nameSuffix",
    }

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any], file: str | None = None) -> "KustomizationSpec":
        """Validate a Kustomization object dict; LabkitError naming ``file`` and the field on error."""
        name, namespace, spec = _header(obj, KUSTOMIZATION_KIND, KUSTOMIZE_API_VERSION, file)
        r = _Reader(file)
        r.check_fields(spec, "spec", cls._KNOWN | cls._UPSTREAM_UNMODELLED)

        interval = r.duration(spec, "interval", "spec", required=True)
        assert interval is not None
        retry_spec = r.duration(spec, "retryInterval", "spec")
        timeout_spec = r.duration(spec, "timeout", "spec")

        src = r.mapping(spec.get("sourceRef"), "spec.sourceRef", required=True)
        assert src is not None
        r.check_fields(src, "spec.sourceRef", {"apiVersion", "kind", "name", "namespace"})
        source_ref = CrossNamespaceSourceReference(
            kind=r.enum(src, "kind", "spec.sourceRef", SOURCE_KINDS),
            name=r.text(src, "name", "spec.sourceRef", required=True),
            namespace=r.text(src, "namespace", "spec.sourceRef") or namespace,
            api_version=r.text(src, "apiVersion", "spec.sourceRef"),
        )

        prune = r.flag(spec, "prune", "spec", required=True)

        health_checks = []
        for i, item in enumerate(r.items(spec, "healthChecks", "spec")):
            p = f"spec.healthChecks[{i}]"
            m = r.mapping(item, p, required=True)
            assert m is not None
            r.check_fields(m, p, {"apiVersion", "kind", "name", "namespace"})
            health_checks.append(
                HealthCheckReference(
                    kind=r.text(m, "kind", p, required=True),
                    name=r.text(m, "name", p, required=True),
                    api_version=r.text(m, "apiVersion", p),
                    namespace=r.text(m, "namespace", p),
                )
            )

        depends_on = []
        for i, item in enumerate(r.items(spec, "dependsOn", "spec")):
            p = f"spec.dependsOn[{i}]"
            m = r.mapping(item, p, required=True)
            assert m is not None
            r.check_fields(m, p, {"name", "namespace", "readyExpr"})
            depends_on.append(
                DependencyReference(
                    name=r.text(m, "name", p, required=True),
                    namespace=r.text(m, "namespace", p) or namespace,
                    ready_expr=r.text(m, "readyExpr", p),
                )
            )

        target_namespace = r.text(spec, "targetNamespace", "spec")
        if "targetNamespace" in spec and not 1 <= len(target_namespace) <= 63:
            raise r.fail("spec.targetNamespace", "must be between 1 and 63 characters long")

        return cls(
            name=name,
            namespace=namespace,
            interval=interval,
            source_ref=source_ref,
            prune=prune,
            retry_interval=interval if retry_spec is None else retry_spec,
            timeout=_timeout(interval, timeout_spec),
            retry_interval_spec=retry_spec,
            timeout_spec=timeout_spec,
            path=r.text(spec, "path", "spec") or "./",
            wait=r.flag(spec, "wait", "spec"),
            health_checks=tuple(health_checks),
            depends_on=tuple(depends_on),
            force=r.flag(spec, "force", "spec"),
            suspend=r.flag(spec, "suspend", "spec"),
            target_namespace=target_namespace,
            post_build=_post_build(r, spec.get("postBuild")),
            decryption=_decryption(r, spec.get("decryption")),
            ignore=_ignore(r, spec.get("ignore")),
            deletion_policy=r.enum(spec, "deletionPolicy", "spec", DELETION_POLICIES, required=False) or "MirrorPrune",
            extra={k: spec[k] for k in cls._UPSTREAM_UNMODELLED if k in spec},
        )


def _post_build(r: _Reader, value: Any) -> PostBuild | None:
    path = "spec.postBuild"
    m = r.mapping(value, path)
    if m is None:
        return None
    r.check_fields(m, path, {"substitute", "substituteFrom"})
    subst_map = r.mapping(m.get("substitute"), f"{path}.substitute") or {}
    substitute: dict[str, str] = {}
    for key, v in subst_map.items():
        p = f"{path}.substitute.{key}"
        if not isinstance(v, str):
            raise r.fail(p, f"must be a string, got {_show(v)} (quote numbers and booleans)")
        if not _VAR_NAME.match(str(key)):
            raise r.fail(p, f"'{key}' var name is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'")
        substitute[str(key)] = v
    refs = []
    for i, item in enumerate(r.items(m, "substituteFrom", path)):
        p = f"{path}.substituteFrom[{i}]"
        im = r.mapping(item, p, required=True)
        assert im is not None
        r.check_fields(im, p, {"kind", "name", "optional"})
        name = r.text(im, "name", p, required=True)
        if len(name) > 253:
            raise r.fail(f"{p}.name", "must be at most 253 characters long")
        refs.append(
            SubstituteReference(
                kind=r.enum(im, "kind", p, ("Secret", "ConfigMap")),
                name=name,
                optional=r.flag(im, "optional", p),
            )
        )
    return PostBuild(substitute, tuple(refs))


def _decryption(r: _Reader, value: Any) -> Decryption | None:
    path = "spec.decryption"
    m = r.mapping(value, path)
    if m is None:
        return None
    r.check_fields(m, path, {"provider", "secretRef", "serviceAccountName"})
    return Decryption(
        provider=r.enum(m, "provider", path, ("sops",)),
        secret_ref=_local_ref(r, m.get("secretRef"), f"{path}.secretRef"),
    )


_SELECTOR_FIELDS = {
    "group": "group",
    "version": "version",
    "kind": "kind",
    "name": "name",
    "namespace": "namespace",
    "labelSelector": "label_selector",
    "annotationSelector": "annotation_selector",
}


def _ignore(r: _Reader, value: Any) -> tuple[IgnoreRule, ...]:
    path = "spec.ignore"
    if value is None:
        return ()
    if not isinstance(value, list):
        raise r.fail(path, f"must be a list, got {_show(value)}")
    rules = []
    for i, item in enumerate(value):
        p = f"{path}[{i}]"
        if isinstance(item, str):
            rules.append(_rule(r, (item,), None, p, shorthand=True))
            continue
        m = r.mapping(item, p, required=True)
        assert m is not None
        r.check_fields(m, p, {"paths", "target"})
        paths = r.items(m, "paths", p)
        if "paths" not in m:
            raise r.fail(f"{p}.paths", "required field missing")
        for j, ptr in enumerate(paths):
            if not isinstance(ptr, str):
                raise r.fail(f"{p}.paths[{j}]", f"must be a string, got {_show(ptr)}")
        target = None
        tm = r.mapping(m.get("target"), f"{p}.target")
        if tm is not None:
            r.check_fields(tm, f"{p}.target", set(_SELECTOR_FIELDS))
            kwargs = {attr: r.text(tm, key, f"{p}.target") for key, attr in _SELECTOR_FIELDS.items()}
            try:
                target = Selector(**kwargs)
            except LabkitError as err:
                raise r.fail(f"{p}.target.{err.field}" if err.field else f"{p}.target", err.detail) from None
        rules.append(_rule(r, tuple(paths), target, p, shorthand=False))
    return tuple(rules)


def _rule(r: _Reader, paths: tuple[str, ...], target: Selector | None, p: str, *, shorthand: bool) -> IgnoreRule:
    for j, ptr in enumerate(paths):
        where = p if shorthand else f"{p}.paths[{j}]"
        if not ptr.startswith("/"):
            raise r.fail(where, f'invalid JSON pointer "{ptr}": must start with "/"')
    try:
        return IgnoreRule(paths, target)
    except LabkitError as err:
        raise r.fail(p, err.detail) from None


def parse_flux_object(obj: Mapping[str, Any], file: str | None = None) -> GitRepositorySpec | KustomizationSpec:
    """Dispatch on ``kind``: a GitRepository or Kustomization spec; LabkitError for other kinds."""
    kind = obj.get("kind") if isinstance(obj, Mapping) else None
    if kind == GIT_REPOSITORY_KIND:
        return GitRepositorySpec.from_obj(obj, file)
    if kind == KUSTOMIZATION_KIND:
        return KustomizationSpec.from_obj(obj, file)
    raise LabkitError(
        f"unsupported Flux kind {_show(kind)}: supported: {GIT_REPOSITORY_KIND}, {KUSTOMIZATION_KIND}",
        file=file,
        field="kind",
    )
