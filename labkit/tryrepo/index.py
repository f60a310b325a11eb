"""The repository's YAML, with line numbers: mapping rendered objects back to the files that wrote them.

A pitfall is only useful if it says *where*: "``apps/web/deployment.yaml``
line 9: ``replicas: 3`` on a Deployment an HPA scales".  kustomize's output
has no memory of where an object came from, so ``labkit try`` keeps its own
index of the snapshot:

* every ``*.yaml`` / ``*.yml`` file (and ``Kustomization``) is read through
  ``labkit.gitops.yamlbounds`` — the repository is untrusted input: a file
  over the size limit, binary or not UTF-8/16/32, nested too deep, holding too
  many documents or nodes, or whose aliases expand too far (a "billion
  laughs" bomb in ``docs/``) is *refused* before anything expands it, and the
  whole snapshot shares one ``YamlBudget`` (files, expanded nodes).  Refused
  files are listed in ``refused`` (file → reason) and ``errors``, and
  discovery puts them in the report's notes.  Each document of the other files
  becomes a ``SourceDoc`` holding its plain data (libyaml's loader; timestamps
  stay strings, as Kubernetes' YAML→JSON keeps them; a plain ``=`` or an
  unknown tag reads as plain data).  Files that do not parse — Helm templates
  full of ``{{ }}``, say — are remembered in ``errors`` and skipped; kustomize
  reports them itself if a build uses them.  The directory walk is iterative
  and never follows a symlink out of the root;
* ``SourceDoc.line_of(path)`` walks the document's node tree along a field
  path (``["spec", "template", "spec", "containers", {"name": "web"}, "image"]``)
  and returns the 1-based line of the deepest key it reaches, so a field that
  is absent still points at its parent.  Node trees cost several times the
  data's memory, so they are not kept: a file is composed again when one of
  its lines is asked for (a few files are cached);
* ``closure(directory)`` follows a kustomization the way kustomize reads it —
  ``resources`` / ``bases`` / ``components`` (files and directories,
  recursively), ``crds``, patch files (``patches[].path``,
  ``patchesStrategicMerge``, ``patchesJson6902[].path``) and generator inputs —
  and returns the files in evaluation order, each with its *role*
  (``resource``, ``patch``, ``generator``, ``kustomization``), walking with an
  explicit stack, so a chain of thousands of kustomizations cannot exhaust
  Python's recursion limit.  A directory
  without a kustomization file is read as Flux reads it (every YAML file,
  recursively, a sub-directory with its own kustomization taken whole), or,
  for an Argo CD directory source, as Argo reads it (the directory's own files,
  sub-directories only with ``recurse``);
* ``locate(obj, closure)`` finds the document a rendered object came from:
  same kind, and the same name — or a name kustomize decorated with a
  ``namePrefix`` / ``nameSuffix`` — among the closure's ``resource`` files,
  with a matching namespace when the source sets one.  Objects that only a
  generator writes (``configMapGenerator``, ``secretGenerator``) are attributed
  to the kustomization file that declares the generator;
* ``field_sources(obj, path, closure)`` lists every document in the closure —
  resources *and* patches — that sets a field of that object, last (winning)
  one last, which is how "``replicas`` is set in the base, line 8, and
  overridden by ``prod/replicas-patch.yaml`` line 6" is told.
"""
from __future__ import annotations

import os
import re
import stat
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import yaml

from labkit.gitops.yamlbounds import (YamlBudget, YamlLimitError, compose_documents, load_documents,
                                      read_yaml_file)

__all__ = ["SourceDoc", "SourceIndex", "ClosureFile", "KUSTOMIZATION_FILES", "NodeCache"]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|github\.com/|gitlab\.com/|bitbucket\.org/|git@|git::)", re.I)

PathPart = str | int | dict


class NodeCache:
    """Node trees of recently asked files, composed again from their text on demand (see the module docstring)."""

    def __init__(self, read: Callable[[str], str], size: int = 16):
        self._read = read
        self._size = size
        self._cache: OrderedDict[str, list[yaml.Node] | None] = OrderedDict()

    def nodes(self, file: str) -> list[yaml.Node] | None:
        if file in self._cache:
            self._cache.move_to_end(file)
            return self._cache[file]
        try:
            nodes: list[yaml.Node] | None = compose_documents(self._read(file), file)
        except (YamlLimitError, yaml.YAMLError, OSError):
            nodes = None  # changed or gone since it was indexed: lines fall back to the document's
        self._cache[file] = nodes
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return nodes


@dataclass
class SourceDoc:
    """One YAML document of the repository; its node tree (for line lookups) is composed on demand."""

    file: str  # POSIX path relative to the snapshot root
    index: int  # position of the document in its file (0-based, empty documents counted)
    line: int  # 1-based line of the document's first key
    data: Any
    nodes: NodeCache | None = field(default=None, repr=False, compare=False)

    @property
    def node(self) -> yaml.Node | None:
        """The document's node tree (None when it cannot be composed again)."""
        trees = self.nodes.nodes(self.file) if self.nodes is not None else None
        return trees[self.index] if trees is not None and self.index < len(trees) else None

    @property
    def is_object(self) -> bool:
        return isinstance(self.data, dict) and bool(self.data.get("kind")) and bool(self.data.get("apiVersion"))

    @property
    def kind(self) -> str:
        return str(self.data.get("kind") or "") if isinstance(self.data, dict) else ""

    @property
    def api_version(self) -> str:
        return str(self.data.get("apiVersion") or "") if isinstance(self.data, dict) else ""

    @property
    def group(self) -> str:
        av = self.api_version
        return av.split("/")[0] if "/" in av else ""

    @property
    def metadata(self) -> dict[str, Any]:
        md = self.data.get("metadata") if isinstance(self.data, dict) else None
        return md if isinstance(md, dict) else {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or "")

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "")

    def get(self, path: Iterable[PathPart]) -> Any:
        """The value at ``path`` in the document's data (None when absent)."""
        cur = self.data
        for part in path:
            if isinstance(part, dict):
                if not isinstance(cur, list):
                    return None
                cur = _select(cur, part)
            elif isinstance(part, int):
                cur = cur[part] if isinstance(cur, list) and -len(cur) <= part < len(cur) else None
            else:
                cur = cur.get(part) if isinstance(cur, dict) else None
            if cur is None:
                return None
        return cur

    def has(self, path: Iterable[PathPart]) -> bool:
        cur: Any = self.data
        for part in path:
            if isinstance(part, dict):
                if not isinstance(cur, list):
                    return False
                cur = _select(cur, part)
                if cur is None:
                    return False
            elif isinstance(part, int):
                if not (isinstance(cur, list) and -len(cur) <= part < len(cur)):
                    return False
                cur = cur[part]
            else:
                if not (isinstance(cur, dict) and part in cur):
                    return False
                cur = cur[part]
        return True

    def line_of(self, path: Iterable[PathPart] = ()) -> int:
        """1-based line of the deepest node of ``path`` that exists (the document start if none does)."""
        node = self.node
        line = self.line
        if node is None:
            return line
        for part in path:
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                hit = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
                if hit is None:
                    return line
                line = hit[0].start_mark.line + 1
                node = hit[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not -len(node.value) <= part < len(node.value):
                    return line
                node = node.value[part]
                line = node.start_mark.line + 1
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, dict):
                found = None
                for item in node.value:
                    if not isinstance(item, yaml.MappingNode):
                        continue
                    vals = {k.value: v.value for k, v in item.value
                            if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode)}
                    if all(str(vals.get(k)) == str(v) for k, v in part.items()):
                        found = item
                        break
                if found is None:
                    return line
                node = found
                line = node.start_mark.line + 1
            else:
                return line
        return line


@dataclass(frozen=True)
class ClosureFile:
    """One file a kustomize build reads, with the role it plays."""

    file: str  # POSIX path relative to the root
    role: str  # resource | patch | generator | kustomization


class SourceIndex:
    """Every YAML document of a snapshot, parsed once, with line-number lookups (see module docstring)."""

    def __init__(self, root: str | os.PathLike[str], *, budget: YamlBudget | None = None):
        self.root = Path(root)
        self.docs: list[SourceDoc] = []
        self.by_file: dict[str, list[SourceDoc]] = {}
        self.errors: dict[str, str] = {}
        self.refused: dict[str, str] = {}  # file -> why it was not read (a limit, not text): for the report's notes
        self.budget = budget if budget is not None else YamlBudget()
        self._nodes = NodeCache(self.read_text)
        self._by_kind: dict[str, list[SourceDoc]] = {}
        self._closures: dict[tuple[str, bool, str], list[ClosureFile]] = {}
        for rel in self._yaml_files():
            self._load(rel)

    # ------------------------------------------------------------------ loading

    def _yaml_files(self) -> Iterator[str]:
        """Every YAML file under the root, in sorted order, without recursion or following symlinked directories."""
        root = os.path.realpath(self.root)
        pending = [""]
        while pending:
            rel_dir = pending.pop()
            try:
                with os.scandir(os.path.join(self.root, rel_dir) if rel_dir else self.root) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                continue  # unreadable, or a path longer than PATH_MAX: the snapshot records those
            subdirs = []
            for e in entries:
                rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
                if e.is_dir(follow_symlinks=False):
                    if not e.name.startswith("."):
                        subdirs.append(rel)
                elif e.name.endswith((".yaml", ".yml")) or e.name == "Kustomization":
                    if e.is_symlink() and not _inside(os.path.realpath(e.path), root):
                        continue  # never read through a link out of the snapshot
                    try:
                        if not stat.S_ISREG(os.stat(e.path).st_mode):
                            continue
                    except OSError:
                        continue
                    yield rel
            pending.extend(reversed(subdirs))  # depth first, in sorted order

    def read_text(self, rel: str) -> str:
        """The text of a YAML file of the root, with the limits of ``labkit.gitops.yamlbounds``."""
        return read_yaml_file(self.root / rel, rel)

    def _load(self, rel: str) -> None:
        docs: list[SourceDoc] = []
        try:
            self.budget.take_file(rel)
            text = self.read_text(rel)
            docs = [SourceDoc(rel, d.index, d.line, d.data, self._nodes)
                    for d in load_documents(text, rel, budget=self.budget)]
        except YamlLimitError as exc:
            self.errors[rel] = self.refused[rel] = exc.detail
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            self.errors[rel] = f"{where}{getattr(exc, 'problem', None) or exc}"
        self.by_file[rel] = docs
        for d in docs:
            self.docs.append(d)
            if d.is_object:
                self._by_kind.setdefault(d.kind, []).append(d)

    # ------------------------------------------------------------------ queries

    def objects(self, kind: str | None = None, group: str | None = None) -> list[SourceDoc]:
        """Documents that are Kubernetes objects, optionally of one kind (and API group)."""
        docs = self._by_kind.get(kind, []) if kind else [d for d in self.docs if d.is_object]
        if group is not None:
            docs = [d for d in docs if d.group == group]
        return list(docs)

    def kustomization_file(self, directory: str) -> str | None:
        """The kustomization file of ``directory`` (relative), or None."""
        for name in KUSTOMIZATION_FILES:
            rel = _join(directory, name)
            if (self.root / rel).is_file():
                return rel
        return None

    def kustomization_dirs(self) -> list[str]:
        """Every directory holding a kustomize ``Kustomization`` (config.k8s.io) file, sorted."""
        out = []
        for rel, docs in self.by_file.items():
            if os.path.basename(rel) in KUSTOMIZATION_FILES and docs and isinstance(docs[0].data, dict):
                av = str(docs[0].data.get("apiVersion") or "kustomize.config.k8s.io")
                if av.startswith("kustomize.config.k8s.io") or not docs[0].data.get("apiVersion"):
                    out.append(_dirname(rel))
        return sorted(set(out))

    # ------------------------------------------------------------------ kustomize closure

    def closure(self, directory: str, *, mode: str = "flux", recurse: bool = False) -> list[ClosureFile]:
        """Files a build of ``directory`` reads, in evaluation order (see module docstring).

        ``mode`` says how a directory *without* a kustomization file is read:
        ``flux`` (generated kustomization) or ``argo`` (plain directory source,
        sub-directories only with ``recurse``).
        """
        key = (_norm(directory), recurse, mode)
        hit = self._closures.get(key)
        if hit is None:
            out: list[ClosureFile] = []
            visiting: set[str] = set()
            plain_seen: set[str] = set()
            # an explicit stack of generators: each yields files, or the generator of a directory to read next
            stack: list[Iterator[Any]] = [self._walk(_norm(directory), visiting, plain_seen, mode, recurse)]
            while stack:
                item = next(stack[-1], None)
                if item is None:
                    stack.pop()
                elif isinstance(item, ClosureFile):
                    out.append(item)
                else:
                    stack.append(item)
            seen: set[ClosureFile] = set()
            hit = [c for c in out if not (c in seen or seen.add(c))]  # type: ignore[func-returns-value]
            self._closures[key] = hit
        return list(hit)

    def _walk(self, d: str, visiting: set[str], plain_seen: set[str], mode: str, recurse: bool) -> Iterator[Any]:
        if d in visiting:
            return
        visiting.add(d)
        kfile = self.kustomization_file(d)
        if kfile is None:
            if mode == "argo":
                yield self._plain_argo(d, plain_seen, recurse)
            else:
                yield self._plain_flux(d, visiting, plain_seen, mode)
            return
        docs = self.by_file.get(kfile) or []
        k = docs[0].data if docs and isinstance(docs[0].data, dict) else {}
        yield ClosureFile(kfile, "kustomization")

        refs: list[tuple[Any, str]] = []
        for key in ("resources", "bases", "components", "crds"):
            refs += [(v, "resource") for v in _list(k.get(key))]
        for gen_key in ("configMapGenerator", "secretGenerator"):
            for g in _list(k.get(gen_key)):
                if isinstance(g, dict):
                    for f in _list(g.get("files")) + _list(g.get("envs")) + ([g["env"]] if g.get("env") else []):
                        if isinstance(f, str):
                            refs.append((f.split("=", 1)[-1], "generator"))
        for p in _list(k.get("patches")) + _list(k.get("patchesJson6902")):
            if isinstance(p, dict):
                refs.append((p.get("path"), "patch"))
        for p in _list(k.get("patchesStrategicMerge")):
            if isinstance(p, str) and "\n" not in p:
                refs.append((p, "patch"))
        for r in _list(k.get("replacements")):
            if isinstance(r, dict):
                refs.append((r.get("path"), "patch"))
        for value, role in refs:
            if not isinstance(value, str) or not value or _REMOTE.match(value):
                continue
            target = _norm(_join(d, value))
            if target.startswith(".."):
                continue
            full = self.root / target
            try:
                if full.is_dir():
                    yield self._walk(target, visiting, plain_seen, "flux", False)
                elif full.is_file():
                    yield ClosureFile(target, role)
            except OSError:  # a name longer than NAME_MAX / PATH_MAX: kustomize reports it
                continue

    def _listing(self, d: str, plain_seen: set[str]) -> list[str]:
        """Sorted names of a plain directory, or [] when it is not one, was read already (a loop), or unreadable."""
        base = self.root / d
        try:
            if not base.is_dir():
                return []
            real = os.path.realpath(base)
            if real in plain_seen:
                return []
            plain_seen.add(real)
            return sorted(os.listdir(base))
        except OSError:
            return []

    def _plain_flux(self, d: str, visiting: set[str], plain_seen: set[str], mode: str) -> Iterator[Any]:
        for name in self._listing(d, plain_seen):
            rel = _join(d, name)
            full = self.root / rel
            if full.is_dir():
                if name.startswith("."):
                    continue
                if self.kustomization_file(rel) is not None:
                    yield self._walk(rel, visiting, plain_seen, mode, False)
                else:
                    yield self._plain_flux(rel, visiting, plain_seen, mode)
            elif name.endswith((".yaml", ".yml")):
                yield ClosureFile(rel, "resource")

    def _plain_argo(self, d: str, plain_seen: set[str], recurse: bool) -> Iterator[Any]:
        for name in self._listing(d, plain_seen):
            if name.startswith("."):
                continue
            rel = _join(d, name)
            full = self.root / rel
            if full.is_dir():
                if recurse:
                    yield self._plain_argo(rel, plain_seen, recurse)
            elif name.endswith((".yaml", ".yml", ".json")):
                yield ClosureFile(rel, "resource")

    # ------------------------------------------------------------------ mapping rendered objects back

    def _docs_in(self, closure: Iterable[ClosureFile], roles: tuple[str, ...]) -> list[SourceDoc]:
        out = []
        for c in closure:
            if c.role in roles:
                out.extend(d for d in self.by_file.get(c.file) or [] if d.is_object)
        return out

    def locate(self, obj: dict[str, Any], closure: Iterable[ClosureFile] | None = None) -> SourceDoc | None:
        """The source document of a rendered object (see module docstring), or None."""
        kind = obj.get("kind") or ""
        md = obj.get("metadata") or {}
        name = str(md.get("name") or "")
        ns = str(md.get("namespace") or "")
        closure = list(closure) if closure is not None else None
        candidates = self._docs_in(closure, ("resource",)) if closure is not None else self.objects(kind)
        candidates = [d for d in candidates if d.kind == kind]

        def ns_ok(d: SourceDoc) -> bool:
            return not d.namespace or not ns or d.namespace == ns

        exact = [d for d in candidates if d.name == name and ns_ok(d)]
        if exact:
            with_ns = [d for d in exact if d.namespace == ns]
            return (with_ns or exact)[-1]
        decorated = [d for d in candidates if d.name and d.name in name and ns_ok(d)]
        if decorated:
            return max(decorated, key=lambda d: len(d.name))
        return None

    def generator_of(self, obj: dict[str, Any], closure: Iterable[ClosureFile]) -> tuple[str, int] | None:
        """``(file, line)`` of the generator entry that makes ``obj`` (ConfigMap/Secret with a hash suffix)."""
        kind = obj.get("kind")
        key = {"ConfigMap": "configMapGenerator", "Secret": "secretGenerator"}.get(str(kind))
        if key is None:
            return None
        name = str((obj.get("metadata") or {}).get("name") or "")
        for c in closure:
            if c.role != "kustomization":
                continue
            for d in self.by_file.get(c.file) or []:
                gens = d.get([key]) if isinstance(d.data, dict) else None
                for i, g in enumerate(_list(gens)):
                    gname = str(g.get("name") or "") if isinstance(g, dict) else ""
                    if gname and (name == gname or name.startswith(gname + "-") or gname in name):
                        return c.file, d.line_of([key, i])
        return None

    def field_sources(self, obj: dict[str, Any], path: list[PathPart],
                      closure: Iterable[ClosureFile]) -> list[SourceDoc]:
        """Documents in the closure (resources and patches) for ``obj`` that set ``path``, in build order."""
        kind = obj.get("kind") or ""
        md = obj.get("metadata") or {}
        name = str(md.get("name") or "")
        ns = str(md.get("namespace") or "")
        out = []
        for d in self._docs_in(closure, ("resource", "patch")):
            if d.kind != kind or not d.name or not (d.name == name or d.name in name):
                continue
            if d.namespace and ns and d.namespace != ns:
                continue
            if d.has(path):
                out.append(d)
        return out


def _select(items: list[Any], where: dict[str, Any]) -> Any:
    """The first mapping of ``items`` whose keys match ``where`` (``{"name": "web"}``), or None."""
    return next((x for x in items if isinstance(x, dict) and all(x.get(k) == v for k, v in where.items())), None)


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _join(d: str, name: str) -> str:
    return name if d in ("", ".") else f"{d}/{name}"


def _norm(p: str) -> str:
    n = os.path.normpath((p or ".").replace("\\", "/")).replace(os.sep, "/")
    return "." if n in ("", ".") else n


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _dirname(rel: str) -> str:
    d = os.path.dirname(rel)
    return d or "."


def posix_rel(p: str) -> str:
    """``./apps/x`` → ``apps/x``; ``./`` → ``.``."""
    return _norm(p)
