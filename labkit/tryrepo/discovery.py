"""Discovery: what a GitOps controller pointed at this repository would reconcile, and in which cluster.

A manifest repository rarely says "apply me" in one place.  ``labkit try``
finds the entry points the way the tools do, in this order of precedence:

1. **``--path``** — each path given is reconciled the way ``flux bootstrap
   --path`` (or an Argo CD Application with that ``spec.source.path``) would:
   a synthesised Flux ``Kustomization`` named after the path (``flux-system``
   when the path is a Flux bootstrap directory that manages itself) with
   ``prune: true`` and ``wait: true``, or an Argo ``Application`` with
   automated sync.  Flux objects the path contains are then reconciled by the
   simulated controllers themselves — nested Kustomizations, ``dependsOn`` and
   all.
2. **Flux objects in the repository** — every ``kustomize.toolkit.fluxcd.io``
   ``Kustomization`` is rendered (real kustomize, its ``spec`` applied as Flux
   applies it) to learn which Kustomizations each one applies.  The *roots* are
   those no other Kustomization applies: a self-managing bootstrap
   (``clusters/prod/flux-system``, whose ``path: ./prod`` renders itself) or a
   stray Kustomization file nothing includes.  A root is applied together with
   the ``GitRepository`` it names (the nearest one in the tree; synthesised when
   the repository has none, as after a ``flux bootstrap`` whose ``gotk-sync``
   lives elsewhere).
3. **Argo CD objects** — ``Application`` and ``ApplicationSet`` objects
   (``argoproj.io``), roots being the applications no other application's path
   contains (app-of-apps).  They are reconciled with ``labkit.argo`` when that
   package is importable; otherwise they are listed as discovered but not
   reconciled.  A plain-directory Application holding a file the index refused
   (``labkit.gitops.yamlbounds``: an alias bomb, nesting too deep, not text) is
   an error naming that file, before anything parses it.
4. **Plain kustomize** — with no Flux or Argo objects at all, every directory
   with a ``kustomization.yaml`` that no other kustomization references (the
   overlays, not their bases) is an entry point; with none, the root itself is
   (Flux generates a kustomization for a plain directory).

Sources.  A ``GitRepository`` / ``repoURL`` is *this repository* when its URL
is one of the clone's remotes, names this directory (``file://`` or a path),
belongs to a ``flux-system`` GitRepository (bootstrap's convention), or is the
only URL the repository mentions.  Everything a self source serves comes from
the snapshot.  Other URLs cannot be fetched on this machine: their units are
listed as *not reconciled* with that reason (a simulated source-controller
would report ``unable to clone``).

Notes.  YAML files the index refused are listed in the notes (file and
reason), so a file left out of the secret scan is never silent.

Targets.  Each root and everything it applies goes to one *target* — one fresh
simulated cluster.  Roots share a target unless their objects collide: the
staging and prod entry points of a fleet repository both define
``flux-system/flux-system``, so they get a cluster each, exactly as they run on
two clusters in real life.  Targets are named after the root's path
(``staging``, ``apps-podinfo-prod``).
"""
from __future__ import annotations

import importlib
import importlib.util
import re
from dataclasses import dataclass, field
from typing import Any

from labkit.core.errors import LabkitError
from labkit.tryrepo.build import Builder
from labkit.tryrepo.index import ClosureFile, SourceDoc, SourceIndex, posix_rel
from labkit.tryrepo.source import RepoSource, local_path_of

__all__ = ["Unit", "Target", "Discovery", "discover", "argo_available",
           "FLUX_KS_API", "FLUX_GIT_API", "ARGO_API"]

FLUX_KS_API = "kustomize.toolkit.fluxcd.io/v1"
FLUX_GIT_API = "source.toolkit.fluxcd.io/v1"
ARGO_API = "argoproj.io/v1alpha1"
FLUX_NS = "flux-system"
ARGO_NS = "argocd"
_OLD_FLUX = re.compile(r"^(kustomize|source)\.toolkit\.fluxcd\.io/v1beta[12]$")


def argo_available() -> bool:
    """Whether the Argo CD dialect (``labkit.argo`` with ``ArgoSystem``) can be imported."""
    if importlib.util.find_spec("labkit.argo") is None:
        return False
    try:
        mod = importlib.import_module("labkit.argo")
    except Exception:  # noqa: BLE001 - half-written package: treat as absent
        return False
    return hasattr(mod, "ArgoSystem")


@dataclass
class Unit:
    """One reconcile unit: a Flux Kustomization or an Argo CD Application(Set), found or synthesised."""

    dialect: str  # flux | argo
    kind: str  # Kustomization | Application | ApplicationSet
    name: str
    namespace: str
    path: str  # relative to the root, '.' for the root itself
    obj: dict[str, Any]
    doc: SourceDoc | None = None
    synthesized: bool = False
    source: str = "self"  # self | foreign | unsupported
    source_note: str = ""
    objects: list[dict[str, Any]] = field(default_factory=list)
    closure: list[ClosureFile] = field(default_factory=list)
    children: list["Unit"] = field(default_factory=list)
    rendered: bool = False

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def spec(self) -> dict[str, Any]:
        s = self.obj.get("spec")
        return s if isinstance(s, dict) else {}

    @property
    def identity(self) -> tuple[str, str, str, str]:
        if self.dialect == "flux":
            src = (self.spec.get("sourceRef") or {}).get("name", "")
            return (self.kind, self.name, posix_rel(str(self.spec.get("path") or ".")), str(src))
        src = self.spec.get("source") or {}
        return (self.kind, self.name, posix_rel(str(src.get("path") or ".")), str(src.get("repoURL") or ""))

    @property
    def file(self) -> str | None:
        return self.doc.file if self.doc else None

    @property
    def line(self) -> int | None:
        return self.doc.line if self.doc else None

    def descendants(self) -> list["Unit"]:
        out: list[Unit] = []
        stack = [self]
        seen = {id(self)}
        while stack:
            u = stack.pop()
            out.append(u)
            for c in u.children:
                if id(c) not in seen:
                    seen.add(id(c))
                    stack.append(c)
        return out


@dataclass
class Target:
    """One simulated cluster: the roots applied at bootstrap and every unit they lead to."""

    name: str
    dialect: str
    roots: list[Unit]
    bootstrap: list[dict[str, Any]]  # what is kubectl-applied first (root objects and their sources)
    units: list[Unit] = field(default_factory=list)

    def objects(self) -> list[dict[str, Any]]:
        return [o for u in self.units for o in u.objects]


@dataclass
class Discovery:
    targets: list[Target]
    units: list[Unit]
    unreconciled: list[tuple[Unit, str]]
    notes: list[str]
    self_urls: set[str]
    snapshot_url: str
    _discoverer: Any = None

    def unit_for(self, obj: dict[str, Any]) -> Unit | None:
        """A rendered unit for an object the controllers created (an ApplicationSet's Application), or None."""
        d = self._discoverer
        if d is None:
            return None
        u = d.argo_unit(obj, None) if obj.get("kind") in ("Application", "ApplicationSet") else d.flux_unit(obj, None)
        try:
            d.render(u)
        except LabkitError as err:
            u.source, u.source_note = "unsupported", str(err)
        return u


def _slug(path: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", posix_rel(path).lower()).strip("-")
    return s or "root"


def _nearest(docs: list[SourceDoc], file: str | None) -> SourceDoc | None:
    if not docs:
        return None
    if file is None:
        return docs[0]

    def common(d: SourceDoc) -> int:
        a, b = d.file.split("/"), file.split("/")
        n = 0
        while n < min(len(a), len(b)) - 0 and a[n] == b[n]:
            n += 1
        return n

    return max(docs, key=lambda d: (d.file == file, common(d)))


class _Discoverer:
    def __init__(self, source: RepoSource, index: SourceIndex, builder: Builder, paths: list[str],
                 dialect: str | None):
        self.source = source
        self.index = index
        self.builder = builder
        self.paths = paths
        self.dialect = dialect
        self.notes: list[str] = []
        self.unreconciled: list[tuple[Unit, str]] = []
        self.snapshot_url = source.root.resolve().as_uri()
        self.self_urls: set[str] = {self.snapshot_url}
        self.gitrepos = [d for d in index.objects("GitRepository") if d.group == "source.toolkit.fluxcd.io"]
        self.flux_docs = [d for d in index.objects("Kustomization") if d.group == "kustomize.toolkit.fluxcd.io"]
        self.argo_docs = [d for d in index.objects("Application") + index.objects("ApplicationSet")
                          if d.group == "argoproj.io"]

    # ------------------------------------------------------------------ sources

    def classify_urls(self) -> None:
        urls = {str(d.get(["spec", "url"]) or "") for d in self.gitrepos}
        urls |= {str(d.get(["spec", "source", "repoURL"]) or "") for d in self.argo_docs
                 if d.kind == "Application" and not d.get(["spec", "source", "chart"])}
        for d in self.argo_docs:
            if d.kind == "ApplicationSet":
                urls |= {u for u in _appset_urls(d.data) if "{{" not in u}
        urls.discard("")
        for u in urls:
            if self.source.is_self_url(u):
                self.self_urls.add(u)
        for d in self.gitrepos:
            if d.name == "flux-system" and d.get(["spec", "url"]):
                self.self_urls.add(str(d.get(["spec", "url"])))
        if len(urls) == 1:
            self.self_urls |= urls

    def gitrepo_for(self, ks: dict[str, Any], near: str | None, namespace: str) -> SourceDoc | None:
        ref = (ks.get("spec") or {}).get("sourceRef") or {}
        name = ref.get("name")
        ns = ref.get("namespace") or namespace
        docs = [d for d in self.gitrepos if d.name == name and (not d.namespace or d.namespace == ns)]
        return _nearest(docs, near)

    # ------------------------------------------------------------------ units

    def flux_unit(self, obj: dict[str, Any], doc: SourceDoc | None, synthesized: bool = False) -> Unit:
        md = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        u = Unit("flux", "Kustomization", str(md.get("name") or ""), str(md.get("namespace") or FLUX_NS),
                 posix_rel(str(spec.get("path") or ".")), obj, doc, synthesized)
        ref = spec.get("sourceRef") or {}
        kind = ref.get("kind", "GitRepository")
        if kind != "GitRepository":
            u.source, u.source_note = "unsupported", f"source kind {kind} is not simulated (only GitRepository)"
            return u
        repo = self.gitrepo_for(obj, doc.file if doc else None, u.namespace)
        if repo is not None:
            url = str(repo.get(["spec", "url"]) or "")
            if url not in self.self_urls:
                local = local_path_of(url)
                u.source = "foreign"
                u.source_note = (f"GitRepository {repo.name} points to {url}, another repository on this machine: "
                                 "run labkit try on it separately" if local is not None else
                                 f"GitRepository {repo.name} points to {url}, which is not this repository and "
                                 "cannot be fetched on this machine")
        return u

    def argo_unit(self, obj: dict[str, Any], doc: SourceDoc | None, synthesized: bool = False) -> Unit:
        md = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        kind = str(obj.get("kind"))
        src = spec.get("source") or {}
        u = Unit("argo", kind, str(md.get("name") or ""), str(md.get("namespace") or ARGO_NS),
                 posix_rel(str(src.get("path") or ".")), obj, doc, synthesized)
        if kind == "ApplicationSet":
            return u
        if spec.get("sources") is not None or any(k in src for k in ("chart", "helm", "plugin")):
            u.source, u.source_note = "unsupported", "Helm, plugin and multi-source applications are not simulated"
            return u
        url = str(src.get("repoURL") or "")
        if url not in self.self_urls:
            if (self.source.root / u.path).is_dir() and not synthesized and u.path != ".":
                self.self_urls.add(url)  # an app-of-apps root whose path exists here: this repository
            else:
                u.source, u.source_note = "foreign", f"repoURL {url} is not this repository"
        return u

    def render(self, u: Unit) -> None:
        if u.rendered or u.source != "self":
            return
        u.rendered = True
        if u.path == ".." or u.path.startswith("../"):
            field = "spec.path" if u.dialect == "flux" else "spec.source.path"
            raise LabkitError(f"'{u.path}' escapes the repository root", file=u.file or u.ref, field=field)
        if u.dialect == "flux":
            u.objects = self.builder.flux(u.path, u.spec)
            u.closure = self.index.closure(u.path, mode="flux")
        elif u.kind == "Application":
            recurse = bool(((u.spec.get("source") or {}).get("directory") or {}).get("recurse"))
            u.closure = self.index.closure(u.path, mode="argo", recurse=recurse)
            if self.index.kustomization_file(u.path) is None:
                # a plain directory is parsed as YAML, not by kustomize: a file the index refused (an alias
                # bomb, nesting too deep, not text) must not reach the simulator
                for c in u.closure:
                    why = self.index.refused.get(c.file)
                    if why is not None:
                        raise LabkitError(why, file=c.file)
            u.objects = self.builder.argo(u.path, recurse)

    def prefetch(self, units: list[Unit]) -> None:
        """Start the kustomize renders ``render`` will ask for, all at once (see ``Builder.prefetch``)."""
        requests: list[tuple[str, dict[str, Any] | None]] = []
        for u in units:
            if u.rendered or u.source != "self" or u.path == ".." or u.path.startswith("../"):
                continue
            if u.dialect == "flux":
                requests.append((u.path, u.spec))
            elif u.kind == "Application" and self.index.kustomization_file(u.path) is not None:
                requests.append((u.path, None))
        if len(requests) > 1:
            self.builder.prefetch(requests)

    def expand(self, roots: list[Unit], pool: dict[tuple, Unit]) -> None:
        """Render roots and, transitively, every unit they apply (children found or created)."""
        self.prefetch(roots)
        stack = list(roots)
        seen: set[int] = set()
        while stack:
            u = stack.pop()
            if id(u) in seen:
                continue
            seen.add(id(u))
            self.render(u)
            for o in u.objects:
                child = self._child(o, u, pool)
                if child is not None and child is not u and all(c is not child for c in u.children):
                    u.children.append(child)
                    stack.append(child)

    def _child(self, o: dict[str, Any], parent: Unit, pool: dict[tuple, Unit]) -> Unit | None:
        group = str(o.get("apiVersion") or "").split("/")[0]
        kind = o.get("kind")
        if parent.dialect == "flux" and group == "kustomize.toolkit.fluxcd.io" and kind == "Kustomization":
            probe = self.flux_unit(o, None)
        elif group == "argoproj.io" and kind in ("Application", "ApplicationSet"):
            probe = self.argo_unit(o, None)
        else:
            return None
        hit = pool.get(probe.identity)
        if hit is not None:
            md = o.get("metadata") or {}
            if md.get("namespace"):
                hit.namespace = str(md["namespace"])
            return hit
        probe.doc = self.index.locate(o, parent.closure)
        pool[probe.identity] = probe
        return probe

    # ------------------------------------------------------------------ entry points

    def synthesized_flux(self, path: str) -> Unit:
        rel = posix_rel(path)
        name = "flux-system" if self._self_managed(rel) else f"try-{_slug(rel)}"
        obj = {"apiVersion": FLUX_KS_API, "kind": "Kustomization",
               "metadata": {"name": name, "namespace": FLUX_NS},
               "spec": {"interval": "10m0s", "path": "./" + rel if rel != "." else "./", "prune": True,
                        "wait": True, "timeout": "5m0s",
                        "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}}
        return self.flux_unit(obj, None, synthesized=True)

    def _self_managed(self, rel: str) -> bool:
        for d in self.flux_docs:
            if d.name == "flux-system" and posix_rel(str(d.get(["spec", "path"]) or ".")) == rel:
                return True
        return False

    def synthesized_argo(self, path: str) -> Unit:
        rel = posix_rel(path)
        obj = {"apiVersion": ARGO_API, "kind": "Application",
               "metadata": {"name": f"try-{_slug(rel)}", "namespace": ARGO_NS},
               "spec": {"project": "default",
                        "source": {"repoURL": self.snapshot_url, "path": "" if rel == "." else rel,
                                   "targetRevision": "HEAD"},
                        "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
                        "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                                       "syncOptions": ["CreateNamespace=true"]}}}
        return self.argo_unit(obj, None, synthesized=True)

    def kustomize_roots(self) -> list[str]:
        dirs = self.index.kustomization_dirs()
        referenced: set[str] = set()
        for d in dirs:
            for c in self.index.closure(d):
                if c.role == "kustomization" and c.file != self.index.kustomization_file(d):
                    referenced.add(posix_rel(c.file.rsplit("/", 1)[0] if "/" in c.file else "."))
        roots = [d for d in dirs if d not in referenced]
        flux_dirs = [d for d in roots if self._holds_flux(d)]
        if flux_dirs and self.dialect == "argo":
            self.notes.append(f"Flux bootstrap directories not reconciled as Argo CD applications: "
                              f"{', '.join(flux_dirs)}")
            roots = [d for d in roots if d not in flux_dirs]
        if roots:
            return roots
        if not self.index.objects():
            raise LabkitError("nothing to reconcile: no Flux or Argo CD objects, no kustomization.yaml and no "
                              "Kubernetes manifests here", file=self.source.display)
        other = sorted(set(self.index.errors) | {d.file for d in self.index.docs if not d.is_object})
        if other:
            raise LabkitError(f"no Flux or Argo CD objects and no kustomization.yaml, and the root holds YAML that "
                              f"is not Kubernetes manifests ({', '.join(other[:3])}{' ...' if len(other) > 3 else ''})"
                              ": give the manifest directories with --path", file=self.source.display)
        return ["."]

    def _holds_flux(self, d: str) -> bool:
        for c in self.index.closure(d):
            for doc in self.index.by_file.get(c.file) or []:
                if doc.group.endswith("toolkit.fluxcd.io"):
                    return True
        return False

    # ------------------------------------------------------------------ validation

    def validate_flux(self) -> None:
        from labkit.flux.api import parse_flux_object

        for d in self.flux_docs + self.gitrepos:
            if _OLD_FLUX.match(d.api_version):
                continue  # upgraded in the snapshot before indexing; see reconcile
            obj = dict(d.data)
            obj.setdefault("metadata", {})
            parse_flux_object(obj, d.file)

    def validate_argo(self, u: Unit) -> str | None:
        """None when valid; the reason when labkit cannot simulate it; LabkitError for a broken object."""
        if not argo_available():
            return None
        from labkit.argo.api import parse_application, parse_applicationset

        try:
            if u.kind == "Application":
                parse_application(u.obj, u.file, default_namespace=ARGO_NS)
            else:
                parse_applicationset(u.obj, u.file, default_namespace=ARGO_NS)
        except LabkitError as err:
            if "not supported by labkit" in str(err):
                return str(err)
            raise
        return None


def discover(source: RepoSource, index: SourceIndex, builder: Builder, *, paths: list[str] | None = None,
             dialect: str | None = None) -> Discovery:
    """Find the units to reconcile and group them into targets (see the module docstring)."""
    d = _Discoverer(source, index, builder, list(paths or []), dialect)
    d.classify_urls()
    units_all: list[Unit] = []
    roots: list[Unit] = []
    want_flux = dialect in (None, "flux")
    want_argo = dialect in (None, "argo")
    flux_pool: dict[tuple, Unit] = {}
    argo_pool: dict[tuple, Unit] = {}
    have_argo = argo_available()

    if d.flux_docs or d.gitrepos:
        d.validate_flux()
    if d.paths:
        for p in d.paths:
            u = d.synthesized_argo(p) if dialect == "argo" else d.synthesized_flux(p)
            roots.append(u)
        pool = argo_pool if dialect == "argo" else flux_pool
        for u in roots:
            pool[u.identity] = u
        d.expand(roots, pool)
    else:
        if want_flux and d.flux_docs:
            cands = [d.flux_unit(doc.data, doc) for doc in d.flux_docs]
            for u in cands:
                flux_pool.setdefault(u.identity, u)
            d.expand(list(flux_pool.values()), flux_pool)
            children = {id(c) for u in flux_pool.values() for c in u.children if c is not u}
            roots += [u for u in cands if id(u) not in children and flux_pool.get(u.identity) is u]
        if want_argo and d.argo_docs:
            cands = [d.argo_unit(doc.data, doc) for doc in d.argo_docs]
            for u in cands:
                argo_pool.setdefault(u.identity, u)
            if have_argo:
                d.expand(list(argo_pool.values()), argo_pool)
            children = {id(c) for u in argo_pool.values() for c in u.children if c is not u}
            roots += [u for u in cands if id(u) not in children and argo_pool.get(u.identity) is u]
        if not roots and not ((d.flux_docs and want_flux) or (d.argo_docs and want_argo)):
            for p in d.kustomize_roots():
                roots.append(d.synthesized_argo(p) if dialect == "argo" else d.synthesized_flux(p))
            for u in roots:
                (argo_pool if u.dialect == "argo" else flux_pool)[u.identity] = u
            d.expand(roots, argo_pool if dialect == "argo" else flux_pool)
    if dialect == "flux" and d.argo_docs:
        d.notes.append(f"{len(d.argo_docs)} Argo CD object(s) found and not reconciled (--dialect flux)")
    if dialect == "argo" and d.flux_docs:
        d.notes.append(f"{len(d.flux_docs)} Flux Kustomization(s) found and not reconciled (--dialect argo)")
    units_all = list({id(u): u for u in list(flux_pool.values()) + list(argo_pool.values()) + roots}.values())

    # what cannot be reconciled, and why
    for u in units_all:
        if u.dialect == "argo" and not have_argo:
            d.unreconciled.append((u, "labkit.argo is not importable in this installation: Argo CD objects are "
                                      "listed but not reconciled"))
            continue
        if u.dialect == "argo":
            why = d.validate_argo(u)
            if why:
                u.source, u.source_note = "unsupported", why
        if u.source != "self":
            d.unreconciled.append((u, u.source_note))

    targets = _group(d, [r for r in roots if r.source == "self" and (r.dialect == "flux" or have_argo)])
    if index.refused:
        refused = sorted(index.refused.items())
        shown = "; ".join(f"{f}: {why}" for f, why in refused[:5])
        d.notes.append(f"{len(refused)} YAML file(s) not read (over a limit of labkit.gitops.yamlbounds, or not "
                       f"text), so not indexed nor checked for secrets: {shown}{' ...' if len(refused) > 5 else ''}")
    return Discovery(targets, units_all, d.unreconciled, d.notes, d.self_urls, d.snapshot_url, d)


def _appset_urls(obj: Any) -> set[str]:
    """Every ``repoURL`` an ApplicationSet mentions (git generators, nested ones, and its template)."""
    out: set[str] = set()

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "repoURL" and isinstance(v, str):
                    out.add(v)
                else:
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk((obj or {}).get("spec"))
    return out


def _keys(u: Unit) -> set[str]:
    out = set()
    for x in u.descendants():
        out.add(f"{x.kind}/{x.namespace}/{x.name}")
        for o in x.objects:
            md = o.get("metadata") or {}
            if o.get("kind") in ("Kustomization", "Application", "ApplicationSet") and \
                    str(o.get("apiVersion", "")).split("/")[0] in ("kustomize.toolkit.fluxcd.io", "argoproj.io"):
                continue
            out.add(f"{o.get('apiVersion')}/{o.get('kind')}/{md.get('namespace') or ''}/{md.get('name')}")
    return out


def _owned(u: Unit) -> set[str]:
    """Identities of everything a root leads to (to tell a collision from a shared object)."""
    return {repr(x.identity) for x in u.descendants()}


def _group(d: _Discoverer, roots: list[Unit]) -> list[Target]:
    groups: list[tuple[str, list[Unit], set[str], set[str]]] = []
    for r in sorted(roots, key=lambda u: (u.dialect, u.path, u.name)):
        keys, ids = _keys(r), _owned(r)
        for g in groups:
            if g[0] != r.dialect:
                continue
            clash = (keys & g[2]) and not (ids <= g[3] or g[3] <= ids)
            if not clash:
                g[1].append(r)
                g[2].update(keys)
                g[3].update(ids)
                break
        else:
            groups.append((r.dialect, [r], keys, ids))
    targets: list[Target] = []
    used: set[str] = set()
    for dialect, rs, _k, _i in groups:
        name = _target_name(rs)
        base, n = name, 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        units = list({id(x): x for r in rs for x in r.descendants()}.values())
        boot = _bootstrap(d, rs)
        targets.append(Target(name, dialect, rs, boot, units))
    return targets


def _target_name(roots: list[Unit]) -> str:
    if len(roots) == 1:
        r = roots[0]
        return _slug(r.path) if r.path != "." else (r.name or "root")
    return "+".join(_slug(r.path) for r in roots[:3]) + ("+..." if len(roots) > 3 else "")


def _bootstrap(d: _Discoverer, roots: list[Unit]) -> list[dict[str, Any]]:
    """The objects applied first: root units plus the GitRepository each Flux root names."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for r in roots:
        if r.dialect == "flux" and r.source == "self":
            repo = d.gitrepo_for(r.obj, r.file, r.namespace)
            ref = r.spec.get("sourceRef") or {}
            gname, gns = ref.get("name", "flux-system"), ref.get("namespace") or r.namespace
            if repo is not None:
                gobj = _with_ns(repo.data, gns)
            else:
                if not r.synthesized:
                        d.notes.append(f"GitRepository {gns}/{gname} (named by {r.ref}) is not in the repository: "
                                   "a synthesised one serves this repository in its place")
                gobj = {"apiVersion": FLUX_GIT_API, "kind": "GitRepository",
                        "metadata": {"name": gname, "namespace": gns},
                        "spec": {"interval": "1m0s", "url": d.snapshot_url, "ref": {"branch": "main"}}}
            k = ("GitRepository", gns, gname)
            if k not in seen:
                seen.add(k)
                out.append(gobj)
        obj = _with_ns(r.obj, r.namespace)
        k = (r.kind, r.namespace, r.name)
        if k not in seen:
            seen.add(k)
            out.append(obj)
    return out


def _with_ns(obj: dict[str, Any], ns: str) -> dict[str, Any]:
    import copy

    o = copy.deepcopy(obj)
    md = o.setdefault("metadata", {})
    if not md.get("namespace"):
        md["namespace"] = ns
    o.pop("status", None)
    return o
