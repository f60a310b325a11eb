"""Start here: the four OpenGitOps principles, each shown live on one simulated fleet.

OpenGitOps (https://opengitops.dev) defines GitOps by four principles.  The
start-here notebook shows each of them happening in a ``FleetLab`` — the sample
fleet in a real git repository, Flux bootstrapped on a simulated staging cluster —
and measures it from the lab's event log, never from a script:

1. **Declarative.**  The desired state is data in git.  ``declared_vs_live`` renders
   what the Kustomizations declare (real kustomize over the fetched commit) and
   compares it with the live objects: the plan Flux would run (``flux diff``), the
   key fields on both sides, and which field managers own the live object.
2. **Versioned and immutable.**  Every change is a commit.  alice ships a new tag;
   bob ships a tag that does not exist (the rollout stalls on ErrImagePull and the
   health check fails); alice ``git revert``s bob's commit — a *new* commit, bob's
   stays in history.  ``git log -- apps/podinfo/staging`` is the deploy record:
   ``deploy_record`` joins it with when each revision was applied and whether it
   became healthy.
3. **Pulled automatically.**  Nobody pushes to the cluster.  source-controller
   polls git on its interval and fetches each new commit; kustomize-controller
   applies what it fetched.  ``pull_trace`` shows each push, the fetch that picked
   it up and the apply; ``writers`` lists who wrote to git (people) and who wrote to
   the cluster's API (controllers inside it): nobody outside the cluster holds a
   credential that can change it.
4. **Continuously reconciled.**  At a seeded moment the on-call engineer raises the
   memory limit with ``kubectl edit``.  Flux does not watch for that; at the ``apps``
   Kustomization's next interval the plan finds the field differs from git and the
   apply takes it back (``hotfix_reverted_after_s``).

``PrinciplesPlayground`` puts the same lab under the participant's hands (ipywidgets:
commit, bad commit, revert, ``kubectl edit``, step the clock) with one panel per
principle, computed by the same functions the headless sections use.

``notebook_map`` lists the other notebooks with their measured headless run time
(``labkit.workshop.durations``) and their exercises (minutes: the authors' estimate),
and ``first_exercise_workspace`` finds the participant's workspace for the first
exercise's ``check``.
"""
from __future__ import annotations

import atexit
import html
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from labkit.core.clock import rng_for
from labkit.core.duration import format_duration
from labkit.scenarios.lab import PODINFO, FleetLab

ENV = "staging"
NAMESPACE = "podinfo-staging"
OVERLAY = "apps/podinfo/staging"
GOOD_TAG = "6.5.1"
BAD_TAG = "6.5.1O"  # a typo: the letter O; the registry has no such tag
HOTFIX_LIMIT = "512Mi"
SAMPLE_EVERY_S = 5.0
#: The exercise the start-here notebook hands over with (see ``labkit exercises``).
FIRST_EXERCISE = "tour-first-release"
#: The order a workshop meets the scenarios in (others follow, alphabetically).
ORDER = ("tour", "promotion", "drift", "hpa-conflict", "rollback", "secrets", "migrations", "stateful-edges",
         "push-vs-pull", "fleet", "helm-release", "tenancy")
SELF = "00-start-here"


# ------------------------------------------------------------------ small readers


def _container(obj: dict[str, Any] | None) -> dict[str, Any]:
    if not obj:
        return {}
    try:
        return obj["spec"]["template"]["spec"]["containers"][0]
    except (KeyError, IndexError, TypeError):
        return {}


def memory_limit(obj: dict[str, Any] | None) -> str | None:
    return ((_container(obj).get("resources") or {}).get("limits") or {}).get("memory")


def tag_of(image: str | None) -> str:
    return image.rsplit(":", 1)[1] if image and ":" in image else (image or "-")


def summary_of(obj: dict[str, Any] | None) -> str:
    """The few fields of an object worth comparing by eye (image, replicas, memory limit; ports; interval)."""
    if not obj:
        return "(absent)"
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Deployment":
        c = _container(obj)
        return f"image {tag_of(c.get('image'))}, replicas {spec.get('replicas', '-')}, memory limit {memory_limit(obj)}"
    if kind == "Service":
        return "ports " + ", ".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    if kind in ("Kustomization", "GitRepository"):
        extra = f"path {spec.get('path')}" if kind == "Kustomization" else f"url {spec.get('url')}"
        return f"interval {spec.get('interval')}, {extra}"
    return "exists"


def managers_of(obj: dict[str, Any] | None) -> str:
    fields = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    return ", ".join(sorted({m.get("manager", "?") for m in fields})) or "-"


def _message(detail: Any) -> str:
    if not isinstance(detail, dict):
        return ""
    for key in ("message", "reason", "error"):
        if detail.get(key):
            return str(detail[key])
    return ""


# ------------------------------------------------------------------ 1. declarative


def declared_vs_live(lab: FleetLab, kustomizations: tuple[str, ...] = ("flux-system", "apps")) -> pd.DataFrame:
    """What git declares (rendered) next to what is live, with the plan and the live object's field managers."""
    rows = []
    for ks in kustomizations:
        try:
            plan = lab.flux[ENV].diff(ks)
        except Exception as err:  # noqa: BLE001 - shown, never raised: the cell must not fail on a bad commit
            rows.append({"declared by": f"Kustomization/{ks}", "object": "-", "in git (desired)": f"cannot build: {err}",
                         "live": "-", "plan": "error", "drift": "", "field managers (live)": "-"})
            continue
        for e in plan.entries:
            rows.append({"declared by": f"Kustomization/{ks}", "object": e.subject,
                         "in git (desired)": summary_of(e.desired), "live": summary_of(e.live),
                         "plan": e.action.value, "drift": ", ".join(e.drift[:4]),
                         "field managers (live)": managers_of(e.live)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ 2. versioned


def deploy_record(lab: FleetLab, path: str = OVERLAY) -> pd.DataFrame:
    """``git log -- <path>`` joined with when each revision was applied to staging and how its health check went."""
    log = lab.cluster(ENV).log
    rows = []
    for c in reversed(lab.repo.deploy_record(path)):
        applied = next((e for e in log.filter(event="Applied", object="Kustomization/flux-system/apps")
                        if e.revision.endswith(c.sha)), None)
        outcome = ""
        for e in log.filter(object="Kustomization/flux-system/apps"):
            if e.revision.endswith(c.sha) and e.event in ("ReconciliationSucceeded", "HealthCheckFailed",
                                                          "ReconciliationFailed"):
                outcome = "healthy" if e.event == "ReconciliationSucceeded" else f"{e.event}: {_message(e.detail)}"
                if e.event == "ReconciliationSucceeded":
                    break
        rows.append({"commit": c.sha[:7], "author": c.author, "committed_s": c.time,
                     "message": c.message.split("\n", 1)[0],
                     "applied_s": applied.time if applied else None, "outcome": outcome[:140]})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ 3. pulled


def pull_trace(lab: FleetLab, since: float = 0.0) -> pd.DataFrame:
    """Each push to git after ``since``, the source-controller fetch that picked it up, and the apply."""
    frame = lab.frame()
    pushes = frame[(frame.component == "git") & (frame.event == "Pushed") & (frame.time > since)]
    cl = frame[frame.cluster == ENV]
    fetches = cl[(cl.component == "source-controller") & (cl.event == "Fetched")]
    applies = cl[(cl.component == "kustomize-controller") & (cl.event == "Applied")
                 & (cl.object == "Kustomization/flux-system/apps")]
    rows = []
    for _, p in pushes.iterrows():
        sha = str(p.revision)
        f = fetches[fetches.revision.str.endswith(sha) & (fetches.time >= p.time)]
        a = applies[applies.revision.str.endswith(sha) & (applies.time >= p.time)]
        fetched = float(f.time.iloc[0]) if len(f) else None
        rows.append({"commit": sha[:7], "pushed by": (p.detail or {}).get("pusher", ""), "pushed_s": float(p.time),
                     "fetched_s": fetched, "push_to_fetch_s": None if fetched is None else round(fetched - p.time, 1),
                     "applied_s": float(a.time.iloc[0]) if len(a) else None})
    return pd.DataFrame(rows)


def writers(lab: FleetLab, since: float = 0.0, until: float | None = None) -> pd.DataFrame:
    """Who wrote where between ``since`` and ``until``: git pushers (people) and the cluster API's field managers."""
    frame = lab.frame()
    until = lab.now if until is None else until
    window = frame[(frame.time > since) & (frame.time < until)]
    rows = []
    pushes = window[(window.component == "git") & (window.event == "Pushed")]
    for who, grp in pushes.groupby(pushes.detail.map(lambda d: (d or {}).get("pusher", "?"))):
        rows.append({"identity": who, "writes to": "git (push)", "writes": len(grp), "runs": "a person's laptop or CI"})
    api = window[(window.cluster == ENV) & (window.component == "api")
                 & window.detail.map(lambda d: bool((d or {}).get("manager")))]  # deletes carry no manager
    for who, grp in api.groupby(api.detail.map(lambda d: (d or {}).get("manager", "?"))):
        rows.append({"identity": who, "writes to": "cluster API", "writes": len(grp),
                     "runs": "outside the cluster (a person)" if str(who).startswith("kubectl") else "inside the cluster"})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ the run


@dataclass
class StartHereResult:
    lab: FleetLab
    samples: pd.DataFrame
    marks: dict[str, float]
    declarative: pd.DataFrame
    record: pd.DataFrame
    pulls: pd.DataFrame
    who: pd.DataFrame
    source_interval_s: float
    apps_interval_s: float
    reverted_after_s: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        d = self.declarative
        cluster_writers = sorted(self.who[self.who["writes to"] == "cluster API"].identity)
        pushes = [v for v in self.pulls.push_to_fetch_s if v is not None and v == v]
        revert = self.marks.get("revert_healthy")
        return {
            "declarative_objects_declared": int(len(d)),
            "declarative_objects_in_sync": int((d.plan == "unchanged").sum()),
            "versioned_deploy_record_commits": int(len(self.record)),
            "versioned_revert_to_healthy_s": None if revert is None else round(revert - self.marks["revert"], 1),
            "pulled_push_to_fetch_s_max": max(pushes) if pushes else None,
            "pulled_cluster_writers": cluster_writers,
            "reconciled_hotfix_reverted_after_s": self.reverted_after_s,
        }


def run_start_here(*, seed: int = 0, source_interval_s: float = 60.0, apps_interval_s: float = 300.0,
                   cluster: str = "sim") -> StartHereResult:
    """The four principles on one lab, in one story (see the module docstring)."""
    if cluster != "sim":
        from labkit.core.errors import LabkitError

        raise LabkitError("the start-here notebook runs on the embedded simulator (cluster='sim')", field="cluster")
    lab = FleetLab(seed=seed, source_interval=format_duration(source_interval_s),
                   apps_interval=format_duration(apps_interval_s))
    samples: list[dict[str, Any]] = []

    def sampler():
        while True:
            dep = lab.deployment(ENV)
            ready = lab.ready(ENV)
            samples.append({"time": lab.now, "tag": tag_of(lab.image(ENV)), "memory": memory_limit(dep),
                            "ready": ready.get("status") == "True",
                            "available": ((dep or {}).get("status") or {}).get("availableReplicas", 0)})
            yield lab.env.timeout(SAMPLE_EVERY_S)

    lab.env.process(sampler())
    marks: dict[str, float] = {}
    notes: dict[str, Any] = {}
    rng = rng_for(seed, "start-here")
    healthy = lambda sha: (lab.applied_revision(ENV).endswith(sha)  # noqa: E731
                           and lab.ready(ENV).get("status") == "True")
    lab.run_until(lambda: lab.ready(ENV).get("status") == "True", timeout=900)
    marks["ready"] = lab.now
    notes["head_at_ready"] = lab.repo.head()
    declarative = declared_vs_live(lab)

    # 2. versioned: a good release, a typo, a revert
    lab.advance(rng.uniform(20, 90))
    good = lab.set_image(ENV, GOOD_TAG, author="alice", message=f"podinfo staging: {GOOD_TAG}")
    marks["good"] = lab.now
    lab.run_until(lambda: healthy(good), timeout=source_interval_s + apps_interval_s + 900)
    marks["good_healthy"] = lab.now
    lab.advance(rng.uniform(60, 180))
    bad = lab.set_image(ENV, BAD_TAG, author="bob", message=f"podinfo staging: {BAD_TAG}")
    marks["bad"] = lab.now
    lab.run_until(lambda: lab.image(ENV) == f"{PODINFO}:{BAD_TAG}", timeout=source_interval_s + apps_interval_s + 300)
    lab.run_until(lambda: lab.ready(ENV).get("status") == "False", timeout=900)
    marks["bad_failed"] = lab.now
    lab.advance(rng.uniform(30, 90))  # alice notices the alert
    revert = lab.repo.revert(bad, "alice", when=lab.now)
    marks["revert"] = lab.now
    if lab.run_until(lambda: healthy(revert) and lab.image(ENV) == f"{PODINFO}:{GOOD_TAG}",
                     timeout=source_interval_s + apps_interval_s + 900) is not None:
        marks["revert_healthy"] = lab.now
    record = deploy_record(lab)

    # 4. continuously reconciled: a kubectl edit at a seeded moment, taken back at the next interval
    lab.advance(rng.uniform(60, apps_interval_s))
    marks["before_hotfix"] = lab.now
    notes["git_limit"] = memory_limit(lab.deployment(ENV))

    def hotfix(obj: dict[str, Any]) -> None:
        c = obj["spec"]["template"]["spec"]["containers"][0]
        c.setdefault("resources", {}).setdefault("limits", {})["memory"] = HOTFIX_LIMIT

    lab.cluster(ENV).kubectl_edit("apps/v1", "Deployment", "podinfo", NAMESPACE, hotfix)
    marks["hotfix"] = lab.now
    back = lab.run_until(lambda: memory_limit(lab.deployment(ENV)) != HOTFIX_LIMIT,
                         timeout=2 * apps_interval_s + 120)
    reverted_after = None if back is None else round(back - marks["hotfix"], 1)
    if back is not None:
        marks["hotfix_reverted"] = back
    lab.advance(60)
    marks["end"] = lab.now

    # 3. pulled: computed over the whole run (the pushes above, and every poll)
    pulls = pull_trace(lab, since=0.0)
    who = writers(lab, since=marks["ready"], until=marks["before_hotfix"])
    return StartHereResult(lab, pd.DataFrame(samples), marks, declarative, record, pulls, who,
                           source_interval_s, apps_interval_s, reverted_after, notes)


# ------------------------------------------------------------------ figures


def _fetch_times(lab: FleetLab) -> list[float]:
    return [e.time for e in lab.cluster(ENV).log.filter(event="Fetched")
            if e.component == "source-controller"]


def _pull_failures(lab: FleetLab, tag: str) -> list[float]:
    return [e.time for e in lab.cluster(ENV).log.filter(event="Failed")
            if e.component == "kubelet" and f":{tag}" in _message(e.detail)]


def plot_versioned(result: StartHereResult) -> plt.Figure:
    s, m = result.samples, result.marks
    s = s[s.tag != "-"]
    tags = list(dict.fromkeys(s.tag))
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.step(s.time / 60, [tags.index(t) for t in s.tag], where="post", linewidth=2,
            label="image tag in the live Deployment's spec")
    ax.set_yticks(range(len(tags)), tags)
    fails = _pull_failures(result.lab, BAD_TAG)
    if fails:
        ax.axvspan(fails[0] / 60, m.get("revert_healthy", fails[-1]) / 60, color="tab:orange", alpha=0.15,
                   label=f"new pods fail to pull {BAD_TAG} (ErrImagePull); old pods keep serving")
    ax.fill_between(s.time / 60, -0.4, len(tags) - 0.6, where=(~s.ready) & (s.time >= m["ready"]), step="post", color="tab:red", alpha=0.15,
                    label="apps Kustomization Ready=False (health check failed)")
    for key, label, color in (("good", f"alice commits {GOOD_TAG}", "tab:green"),
                              ("bad", f"bob commits {BAD_TAG} (a typo)", "tab:red"),
                              ("revert", "alice: git revert (a new commit)", "tab:blue")):
        if key in m:
            ax.axvline(m[key] / 60, color=color, linestyle="--", label=label)
    ax.set_xlim(0, (m.get("before_hotfix", s.time.max())) / 60)
    ax.set_ylim(-0.5, len(tags) - 0.5)
    ax.set_xlabel("minutes (virtual time)")
    ax.set_ylabel("image tag deployed")
    ax.set_title("Versioned and immutable: every deploy is a commit, a bad one is undone by another commit")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_pulled(result: StartHereResult) -> plt.Figure:
    lab, p = result.lab, result.pulls
    fig, ax = plt.subplots(figsize=(10, 3.2))
    fetches = _fetch_times(lab)
    ax.plot([t / 60 for t in fetches], [1] * len(fetches), "|", color="0.55", markersize=14,
            label=f"source-controller polls git (every {format_duration(result.source_interval_s)})")
    ax.plot(p.pushed_s / 60, [2] * len(p), "o", color="tab:purple", label="git push (by a person)")
    got = p[p.fetched_s.notna()]
    ax.plot(got.fetched_s / 60, [1] * len(got), "o", color="tab:orange", label="the poll that fetched a new commit")
    for _, r in got.iterrows():
        ax.annotate("", xy=(r.fetched_s / 60, 1.08), xytext=(r.pushed_s / 60, 1.92),
                    arrowprops={"arrowstyle": "->", "color": "tab:orange", "alpha": 0.7})
    applied = p[p.applied_s.notna()]
    ax.plot(applied.applied_s / 60, [0] * len(applied), "s", color="tab:green",
            label="kustomize-controller applies it")
    ax.set_yticks([0, 1, 2], ["cluster API\n(apply)", "source-controller\n(fetch)", "git\n(push)"])
    ax.set_ylim(-0.6, 2.6)
    ax.set_xlim(0, result.marks["end"] / 60)
    ax.set_xlabel("minutes (virtual time)")
    ax.set_ylabel("where it happens")
    ax.set_title("Pulled automatically: people push to git, the cluster fetches from it")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def _apps_runs(lab: FleetLab, since: float) -> list[float]:
    return [e.time for e in lab.cluster(ENV).log.filter(event="Applied", object="Kustomization/flux-system/apps")
            if e.time >= since]


def plot_reconciled(result: StartHereResult) -> plt.Figure:
    m = result.marks
    start = max(0.0, m["hotfix"] - 1.2 * result.apps_interval_s)
    times, values = [start, m["hotfix"]], ["git", "edit"]
    if "hotfix_reverted" in m:
        times.append(m["hotfix_reverted"])
        values.append("git")
    times.append(m["end"])
    values.append(values[-1])
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.step([t / 60 for t in times], [1 if v == "edit" else 0 for v in values], where="post", linewidth=2,
            label="live memory limit of the Deployment")
    ax.set_yticks([0, 1], [f"{result.notes.get('git_limit', '128Mi')} (git)", f"{HOTFIX_LIMIT} (kubectl edit)"])
    ax.set_ylim(-0.5, 1.5)
    ax.axvline(m["hotfix"] / 60, color="tab:red", linestyle="--", label="kubectl edit (on-call, not in git)")
    for i, t in enumerate(_apps_runs(result.lab, start)):
        ax.axvline(t / 60, color="tab:green", linestyle=":",
                   label=f"apps Kustomization runs (every {format_duration(result.apps_interval_s)})" if i == 0 else None)
    ax.set_xlim(start / 60, m["end"] / 60)
    ax.set_xlabel("minutes (virtual time)")
    ax.set_ylabel("memory limit")
    ax.set_title("Continuously reconciled: a kubectl edit lasts until the next reconcile")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ the map and the first exercise


def notebook_map() -> pd.DataFrame:
    """Every other notebook: what it shows, measured headless run time, exercises and their estimated minutes."""
    from labkit.scenarios import spec as sc_mod
    from labkit.workshop import durations
    from labkit.workshop.registry import exercises

    runs = durations.load()
    all_ex = exercises()
    names = [n for n in sc_mod.names() if n != SELF]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    rows = []
    for n in names:
        sc = sc_mod.get(n)
        ex = [e for e in all_ex if e.scenario == n]
        run = runs.get(n)
        rows.append({"notebook": Path(sc.notebook_rel).name, "what it shows": sc.title,
                     "headless run (measured)": f"{run / 60:.1f} min" if run is not None else "not measured",
                     "exercises": ", ".join(e.id for e in ex) or "-",
                     # whole minutes, or a dash: a None in a number column shows as "nan" and turns
                     # the others into floats ("35.000000")
                     "exercise minutes (estimate)": str(sum(e.minutes for e in ex)) if ex else "—"})
    return pd.DataFrame(rows)


def first_exercise_id() -> str:
    """``FIRST_EXERCISE`` when it is registered, else the first exercise of the catalogue."""
    from labkit.workshop.registry import exercises

    items = exercises()
    return FIRST_EXERCISE if any(e.id == FIRST_EXERCISE for e in items) else items[0].id


def first_exercise_workspace(workspace: str = "") -> tuple[Any, str]:
    """The participant's workspace (``workspace``, ``$LABKIT_WORKSPACE``, or the notebook's folder or one above).

    Without one (a headless run in the repository's notebooks folder) a throwaway
    workspace is made in a temporary folder, so the check below still shows what it
    says about the starting files; the second value says which it is.
    """
    from labkit.core.errors import LabkitError
    from labkit.workshop import find_workspace, start_workspace

    try:
        return find_workspace(workspace or None), "your workspace"
    except LabkitError:
        tmp = Path(tempfile.mkdtemp(prefix="labkit-start-here-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        return (start_workspace(tmp / "workspace"),
                "a throwaway workspace, deleted when the kernel stops (none found: run `labkit workshop start DIR`)")


# ------------------------------------------------------------------ the playground (interactive)


class PrinciplesPlayground:
    """The lab under the participant's hands: one panel per principle, refreshed after every click.

    The panels are the headless sections' own functions (``declared_vs_live``,
    ``deploy_record``, ``pull_trace``) applied to the live lab.  Buttons are found by
    their text in the browser tests: keep the labels.
    """

    LABELS = {"commit": "git commit: next tag", "bad": "git commit: typo tag", "revert": "git revert HEAD",
              "edit": "kubectl edit: hotfix", "10s": "+10 s", "1m": "+1 min", "5m": "+5 min"}

    def __init__(self, lab: FleetLab):
        import ipywidgets as widgets

        self.lab = lab
        self._tags = ["6.5.2", "6.5.3", "6.5.4", "6.6.0", "6.5.0", "6.5.1"]
        self._n = 0
        layout = widgets.Layout(width="auto")
        self.buttons = {k: widgets.Button(description=v, layout=layout, tooltip=v) for k, v in self.LABELS.items()}
        self.buttons["commit"].button_style = "primary"
        self.buttons["bad"].button_style = "warning"
        self.buttons["edit"].button_style = "danger"
        self.buttons["commit"].on_click(lambda _: self._do(self._commit))
        self.buttons["bad"].on_click(lambda _: self._do(self._bad))
        self.buttons["revert"].on_click(lambda _: self._do(self._revert))
        self.buttons["edit"].on_click(lambda _: self._do(self._hotfix))
        for k, secs in (("10s", 10), ("1m", 60), ("5m", 300)):
            self.buttons[k].on_click(lambda _, s=secs: self._do(lambda: self._advance(s)))
        self.status = widgets.HTML()
        self.panels = widgets.HTML()
        b = self.buttons
        self.widget = widgets.VBox([
            widgets.HBox([b["commit"], b["bad"], b["revert"], b["edit"]]),
            widgets.HBox([b["10s"], b["1m"], b["5m"]]),
            self.status, self.panels,
        ])
        self.widget.add_class("labkit-playground")
        self.refresh("ready: make a change, then step the clock")

    # actions -------------------------------------------------------------

    def _do(self, action) -> None:
        from labkit.core.errors import LabkitError

        try:
            note = action()
        except LabkitError as err:
            note = f"refused: {err}"
        self.refresh(note)

    def _commit(self) -> str:
        tag = self._tags[self._n % len(self._tags)]
        self._n += 1
        sha = self.lab.set_image(ENV, tag, author="you", message=f"podinfo staging: {tag}")
        return f"git commit {sha[:7]}: image tag {tag} (pushed; the cluster has not seen it yet)"

    def _bad(self) -> str:
        sha = self.lab.set_image(ENV, BAD_TAG, author="you", message=f"podinfo staging: {BAD_TAG}")
        return f"git commit {sha[:7]}: image tag {BAD_TAG} (a typo; no such tag in the registry)"

    def _revert(self) -> str:
        head = self.lab.repo.head()
        sha = self.lab.repo.revert(head, "you", when=self.lab.now)
        return f"git revert {head[:7]}: new commit {sha[:7]} (the reverted one stays in history)"

    def _hotfix(self) -> str:
        def edit(obj: dict[str, Any]) -> None:
            c = obj["spec"]["template"]["spec"]["containers"][0]
            c.setdefault("resources", {}).setdefault("limits", {})["memory"] = HOTFIX_LIMIT

        self.lab.cluster(ENV).kubectl_edit("apps/v1", "Deployment", "podinfo", NAMESPACE, edit)
        return f"kubectl edit: memory limit {HOTFIX_LIMIT} on the live Deployment (not in git)"

    def _advance(self, seconds: float) -> str:
        self.lab.advance(seconds)
        return f"clock +{format_duration(seconds)}"

    # view ----------------------------------------------------------------

    def refresh(self, note: str = "") -> None:
        e = html.escape
        lab = self.lab
        ready = lab.ready(ENV)
        dep = lab.deployment(ENV) or {}
        st = dep.get("status") or {}
        self.status.value = (
            f"<div class='labkit-status' style='font-size:13px;line-height:1.6'>"
            f"<b>t = {lab.now / 60:.1f} min</b> (virtual) &nbsp; <span style='background:#eef5ff;padding:1px 6px'>"
            f"{e(note)}</span><br>"
            f"live: image <b>{e(tag_of(lab.image(ENV)))}</b>, memory limit <b>{e(str(memory_limit(dep)))}</b>, "
            f"{st.get('updatedReplicas', 0)} updated / {st.get('readyReplicas', 0)} ready of "
            f"{(dep.get('spec') or {}).get('replicas', '?')} &nbsp;·&nbsp; apps Kustomization "
            f"Ready=<b>{e(ready.get('status', '?'))}</b> {e(ready.get('reason', ''))}: "
            f"{e(str(ready.get('message', ''))[:160])}</div>")
        cards = [self._declarative(), self._versioned(), self._pulled(), self._reconciled()]
        self.panels.value = _PG_STYLE + "<div class='labkit-pg'>" + "".join(
            f"<div class='card'>{c}</div>" for c in cards) + "</div>"

    @staticmethod
    def _table(df: pd.DataFrame, cls: str) -> str:
        if df.empty:
            return "<i class='muted'>nothing yet</i>"
        return df.to_html(index=False, escape=True, classes=cls, border=0, na_rep="-")

    def _declarative(self) -> str:
        d = declared_vs_live(self.lab, ("apps",))
        rows = "".join(
            f"<tr><td>{html.escape(r['object'])}</td><td>{html.escape(r['in git (desired)'])}</td>"
            f"<td>{html.escape(r['live'])}</td><td><b class='{'drift' if r['plan'] != 'unchanged' else ''}'>"
            f"{html.escape(r['plan'])}</b>{'<br><span class=muted>' + html.escape(r['drift']) + '</span>' if r['drift'] else ''}"
            f"</td></tr>" for _, r in d.iterrows())
        return ("<h4>1 · Declarative: git (desired) vs live, and the next reconcile's plan</h4>"
                "<table><tr><th>object</th><th>in git</th><th>live</th><th>plan</th></tr>" + rows + "</table>")

    def _versioned(self) -> str:
        r = deploy_record(self.lab).tail(6)
        rows = "".join(
            f"<tr><td><code>{html.escape(x.commit)}</code></td><td>{html.escape(x.author)}</td>"
            f"<td>{html.escape(x.message)}</td><td>{x.committed_s / 60:.1f}</td>"
            f"<td>{'-' if x.applied_s != x.applied_s or x.applied_s is None else f'{x.applied_s / 60:.1f}'}</td>"
            f"<td>{html.escape(x.outcome or '-')}</td></tr>" for x in r.itertuples())
        return (f"<h4>2 · Versioned: <code>git log -- {OVERLAY}</code>, the deploy record (newest last)</h4>"
                "<table><tr><th>commit</th><th>author</th><th>message</th><th>committed (min)</th>"
                "<th>applied (min)</th><th>outcome</th></tr>" + rows + "</table>")

    def _pulled(self) -> str:
        gr = self.lab.cluster(ENV).get("source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system", "flux-system")
        art = ((gr or {}).get("status") or {}).get("artifact") or {}
        interval = str(((gr or {}).get("spec") or {}).get("interval"))
        fetches = _fetch_times(self.lab)
        last = f"{fetches[-1] / 60:.1f} min" if fetches else "never"
        head = self.lab.repo.head()
        fetched = str(art.get("revision", "-")).rsplit(":", 1)[-1][:7]
        behind = ("<br><b class='drift'>git has a newer commit: the next poll fetches it</b>"
                  if not str(art.get("revision", "")).endswith(head) else "<br>the cluster has fetched git's HEAD")
        trace = pull_trace(self.lab).tail(4)
        rows = "".join(f"<tr><td><code>{html.escape(x.commit)}</code></td><td>{html.escape(str(x._2))}</td>"
                       f"<td>{x.pushed_s / 60:.1f}</td><td>{'-' if x.fetched_s != x.fetched_s or x.fetched_s is None else f'{x.fetched_s / 60:.1f}'}</td></tr>"
                       for x in trace.itertuples())
        return (f"<h4>3 · Pulled: source-controller polls git every {html.escape(interval)}</h4>"
                f"git HEAD <code>{head[:7]}</code> · fetched <code>{html.escape(fetched)}</code> · last poll at "
                f"{last}{behind}<table><tr><th>push</th><th>by</th><th>pushed (min)</th><th>fetched (min)</th></tr>"
                + rows + "</table>")

    def _reconciled(self) -> str:
        log = self.lab.cluster(ENV).log
        runs = [e_.time for e_ in log.filter(object="Kustomization/flux-system/apps")
                if e_.event in ("ReconciliationSucceeded", "ReconciliationFailed")]
        ks = self.lab.kustomization(ENV) or {}
        interval = str((ks.get("spec") or {}).get("interval"))
        from labkit.core.duration import parse_duration

        nxt = f", next ≈ {(runs[-1] + parse_duration(interval)) / 60:.1f} min" if runs else ""
        events = [e_ for e_ in log.records() if e_.component != "api"][-6:][::-1]
        rows = "".join(f"<tr><td>{e_.time / 60:.1f}</td><td>{html.escape(e_.component)}</td><td>"
                       f"{html.escape(e_.event)}</td><td>{html.escape(e_.object)}</td><td>"
                       f"{html.escape(_message(e_.detail)[:140])}</td></tr>" for e_ in events)
        return (f"<h4>4 · Continuously reconciled: the apps Kustomization runs every {html.escape(interval)}</h4>"
                f"last run at {runs[-1] / 60:.1f} min{nxt} (a drift in panel 1 is taken back then)" if runs else
                "<h4>4 · Continuously reconciled</h4>no run yet") + (
                "<table><tr><th>min</th><th>component</th><th>event</th><th>object</th><th>message</th></tr>"
                + rows + "</table>")


_PG_STYLE = """<style>
.labkit-pg {display:grid; grid-template-columns:repeat(auto-fit, minmax(560px, 1fr)); gap:8px; font-size:12px;
            line-height:1.35}
.labkit-pg .card {border:1px solid #d0d7de; border-radius:6px; padding:4px 8px; background:#fff}
.labkit-pg h4 {margin:2px 0 4px; font-size:13px}
.labkit-pg table {border-collapse:collapse; width:100%; margin-top:3px}
.labkit-pg th, .labkit-pg td {border-bottom:1px solid #eaeef2; padding:1px 5px; text-align:left; vertical-align:top}
.labkit-pg .drift {color:#bf5b00}
.labkit-pg .muted {color:#57606a}
</style>"""
