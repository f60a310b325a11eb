"""``try_repo``: the whole of ``labkit try`` as one function, for the CLI, notebooks and tests.

The steps, each in its own module:

1. ``source.open_source`` — snapshot the revision to reconcile (working tree or
   ``--ref``) into a private temporary directory;
2. Flux objects written for ``v1beta1`` / ``v1beta2`` are read as ``v1`` (the
   snapshot's copy is rewritten and a note says so: the simulated controllers
   serve ``v1``, whose fields are a superset of what those versions use);
3. ``index.SourceIndex`` — parse every YAML file once, with line numbers;
4. ``discovery.discover`` — the units to reconcile and the targets (simulated
   clusters) they go to, rendering each unit with real kustomize;
5. ``reconcile.reconcile_target`` — a fresh ``SimCluster`` per target with the
   dialect's controllers, run in virtual time until it settles;
6. ``order.apply_order`` — stages / waves / hooks / dependsOn;
7. ``pitfalls.find_pitfalls`` — the checks, with ``history.RevisionRenders`` for
   the last ``history`` commits;
8. a ``model.TryReport``; with ``out`` the HTML page, JSON and figures are
   written (``report.write_outputs``).

Input errors — not a repository, a ``--path`` escaping it, a kustomize
failure, an invalid Flux or Argo object — are ``LabkitError``\\ s naming the
file and field; the CLI prints them on one line and exits 2.
"""
from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.core.errors import LabkitError
from labkit.tryrepo.build import Builder
from labkit.tryrepo.discovery import Discovery, discover
from labkit.tryrepo.history import RevisionRenders
from labkit.tryrepo.index import SourceIndex
from labkit.tryrepo.model import TryReport
from labkit.tryrepo.order import apply_order, order_figure
from labkit.tryrepo.pitfalls import find_pitfalls
from labkit.tryrepo.reconcile import RunOptions, TargetRun, reconcile_target
from labkit.tryrepo.source import MAX_HISTORY, RepoSource, check_subpath, open_source, refusal_notes

__all__ = ["TryOptions", "TryResult", "try_repo"]

_OLD_API = re.compile(r"^(apiVersion:\s*[\"']?)((?:kustomize|source)\.toolkit\.fluxcd\.io)/v1beta[12]([\"']?\s*)$",
                      re.MULTILINE)


@dataclass
class TryOptions:
    paths: list[str] = field(default_factory=list)
    dialect: str | None = None  # flux | argo | None (both, as found)
    ref: str | None = None
    history: int = 5
    seed: int = 0
    missing_images: list[str] = field(default_factory=list)
    out: Path | None = None
    figures: bool = True
    allow_remote: bool = False  # fetch remote kustomize bases (network); refused otherwise


@dataclass
class TryResult:
    report: TryReport
    source: RepoSource
    index: SourceIndex
    discovery: Discovery
    runs: dict[str, TargetRun]
    outputs: dict[str, Path] = field(default_factory=dict)
    _tmp: Any = None

    def close(self) -> None:
        """Remove the snapshot and the controllers' work directories."""
        self.source.close()
        for run in self.runs.values():
            tmp = getattr(run, "_tmp", None)
            if tmp is not None:
                tmp.cleanup()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _upgrade_flux_versions(root: Path) -> list[str]:
    changed = []
    for p in sorted(root.rglob("*.y*ml")):
        if not p.is_file() or p.is_symlink():
            continue
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "toolkit.fluxcd.io/v1beta" not in text:
            continue
        new = _OLD_API.sub(lambda m: f"{m.group(1)}{m.group(2)}/v1{m.group(3)}", text)
        if new != text:
            p.write_text(new, encoding="utf-8")
            changed.append(p.relative_to(root).as_posix())
    return changed


def try_repo(target: str, options: TryOptions | None = None) -> TryResult:
    """Reconcile a repository in the simulator and report its pitfalls (see the module docstring)."""
    opts = options or TryOptions()
    if opts.dialect not in (None, "flux", "argo"):
        raise LabkitError(f"unknown dialect {opts.dialect!r}: flux or argo", field="--dialect")
    if opts.history < 0:
        raise LabkitError("must be 0 or more", field="--history")
    if opts.history > MAX_HISTORY:
        raise LabkitError(f"at most {MAX_HISTORY} commits can be checked (got {opts.history})", field="--history")
    if opts.out is not None:
        from labkit.tryrepo.report import check_out_dir

        check_out_dir(Path(opts.out))  # an existing file, say: fail before the analysis, naming --out
    wall0 = time.monotonic()
    tmp = tempfile.TemporaryDirectory(prefix="labkit-try-")
    runs: dict[str, TargetRun] = {}
    try:
        source = open_source(target, ref=opts.ref, workdir=Path(tmp.name))
        paths = [check_subpath(source.root, p) for p in opts.paths]
        upgraded = _upgrade_flux_versions(source.root)
        index = SourceIndex(source.root)
        builder = Builder(source.root, source.revision, source.display, index, allow_remote=opts.allow_remote)
        disc = discover(source, index, builder, paths=paths, dialect=opts.dialect)
        if upgraded:
            disc.notes.append(f"Flux v1beta1/v1beta2 objects read as v1 in: {', '.join(upgraded)}")
        run_opts = RunOptions(seed=opts.seed, missing_images=list(opts.missing_images), renderer=builder.renderer)
        for t in disc.targets:
            runs[t.name] = reconcile_target(t, source, disc, run_opts)
        steps, edges = apply_order(disc)
        history = RevisionRenders(source, opts.history) if source.has_git and opts.history else None
        pitfalls = find_pitfalls(source, index, disc, runs, history)
        rep = TryReport(target, source.display, source.revision, source.label, source.dirty, opts.seed)
        rep.dialects = sorted({t.dialect for t in disc.targets})
        rep.targets = [r.result for r in runs.values()]
        rep.units = [u for r in runs.values() for u in r.units]
        rep.objects = [o for r in runs.values() for o in r.objects]
        _locate_objects(rep, disc, index)
        rep.apply_order, rep.edges = steps, edges
        rep.pitfalls = pitfalls
        rep.unreconciled = [{"unit": u.ref, "dialect": u.dialect, "path": u.path, "file": u.file, "line": u.line,
                             "why": why} for u, why in disc.unreconciled]
        rep.notes = list(disc.notes) + refusal_notes(source.refused)
        from labkit.gitops import sandbox

        if not sandbox.available():
            rep.notes.append(f"confinement: {sandbox.status()}")
        if not disc.targets:
            rep.notes.append("nothing to reconcile was found")
        if history is not None:
            rep.history = [{"sha": sha, "subject": subj} for sha, subj in history.commits]
        elif not source.has_git:
            rep.notes.append("not a git repository: history checks (StatefulSet volumeClaimTemplates, secrets in "
                             "history) were skipped")
        result = TryResult(rep, source, index, disc, runs, _tmp=tmp)
        rep.wall_seconds = round(time.monotonic() - wall0, 3)  # the analysis; writing the report comes after
        if opts.out is not None:
            from labkit.tryrepo.report import write_outputs

            fig = order_figure(steps, edges, disc.targets)
            result.outputs = write_outputs(rep, Path(opts.out), fig)
        return result
    except BaseException:  # an input error, Ctrl-C, or SIGTERM (the CLI turns it into SystemExit)
        for run in runs.values():  # the controllers' work directories, then the snapshot
            if getattr(run, "_tmp", None) is not None:
                run._tmp.cleanup()
        tmp.cleanup()
        raise


def _locate_objects(rep: TryReport, disc: Discovery, index: SourceIndex) -> None:
    where: dict[tuple[str, str, str, str], tuple[str | None, int | None]] = {}
    for t in disc.targets:
        for u in t.units:
            for o in u.objects:
                name = str((o.get("metadata") or {}).get("name"))
                doc = index.locate(o, u.closure)
                if doc is not None:
                    where[(t.name, u.ref, str(o.get("kind")), name)] = (doc.file, doc.line)
                else:
                    gen = index.generator_of(o, u.closure)
                    if gen is not None:
                        where[(t.name, u.ref, str(o.get("kind")), name)] = gen
    for o in rep.objects:
        hit = where.get((o.target, o.unit, o.kind, o.name))
        if hit is not None:
            o.file, o.line = hit
