"""The tour: one commit through the whole reconcile loop, polled versus webhook-driven.

What the notebook shows, all measured from the event log of a run of the sample
fleet (``FleetLab``) on the embedded simulator:

1. **The five steps on one commit.**  A developer changes podinfo's image tag in
   the staging overlay and pushes.  source-controller *fetches* the new revision
   (on its poll, or at once when a webhook arrives), kustomize-controller
   *builds* the overlay with real kustomize, *plans* (server-side dry-run of
   every object, compared with the live state), *applies* what changed,
   *prunes* what left git, and waits for *health* (the rolling update of the
   Deployment in the simulator: new pods pulled, started and ready).
   ``stage_timeline`` turns those events into a Gantt chart.

2. **Webhook versus poll.**  The same sequence of commits, at the same seeded
   random moments, runs through two labs: one whose GitRepository polls on its
   interval, one whose git host delivers a signed push webhook.  The
   commit-to-applied time of every commit is the time from the push to the end
   of the apply stage for that revision; with polling it is spread over the poll
   interval, with a webhook it collapses to delivery + fetch + build + apply.

3. **A reconcile with nothing to do writes nothing.**  Flux re-runs every
   Kustomization on its interval; the dry-run finds every object unchanged and no
   write reaches the API server.  ``writes_on_noop_reconcile`` counts the writes
   kustomize-controller made during such a run.

Nothing here is a constant: change the poll interval, the seed or the number of
commits and every figure moves with the mechanisms.

On a real cluster (``cluster`` other than ``sim``, see ``labkit.scenarios.backend``)
the same code runs on the wall clock against the real API server, with the real
Deployment controller and KWOK's kubelets doing the rollout; ``commit_gap_s`` (the
developer's think time) and ``apps_interval_s`` (how long until the periodic no-op
reconcile) are then set to seconds instead of minutes.  The labs' namespaces are
deleted when ``run_tour`` returns (the interactive explorer is simulator-only).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from labkit.core.clock import rng_for
from labkit.core.duration import format_duration
from labkit.scenarios.lab import PODINFO_TAGS, FleetLab

STAGES = ("fetch", "build", "plan", "apply", "prune", "health")
APPS = "Kustomization/flux-system/apps"
SOURCE = "GitRepository/flux-system/flux-system"


@dataclass
class CommitTrace:
    mode: str
    sha: str
    committed: float
    fetched: float | None = None
    applied: float | None = None
    ready: float | None = None

    @property
    def commit_to_applied(self) -> float | None:
        return None if self.applied is None else self.applied - self.committed

    @property
    def commit_to_ready(self) -> float | None:
        return None if self.ready is None else self.ready - self.committed


@dataclass
class TourResult:
    traces: list[CommitTrace]
    timeline: pd.DataFrame
    noop: dict[str, Any]
    labs: dict[str, FleetLab] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"mode": t.mode, "sha": t.sha[:7], "committed": t.committed,
                              "commit_to_applied_s": t.commit_to_applied, "commit_to_ready_s": t.commit_to_ready}
                             for t in self.traces])

    def metrics(self) -> dict[str, Any]:
        def median(mode: str) -> float:
            vals = [t.commit_to_applied for t in self.traces if t.mode == mode and t.commit_to_applied is not None]
            return round(statistics.median(vals), 3) if vals else float("nan")

        return {
            "commit_to_applied_s_webhook": median("webhook"),
            "commit_to_applied_s_poll": median("poll"),
            "writes_on_noop_reconcile": int(self.noop["writes"]),
        }


def _first(log, event: str, obj: str, sha: str, after: float) -> float | None:
    for e in log.filter(event=event, object=obj, since=after):
        if e.revision.endswith(sha):
            return e.time
    return None


def run_commits(mode: str, *, seed: int, poll_interval_s: float, commits: int,
                commit_gap_s: tuple[float, float] = (30.0, 300.0), apps_interval_s: float = 600.0,
                cluster: str = "sim") -> tuple[FleetLab, list[CommitTrace]]:
    """Push ``commits`` image-tag changes at seeded random moments through one lab."""
    lab = FleetLab(seed=seed, webhook=(mode == "webhook"), source_interval=format_duration(poll_interval_s),
                   apps_interval=format_duration(apps_interval_s), cluster=cluster)
    lab.run_until(lambda: lab.ready().get("status") == "True", timeout=600)
    log = lab.cluster().log
    rng = rng_for(seed, "developer")  # the same developer in both labs
    lo, hi = commit_gap_s
    traces = []
    for i in range(commits):
        lab.advance(rng.uniform(lo, hi))
        tag = PODINFO_TAGS[1 + i % (len(PODINFO_TAGS) - 1)]
        sha = lab.set_image("staging", tag, author="alice")
        t0 = lab.now
        lab.run_until(lambda: lab.applied_revision().endswith(sha) and lab.ready().get("status") == "True",
                      timeout=poll_interval_s + 900)
        traces.append(CommitTrace(mode, sha, t0,
                                  fetched=_first(log, "NewArtifact", SOURCE, sha, t0),
                                  applied=_first(log, "Applied", APPS, sha, t0),
                                  ready=_first(log, "ReconciliationSucceeded", APPS, sha, t0)))
    return lab, traces


def stage_timeline(lab: FleetLab, trace: CommitTrace) -> pd.DataFrame:
    """The five steps of one commit's reconcile: stage, start and duration (seconds after the commit)."""
    log = lab.cluster().log
    rows = [{"stage": "commit", "start": 0.0, "duration": 0.0, "component": "git"}]
    for e in log.filter(component="webhook", since=trace.committed):
        rows.append({"stage": "webhook", "start": e.time - trace.committed, "duration": 0.0, "component": "webhook"})
        break
    for e in log.filter(component=["source-controller", "kustomize-controller"], since=trace.committed):
        if not e.revision.endswith(trace.sha) or "stage" not in e.detail:
            continue
        if e.object not in (SOURCE, APPS):
            continue
        if e.component == "kustomize-controller" and e.detail["stage"] == "fetch":
            continue
        rows.append({"stage": e.detail["stage"], "start": e.detail["started"] - trace.committed,
                     "duration": e.detail["duration"], "component": e.component})
    df = pd.DataFrame(rows)
    df = df.drop_duplicates(subset=["stage"], keep="first").reset_index(drop=True)
    return df


def noop_writes(lab: FleetLab, *, wait: float = 1200.0) -> dict[str, Any]:
    """Run until the next periodic reconcile of ``apps`` and count kustomize-controller's writes during it."""
    log = lab.cluster().log
    start = lab.now
    lab.run_until(lambda: any(e.time > start for e in log.filter(event="ReconciliationSucceeded", object=APPS)),
                  timeout=wait, step=5.0)
    runs = [e for e in log.filter(event="ReconciliationSucceeded", object=APPS) if e.time > start]
    if not runs:
        return {"writes": -1, "started": None, "finished": None, "unchanged": 0}
    done = runs[0]
    began = done.time - done.detail.get("duration", 0.0)
    writes = [e for e in log.filter(component="api", event=["Created", "Updated", "Deleted"])
              if began <= e.time <= done.time and e.detail.get("manager") == "kustomize-controller"]
    return {"writes": len(writes), "started": began, "finished": done.time,
            "unchanged": done.detail.get("n_unchanged", 0)}


def run_tour(*, seed: int = 0, poll_interval_s: float = 60.0, commits: int = 5,
             commit_gap_s: tuple[float, float] | list[float] = (30.0, 300.0), apps_interval_s: float = 600.0,
             cluster: str = "sim") -> TourResult:
    gap = _gap(commit_gap_s)
    kw = dict(seed=seed, poll_interval_s=poll_interval_s, commits=commits, commit_gap_s=gap,
              apps_interval_s=apps_interval_s, cluster=cluster)
    labs: dict[str, FleetLab] = {}
    try:
        labs["poll"], poll = run_commits("poll", **kw)
        labs["webhook"], hook = run_commits("webhook", **kw)
        timeline = stage_timeline(labs["webhook"], hook[0]) if hook else pd.DataFrame()
        noop = noop_writes(labs["poll"], wait=max(1200.0, 2 * apps_interval_s + 60.0))
    finally:
        if any(lab.real for lab in labs.values()):
            for lab in labs.values():
                lab.close()  # a real cluster: delete the labs' namespaces (the explorer is simulator-only)
    return TourResult(poll + hook, timeline, noop, labs)


def _gap(commit_gap_s: tuple[float, float] | list[float]) -> tuple[float, float]:
    from labkit.core.errors import LabkitError

    values = [float(v) for v in commit_gap_s]
    if len(values) != 2 or values[0] < 0 or values[0] > values[1]:
        raise LabkitError(f"expects [low, high] seconds with 0 <= low <= high, got {list(commit_gap_s)!r}",
                          field="commit_gap_s")
    return values[0], values[1]


# ---------------------------------------------------------------------- figures

_COLOURS = {"commit": "#444444", "webhook": "#8e44ad", "fetch": "#1f77b4", "build": "#ff7f0e", "plan": "#2ca02c",
            "apply": "#d62728", "prune": "#9467bd", "health": "#17becf"}


def plot_timeline(timeline: pd.DataFrame, title: str = "One commit through the reconcile loop (webhook)") -> plt.Figure:
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for i, row in enumerate(timeline.itertuples()):
        width = max(row.duration, 0.05)
        ax.barh(i, width, left=row.start, color=_COLOURS.get(row.stage, "grey"))
        ax.text(row.start + width + 0.1, i, f"{row.duration:.2f} s" if row.duration else f"t={row.start:.2f} s",
                va="center", fontsize=9)
    ax.set_yticks(range(len(timeline)), timeline.stage)
    ax.invert_yaxis()
    ax.set_xlabel("seconds after the commit was pushed")
    ax.set_ylabel("reconcile step")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_webhook_vs_poll(result: TourResult, poll_interval_s: float) -> plt.Figure:
    df = result.frame()
    fig, ax = plt.subplots(figsize=(7, 4))
    modes = ["poll", "webhook"]
    data = [df[df["mode"] == m]["commit_to_applied_s"].dropna().tolist() for m in modes]
    ax.boxplot(data, tick_labels=[f"poll every {format_duration(poll_interval_s)}", "webhook"], showmeans=True)
    for i, vals in enumerate(data, start=1):
        ax.scatter([i] * len(vals), vals, alpha=0.7, zorder=3)
    ax.set_ylabel("seconds from push to applied")
    ax.set_xlabel("how the controller learns about the commit")
    ax.set_title("Commit to applied: polling versus a push webhook")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
