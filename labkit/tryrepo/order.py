"""The apply order of a target: stages, waves, hooks and dependsOn, as data and as a graph figure.

Within one unit the order is the dialect's (``labkit.engine.ordering``):

* Flux applies in three stages — cluster definitions (CRDs, Namespaces,
  ClusterRoles), class definitions (``*Class`` kinds), then everything else —
  and waits for each of the first two to be ready; within a stage, kinds follow
  ``fluxcd/pkg/ssa``'s order;
* Argo CD applies by phase (PreSync hooks, Sync, PostSync hooks, SyncFail),
  then by ``argocd.argoproj.io/sync-wave``, each wave healthy before the next;
  Namespaces and CRDs are bubbled ahead of what needs them (``argo_sort``).

Between units: a unit whose apply creates another (a bootstrap Kustomization
applying ``apps``; an app-of-apps) has an ``applies`` edge to it; Flux's
``dependsOn`` adds a ``dependsOn`` edge from the dependency to the dependant.

``apply_order`` returns ``ApplyStep`` / ``Edge`` records (they go into the JSON
document and the terminal table).  ``order_figure`` draws them with networkx
and matplotlib, one panel per target titled with its name: one row per unit,
the unit's column its depth in the unit graph (longest path over ``applies``
and ``dependsOn``), its steps following it on the same row; unit-to-step edges
grey, ``applies`` edges blue (drawn from the step that applies the child),
``dependsOn`` edges dashed red.  A self-managing bootstrap's edge to itself is
dropped; a cycle puts every unit in the first column.  A panel shows at most
``MAX_FIGURE_UNITS`` units (the first in apply order).
"""
from __future__ import annotations

from typing import Any

from labkit.engine.ordering import ArgoTask, argo_sort, flux_stages
from labkit.tryrepo.discovery import Discovery, Target, Unit
from labkit.tryrepo.model import ApplyStep, Edge

__all__ = ["apply_order", "order_figure"]

_STAGES = ("stage 0: cluster definitions", "stage 1: class definitions", "stage 2: resources")
_HOOK = "argocd.argoproj.io/hook"
_HELM_HOOK = "helm.sh/hook"
_HELM_PHASE = {"pre-install": "PreSync", "pre-upgrade": "PreSync", "post-install": "PostSync",
               "post-upgrade": "PostSync"}


def _name(o: dict[str, Any]) -> str:
    md = o.get("metadata") or {}
    ns = md.get("namespace")
    return f"{o.get('kind')}/{ns}/{md.get('name')}" if ns else f"{o.get('kind')}/{md.get('name')}"


def _hook_phases(o: dict[str, Any]) -> list[str]:
    ann = (o.get("metadata") or {}).get("annotations") or {}
    if _HOOK in ann:
        return [x.strip() for x in str(ann[_HOOK]).split(",") if x.strip()]
    if _HELM_HOOK in ann:
        return [_HELM_PHASE[x.strip()] for x in str(ann[_HELM_HOOK]).split(",") if x.strip() in _HELM_PHASE]
    return []


def unit_steps(target: str, u: Unit) -> list[ApplyStep]:
    """The apply steps of one unit (see the module docstring)."""
    steps: list[ApplyStep] = []
    if u.dialect == "flux":
        for i, stage in enumerate(flux_stages(u.objects)):
            if stage:
                steps.append(ApplyStep(target, u.ref, len(steps), _STAGES[i], "stage", [_name(o) for o in stage]))
        return steps
    tasks: list[ArgoTask] = []
    for o in u.objects:
        phases = _hook_phases(o)
        if "Skip" in phases:
            continue
        if phases:
            tasks += [ArgoTask(o, p) for p in phases if p in ("PreSync", "Sync", "PostSync", "SyncFail")]
        else:
            tasks.append(ArgoTask(o, "Sync"))
    current: tuple[str, int] | None = None
    for t in argo_sort(tasks):
        hook = bool(_hook_phases(t.obj))
        key = (t.phase, t.effective_wave)
        if key != current or (steps and (steps[-1].kind == "hook") != hook):
            current = key
            label = f"{t.phase} wave {t.effective_wave}" + (" (hooks)" if hook else "")
            steps.append(ApplyStep(target, u.ref, len(steps), label, "hook" if hook else "wave", []))
        steps[-1].objects.append(_name(t.obj))
    return steps


def apply_order(disc: Discovery) -> tuple[list[ApplyStep], list[Edge]]:
    """Steps of every unit and the edges between units and steps, for every target."""
    steps: list[ApplyStep] = []
    edges: list[Edge] = []
    for t in disc.targets:
        refs = {u.ref for u in t.units}
        for u in t.units:
            us = unit_steps(t.name, u)
            steps += us
            prev = u.ref
            for s in us:
                node = f"{u.ref} · {s.label}"
                edges.append(Edge(t.name, prev, node, "step"))
                prev = node
            for c in u.children:
                if c is not u:
                    edges.append(Edge(t.name, u.ref, c.ref, "applies"))
            if u.dialect == "flux":
                for dep in u.spec.get("dependsOn") or []:
                    if not isinstance(dep, dict):
                        continue
                    dref = f"Kustomization/{dep.get('namespace') or u.namespace}/{dep.get('name')}"
                    if dref in refs:
                        edges.append(Edge(t.name, dref, u.ref, "dependsOn"))
    return steps, edges


def _short(label: str) -> str:
    """``stage 0: cluster definitions`` → ``stage 0``; Argo labels stay as they are."""
    return label.split(":", 1)[0] if label.startswith("stage ") else label


#: Units (rows) per target in the apply-order figure; the tables list them all.
MAX_FIGURE_UNITS = 40


def _fig_text(x: Any) -> str:
    """Repository text for a matplotlib label: control characters escaped, ``$`` literal (never mathtext)."""
    from labkit.core.textsafe import escape_text

    return escape_text(x).replace("$", r"\$")


def order_figure(steps: list[ApplyStep], edges: list[Edge], targets: list[Target]) -> Any:
    """A matplotlib Figure of the apply order graph (see the module docstring).

    Layout: one row per unit; a unit's column is its depth in the unit graph
    (``applies`` and ``dependsOn`` edges, longest path from a root), and its
    steps follow it to the right on the same row.  At most ``MAX_FIGURE_UNITS``
    rows per target (the first in apply order; the title says how many there
    are), so an ApplicationSet of a thousand Applications still gives a small
    PNG.  Labels come from the repository: escaped, ``$`` never mathtext.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx
    from matplotlib.lines import Line2D

    names = [t.name for t in targets] or ["(nothing to reconcile)"]
    rows_per = []
    for tname in names:
        units = {s.unit for s in steps if s.target == tname} | \
            {x for e in edges if e.target == tname and e.kind != "step" for x in (e.source, e.dest)}
        rows_per.append(min(max(len(units), 1), MAX_FIGURE_UNITS))
    heights = [max(1.8, 0.6 * n + 0.9) for n in rows_per]
    fig, axes = plt.subplots(len(names), 1, figsize=(13, sum(heights) + 1.0), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    fig.suptitle("Apply order: units, stages / waves / hooks, dependsOn", fontsize=13)
    colors = {"stage": "#9ecae1", "wave": "#a1d99b", "hook": "#fdae6b"}
    for ax, tname in zip(axes[:, 0], names):
        ax.set_title(_fig_text(f"target {tname}"), loc="left", fontsize=11)
        ax.set_xlabel("apply order →")
        ax.set_ylabel("unit")
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        tsteps = [s for s in steps if s.target == tname]
        tedges = [e for e in edges if e.target == tname and e.source != e.dest]
        ug = nx.DiGraph()
        ug.add_nodes_from({s.unit for s in tsteps})
        ug.add_edges_from((e.source, e.dest) for e in tedges if e.kind != "step")
        if ug.number_of_nodes() == 0:
            ax.text(0.5, 0.5, "nothing reconciled", ha="center", va="center", transform=ax.transAxes)
            continue
        try:
            depth: dict[str, int] = {}
            for u in nx.topological_sort(ug):
                depth[u] = max([depth[p] + 1 for p in ug.predecessors(u)], default=0)
        except nx.NetworkXUnfeasible:
            depth = {u: 0 for u in ug.nodes}
        order = sorted(ug.nodes, key=lambda u: (depth[u], u))
        if len(order) > MAX_FIGURE_UNITS:  # the first units in apply order; every unit is in the tables
            ax.set_title(_fig_text(f"target {tname} (the first {MAX_FIGURE_UNITS} of {len(order)} units)"),
                         loc="left", fontsize=11)
            order = order[:MAX_FIGURE_UNITS]
            kept = set(order)
            tsteps = [s for s in tsteps if s.unit in kept]
        width = 1 + max([sum(1 for s in tsteps if s.unit == u) for u in order] + [1])
        pos: dict[str, tuple[float, float]] = {}
        step_kind: dict[str, str] = {}
        labels: dict[str, str] = {}
        above: dict[str, bool] = {}
        for row, u in enumerate(order):
            x0 = depth[u] * width
            pos[u] = (x0, -row)
            labels[u] = _fig_text(u.split("/", 1)[-1])
            for i, st in enumerate(s for s in tsteps if s.unit == u):
                node = f"{u} · {st.label}"
                pos[node] = (x0 + i + 1, -row)
                step_kind[node] = st.kind
                labels[node] = f"{_short(st.label)} ({len(st.objects)})"
                above[node] = i % 2 == 1  # alternate above / below so neighbours' labels do not collide
        g = nx.DiGraph()
        g.add_nodes_from(pos)
        holder = {o: f"{s.unit} · {s.label}" for s in tsteps for o in s.objects}
        for e in tedges:
            src = holder.get(e.dest, e.source) if e.kind == "applies" else e.source
            if src in pos and e.dest in pos:
                g.add_edge(src, e.dest, kind=e.kind)
        units = [n for n in g.nodes if n not in step_kind]
        stepn = [n for n in g.nodes if n in step_kind]
        nx.draw_networkx_nodes(g, pos, nodelist=units, node_color="#3182bd", node_size=380, ax=ax)
        nx.draw_networkx_nodes(g, pos, nodelist=stepn, node_color=[colors[step_kind[n]] for n in stepn],
                               node_size=260, node_shape="s", ax=ax)
        for kind, style, color, rad in (("step", "solid", "#999999", 0.0), ("applies", "solid", "#08519c", 0.15),
                                        ("dependsOn", "dashed", "#d62728", -0.25)):
            es = [(a, b) for a, b, d in g.edges(data=True) if d.get("kind") == kind]
            if es:
                nx.draw_networkx_edges(g, pos, edgelist=es, style=style, edge_color=color, ax=ax, arrows=True,
                                       arrowsize=11, node_size=380, connectionstyle=f"arc3,rad={rad}")
        for n, (x, y) in pos.items():
            if n in step_kind:  # step labels under the squares, unit labels left of the circles
                up = above.get(n, False)
                ax.annotate(labels[n], (x, y), xytext=(0, 10 if up else -12), textcoords="offset points",
                            ha="center", va="bottom" if up else "top", fontsize=6.5)
            else:
                ax.annotate(labels[n], (x, y), xytext=(-11, 0), textcoords="offset points", ha="right",
                            va="center", fontsize=7.5, fontweight="bold")
        xs = [p[0] for p in pos.values()]
        ax.set_xlim(min(xs) - max(2.2, 0.12 * (max(xs) - min(xs) + 1)), max(xs) + 0.8)
        ax.set_ylim(-len(order) + 0.3, 0.7)
    handles = [Line2D([], [], marker="o", ls="", color="#3182bd", label="Kustomization / Application"),
               Line2D([], [], marker="s", ls="", color="#9ecae1", label="Flux stage"),
               Line2D([], [], marker="s", ls="", color="#a1d99b", label="Argo wave"),
               Line2D([], [], marker="s", ls="", color="#fdae6b", label="Argo hooks"),
               Line2D([], [], color="#08519c", label="applies"),
               Line2D([], [], color="#d62728", ls="--", label="dependsOn")]
    fig.legend(handles=handles, loc="lower center", ncol=6, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 0.96))
    return fig
