"""Figures for the delivery scenarios: distributions, not just medians.

Every function returns a matplotlib ``Figure`` with a title and labelled axes,
ready for ``labkit.core.report.save_figure``.
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from labkit.delivery import dora
from labkit.delivery.studies import PULL_WEBHOOK_LIMIT_S, PUSH_RANGE_S, PushVsPullStudy, RollbackStudy
from labkit.delivery.tiers import dora_2024

COLOURS = {"push": "#c0504d", "pull": "#4f81bd", "poll": "#9bbb59"}


def _ecdf(ax: Any, values: pd.Series, label: str, colour: str) -> None:
    v = np.sort(values.dropna().to_numpy())
    if len(v):
        ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", label=f"{label} (n={len(v)})", color=colour)


def _boxes(ax: Any, groups: list, labels: list[str], *, fliers: bool = False) -> None:
    ax.boxplot(groups, showfliers=fliers)
    ax.set_xticks(range(1, len(labels) + 1), labels)


def plot_restore_distributions(study: RollbackStudy) -> plt.Figure:
    """ECDFs of time to restore for the three rollback paths, with the article's ranges shaded."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.axvspan(PUSH_RANGE_S[0] / 60, PUSH_RANGE_S[1] / 60, color=COLOURS["push"], alpha=0.12,
               label="article: push rollback 8-15 min")
    ax.axvline(PULL_WEBHOOK_LIMIT_S / 60, color=COLOURS["pull"], ls="--", lw=1, label="article: GitOps + webhook < 2 min")
    _ecdf(ax, study.push["restore_s"] / 60, "push: pipeline re-run", COLOURS["push"])
    _ecdf(ax, study.pull_webhook["restore_s"] / 60, "pull: git revert + webhook", COLOURS["pull"])
    _ecdf(ax, study.pull_poll["restore_s"] / 60, f"pull: git revert + {study.params.poll_interval:g}s poll",
          COLOURS["poll"])
    ax.set_xscale("log")
    ax.set_xlabel("time to restore after the rollback decision (minutes, log scale)")
    ax.set_ylabel("fraction of runs restored")
    ax.set_title(f"Time to restore: {study.runs} seeded runs per path")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def plot_rollback_sweeps(study: RollbackStudy) -> plt.Figure:
    """How the medians (and the spread) move with poll interval, CI load and readiness delay."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.3))
    ax = axes[0]
    groups = [g["restore_s"].dropna() / 60 for _, g in study.poll_sweep.groupby("poll_interval")]
    labels = [f"{v:g}" for v in sorted(study.poll_sweep["poll_interval"].unique())]
    _boxes(ax, groups, labels)
    ax.axhline(study.pull_webhook["restore_s"].median() / 60, color=COLOURS["pull"], ls="--", label="with webhook (median)")
    ax.axhline(PULL_WEBHOOK_LIMIT_S / 60, color="grey", ls=":", label="2 min")
    ax.set_xlabel("GitRepository interval without webhook (s)")
    ax.set_ylabel("time to restore (min)")
    ax.set_title("Pull: revert + reconcile vs poll interval")
    ax.legend(fontsize=8)
    ax = axes[1]
    groups = [g["restore_s"].dropna() / 60 for _, g in study.load_sweep.groupby("ci_load")]
    labels = [f"{v:g}" for v in sorted(study.load_sweep["ci_load"].unique())]
    _boxes(ax, groups, labels)
    ax.axhspan(PUSH_RANGE_S[0] / 60, PUSH_RANGE_S[1] / 60, color=COLOURS["push"], alpha=0.12, label="8-15 min")
    ax.set_xlabel("CI runner pool utilisation by other jobs")
    ax.set_ylabel("time to restore (min)")
    ax.set_title(f"Push: pipeline re-run vs CI load ({study.params.ci.runners} runners)")
    ax.legend(fontsize=8)
    ax = axes[2]
    rs = study.readiness_sweep
    for model, colour in (("push", COLOURS["push"]), ("pull", COLOURS["pull"])):
        g = rs[rs["model"] == model].groupby("readiness_delay")["restore_s"]
        med, lo, hi = g.median() / 60, g.quantile(0.1) / 60, g.quantile(0.9) / 60
        ax.errorbar(med.index, med.values, yerr=[med - lo, hi - med], marker="o", capsize=3, color=colour,
                    label=f"{model} (median, p10-p90)")
    ax.set_yscale("log")
    ax.set_xlabel("readiness probe initialDelaySeconds (s)")
    ax.set_ylabel("time to restore (min, log scale)")
    ax.set_title("Slow readiness stretches both rollouts")
    ax.legend(fontsize=8)
    fig.suptitle("What moves the rollback times")
    fig.tight_layout()
    return fig


def plot_rollback_breakdown(study: RollbackStudy) -> plt.Figure:
    """Where the median run's time goes, per model."""
    push_parts = ["queue_wait_s", "checkout_s", "build_s", "test_s", "publish_s", "deploy_s"]
    pull_parts = ["push_s", "to_fetch_s", "fetch_to_restored_s"]
    fig, ax = plt.subplots(figsize=(9, 3.8))
    left = 0.0
    for part in push_parts:
        if part in study.push:
            v = float(study.push[part].median()) / 60
            ax.barh("push re-run", v, left=left, label=part.replace("_s", ""))
            left += v
    left = 0.0
    names = {"push_s": "revert + push (human)", "to_fetch_s": "webhook/poll + fetch", "fetch_to_restored_s":
             "build, apply, rollout"}
    for part in pull_parts:
        if part in study.pull_webhook:
            v = float(study.pull_webhook[part].median()) / 60
            ax.barh("revert + webhook", v, left=left, label=names[part], hatch="//")
            left += v
    ax.set_xlabel("minutes (median of each part)")
    ax.set_ylabel("rollback path")
    ax.set_title("Where a rollback's time goes")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return fig


# ---------------------------------------------------------------------- push vs pull

def _weekly_cfr(result: Any) -> list[float]:
    t = result.tables()
    dep = t.deployments[t.deployments.time_created < result.horizon]
    bad = {c for cs in t.incidents["changes"] for c in cs}
    week = (dep["time_created"] // (7 * dora.DAY)).astype(int)
    caused = dep["changes"].apply(lambda cs: any(c in bad for c in cs))
    out = []
    for _, idx in dep.groupby(week).groups.items():
        out.append(float(caused.loc[idx].mean()))
    return out


def plot_four_keys(study: PushVsPullStudy) -> plt.Figure:
    """The four keys side by side for push and pull, as distributions, with the DORA 2024 cluster lines."""
    cl = dora_2024()
    models = [("push", study.push), ("pull", study.pull)]
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.6))
    # deployment frequency: deploys per day
    ax = axes[0]
    ax.violinplot([r.keys.daily_deploys for _, r in models], showmedians=True)
    ax.set_xticks([1, 2], [m for m, _ in models])
    ax.axhline(cl.get("elite").deploys_per_day.lo, color="grey", ls=":", label="elite: on demand (>1/day)")
    ax.set_ylabel("deployments per day")
    ax.set_xlabel("model")
    ax.set_title("Deployment frequency")
    ax.legend(fontsize=7)
    # lead time
    ax = axes[1]
    ax.violinplot([np.log10(np.maximum(r.keys.lead_times_h, 1 / 60)) for _, r in models], showmedians=True)
    ax.set_xticks([1, 2], [m for m, _ in models])
    ax.axhline(np.log10(24), color="grey", ls=":", label="elite/high edge: 1 day")
    ax.set_ylabel("change lead time (log10 hours)")
    ax.set_xlabel("model")
    ax.set_title("Change lead time")
    ax.legend(fontsize=7)
    # change failure rate: per week
    ax = axes[2]
    _boxes(ax, [_weekly_cfr(r) for _, r in models], [m for m, _ in models])
    for i, (_, r) in enumerate(models, start=1):
        ax.plot(i, r.keys.change_failure_rate, "D", color="black", label="overall" if i == 1 else None)
    for c in cl.clusters:
        ax.axhline(c.change_failure_rate, color="grey", ls=":", lw=0.8)
        ax.text(2.45, c.change_failure_rate, c.name, fontsize=7, va="center")
    ax.set_ylabel("change failure rate (per week)")
    ax.set_xlabel("model")
    ax.set_title("Change failure rate")
    ax.legend(fontsize=7)
    # recovery
    ax = axes[3]
    data = [np.array(r.keys.recovery_times_h) * 60 for _, r in models]
    _boxes(ax, data, [m for m, _ in models], fliers=True)
    ax.set_yscale("log")
    ax.axhline(60, color="grey", ls=":", label="elite: < 1 hour")
    ax.set_ylabel("failed deployment recovery time (min, log)")
    ax.set_xlabel("model")
    ax.set_title("Recovery time")
    ax.legend(fontsize=7)
    tiers = ", ".join(f"{m}: {r.keys.classify().tier}" for m, r in models)
    fig.suptitle(f"DORA four keys over {study.team.days} days, {study.team.services} services "
                 f"({study.changes} PRs) -- nearest 2024 cluster: {tiers}")
    fig.tight_layout()
    return fig


def plot_tier_distances(study: PushVsPullStudy) -> plt.Figure:
    """Normalised distance of each model to each DORA 2024 cluster (smaller is closer)."""
    d = study.distances().set_index("model")
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = np.arange(len(d.columns))
    for i, (model, row) in enumerate(d.iterrows()):
        ax.bar(x + (i - 0.5) * 0.38, row.values, width=0.38, label=model, color=COLOURS.get(model))
    ax.set_xticks(x, list(d.columns))
    ax.set_xlabel("DORA 2024 cluster")
    ax.set_ylabel("normalised distance (all four metrics)")
    ax.set_title("Which cluster each model is nearest to")
    ax.legend()
    return fig


def plot_blast_radius(study: PushVsPullStudy) -> plt.Figure:
    """Objects a leaked CI credential changes without review, by model and git set-up."""
    b = study.blast
    labels = ["push: cluster API", "pull: git (as configured)", "pull: registry + image automation"]
    values = [b.push.objects, b.pull.objects, b.pull_image_channel.objects]
    for v in b.variants:
        labels.append(f"pull: git, protection={'on' if v['branch_protection'] else 'off'}"
                      f"{', CI bypass' if v['ci_bypasses_protection'] else ''}")
        values.append(v["objects_exposed_without_review"])
    fig, ax = plt.subplots(figsize=(9, 4))
    colours = [COLOURS["push"]] + [COLOURS["pull"]] * (len(values) - 1)
    ax.barh(labels, values, color=colours)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"objects changeable without review (of {b.total_objects} in the organisation)")
    ax.set_ylabel("credential and channel")
    ax.set_title("Blast radius of a leaked CI credential")
    return fig
