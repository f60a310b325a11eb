"""HPA conflict: ``replicas: 3`` in git against a HorizontalPodAutoscaler under a load spike.

The most reported GitOps pain point (argo-cd #5105, flux2 #1842): a Deployment
is declared with ``replicas: 3`` and an HPA scales it.  Two controllers now
write the same field, and which value wins depends on *when* each one runs.
This scenario builds that situation from the real parts and lets the
mechanisms decide:

* the app (``shop/web``: a Namespace, a Deployment with a 100m CPU request and
  ``replicas: 3``, an ``autoscaling/v2`` HPA with min 2, max 10, 60 % CPU) is
  committed to a real git repository and reconciled by **Flux** (a
  Kustomization, ``interval`` 5m by default) or **Argo CD** (an Application with
  automated sync, prune and ``selfHeal``), chosen by ``dialect``;
* the offered load is a ``labkit.sim.load.Spike``: 170 m before and after (which
  three pods serve at 57 % — within the HPA's 10 % tolerance of its 60 % target,
  so at rest the HPA agrees with git), ramping over two minutes to a plateau of
  ``peak_millicores`` from ``spike_start_s`` for ``spike_duration_s``;
* the simulator's HPA controller runs the real algorithm every 15 s and writes
  ``spec.replicas`` through the scale subresource as ``kube-controller-manager``
  — under server-side apply that write takes the field's ownership away from
  the GitOps manager;
* half-way through the plateau a developer ships a routine release (an image
  tag bump), the kind of sync that happens any day.

What emerges with ``fix=none``: the HPA scales up within a few sync periods;
Flux's next interval run dry-runs the Deployment, sees ``spec.replicas``
drifted from git, and its forced apply takes the field back — replicas drop to
3 under full load, the HPA scales up again 15 s later, and the saw-tooth
repeats every interval.  Under Argo CD the HPA's write makes the Application
OutOfSync at once and self-heal syncs it back after its exponential back-off
(2 s, 6 s, 18 s ... capped at 300 s), a faster and denser flap.  The HPA's own
300 s scale-down stabilization window even re-scales to 10 *after* the load is
gone, because its recommendation history still holds the peak.

The fixes (``fix``), each applied at ``fix_at_s`` (before the spike by default)
the way a team would apply it:

``drop-field`` — a commit removes ``replicas`` from git.  The subtle part is
server-side apply ownership: at rest the GitOps manager is the *only* owner of
``spec.replicas`` (the HPA never had to write it), so when its next apply no
longer sends the field the API server removes it and the Deployment falls to
the default of **1** replica until the HPA's next sync scales it back — a
brief capacity drop in production.  Under Argo's default client-side apply the
three-way merge deletes a field that left the last-applied manifest *whoever
owns it now*; with ``argo_apply=server-side`` Argo behaves like Flux.  Move
``fix_at_s`` into the spike to see the difference: once the HPA owns the field,
a server-side drop leaves its value alone while a client-side drop still
resets it to 1.

``ignore-differences`` (Argo) — ``ignoreDifferences`` on ``/spec/replicas``
hides the field from the diff, so the HPA's writes no longer trigger self-heal
… but the routine release's sync applies the whole manifest and resets
replicas to 3 anyway (argo-cd #7820).

``respect-ignore-differences`` (Argo) — the same plus the sync option
``RespectIgnoreDifferences=true``: the sync keeps the live value of ignored
fields.  No reset.

``flux-ignore`` (Flux) — the Kustomization's ``spec.ignore`` (kustomize-controller
1.9) excludes ``/spec/replicas`` of Deployments from drift detection and from
the apply.  No reset.

On a real cluster
-----------------
``cluster`` other than ``sim`` (``labkit run hpa-conflict --cluster kwok``) runs the same
story in wall time, compressed by ``real_cluster.parameters`` in
``scenarios/hpa-conflict.yaml`` (a 90 s plateau, Flux's interval 20 s, 150 s in all).
The HPA is kube-controller-manager's (5 s sync period on the local control plane),
reading ``metrics.k8s.io`` from metrics-server, which scrapes KWOK; the spike reaches it
through KWOK's per-pod CPU annotation, which a ``labkit.kube.loaddriver.LoadDriver`` sets
every 2 s from the same ``LoadModel`` (demand shared among the ready pods).  Scale-ups,
resets and their timing are therefore the real controllers' — metrics lag 10–20 s behind
a change there, and the HPA's 5-minute downscale stabilization (and so the re-scale after
the load is gone) outlasts the run.  Every dialect and fix runs there; the test suite
checks ``fix=none`` for both dialects (``tests/kube/test_real_hpa_conflict.py``).  The
``hpa_rescales`` metric counts the HPA's ``SuccessfulRescale`` Events there, read before the
lab's namespaces are deleted.

Measuring it
------------
A ``ReplicaProbe`` — ``kubectl get deploy -w --show-managed-fields`` — follows
every API write to the Deployment from the event log and records
``ReplicasChanged`` events with the old and new value, the writing manager and
the owners of ``spec.replicas`` before and after.  A **reset against the HPA**
is a write by the GitOps field manager (``kustomize-controller`` /
``argocd-controller``) that lowered ``spec.replicas`` from a value the HPA's
manager owned.  ``replica_resets`` counts them; ``max_replicas`` is the
highest ``spec.replicas``; ``min_replicas_after_peak`` the lowest value
between the first time that maximum was reached and the end of the load
plateau (3 when GitOps reset it under full load, ``max_replicas`` when nothing
fought the HPA); ``fell_to_default_replicas`` whether a GitOps write left the
Deployment at 1 replica — the drop-field subtlety.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from labkit.core.errors import ApiError, LabkitError
from labkit.core.events import Event
from labkit.scenarios.applab import AppLab, Target, check_dialect, yaml_docs
from labkit.sim.load import LoadModel, Spike
from labkit.sim.registry import ImageRegistry

__all__ = ["FIXES", "ARGO_APPLY", "HPA_MANAGER", "validate", "ReplicaProbe", "HpaResult", "run_hpa_conflict",
           "plot_replicas", "app_files"]

FIXES = ("none", "drop-field", "ignore-differences", "respect-ignore-differences", "flux-ignore")
ARGO_ONLY_FIXES = ("ignore-differences", "respect-ignore-differences")
FLUX_ONLY_FIXES = ("flux-ignore",)
ARGO_APPLY = ("client-side", "server-side")
HPA_MANAGER = "kube-controller-manager"
NAMESPACE = "shop"
APP = "web"
IMAGE = "ghcr.io/labkit/web"
TAGS = ("1.0.0", "1.0.1")
GIT_REPLICAS = 3
DEPLOYMENT = f"Deployment/{NAMESPACE}/{APP}"
REPLICAS_POINTER = "/spec/replicas"


def validate(dialect: str, fix: str, argo_apply: str = "client-side") -> None:
    """``LabkitError`` naming the parameter when the combination does not exist in that dialect."""
    check_dialect(dialect)
    if fix not in FIXES:
        raise LabkitError(f"unknown fix {fix!r}: choose one of {', '.join(FIXES)}", field="fix")
    if dialect == "flux" and fix in ARGO_ONLY_FIXES:
        raise LabkitError(f"fix={fix!r} is an Argo CD setting (ignoreDifferences); with dialect='flux' use "
                          "fix='flux-ignore' (Kustomization spec.ignore) or fix='drop-field'", field="fix")
    if dialect == "argo" and fix in FLUX_ONLY_FIXES:
        raise LabkitError("fix='flux-ignore' is a Flux Kustomization setting (spec.ignore); with dialect='argo' use "
                          "fix='respect-ignore-differences' or fix='drop-field'", field="fix")
    if argo_apply not in ARGO_APPLY:
        raise LabkitError(f"unknown argo_apply {argo_apply!r}: choose client-side or server-side", field="argo_apply")
    if dialect == "flux" and argo_apply != "client-side":
        raise LabkitError("argo_apply only applies to dialect='argo' (Flux always applies server-side)",
                          field="argo_apply")


# ------------------------------------------------------------------ the app in git

def app_files(*, replicas: int | None = GIT_REPLICAS, tag: str = TAGS[0]) -> dict[str, str]:
    """The repository's ``app/`` directory: Namespace, Deployment (with or without ``replicas``), HPA."""
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    spec: dict[str, Any] = {}
    if replicas is not None:
        spec["replicas"] = replicas
    spec.update({
        "selector": {"matchLabels": {"app": APP}},
        "template": {"metadata": {"labels": {"app": APP}},
                     "spec": {"containers": [{"name": APP, "image": f"{IMAGE}:{tag}",
                                              "ports": [{"containerPort": 8080}],
                                              "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}},
    })
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP, "namespace": NAMESPACE},
           "spec": spec}
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": APP, "namespace": NAMESPACE},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
                    "minReplicas": 2, "maxReplicas": 10,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                        "type": "Utilization", "averageUtilization": 60}}}]}}
    return {"app/namespace.yaml": yaml_docs(ns), "app/deployment.yaml": yaml_docs(dep), "app/hpa.yaml": yaml_docs(hpa)}


# ------------------------------------------------------------------ observing spec.replicas

def _owners(obj: dict[str, Any] | None) -> list[str]:
    out = []
    for e in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        if "f:replicas" in ((e.get("fieldsV1") or {}).get("f:spec") or {}):
            out.append(e.get("manager", ""))
    return sorted(out)


def is_reset(e: Any, gitops_manager: str) -> bool:
    """Whether a ``ReplicaProbe`` event is a reset: the GitOps engine lowering replicas the HPA had owned."""
    if e.component != ReplicaProbe.component or e.event != "ReplicasChanged":
        return False
    d = e.detail
    return (d["manager"] == gitops_manager and d["from"] is not None and d["to"] is not None and d["to"] < d["from"]
            and HPA_MANAGER in d["owners_before"])


class ReplicaProbe:
    """``kubectl get deploy -w --show-managed-fields`` on one Deployment, as ``ReplicasChanged`` events.

    On the simulator it listens to the event log for the API server's ``Created`` /
    ``Updated`` records of the Deployment (the object is already stored when they are
    written) and reads ``spec.replicas`` and the owners of that field.  A real API server
    keeps no such journal (and the HPA's writes, made by ``kube-controller-manager``, never
    pass through the lab's seam), so on a real cluster it *is* a watch on the Deployment:
    every event carries the object with its ``managedFields``, and the writer of a change is
    the manager that owns ``spec.replicas`` afterwards (a write that changes a field's value
    makes its manager the owner — the sole one for an Update or a forced Apply; when several
    own it, the one with the latest ``time``).  Either way it records a ``ReplicasChanged``
    event (component ``replicas-probe``) whenever the value changed: ``{"from", "to",
    "manager", "owners_before", "owners"}``.
    """

    component = "replicas-probe"

    def __init__(self, lab: AppLab, api_version: str = "apps/v1", kind: str = "Deployment", name: str = APP,
                 namespace: str = NAMESPACE):
        self.lab = lab
        self.args = (api_version, kind, name, namespace)
        self.key = f"{kind}/{namespace}/{name}"
        self.replicas: int | None = None
        self.owners: list[str] = []
        if lab.real:
            lab.cluster.watch(api_version, kind, self._on_watch)
        else:
            lab.log.subscribe(self._on_event)

    def _on_event(self, ev: Event) -> None:
        if ev.component != "api" or ev.object != self.key or ev.event not in ("Created", "Updated", "Deleted"):
            return
        obj = None if ev.event == "Deleted" else self.lab.cluster.get(*self.args)
        self._observe(obj, ev.detail.get("manager", ""))

    def _on_watch(self, event_type: str, obj: dict[str, Any]) -> None:
        md = obj.get("metadata") or {}
        if md.get("name") != self.args[2] or md.get("namespace") != self.args[3]:
            return
        if event_type == "DELETED":
            self._observe(None, "")
        else:
            self._observe(obj, _writer(obj))

    def _observe(self, obj: dict[str, Any] | None, manager: str) -> None:
        replicas = ((obj or {}).get("spec") or {}).get("replicas")
        owners = _owners(obj)
        before, owners_before = self.replicas, self.owners
        self.replicas, self.owners = replicas, owners
        if replicas != before:
            self.lab.log.record(self.component, "ReplicasChanged", self.key,
                                detail={"from": before, "to": replicas, "manager": manager,
                                        "owners_before": owners_before, "owners": owners})


def _writer(obj: dict[str, Any]) -> str:
    """The manager that last wrote ``spec.replicas``: its owner, the latest one if several (see ``ReplicaProbe``)."""
    entries = [e for e in (obj.get("metadata") or {}).get("managedFields") or []
               if "f:replicas" in ((e.get("fieldsV1") or {}).get("f:spec") or {})]
    if not entries:
        return ""
    return max(entries, key=lambda e: e.get("time") or "").get("manager", "")


def _rescale_events(lab: AppLab) -> int | None:
    """On a real cluster: the HPA's ``SuccessfulRescale`` Events (their ``count``s), read before the lab closes."""
    try:
        events = lab.cluster.list("v1", "Event", NAMESPACE)
    except ApiError:
        return None
    return sum(int(e.get("count") or 1) for e in events
               if e.get("reason") == "SuccessfulRescale"
               and (e.get("involvedObject") or {}).get("kind") == "HorizontalPodAutoscaler")


# ------------------------------------------------------------------ the run

@dataclass
class HpaResult:
    """One run: the lab (event log, cluster, repository), its parameters and marks in virtual time."""

    lab: AppLab
    dialect: str
    fix: str
    argo_apply: str
    load: Spike
    marks: dict[str, float] = field(default_factory=dict)
    #: real cluster only: the HPA's SuccessfulRescale Events, read before the lab's namespaces went away
    rescale_events: int | None = None
    #: real cluster only: the ``LoadDriver`` that played ``load`` through KWOK's per-pod CPU usage
    driver: Any = None

    def changes(self) -> pd.DataFrame:
        """Every change of ``spec.replicas``: time, from, to, manager, owners before/after, is_reset."""
        gm = self.lab.field_manager()
        rows = []
        for e in self.lab.events(component=ReplicaProbe.component, event="ReplicasChanged"):
            d = e.detail
            reset = is_reset(e, gm)
            rows.append({"time": e.time, "from": d["from"], "to": d["to"], "manager": d["manager"],
                         "owners_before": ",".join(d["owners_before"]), "owners": ",".join(d["owners"]),
                         "is_reset": reset})
        return pd.DataFrame(rows, columns=["time", "from", "to", "manager", "owners_before", "owners", "is_reset"])

    def resets(self) -> pd.DataFrame:
        c = self.changes()
        return c[c.is_reset].reset_index(drop=True)

    def replicas_at(self, t: float) -> int | None:
        c = self.changes()
        before = c[c.time <= t]
        return None if before.empty else before.to.iloc[-1]

    def metrics(self) -> dict[str, Any]:
        c = self.changes()
        values = c.to.dropna()
        max_r = int(values.max()) if len(values) else None
        plateau_end = self.load.start + self.load.duration
        min_after = None
        if max_r is not None:
            first_max = c[c.to == max_r].time.min()
            if first_max <= plateau_end:
                window = c[(c.time >= first_max) & (c.time <= plateau_end)]
                min_after = int(window.to.min())
        gm = self.lab.field_manager()
        fell = bool(((c.manager == gm) & (c.to == 1)).any())
        return {
            "replica_resets": int(c.is_reset.sum()),
            "max_replicas": max_r,
            "min_replicas_after_peak": min_after,
            "fix": self.fix,
            "dialect": self.dialect,
            "fell_to_default_replicas": fell,
            "hpa_rescales": (self.rescale_events if self.lab.real else
                             len(self.lab.events(component="horizontal-pod-autoscaler", event="SuccessfulRescale"))),
        }


def run_hpa_conflict(
    *,
    dialect: str = "flux",
    fix: str = "none",
    seed: int = 0,
    interval: str = "5m",
    argo_apply: str = "client-side",
    fix_at_s: float = 300.0,
    release_at_s: float | None = None,
    peak_millicores: float = 900.0,
    base_millicores: float = 170.0,
    spike_start_s: float = 600.0,
    spike_duration_s: float = 1800.0,
    spike_ramp_s: float = 120.0,
    until_s: float = 3600.0,
    cluster: str = "sim",
    load_period_s: float = 2.0,
) -> HpaResult:
    """Run the scenario once (see the module docstring) and return the result.

    ``cluster`` other than ``sim`` runs it on a real cluster (``labkit.scenarios.backend``), in
    wall time: the HPA is the controller manager's, reading metrics-server, and the spike is
    played through KWOK's per-pod CPU usage by a ``labkit.kube.loaddriver.LoadDriver`` (every
    ``load_period_s`` seconds, the demand shared among the ready pods as on the simulator).
    The lab's namespaces are deleted before this returns; the result keeps what was observed.
    """
    validate(dialect, fix, argo_apply)
    if until_s <= 0:
        raise LabkitError(f"until_s must be positive, got {until_s}", field="until_s")
    if not 0 <= fix_at_s < until_s:
        raise LabkitError(f"fix_at_s must be within the run (0 .. {until_s:g} s), got {fix_at_s}", field="fix_at_s")
    if peak_millicores <= 0:
        raise LabkitError("peak_millicores must be positive", field="peak_millicores")
    if spike_duration_s <= 0:
        raise LabkitError(f"spike_duration_s must be positive, got {spike_duration_s}", field="spike_duration_s")
    if not 0 <= spike_ramp_s <= spike_start_s:
        raise LabkitError(f"spike_ramp_s must be between 0 and spike_start_s ({spike_start_s:g}), got {spike_ramp_s}",
                          field="spike_ramp_s")
    spike = Spike(base_millicores, peak_millicores, spike_start_s, spike_duration_s, ramp=spike_ramp_s)
    load = LoadModel(seed=seed)
    load.set(f"{NAMESPACE}/{APP}", spike)
    if cluster == "sim":
        registry = ImageRegistry()
        registry.add(IMAGE, list(TAGS))
        lab = AppLab(dialect, seed=seed, registry=registry, load=load)
    else:
        lab = AppLab(dialect, seed=seed, cluster=cluster)
    result = HpaResult(lab, dialect, fix, argo_apply, spike)
    try:
        if lab.real:
            from labkit.kube.loaddriver import LoadDriver

            result.driver = LoadDriver(lab.cluster, load, lab.env, period=load_period_s, log=lab.log).start()
        _story(lab, result, interval, fix_at_s, release_at_s, until_s)
        if lab.real:
            result.driver.stop()
            result.rescale_events = _rescale_events(lab)
    finally:
        if lab.real:
            lab.close()  # a real cluster: delete the lab's namespaces (the result keeps what it saw)
    return result


def _story(lab: AppLab, result: HpaResult, interval: str, fix_at_s: float, release_at_s: float | None,
           until_s: float) -> None:
    dialect, fix, spike = result.dialect, result.fix, result.load
    ReplicaProbe(lab)
    options = ("ServerSideApply=true",) if (dialect == "argo" and result.argo_apply == "server-side") else ()
    target = Target(APP, "app", namespace=NAMESPACE, interval=interval, sync_options=options)
    lab.commit(app_files(), "web: deployment with 3 replicas and an HPA")
    lab.deploy(target)
    result.marks["deployed"] = lab.now
    replicas_in_git: int | None = GIT_REPLICAS
    lab.run(fix_at_s)
    if fix == "drop-field":
        replicas_in_git = None
        lab.commit({"app/deployment.yaml": app_files(replicas=None)["app/deployment.yaml"]},
                   "web: drop replicas, the HPA owns scaling", author="platform")
    elif fix == "flux-ignore":
        lab.deploy(target.with_(ignore=({"paths": [REPLICAS_POINTER],
                                         "target": {"group": "apps", "kind": "Deployment"}},)))
    elif fix in ARGO_ONLY_FIXES:
        rule = {"group": "apps", "kind": "Deployment", "jsonPointers": [REPLICAS_POINTER]}
        opts = options + (("RespectIgnoreDifferences=true",) if fix == "respect-ignore-differences" else ())
        lab.deploy(target.with_(ignore_differences=(rule,), sync_options=opts))
    if fix != "none":
        result.marks["fix"] = lab.now
    release = release_at_s if release_at_s is not None else spike.start + spike.duration / 2
    if release < until_s:
        lab.run(release)
        lab.commit({"app/deployment.yaml": app_files(replicas=replicas_in_git, tag=TAGS[1])["app/deployment.yaml"]},
                   f"web: release {TAGS[1]}", author="bob")
        result.marks["release"] = lab.now
    lab.run(until_s)


# ------------------------------------------------------------------ figure

def _series(result: HpaResult, until: float) -> tuple[list[float], list[float]]:
    c = result.changes()
    ts, vs = [], []
    for t, v in zip(c.time, c.to):
        ts.append(t / 60)
        vs.append(float(v) if v is not None else float("nan"))
    if ts:
        ts.append(until / 60)
        vs.append(vs[-1])
    return ts, vs


def plot_replicas(results: list[HpaResult], *, until: float | None = None) -> plt.Figure:
    """Replicas over time for each run (one panel each), GitOps resets marked, offered load shaded."""
    n = len(results)
    fig, axes = plt.subplots(n, 1, figsize=(10, 3.4 * n), sharex=True, squeeze=False)
    for ax, r in zip(axes[:, 0], results):
        end = until if until is not None else r.lab.now
        ts, vs = _series(r, end)
        ax.step(ts, vs, where="post", linewidth=2, color="tab:blue", label="spec.replicas")
        resets = r.resets()
        if len(resets):
            ax.plot(resets.time / 60, resets["from"], "v", color="tab:red", markersize=8,
                    label=f"reset by {r.lab.field_manager()} ({len(resets)})")
        ax.axhline(GIT_REPLICAS, color="grey", linestyle=":", linewidth=1, label="replicas in git")
        for name, color in (("fix", "tab:green"), ("release", "tab:purple")):
            if name in r.marks:
                ax.axvline(r.marks[name] / 60, color=color, linestyle="--", linewidth=1,
                           label="fix applied" if name == "fix" else "routine release")
        load_ax = ax.twinx()
        step = min(15.0, max(1.0, end / 240))  # 15 s over the simulator's hour, 1 s over a real run's minutes
        grid = [i * step for i in range(int(end // step) + 1)]
        load_ax.fill_between([t / 60 for t in grid], [r.load(t) for t in grid], color="tab:orange", alpha=0.15,
                             step="post")
        load_ax.set_ylabel("offered CPU (millicores)", color="tab:orange")
        load_ax.set_ylim(0, r.load.peak * 1.15)
        ax.set_zorder(load_ax.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.set_ylabel("Deployment replicas")
        ax.set_ylim(0, 11.5)
        ax.set_title(f"{r.dialect}: fix={r.fix}" + (f" ({r.argo_apply} apply)" if r.dialect == "argo" else ""))
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("minutes (wall clock)" if results and results[0].lab.real else "minutes (virtual time)")
    fig.suptitle("HPA versus replicas in git")
    fig.tight_layout()
    return fig
