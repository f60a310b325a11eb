"""The explorers' drivers: per-scenario controls over the very lab the scenario ran (no Jupyter here).

An explorer (``labkit.scenarios.explorer.Explorer``) is one reusable core — clock
buttons (+10 s, +1 min, +10 min), panels, a view selector — around a **driver**,
which owns the scenario's own simulation objects and knows

* its **controls**: buttons that do what a participant would do to the real
  thing (``Control``: a git commit or revert through the lab's repository, a
  ``kubectl edit`` through the cluster seam, a promotion pull request, a
  ``flux reconcile`` / ``argocd app sync``) and **toggles** (``Toggle``: the git
  host's webhook, the offered load, ``flux suspend``);
* its **views** (which environment, lab or world the panels show);
* how to read its state into the panels (``labkit.scenarios.explorer_panels``):
  the plan of the next reconcile as a field-level diff with field owners, live
  state, conditions and events with messages, and the timeline.

Nothing here re-implements a scenario: the drivers call the same lab methods
the scenario modules call (``FleetLab.set_image``, ``AppLab.commit`` /
``deploy`` / ``sync_now``, ``SimCluster.kubectl_edit``, ``FluxSystem.diff``,
the Argo CD controller's own comparison), on the objects the headless run left
behind, so every click continues that run's clock and event log.

Rendering a new revision with real kustomize takes a few hundred milliseconds of
wall time.  On every push to the lab's repository (a control's commit, or one the
simulation makes itself), ``Prewarm`` starts rendering the new revision for every
Flux Kustomization that follows it, on worker threads — into the same ``Renderer``
cache, under the same key, that kustomize-controller uses when it reconciles that
revision — and kustomize-controller's build waits for that render instead of
running its own.  Virtual time and outcomes are unchanged (the cache is keyed by
commit, and the modelled build duration is drawn as before); the renders overlap
each other, and the participant's reading time between clicks.
"""
from __future__ import annotations

import concurrent.futures
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from labkit.core.events import Event, EventLog
from labkit.core.health import kstatus
from labkit.scenarios import explorer_panels as P

__all__ = ["Control", "Toggle", "Driver", "FluxTarget", "ArgoTarget", "FleetDriver", "AppDriver", "HpaDriver",
           "StatefulDriver", "MigrationsDriver", "Prewarm", "PrewarmRenderer", "WebhookSwitch"]


# ------------------------------------------------------------------ controls

@dataclass
class Control:
    """A button: ``run()`` acts on the lab and returns a sentence saying what it did."""

    key: str
    label: str
    run: Callable[[], str]
    style: str = ""  # ipywidgets button_style: primary | success | info | warning | danger
    tooltip: str = ""


@dataclass
class Toggle:
    """An on/off switch: ``set(value)`` acts and returns a sentence; ``get()`` reads the current state."""

    key: str
    label: str
    get: Callable[[], bool]
    set: Callable[[bool], str]
    tooltip: str = ""


# ------------------------------------------------------------------ helpers over the seam

def _ignore_errors(fn: Callable[[], Any], default: Any = None) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001 - a panel shows what it can read
        return default


def _cond(obj: Mapping[str, Any] | None, ctype: str = "Ready") -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return {}


def _short(rev: str) -> str:
    return rev.rsplit(":", 1)[-1][:7] if rev else "—"


def _kind_api(kind: str) -> str:
    return {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "ReplicaSet": "apps/v1", "Job": "batch/v1",
            "HorizontalPodAutoscaler": "autoscaling/v2"}.get(kind, "v1")


def workload_html(cluster: Any, namespaces: Sequence[str]) -> str:
    """Live workloads in ``namespaces``: controllers with kstatus, their pods with phase and waiting reason."""
    parts = []
    for ns in namespaces:
        rows = []
        for kind in ("Deployment", "StatefulSet"):
            for o in _ignore_errors(lambda k=kind: cluster.list(_kind_api(k), k, ns), []) or []:
                spec, st = o.get("spec") or {}, o.get("status") or {}
                c = ((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}]
                env = ", ".join(f"{e.get('name')}={e.get('value', '…')}" for e in c[0].get("env") or [])
                lim = ((c[0].get("resources") or {}).get("limits") or {})
                ks = kstatus(o)
                rows.append([f"{kind}/{o['metadata']['name']}", c[0].get("image", ""),
                             f"{st.get('readyReplicas', 0)}/{spec.get('replicas', '—')} ready, "
                             f"{st.get('updatedReplicas', 0)} updated",
                             f"{ks.status}: {ks.message}",
                             "; ".join(x for x in (f"env {env}" if env else "",
                                                   f"limits {P.fmt_value(lim)}" if lim else "") if x)])
        for o in _ignore_errors(lambda: cluster.list("autoscaling/v2", "HorizontalPodAutoscaler", ns), []) or []:
            st = o.get("status") or {}
            util = [m.get("resource", {}).get("current", {}).get("averageUtilization")
                    for m in st.get("currentMetrics") or []]
            cpu = util[0] if util and util[0] is not None else "—"
            rows.append([f"HPA/{o['metadata']['name']}", "", f"current {st.get('currentReplicas', '—')}, desired "
                         f"{st.get('desiredReplicas', '—')} (min {o['spec'].get('minReplicas')}, max "
                         f"{o['spec'].get('maxReplicas')})", f"CPU {cpu} %", ""])
        for o in _ignore_errors(lambda: cluster.list("batch/v1", "Job", ns), []) or []:
            st = o.get("status") or {}
            rows.append([f"Job/{o['metadata']['name']}",
                         ((o["spec"]["template"]["spec"].get("containers") or [{}])[0]).get("image", ""),
                         f"succeeded {st.get('succeeded', 0)}, failed {st.get('failed', 0)}",
                         str(kstatus(o)), ""])
        pods = []
        for o in _ignore_errors(lambda: cluster.list("v1", "Pod", ns), []) or []:
            st = o.get("status") or {}
            cs = (st.get("containerStatuses") or [{}])[0]
            waiting = ((cs.get("state") or {}).get("waiting") or {}).get("reason", "")
            pods.append(f"{o['metadata']['name']} {st.get('phase', '')}"
                        + (" ready" if cs.get("ready") else "") + (f" ({waiting})" if waiting else "")
                        + (" terminating" if o["metadata"].get("deletionTimestamp") else ""))
        for o in _ignore_errors(lambda: cluster.list("v1", "PersistentVolumeClaim", ns), []) or []:
            st = o.get("status") or {}
            req = (((o.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage", "")
            rows.append([f"PVC/{o['metadata']['name']}", "", f"{st.get('phase', '')} {req}",
                         f"uid {o['metadata'].get('uid', '')[:8]}", ""])
        for o in _ignore_errors(lambda: cluster.list("v1", "Secret", ns), []) or []:
            keys = sorted((o.get("data") or {}))
            rows.append([f"Secret/{o['metadata']['name']}", "", f"keys: {', '.join(keys) or '—'}",
                         "values hidden", ""])
        if not rows and not pods:
            continue
        body = P.table(["object", "image", "replicas / state", "status", "detail"],
                       [[P.esc(c) for c in r] for r in rows], raw=True)
        pod_line = (f'<div style="font-size:12px;color:#444">pods: {P.esc("; ".join(pods))}</div>' if pods else "")
        parts.append(f"<b>namespace {P.esc(ns)}</b>{body}{pod_line}")
    return "".join(parts) or "<i>nothing running yet</i>"


class WebhookSwitch:
    """Turn a repository's push webhook deliveries off and on (the git host's webhook settings).

    ``enable_webhook`` of Flux and Argo CD subscribes a delivery function to the
    repository's pushes; switching off removes those subscribers (pushes still
    land, nobody is told), switching on puts them back — or, for a lab built
    without a webhook, calls ``enable()`` once to create the delivery.
    """

    def __init__(self, repo: Any, enable: Callable[[], Any] | None = None):
        self.repo = repo
        self._enable = enable
        self._parked: list[Callable] = []

    def _subscribers(self) -> list:
        return getattr(self.repo, "_subscribers", [])

    def _hooks(self) -> list:
        return [fn for fn in self._subscribers() if "enable_webhook" in getattr(fn, "__qualname__", "")]

    @property
    def on(self) -> bool:
        return bool(self._hooks())

    def set(self, value: bool) -> str:
        subs = self._subscribers()
        if value:
            if self.on:
                return "the webhook is already on"
            if self._parked:
                subs.extend(self._parked)
                self._parked = []
            elif self._enable is not None:
                self._enable()
            else:
                return "this lab has no webhook to turn on"
            return "webhook on: the git host now tells the controllers about every push"
        hooks = self._hooks()
        for fn in hooks:
            subs.remove(fn)
        self._parked.extend(hooks)
        return "webhook off: a push waits for the controller's next poll of git"


_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="labkit-prewarm")
        return _POOL


class Prewarm:
    """Render each pushed revision for the Flux Kustomizations that will build it, in the background.

    ``follow(repo, fluxes)`` subscribes to the repository's pushes — the participant's
    commits, and those the simulation makes itself (a promotion bot's merge) — and wraps
    each ``FluxSystem``'s renderer in a ``PrewarmRenderer``.  On a push, every
    Kustomization that follows the repository gets its render of the new revision
    started on a worker thread, with the very arguments ``FluxSystem.build`` uses (same
    cache entry); when kustomize-controller builds that revision, the wrapper waits for
    the worker instead of rendering a second time.  The renders overlap each other and
    the rest of the simulation, and after a click they go on while the participant reads.
    """

    def __init__(self) -> None:
        self.futures: dict[tuple[str, str], concurrent.futures.Future] = {}

    def follow(self, repo: Any, fluxes: Iterable[Any]) -> None:
        fluxes = list(fluxes)
        for flux in fluxes:
            if not isinstance(flux.renderer, PrewarmRenderer):
                flux.renderer = PrewarmRenderer(flux.renderer, self)

        branch = getattr(repo, "default_branch", None) or getattr(repo, "branch", None) or "main"

        def on_push(event: Any) -> None:
            sha = getattr(event, "after", "") or ""
            if getattr(event, "ref", "") != f"refs/heads/{branch}":
                return  # a pull request's branch: no Kustomization follows it
            if sha and set(sha) != {"0"}:
                for flux in fluxes:
                    self.flux(flux, repo, sha)

        repo.on_push(on_push)

    def flux(self, flux: Any, repo: Any, sha: str) -> None:
        """Every Kustomization of ``flux`` following ``repo``: render ``sha`` as ``FluxSystem.build`` will."""
        from labkit.flux.system import FLUX_NAMESPACE

        cluster = flux.cluster
        url = getattr(repo, "url", None)
        try:
            sources = {(o["metadata"]["namespace"], o["metadata"]["name"])
                       for o in cluster.list("source.toolkit.fluxcd.io/v1", "GitRepository", None)
                       if (o.get("spec") or {}).get("url") == url}
            kss = cluster.list("kustomize.toolkit.fluxcd.io/v1", "Kustomization", None)
        except Exception:  # noqa: BLE001 - prewarming is an optimisation only
            return
        jobs = []
        for ks in kss:
            spec = ks.get("spec") or {}
            ref = spec.get("sourceRef") or {}
            ns = ref.get("namespace") or ks["metadata"].get("namespace") or FLUX_NAMESPACE
            if ref.get("kind") != "GitRepository" or (ns, ref.get("name")) not in sources or spec.get("suspend"):
                continue
            path = spec.get("path") or "./"
            if (sha, _norm(path)) not in self.futures:
                jobs.append((path, dict(spec)))
        if not jobs:
            return
        try:
            root = repo.export(sha)  # the artifact source-controller will store (same path: cached per commit)
        except Exception:  # noqa: BLE001
            return
        inner = flux.renderer.inner if isinstance(flux.renderer, PrewarmRenderer) else flux.renderer
        for path, spec in jobs:
            self.futures[(sha, _norm(path))] = _pool().submit(_render_quietly, inner, path, root, sha, spec)

    def wait(self, sha: str | None, path: Any) -> None:
        """Let a started render of ``(sha, path)`` finish (the caller then reads it from the cache)."""
        f = self.futures.get((sha or "", _norm(path)))
        if f is not None:
            try:
                f.result(timeout=120)
            except Exception:  # noqa: BLE001 - the caller renders (and reports) it itself
                pass

    def join(self) -> None:
        """Wait for every render started so far (benchmarks and tests)."""
        for key in list(self.futures):
            self.wait(*key)


def _norm(path: Any) -> str:
    import os

    return os.path.normpath(os.fspath(path))


class PrewarmRenderer:
    """A ``Renderer`` stand-in that waits for a prewarm of the same revision and path before rendering."""

    def __init__(self, inner: Any, prewarm: Prewarm):
        self.inner = inner
        self.prewarm = prewarm

    def render(self, directory: Any, *, root: Any = None, key: str | None = None, overrides: Any = None) -> Any:
        self.prewarm.wait(key, directory)
        return self.inner.render(directory, root=root, key=key, overrides=overrides)

    def render_documents(self, directory: Any, *, root: Any = None, key: str | None = None,
                         overrides: Any = None) -> Any:
        self.prewarm.wait(key, directory)
        return self.inner.render_documents(directory, root=root, key=key, overrides=overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _render_quietly(renderer: Any, path: str, root: Any, sha: str, spec: dict) -> None:
    try:
        renderer.render_documents(path, root=root, key=sha, overrides=spec)
    except Exception:  # noqa: BLE001 - a failing build is cached by the renderer and reported by the controller
        pass


# ------------------------------------------------------------------ GitOps targets: the plan and the conditions

class FluxTarget:
    """One Flux Kustomization (and its GitRepository) on one cluster."""

    dialect = "flux"
    applier = "kustomize-controller"

    def __init__(self, flux: Any, name: str, repo: Any, *, namespace: str = "flux-system"):
        self.flux, self.name, self.repo, self.namespace = flux, name, repo, namespace
        self.cluster = flux.cluster

    def object(self) -> dict | None:
        return self.cluster.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", self.name, self.namespace)

    def source(self) -> dict | None:
        ks = self.object() or {}
        ref = (ks.get("spec") or {}).get("sourceRef") or {}
        return self.cluster.get("source.toolkit.fluxcd.io/v1", "GitRepository", ref.get("name", ""),
                                ref.get("namespace") or self.namespace)

    def label(self) -> str:
        return f"Kustomization/{self.name}"

    def conditions(self) -> list[tuple[str, dict | None]]:
        src = self.source()
        name = (src or {}).get("metadata", {}).get("name", "?")
        return [(self.label(), self.object()), (f"GitRepository/{name}", src)]

    def revisions(self) -> dict[str, str]:
        ks, src = self.object() or {}, self.source() or {}
        st = ks.get("status") or {}
        return {"git": _ignore_errors(lambda: self.repo.head(), "") or "",
                "artifact": ((src.get("status") or {}).get("artifact") or {}).get("revision", ""),
                "attempted": st.get("lastAttemptedRevision", ""), "applied": st.get("lastAppliedRevision", "")}

    def ready_line(self) -> str:
        ks = self.object()
        ready = _cond(ks)
        if (ks or {}).get("spec", {}).get("suspend"):
            return "suspended (flux suspend): nothing is reconciled"
        line = f"Ready={ready.get('status', '?')} {ready.get('reason', '')}"
        rec = _cond(ks, "Reconciling")
        if rec.get("status") == "True":
            line += f" — reconciling now: {rec.get('message', '')}"
        elif ready.get("status") == "False":
            line += f": {ready.get('message', '')}"
        return line

    def sync_now(self) -> str:
        src = self.source()
        if src is not None:
            self.flux.request_reconcile("GitRepository", src["metadata"]["name"], src["metadata"]["namespace"])
        self.flux.request_reconcile("Kustomization", self.name, self.namespace)
        return f"flux reconcile kustomization {self.name} --with-source"

    def plan(self) -> tuple[str, list[P.ObjectPlan]]:
        ks = self.object()
        revs = self.revisions()
        header = _flux_header(self, ks, revs)
        try:
            plan = self.flux.diff(self.name, self.namespace)
        except Exception as err:  # noqa: BLE001 - shown, never raised
            return header, [P.ObjectPlan(self.label(), "failed", note=f"flux diff failed: {err}")]
        plans = []
        desired_ids = set()
        for e in plan.entries:
            md = e.desired.get("metadata") or {}
            desired_ids.add((md.get("namespace") or "", md.get("name"), e.desired.get("kind")))
            rows = []
            if e.action.value == "configured" or (e.action.value == "unchanged" and e.live is not None):
                rows = P.field_plan(e.live, e.dry_run, e.desired, applier=self.applier, cleanup_note=True)
            elif e.action.value == "created":
                rows = P.field_plan(None, e.dry_run or e.desired, applier=self.applier, max_rows=8)
            plans.append(P.ObjectPlan(e.subject, e.action.value, _redact(e.desired, rows), note=e.reason))
        plans.extend(_flux_prunes(ks, desired_ids))
        return header, plans


def _flux_header(t: FluxTarget, ks: dict | None, revs: dict[str, str]) -> str:
    spec = (ks or {}).get("spec") or {}
    git, art = revs["git"], revs["artifact"]
    if git and art.endswith(git):
        pending = "git HEAD is the fetched revision"
    elif git:
        pending = (f"git HEAD <code>{_short(git)}</code> is <b>not fetched yet</b>: the plan below is for the last "
                   f"fetched revision; the webhook or the next poll of the GitRepository brings the new one")
    else:
        pending = ""
    return (f"<div>Next reconcile of <b>{P.esc(t.label())}</b> (what <code>flux diff</code> shows): revision "
            f"<code>{_short(art)}</code>, interval {P.esc(spec.get('interval', '?'))}"
            f"{', prune on' if spec.get('prune') else ', prune off'}"
            f"{', <b>suspended</b>' if spec.get('suspend') else ''}. {pending}. "
            f"Forced server-side apply as <code>{t.applier}</code>: it takes every field it sends.</div>")


def _flux_prunes(ks: dict | None, desired_ids: set) -> list[P.ObjectPlan]:
    spec = (ks or {}).get("spec") or {}
    out = []
    for entry in (((ks or {}).get("status") or {}).get("inventory") or {}).get("entries") or []:
        parts = str(entry.get("id", "")).split("_")
        if len(parts) != 4:
            continue
        ns, name, _group, kind = parts
        if (ns, name, kind) in desired_ids:
            continue
        subject = f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"
        out.append(P.ObjectPlan(subject, "prune" if spec.get("prune") else "left (prune off)",
                                note="in the inventory, no longer in git"))
    return out


def _redact(obj: Mapping[str, Any] | None, rows: list[P.FieldRow]) -> list[P.FieldRow]:
    """Never show a Secret's values: a plan of a decrypted Secret would otherwise print them."""
    if (obj or {}).get("kind") != "Secret":
        return rows
    out = []
    for r in rows:
        if r.path.startswith((".data", ".stringData")):
            r = P.FieldRow(r.path, "<hidden>" if r.before is not P.fieldset.MISSING else r.before,
                           "<hidden>" if r.after is not P.fieldset.MISSING else r.after, r.owners, r.kind, r.note)
        out.append(r)
    return out


class ArgoTarget:
    """One Argo CD Application (its controller's last comparison, dry-run field by field)."""

    dialect = "argo"
    applier = "argocd-controller"

    def __init__(self, argo: Any, name: str, repo: Any, cluster: Any):
        self.argo, self.name, self.repo, self.cluster = argo, name, repo, cluster

    def object(self) -> dict | None:
        return self.argo.app(self.name)

    def label(self) -> str:
        return f"Application/{self.name}"

    def conditions(self) -> list[tuple[str, dict | None]]:
        app = self.object() or {}
        st = app.get("status") or {}
        op = st.get("operationState") or {}
        # Argo's state lives in sync / health / operationState, not in conditions: show them as conditions
        sync, health = st.get("sync") or {}, st.get("health") or {}
        truth = {"Synced": "True", "OutOfSync": "False", "Healthy": "True", "Degraded": "False",
                 "Succeeded": "True", "Failed": "False", "Error": "False"}
        synthetic = {"status": {"conditions": [
            {"type": "Sync", "status": truth.get(sync.get("status", ""), "Unknown"), "reason": sync.get("status", ""),
             "message": f"compared to {_short(sync.get('revision', ''))}"},
            {"type": "Health", "status": truth.get(health.get("status", ""), "Unknown"),
             "reason": health.get("status", ""), "message": health.get("message", "")},
            {"type": "Operation", "status": truth.get(op.get("phase", ""), "Unknown"), "reason": op.get("phase", ""),
             "message": op.get("message", "")},
            *(st.get("conditions") or [])]}}
        return [(self.label(), synthetic if app else None)]

    def revisions(self) -> dict[str, str]:
        st = (self.object() or {}).get("status") or {}
        op = st.get("operationState") or {}
        return {"git": _ignore_errors(lambda: self.repo.head(), "") or "",
                "artifact": (st.get("sync") or {}).get("revision", ""),
                "attempted": ((op.get("operation") or {}).get("sync") or {}).get("revision", ""),
                "applied": (op.get("syncResult") or {}).get("revision", "") if op.get("phase") == "Succeeded" else ""}

    def ready_line(self) -> str:
        st = (self.object() or {}).get("status") or {}
        sync, health = (st.get("sync") or {}).get("status", "?"), (st.get("health") or {}).get("status", "?")
        return f"sync {sync}, health {health}, last operation {(st.get('operationState') or {}).get('phase', '—')}"

    def sync_now(self) -> str:
        try:
            self.argo.sync(self.name)
        except Exception as err:  # noqa: BLE001 - an operation may be running already
            return f"argocd app sync {self.name}: {err}"
        return f"argocd app sync {self.name}"

    def plan(self) -> tuple[str, list[P.ObjectPlan]]:
        from labkit.argo.apply import dry_run_object

        app = self.object() or {}
        spec = app.get("spec") or {}
        policy = spec.get("syncPolicy") or {}
        auto = policy.get("automated")
        revs = self.revisions()
        ctrl = _ignore_errors(lambda: self.argo.controller(self.name))
        comp = getattr(ctrl, "comparison", None)
        head = revs["git"]
        compared = getattr(comp, "revision", "") or revs["artifact"]
        pending = "" if not head or compared == head else (
            f" git HEAD <code>{_short(head)}</code> is newer: Argo CD compares it after the webhook or its next "
            "refresh (every 3 min).")
        header = (f"<div>Next sync of <b>{P.esc(self.label())}</b> (Argo CD's comparison, dry-run field by field): "
                  f"revision <code>{_short(compared)}</code>; automated sync "
                  f"{'on' if auto else 'off'}{', selfHeal on' if (auto or {}).get('selfHeal') else ', selfHeal off'}"
                  f"{', prune on' if (auto or {}).get('prune') else ''}"
                  f"{'; syncOptions ' + ', '.join(policy.get('syncOptions')) if policy.get('syncOptions') else ''}."
                  f"{pending} Applied as <code>{self.applier}</code>.</div>")
        if comp is None:
            return header, []
        from labkit.argo.diff import matching_rules, respect_ignored

        aspec = getattr(ctrl, "spec", None)
        rules = list(getattr(aspec, "ignore_differences", ()) or ()) + list(_ignore_errors(self.argo.system_rules, []))
        options = getattr(getattr(aspec, "sync_policy", None), "sync_options", {}) or {}
        respect = str(options.get("RespectIgnoreDifferences", "")).lower() == "true"
        plans = []
        for r in comp.resources:
            g, kind, ns, name = r.key
            subject = f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"
            if r.requires_pruning:
                ann = ((r.live or {}).get("metadata") or {}).get("annotations") or {}
                keep = "Prune=false" in ann.get("argocd.argoproj.io/sync-options", "")
                plans.append(P.ObjectPlan(subject, "prune skipped (Prune=false)" if keep else "prune",
                                          note="no longer in git"))
                continue
            if r.target is None:
                continue
            live = _ignore_errors(lambda: self.cluster.get(r.api_version, kind, name, ns or None))
            if live is None:
                plans.append(P.ObjectPlan(subject, "created", note="missing in the cluster"))
                continue
            obj_rules = matching_rules(rules, r.target.obj) if rules else []
            sent = respect_ignored(r.target.obj, live, obj_rules) if (respect and obj_rules) else r.target.obj
            after = _ignore_errors(lambda: dry_run_object(self.cluster, sent))
            rows = P.field_plan(live, after, r.target.obj, applier=self.applier) if after is not None else []
            note = ""
            if r.diff is not None and r.diff.paths:
                note = "Argo CD's diff: " + ", ".join(r.diff.paths[:6])
            if obj_rules and respect:
                note = (note + "; " if note else "") + ("ignoreDifferences + RespectIgnoreDifferences=true: a sync "
                                                        "sends the live value of the ignored fields")
            elif obj_rules and [x for x in rows if x.kind != "kept"]:
                note = (note + "; " if note else "") + ("ignoreDifferences hides these fields from the diff "
                                                        "(no self-heal), but any sync still applies git's value "
                                                        "(no RespectIgnoreDifferences)")
            plans.append(P.ObjectPlan(subject, r.status, _redact(r.target.obj, rows), note=note))
        return header, plans


# ------------------------------------------------------------------ the driver base

_LANES = ("people & CLI", "git", "webhook", "source", "reconcile", "rollout", "pods", "autoscaler",
          "jobs & operators", "ci")
_RECONCILERS = ("kustomize-controller", "argocd-application-controller")


def lane_of(e: Event) -> str | None:
    c = e.component
    if c in ("git", "promotion-bot", "guard"):
        return "git"
    if c in ("webhook", "argocd-server"):
        return "webhook"
    if c == "source-controller":
        return "source"
    if c in _RECONCILERS:
        return "reconcile"
    if c in ("deployment-controller", "replicaset-controller", "statefulset-controller"):
        return "rollout"
    if c == "kubelet":
        return "pods"
    if c in ("horizontal-pod-autoscaler", "replicas-probe"):
        return "autoscaler"
    if c in ("job-controller", "database-operator", "shop-migrate", "sealed-secrets", "external-secrets",
             "secrets-manager", "sts-migration"):
        return "jobs & operators"
    if c in ("ci", "delivery", "oncall"):
        return "ci"
    if c == "api":
        who = str((e.detail or {}).get("manager", ""))
        if who.startswith("kubectl") or who in ("flux-client-side-apply", "labkit-admin", "participant"):
            return "people & CLI"
    return None


_CONTROLLER_MANAGERS = ("kube-controller-manager", "kube-scheduler", "kubelet", "garbage-collector")


def _controller_write(e: Event) -> bool:
    """An API write the workload controllers make on their own (pods, ReplicaSets …): their events say it better."""
    if e.component != "api":
        return False
    who = str((e.detail or {}).get("manager", ""))
    return who in _CONTROLLER_MANAGERS or e.object.startswith(("Pod/", "ReplicaSet/")) or (
        e.event in ("Deleted",) and not who)


_ROUTINE = {("kubelet", "Created"), ("kubelet", "Started"), ("default-scheduler", "Scheduled")}


def routine(e: Event) -> bool:
    """Events the events panel leaves out (the timeline keeps what matters of them): polls that found
    nothing new, Argo CD refreshes that found the app in sync, container starts, scheduling, and the
    API writes the workload controllers make on their own."""
    if e.event == "Fetched" or (e.component, e.event) in _ROUTINE or _controller_write(e):
        return True
    return e.component == "argocd-application-controller" and e.event == "Refreshed" and \
        (e.detail or {}).get("sync") == "Synced"


def _is_warning(e: Event) -> bool:
    return (e.detail or {}).get("type") == "Warning" or any(
        w in e.event for w in ("Fail", "Error", "BackOff", "Blocked", "Refused", "Drift", "Exceeded"))


def mark_of(e: Event) -> P.Mark | None:
    lane = lane_of(e)
    if lane is None:
        return None
    d = e.detail or {}
    colour = "#c0392b" if _is_warning(e) else "#1f77b4"
    label = f"{e.component} {e.event} {e.object}: {P.event_message(e)}"
    if e.component == "kustomize-controller":
        if e.event not in ("ReconciliationSucceeded", "ReconciliationFailed", "HealthCheckFailed", "Progressing",
                           "DependencyNotReady", "ArtifactFailed", "BuildFailed"):
            return None
        dur = d.get("duration")
        colour = "#2ca02c" if e.event == "ReconciliationSucceeded" else colour
        if isinstance(dur, (int, float)) and dur > 0:
            return P.Mark(e.time - dur, lane, label, end=e.time, colour=colour)
        return P.Mark(e.time, lane, label, colour=colour)
    if e.component == "argocd-application-controller":
        if e.event == "OperationCompleted":
            dur = d.get("duration") or 0
            ok = d.get("phase") == "Succeeded"
            return P.Mark(e.time - float(dur), lane, label, end=e.time, colour="#2ca02c" if ok else "#c0392b")
        if e.event in ("OperationStarted", "ComparisonError", "SyncError"):
            return P.Mark(e.time, lane, label, colour=colour)
        if e.event == "Refreshed" and d.get("sync") == "OutOfSync":
            return P.Mark(e.time, lane, label, colour="#b35c00")
        return None
    if e.component == "source-controller":
        if e.event == "Fetched":
            return P.Mark(e.time, lane, label, colour="#bbbbbb")
        return P.Mark(e.time, lane, label, colour="#2ca02c" if e.event == "NewArtifact" else colour)
    if e.component == "kubelet" and e.event in ("Created", "Killing", "Scheduled"):
        return None
    if e.component in ("replicaset-controller",):
        return None
    return P.Mark(e.time, lane, label, colour=colour)


class Driver:
    """One scenario's lab under the explorer (see the module docstring).  Subclasses fill in the hooks."""

    title = "explorer"
    #: seconds of history before the explorer opened that the timeline and events start with
    history = 600.0
    event_rows = 30

    def __init__(self) -> None:
        self.controls: list[Control] = []
        self.toggles: list[Toggle] = []
        self.views: list[str] = []
        self.view = ""
        self.prewarm = Prewarm()
        self.started = 0.0
        self.actions: list[P.Mark] = []  # what the participant did, for the "people & CLI" lane
        self._journals: dict[str, list[Event]] = {}
        self._marks: dict[str, tuple[int, list[P.Mark]]] = {}  # view -> (journal entries read, their marks)
        self._seen: dict[int, str] = {}

    # ---------------------------------------------------------------- hooks
    def now(self) -> float:
        raise NotImplementedError

    def run_clock(self, seconds: float) -> None:
        raise NotImplementedError

    def logs(self) -> dict[str, list[EventLog]]:
        """view -> the event logs whose records belong to it."""
        raise NotImplementedError

    def status(self) -> str:
        return ""

    def target(self) -> Any:
        """The GitOps object (a ``FluxTarget``, ``ArgoTarget``...) the view's plan is about; None: none."""
        return None

    def webhook_switch(self) -> "WebhookSwitch":
        """The git host's webhook the ``webhook`` toggle flips for the current view."""
        return self.webhook  # type: ignore[attr-defined]

    def plan(self) -> tuple[str, list[P.ObjectPlan], str]:
        """The plan of the view's target: header, object plans, and who applies them."""
        t = self.target()
        if t is None:
            return "", [], ""
        header, plans = t.plan()
        return header, plans, t.applier

    def live(self) -> str:
        return ""

    def conditions(self) -> list[tuple[str, Mapping[str, Any] | None]]:
        return []

    def owners(self) -> list[tuple[str, Mapping[str, Any] | None]]:
        return []

    # ---------------------------------------------------------------- shared machinery
    def attach(self) -> None:
        """Start following the logs (call at the end of a subclass's ``__init__``)."""
        self.started = self.now()
        for view, logs in self.logs().items():
            since = self.now_of(view) - self.history
            journal = self._journals.setdefault(view, [])
            for log in logs:
                for e in log.filter(since=since):
                    if not P.quiet(e):
                        journal.append(e)
                log.subscribe(lambda e, j=journal: None if P.quiet(e) else j.append(e))
        for j in self._journals.values():
            j.sort(key=lambda e: e.time)
        if not self.view and self.views:
            self.view = self.views[0]

    def now_of(self, view: str) -> float:
        """The virtual time of ``view`` (views share one clock unless a subclass says otherwise)."""
        return self.now()

    def advance(self, seconds: float) -> str:
        t0 = self.now()
        self.run_clock(seconds)
        return f"the clock ran {seconds:g} s: {t0:,.1f} s → {self.now():,.1f} s"

    def note(self, text: str) -> None:
        self.actions.append(P.Mark(self.now(), "people & CLI", text, colour="#6f42c1"))

    # ---------------------------------------------------------------- controls every driver shares
    def reconcile(self) -> str:
        """``flux reconcile`` / ``argocd app sync`` of the view's target, noted on the timeline."""
        text = self.target().sync_now()
        self.note(text)
        return text

    def set_webhook(self, value: bool) -> str:
        text = self.webhook_switch().set(value)
        self.note(text.split(":")[0])
        return text

    def events(self, n: int | None = None) -> list[Event]:
        """The newest events of the view, newest first, without the routine ones (``routine``)
        and with a run of the same event on the same object shown once."""
        journal = self._journals.get(self.view) or []
        out: list[Event] = []
        for e in reversed(journal):
            if routine(e):
                continue
            if out and (out[-1].component, out[-1].event, out[-1].object) == (e.component, e.event, e.object):
                continue
            out.append(e)
            if len(out) >= (n or self.event_rows):
                break
        return out

    def journal(self) -> list[Event]:
        return list(self._journals.get(self.view) or [])

    def marks(self) -> list[P.Mark]:
        """The timeline's marks: the journal's (read incrementally — it only grows) and the participant's."""
        journal = self._journals.get(self.view) or []
        read, marks = self._marks.get(self.view, (0, []))
        if read < len(journal):
            marks.extend(m for m in map(mark_of, journal[read:]) if m is not None)
            self._marks[self.view] = (len(journal), marks)
        return marks + self.actions

    def lanes(self) -> list[str]:
        used = {m.lane for m in self.marks()}
        return [lane for lane in _LANES if lane in used or lane in ("people & CLI", "git", "reconcile")]

    def window_start(self) -> float:
        """Where the timeline starts: a little history before the explorer opened."""
        return max(0.0, self.started - self.history)

    def timeline(self, width: int = 860) -> str:
        t0 = self.window_start()
        now = self.now()
        return P.timeline_svg(self.marks(), self.lanes(), t0, max(now, t0 + 60.0), now=now, width=width)


# ------------------------------------------------------------------ FleetLab: tour, promotion, drift

class FleetDriver(Driver):
    """The sample fleet (``FleetLab``): one view per environment, podinfo's overlays in git."""

    title = "Reconcile explorer: the sample fleet"

    def __init__(self, lab: Any, *, environments: Sequence[str] | None = None, scenario: str = "tour",
                 bot: Any = None):
        from labkit.scenarios.lab import PODINFO_TAGS, WEBHOOK_TOKEN

        self.lab = lab
        self.scenario = scenario
        self.bot = bot
        super().__init__()
        self.views = list(environments or lab.clusters)
        self.view = self.views[0]
        self._tags = list(PODINFO_TAGS)
        self._mine: list[str] = []  # commits made through the explorer, newest last

        def enable() -> None:
            for flux in lab.flux.values():
                flux.enable_webhook(lab.repo, token=WEBHOOK_TOKEN)

        self.webhook = WebhookSwitch(lab.repo, enable)
        c = Control
        self.controls = [
            c("commit", "git commit: next tag", self.commit_next, "primary",
              "bump podinfo's image tag in this environment's overlay and push"),
            c("bad", "git commit: tag that does not exist", self.commit_missing, "warning",
              "push a tag the registry does not have: pods go to ErrImagePull, the old ReplicaSet keeps serving"),
            c("revert", "git revert last commit", self.revert_last, "",
              "git revert of the newest commit made here (or of HEAD), pushed"),
            c("hotfix", "kubectl edit: add env HOTFIX", self.hotfix_env, "danger",
              "an Update by kubectl-edit that adds a field git does not have"),
            c("limit", "kubectl edit: memory limit 512Mi", self.hotfix_limit, "danger",
              "an Update by kubectl-edit that changes a field git sets (128Mi)"),
            c("reconcile", "flux reconcile", self.reconcile, "info",
              "flux reconcile kustomization apps --with-source: fetch and apply now"),
        ]
        if "prod" in lab.clusters and scenario == "promotion":
            self.controls.insert(3, c("promote", "promote staging's tag to prod (PR)", self.promote, "success",
                                      "open a pull request that sets staging's tag in the prod overlay, review, merge"))
        if scenario == "drift":
            self.controls.insert(5, c("commit-hotfix", "git commit: the hotfix (512Mi)", self.commit_limit, "success",
                                      "write the hotfix into git, where GitOps keeps it"))
            self.toggles.append(Toggle("suspend", "flux suspend apps", self._suspended, self.set_suspend,
                                       "suspend the apps Kustomization (runbooks say so before a hotfix)"))
        self.toggles.insert(0, Toggle("webhook", "webhook", lambda: self.webhook.on, self.set_webhook,
                                      "the git host's push webhook to Flux's receiver"))
        self.prewarm.follow(lab.repo, lab.flux.values())
        self.attach()

    # ---------------------------------------------------------------- clock and logs
    def now(self) -> float:
        return self.lab.now

    def run_clock(self, seconds: float) -> None:
        self.lab.advance(seconds)

    def logs(self) -> dict[str, list[EventLog]]:
        return {env: [self.lab.cluster(env).log, self.lab.git_log] for env in self.lab.clusters}

    def target(self, env: str | None = None) -> FluxTarget:
        return FluxTarget(self.lab.flux[env or self.view], "apps", self.lab.repo)

    # ---------------------------------------------------------------- controls
    def _committed(self, sha: str, text: str) -> str:
        self._mine.append(sha)
        self.note(text)
        return f"{text} — commit {sha[:7]}"

    def commit_next(self) -> str:
        from labkit.scenarios.lab import PODINFO

        current = (self.lab.image(self.view) or "").rsplit(":", 1)[-1]
        tags = self._tags[1:] or self._tags
        i = tags.index(current) + 1 if current in tags else 0
        tag = tags[i % len(tags)]
        sha = self.lab.set_image(self.view, tag, author="participant", message=f"podinfo {self.view}: {tag}")
        return self._committed(sha, f"git commit: {PODINFO}:{tag} in {self.lab.overlay(self.view)}")

    def commit_missing(self) -> str:
        tag = "6.5.99"
        sha = self.lab.set_image(self.view, tag, author="participant", message=f"podinfo {self.view}: {tag}")
        return self._committed(sha, f"git commit: tag {tag}, which the registry does not have")

    def revert_last(self) -> str:
        target = self._mine.pop() if self._mine else self.lab.repo.head()
        try:
            sha = self.lab.repo.revert(target, "participant", when=self.lab.now)
        except Exception as err:  # noqa: BLE001 - git's own words for the participant
            return f"git revert {target[:7]} failed: {err}"
        text = f"git revert {target[:7]}"
        self._committed(sha, text)
        self._mine.pop()  # a revert is not itself reverted by the next click
        return f"{text} — commit {sha[:7]}"

    def _edit(self, mutate: Callable[[dict], None], what: str) -> str:
        env = self.view
        try:
            self.lab.cluster(env).kubectl_edit("apps/v1", "Deployment", "podinfo", f"podinfo-{env}", mutate)
        except Exception as err:  # noqa: BLE001
            return f"kubectl edit failed: {err}"
        self.note(f"kubectl edit: {what}")
        return f"kubectl edit deployment/podinfo -n podinfo-{env}: {what} (an Update by kubectl-edit)"

    def hotfix_env(self) -> str:
        stamp = f"t={self.lab.now:.0f}"

        def mutate(obj: dict) -> None:
            c = obj["spec"]["template"]["spec"]["containers"][0]
            env = [e for e in c.get("env") or [] if e.get("name") != "HOTFIX"]
            c["env"] = env + [{"name": "HOTFIX", "value": stamp}]

        return self._edit(mutate, f"added env HOTFIX={stamp}")

    def hotfix_limit(self) -> str:
        from labkit.scenarios.drift import HOTFIX_LIMIT

        def mutate(obj: dict) -> None:
            c = obj["spec"]["template"]["spec"]["containers"][0]
            c.setdefault("resources", {}).setdefault("limits", {})["memory"] = HOTFIX_LIMIT

        return self._edit(mutate, f"memory limit {HOTFIX_LIMIT}")

    def commit_limit(self) -> str:
        from labkit.scenarios.drift import HOTFIX_LIMIT

        path = "apps/podinfo/base/deployment.yaml"
        text = self.lab.repo.read(path)
        if "memory: 128Mi" not in text:
            return "git already has a different memory limit"
        sha = self.lab.repo.commit({path: text.replace("memory: 128Mi", f"memory: {HOTFIX_LIMIT}")},
                                   message="podinfo: raise memory limit (the hotfix, in git)", author="participant",
                                   when=self.lab.now)
        return self._committed(sha, f"git commit: memory limit {HOTFIX_LIMIT} in the base")

    def promote(self) -> str:
        from labkit.gitops.repo import set_image_in_kustomization
        from labkit.scenarios.lab import PODINFO
        from labkit.scenarios.promotion import REVIEWER, tag_in_git

        repo = self.lab.repo
        tag = tag_in_git(self.lab, "staging", repo.head())
        if tag is None or tag == tag_in_git(self.lab, "prod", repo.head()):
            return f"prod already runs staging's tag ({tag})"
        path = f"{self.lab.overlay('prod')}/kustomization.yaml"
        text = set_image_in_kustomization(repo.read(path), PODINFO, tag, source=path)
        pr = repo.open_pull_request(f"promote-{tag}-by-hand", {path: text}, "participant",
                                    title=f"Promote podinfo {tag} to prod", when=self.lab.now)
        merged = repo.merge(pr, REVIEWER, when=self.lab.now)
        return self._committed(merged, f"promotion PR merged: podinfo {tag} in the prod overlay")

    def _suspended(self) -> bool:
        return bool(((self.target().object() or {}).get("spec") or {}).get("suspend"))

    def set_suspend(self, value: bool) -> str:
        from labkit.scenarios.drift import _set_suspend

        env = self.view
        if env != "staging":
            return "the drift lab suspends staging's apps Kustomization only"
        _set_suspend(self.lab, value)
        if not value:
            self.lab.flux[env].request_reconcile("Kustomization", "apps")
        text = "flux suspend kustomization apps" if value else "flux resume kustomization apps"
        self.note(text)
        return text

    # ---------------------------------------------------------------- panels
    def status(self) -> str:
        return _status_line(self.now(), self.target(), self.lab.deployment(self.view), self.webhook.on,
                            extra=self._bot_line())

    def _bot_line(self) -> str:
        if self.bot is None:
            return ""
        last = (self.bot.promoted[-1:] or [None])[0]
        blocked = (self.bot.blocked[-1:] or [None])[0]
        parts = []
        if last:
            parts.append(f"last promoted {last['tag']} at {last['time']:,.0f} s")
        if blocked:
            parts.append(f"last blocked {blocked['tag']} at {blocked['time']:,.0f} s")
        return "promotion bot: " + ("; ".join(parts) or "watching staging")

    def live(self) -> str:
        return workload_html(self.lab.cluster(self.view), [f"podinfo-{self.view}"])

    def conditions(self) -> list[tuple[str, Mapping[str, Any] | None]]:
        return self.target().conditions() + [("Deployment/podinfo", self.lab.deployment(self.view))]

    def owners(self) -> list[tuple[str, Mapping[str, Any] | None]]:
        return [(f"Deployment podinfo-{self.view}/podinfo", self.lab.deployment(self.view))]


def _status_line(now: float, target: Any, workload: Mapping[str, Any] | None, webhook: bool | None,
                 extra: str = "", show_workload: bool = True) -> str:
    revs = target.revisions()
    ks = kstatus(workload) if workload is not None else None
    health = (f"{P.esc(ks.status)}: {P.esc(ks.message)}" if ks is not None else "not deployed")
    applied_old = revs["applied"] and revs["git"] and not revs["applied"].endswith(revs["git"])
    flag = (' <span style="color:#b35c00">(git HEAD not applied yet)</span>' if applied_old else "")
    hook = "" if webhook is None else f" · webhook {'on' if webhook else 'off'}"
    human = f"{now / 86400:,.2f} days" if now >= 2 * 86400 else f"{now / 60:,.1f} min"
    items = [
        ("virtual time", f"<b>{now:,.1f} s</b> ({human}){hook}"),
        ("revisions", f"git HEAD <code>{_short(revs['git'])}</code> → fetched <code>{_short(revs['artifact'])}</code>"
                      f" → last applied <code>{_short(revs['applied'])}</code>{flag}"),
        (target.label(), P.esc(target.ready_line())),
    ]
    if workload is not None or show_workload:
        items.append(("workload (kstatus, now)", health))
    if extra:
        items.append(("", P.esc(extra)))
    return P.kv_table(items)


# ------------------------------------------------------------------ AppLab: hpa-conflict, stateful-edges, migrations

class AppDriver(Driver):
    """One application in an ``AppLab`` (Flux or Argo CD): git, the GitOps object, the workload."""

    title = "Reconcile explorer"
    #: (kind, name) of the workload the status line and the owners panel follow
    workload: tuple[str, str] = ("Deployment", "web")
    namespaces: tuple[str, ...] = ("default",)

    def __init__(self, lab: Any, name: str, *, views: dict[str, Any] | None = None):
        self.lab = lab
        self.app = name
        self._labs = views or {"": lab}
        super().__init__()
        self.views = [v for v in self._labs if v]
        self.view = self.views[0] if self.views else ""
        self._mine: list[str] = []
        self.webhooks = {v: WebhookSwitch(lb.repo, self._enabler(lb)) for v, lb in self._labs.items()}
        self.toggles.append(Toggle("webhook", "webhook", lambda: self.webhooks[self.view].on, self.set_webhook,
                                   "the git host's push webhook"))
        for lb in self._labs.values():
            if lb.dialect == "flux":
                self.prewarm.follow(lb.repo, [lb.flux])

    @staticmethod
    def _enabler(lab: Any) -> Callable[[], Any]:
        from labkit.scenarios.applab import WEBHOOK_TOKEN

        def enable() -> None:
            if lab.dialect == "flux":
                lab.flux.enable_webhook(lab.repo, token=WEBHOOK_TOKEN)
            else:
                lab.argo.enable_webhook(lab.repo)
        return enable

    @property
    def current(self) -> Any:
        return self._labs[self.view]

    def now(self) -> float:
        return self.lab.now

    def run_clock(self, seconds: float) -> None:
        self.lab.advance(seconds)

    def logs(self) -> dict[str, list[EventLog]]:
        return {v: [lb.log] for v, lb in self._labs.items()}

    def target(self) -> FluxTarget | ArgoTarget:
        lab = self.current
        if lab.dialect == "flux":
            return FluxTarget(lab.flux, self.app, lab.repo)
        return ArgoTarget(lab.argo, self.app, lab.repo, lab.cluster)

    # ---------------------------------------------------------------- controls shared by the app labs
    def _committed(self, sha: str, text: str) -> str:
        self._mine.append(sha)
        self.note(text)
        return f"{text} — commit {sha[:7]}"

    def commit(self, files: Mapping[str, str | None], message: str) -> str:
        sha = self.current.commit(files, message, author="participant")
        return self._committed(sha, f"git commit: {message}")

    def revert_last(self) -> str:
        lab = self.current
        target = self._mine.pop() if self._mine else lab.repo.head()
        try:
            sha = lab.repo.revert(target, "participant", when=lab.now)
        except Exception as err:  # noqa: BLE001
            return f"git revert {target[:7]} failed: {err}"
        self._committed(sha, f"git revert {target[:7]}")
        self._mine.pop()
        return f"git revert {target[:7]} — commit {sha[:7]}"

    def webhook_switch(self) -> WebhookSwitch:
        return self.webhooks[self.view]

    def _workload_obj(self) -> dict | None:
        kind, name = self.workload
        return _ignore_errors(lambda: self.current.get(_kind_api(kind), kind, name, self.namespaces[0]))

    # ---------------------------------------------------------------- panels
    def status(self) -> str:
        return _status_line(self.now(), self.target(), self._workload_obj(), self.webhooks[self.view].on,
                            extra=self.extra_status())

    def extra_status(self) -> str:
        return ""

    def live(self) -> str:
        return workload_html(self.current.cluster, list(self.namespaces))

    def conditions(self) -> list[tuple[str, Mapping[str, Any] | None]]:
        kind, name = self.workload
        return self.target().conditions() + [(f"{kind}/{name}", self._workload_obj())]

    def owners(self) -> list[tuple[str, Mapping[str, Any] | None]]:
        kind, name = self.workload
        return [(f"{kind} {self.namespaces[0]}/{name}", self._workload_obj())]


class HpaDriver(AppDriver):
    """hpa-conflict: the HPA and ``replicas:`` in git fight over one field; load, fixes, releases."""

    title = "HPA versus replicas in git"
    workload = ("Deployment", "web")
    namespaces = ("shop",)

    def __init__(self, result: Any):
        from labkit.scenarios import hpa_conflict as H

        self.result = result
        self.H = H
        lab = result.lab
        super().__init__(lab, H.APP)
        self._load_on = False
        self._releases = 0
        c = Control
        dialect = lab.dialect
        fix_label = "fix: Flux spec.ignore /spec/replicas" if dialect == "flux" else \
            "fix: ignoreDifferences + RespectIgnoreDifferences"
        self.controls = [
            c("release", "git commit: release next tag", self.release, "primary",
              "a routine release: the image tag changes, the whole Deployment is applied"),
            c("drop", "git commit: drop replicas", self.drop_replicas, "success",
              "remove spec.replicas from git: the HPA owns scaling (watch who owns the field)"),
            c("fix", fix_label, self.apply_fix, "success", "tell the GitOps engine to leave spec.replicas alone"),
            c("scale", "kubectl scale --replicas=6", self.scale, "danger",
              "a person scales the Deployment by hand (manager kubectl-scale)"),
            c("revert", "git revert last commit", self.revert_last, ""),
            c("reconcile", "flux reconcile" if dialect == "flux" else "argocd app sync", self.reconcile, "info"),
        ]
        self.toggles.insert(0, Toggle("load", "load spike", lambda: self._load_on, self.set_load,
                                      f"offer {result.load.peak:g} millicores to shop/web (off: {result.load.base:g})"))
        # the status line's counters, kept up to date as events arrive instead of re-read from the log per click
        self._resets = len(result.resets())
        self._git_replicas: dict[str, int | None] = {}  # commit -> spec.replicas in git
        manager = lab.field_manager()
        lab.log.subscribe(lambda e: self._count_reset(H.is_reset(e, manager)))
        self.attach()

    def _count_reset(self, reset: bool) -> None:
        self._resets += reset

    def set_load(self, value: bool) -> str:
        from labkit.sim.load import Constant

        spike = self.result.load
        self._load_on = value
        mc = spike.peak if value else spike.base
        self.lab.cluster.load.set(f"{self.H.NAMESPACE}/{self.H.APP}", Constant(mc))
        text = f"load {'on' if value else 'off'}: {mc:g} millicores offered to shop/web"
        self.note(text)
        return text

    def _in_git(self) -> dict:
        import yaml

        return yaml.safe_load(self.lab.repo.read("app/deployment.yaml")) or {}

    def _replicas_in_git(self) -> int | None:
        head = self.lab.repo.head()
        if head not in self._git_replicas:
            self._git_replicas[head] = (self._in_git().get("spec") or {}).get("replicas")
        return self._git_replicas[head]

    def release(self) -> str:
        import yaml

        H = self.H
        self._releases += 1
        tag = f"1.1.{self._releases}"
        self.lab.registry.add(H.IMAGE, [tag])  # CI built and pushed the release's image
        dep = self._in_git()
        dep["spec"]["template"]["spec"]["containers"][0]["image"] = f"{H.IMAGE}:{tag}"
        return self.commit({"app/deployment.yaml": yaml.safe_dump(dep, sort_keys=False)}, f"web: release {tag}")

    def drop_replicas(self) -> str:
        import yaml

        dep = self._in_git()
        if "replicas" not in (dep.get("spec") or {}):
            return "git has no replicas field already"
        del dep["spec"]["replicas"]
        return self.commit({"app/deployment.yaml": yaml.safe_dump(dep, sort_keys=False)},
                           "web: drop replicas, the HPA owns scaling")

    def apply_fix(self) -> str:
        H = self.H
        lab = self.lab
        target = lab.targets[H.APP]
        if lab.dialect == "flux":
            lab.deploy(target.with_(ignore=({"paths": [H.REPLICAS_POINTER],
                                             "target": {"group": "apps", "kind": "Deployment"}},)))
            text = "kubectl apply: Kustomization spec.ignore /spec/replicas of Deployments"
        else:
            rule = {"group": "apps", "kind": "Deployment", "jsonPointers": [H.REPLICAS_POINTER]}
            opts = tuple(o for o in target.sync_options if not o.startswith("RespectIgnoreDifferences"))
            lab.deploy(target.with_(ignore_differences=(rule,), sync_options=opts + ("RespectIgnoreDifferences=true",)))
            text = "kubectl apply: Application ignoreDifferences /spec/replicas + RespectIgnoreDifferences=true"
        self.note(text)
        return text

    def scale(self) -> str:
        H = self.H
        try:
            self.lab.cluster.kubectl_scale("apps/v1", "Deployment", H.APP, H.NAMESPACE, 6)
        except Exception as err:  # noqa: BLE001
            return f"kubectl scale failed: {err}"
        self.note("kubectl scale --replicas=6")
        return "kubectl scale deployment/web -n shop --replicas=6 (an Update of the scale subresource by kubectl-scale)"

    def extra_status(self) -> str:
        dep = self._workload_obj() or {}
        owners = [m.label for m in P.owners_of_paths(P.managers_of(dep), ("spec", "replicas"))]
        resets = self._resets
        return (f"spec.replicas = {(dep.get('spec') or {}).get('replicas', '—')}, owned by "
                f"{', '.join(owners) or 'nobody'}; replicas in git: {_or_none(self._replicas_in_git())}; "
                f"resets against the HPA so far: {resets}")


def _or_none(value: Any) -> str:
    return "none" if value is None else str(value)


class StatefulDriver(AppDriver):
    """stateful-edges: an immutable StatefulSet field, an orphaning delete, and pruned operator resources."""

    title = "Stateful edges"
    workload = ("StatefulSet", "pg")
    namespaces = ("data",)

    def __init__(self, result: Any):
        from labkit.scenarios import stateful_edges as S

        self.result = result
        self.S = S
        lab = result.lab
        super().__init__(lab, S.APP)
        c = Control
        self.controls = [
            c("grow", "git commit: volumes 2Gi ↔ 1Gi", self.toggle_storage, "warning",
              "change volumeClaimTemplates in git: the API server refuses it (immutable)"),
            c("orphan", "kubectl delete sts --cascade=orphan", self.orphan, "danger",
              "delete the StatefulSet, keep its pods and claims (the documented migration)"),
            c("dbs", "git commit: remove / restore Databases", self.toggle_databases, "warning",
              "remove the Database manifests from git (prune drops the database) or put them back"),
            c("revert", "git revert last commit", self.revert_last, ""),
            c("reconcile", "flux reconcile" if lab.dialect == "flux" else "argocd app sync", self.reconcile, "info"),
        ]
        self.attach()

    def _policy(self) -> str | None:
        return None if self.result.deletion_policy == "Delete" else self.result.deletion_policy

    def toggle_storage(self) -> str:
        import yaml

        S = self.S
        in_git = [d for d in yaml.safe_load_all(self.lab.repo.read("platform/postgres.yaml")) if d]
        sts = next((d for d in in_git if d.get("kind") == "StatefulSet"), None)
        want = "1Gi" if S._storage(sts) == "2Gi" else "2Gi"
        files = S.platform_files(self.lab.dialect, storage=want, deletion_policy=self._policy())
        text = files["platform/postgres.yaml"]
        return self.commit({"platform/postgres.yaml": text}, f"pg: data volumes {want}")

    def toggle_databases(self) -> str:
        S = self.S
        present = any(p.startswith("platform/database") for p in self.lab.repo.files())
        files = S.platform_files(self.lab.dialect, databases=not present, deletion_policy=self._policy())
        dbs = {p: v for p, v in files.items() if p.startswith("platform/database")}
        return self.commit(dbs, "platform: remove database manifests" if present else "platform: restore databases")

    def orphan(self) -> str:
        S = self.S
        try:
            self.lab.cluster.delete("apps/v1", "StatefulSet", S.STS, S.NAMESPACE, propagation="Orphan")
        except Exception as err:  # noqa: BLE001
            return f"kubectl delete failed: {err}"
        self.note("kubectl delete statefulset pg --cascade=orphan")
        return "kubectl delete statefulset pg -n data --cascade=orphan: pods and claims stay, orphaned"

    def extra_status(self) -> str:
        op = self.result.operator
        dbs = []
        for name in ("orders", "analytics"):
            exists = _ignore_errors(lambda n=name: op.exists(self.S.NAMESPACE, n), False)
            dbs.append(f"{name}: {'database file present' if exists else 'DROPPED'}")
        return "databases (SQLite files of the operator): " + "; ".join(dbs)

    def live(self) -> str:
        S = self.S
        rows = []
        for o in _ignore_errors(lambda: self.lab.cluster.list(S.DB_API, S.DB_KIND, S.NAMESPACE), []) or []:
            md = o["metadata"]
            rows.append([f"{S.DB_KIND}/{md['name']}", str((o.get("spec") or {}).get("deletionPolicy", "Delete")),
                         str((md.get("annotations") or {})), str(md.get("finalizers") or [])])
        extra = P.table(["object", "deletionPolicy", "annotations", "finalizers"], rows) if rows else \
            "<i>no Database objects</i>"
        return super().live() + "<b>Database resources</b>" + extra


class MigrationsDriver(AppDriver):
    """migrations: releases through Argo CD with a PreSync migration Job, in the versioned and the raw lab."""

    title = "Schema migrations as a PreSync hook"
    workload = ("Deployment", "shop")
    namespaces = ("shop",)

    def __init__(self, result: Any):
        from labkit.scenarios import migrations as M

        self.result = result
        self.M = M
        labs = {runner: ml.lab for runner, ml in result.labs.items()}
        first = next(iter(labs.values()))
        self._runner = {runner: ml.runner for runner, ml in result.labs.items()}
        self._starts = {runner: lab.now for runner, lab in labs.items()}
        super().__init__(first, M.APP, views=labs)
        c = Control
        self.controls = [
            c("patch", "git commit: next release (code only)", self.release_patch, "primary",
              "a release without schema change: Argo still runs the PreSync hook"),
            c("migration", "git commit: release with a new migration", self.release_migration, "warning",
              "a release that adds a column (migration 0003)"),
            c("versioned", "git commit: Job runs `migrate up`", self.use_versioned, "success",
              "switch the migration Job to the versioned runner"),
            c("revert", "git revert last commit", self.revert_last, ""),
            c("reconcile", "argocd app sync", self.reconcile, "info"),
        ]
        self.attach()

    def now(self) -> float:
        return self.current.now

    def window_start(self) -> float:
        return max(0.0, self._starts[self.view] - self.history)

    def now_of(self, view: str) -> float:
        return self._labs[view].now

    def run_clock(self, seconds: float) -> None:
        # the two labs are two clocks: move both, so switching the view never jumps in time
        for lab in self._labs.values():
            lab.advance(seconds)

    def _ml(self) -> Any:
        return self.result.labs[self.view]

    def _next_version(self) -> str:
        last = self._ml().releases[-1].version
        major, minor, patch = (int(x) for x in last.split("."))
        return f"{major}.{minor}.{patch + 1}"

    def _release(self, version: str, migrations: dict[str, str], message: str) -> str:
        ml = self._ml()
        try:
            sha = self.M.ship_release(ml, version, runner=self._runner[self.view], hook=self.result.hook,
                                      backoff_limit=self.result.backoff_limit, migrations=migrations,
                                      message=message, author="participant")
        except Exception as err:  # noqa: BLE001
            return f"release {version} failed: {err}"
        return self._committed(sha, f"git commit: shop {version} ({message})")

    def release_patch(self) -> str:
        v = self._next_version()
        return self._release(v, {}, "bug fix, no schema change")

    def release_migration(self) -> str:
        major, minor, _ = (int(x) for x in self._ml().releases[-1].version.split("."))
        v = f"{major}.{minor + 1}.0"
        n = 3 + sum(1 for r in self._ml().releases if r.version.endswith(".0")) - 2
        name = f"{n:04d}_add_order_note_{n}.sql"
        sql = f"ALTER TABLE orders ADD COLUMN note_{n} TEXT;\n"
        return self._release(v, {name: sql}, f"migration {name}")

    def use_versioned(self) -> str:
        import yaml

        lab = self.current
        text = lab.repo.read("deploy/migrate-job.yaml")
        job = yaml.safe_load(text)
        job["spec"]["template"]["spec"]["containers"][0]["args"] = list(self.M.VERSIONED_ARGS)
        self._runner[self.view] = "versioned"
        return self.commit({"deploy/migrate-job.yaml": yaml.safe_dump(job, sort_keys=False)},
                           "migrate job: versioned runner (migrate up)")

    def extra_status(self) -> str:
        ml = self._ml()
        versions = self.M.applied_versions(ml.db)
        cols = self.M.table_columns(ml.db)
        runs = ml.runs()
        last = runs.iloc[-1].to_dict() if len(runs) else {}
        return (f"{self.view} lab — database: orders columns {', '.join(cols) or '—'}; schema_migrations "
                f"{[v for v, _ in versions] or '—'}; last migration run: "
                + (f"{last.get('tag')} exit {last.get('exit_code')}: {last.get('message')}" if last else "none"))
