"""The resource tree of an Application, as a graph and as a picture (Argo CD's UI tree view).

``resource_tree(argo, app_name)`` builds a ``networkx.DiGraph`` rooted at the
Application:

* one node per managed resource (from ``status.resources``), with its sync
  status, health, sync wave and whether it awaits pruning;
* one node per live hook of the Application (objects carrying its tracking id
  and a hook annotation, found among the hook kinds of its targets), marked
  ``hook`` with its hook type;
* the objects the cluster created on their behalf, followed down the
  ``ownerReferences`` chain by uid: Deployment → ReplicaSet → Pod, StatefulSet
  → Pod / PersistentVolumeClaim, Job → Pod, CronJob → Job → Pod.  These carry
  only health (they are not part of the sync).

Node ids are ``Kind/namespace/name`` (``Kind/name`` when cluster-scoped); edges
go from owner to owned.  Node attributes: ``kind``, ``name``, ``namespace``,
``health`` (Healthy / Progressing / Degraded / Suspended / Missing / Unknown, or
``None`` for kinds with no health check), ``health_message``, ``sync``
(Synced / OutOfSync / None), ``wave``, ``hook`` (hook type or ``None``),
``requires_pruning``, ``depth`` (0 for the Application).

``draw_tree(graph, ax=None)`` draws it left to right, one column per depth,
nodes coloured by health (green Healthy, yellow Progressing, red Degraded,
blue Suspended, grey Missing/Unknown/none) and outlined by sync status (solid
dark green Synced, thick orange OutOfSync), with the title and a legend.  It
uses matplotlib's object API only (no pyplot state, no Jupyter), so it works in
a notebook, a script or a headless CI run, and returns the ``Figure``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import networkx as nx

from labkit.argo.api import APPLICATION_KIND
from labkit.argo.hooks import hook_types, is_hook
from labkit.argo.tracking import app_of
from labkit.core.errors import ApiError, LabkitError
from labkit.core.health import argo_has_health_check, argo_health

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from labkit.argo.controller import ArgoSystem

__all__ = ["resource_tree", "draw_tree", "HEALTH_COLOURS", "SYNC_EDGES"]

#: Child kinds followed through ownerReferences: owner kind -> [(apiVersion, kind)].
CHILDREN: dict[str, list[tuple[str, str]]] = {
    "Deployment": [("apps/v1", "ReplicaSet")],
    "ReplicaSet": [("v1", "Pod")],
    "StatefulSet": [("v1", "Pod"), ("v1", "PersistentVolumeClaim"), ("apps/v1", "ControllerRevision")],
    "DaemonSet": [("v1", "Pod")],
    "Job": [("v1", "Pod")],
    "CronJob": [("batch/v1", "Job")],
}

HEALTH_COLOURS = {
    "Healthy": "#2e9d4f",
    "Progressing": "#f2c12e",
    "Degraded": "#d64541",
    "Suspended": "#5b8def",
    "Missing": "#a0a0a0",
    "Unknown": "#a0a0a0",
    None: "#d9d9d9",
}
SYNC_EDGES = {"Synced": ("#1b5e20", 1.5), "OutOfSync": ("#ef6c00", 3.5), None: ("#555555", 0.8)}


def _node_id(kind: str, ns: str, name: str) -> str:
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


def _health(obj: dict | None) -> tuple[str | None, str]:
    if obj is None:
        return "Missing", ""
    if not argo_has_health_check(obj):
        return None, ""
    h = argo_health(obj)
    return h.status, h.message


def resource_tree(argo: "ArgoSystem", app_name: str) -> nx.DiGraph:
    """The Application's resources, hooks and owned objects as a DiGraph (see module docstring)."""
    app = argo.app(app_name)
    if app is None:
        raise LabkitError(f"application {app_name!r} not found", field="app_name")
    status = app.get("status") or {}
    g = nx.DiGraph(app=app_name)
    root = _node_id(APPLICATION_KIND, argo.namespace, app_name)
    app_health = (status.get("health") or {}).get("status")
    g.add_node(root, kind=APPLICATION_KIND, name=app_name, namespace=argo.namespace, health=app_health,
               health_message="", sync=(status.get("sync") or {}).get("status"), wave=None, hook=None,
               requires_pruning=False, depth=0)
    try:
        from labkit.argo.api import parse_application

        spec = parse_application(app, default_namespace=argo.namespace)
        _dest, cluster = argo.destination(spec)
    except LabkitError:
        return g
    namespaces: set[str] = set()
    kinds: set[tuple[str, str]] = set()
    frontier: list[tuple[str, dict]] = []
    for r in status.get("resources") or []:
        group, kind, ns, name = r.get("group") or "", r.get("kind", ""), r.get("namespace") or "", r.get("name", "")
        av = f"{group}/{r.get('version')}" if group else (r.get("version") or "v1")
        try:
            live = cluster.get(av, kind, name, ns or None)
        except ApiError:
            live = None
        nid = _node_id(kind, ns, name)
        hs, hm = _health(live)
        if live is None:
            hs = "Missing"
        g.add_node(nid, kind=kind, name=name, namespace=ns, health=hs, health_message=hm, sync=r.get("status"),
                   wave=r.get("syncWave", 0), hook=None, requires_pruning=bool(r.get("requiresPruning")), depth=1)
        g.add_edge(root, nid)
        if ns:
            namespaces.add(ns)
        kinds.add((av, kind))
        if live is not None:
            frontier.append((nid, live))
    # hooks: live objects of the hook kinds this Application uses, carrying its tracking id
    op_resources = ((status.get("operationState") or {}).get("syncResult") or {}).get("resources") or []
    hook_kinds = {(f"{r['group']}/{r['version']}" if r.get("group") else r.get("version", "v1"), r.get("kind", ""))
                  for r in op_resources if r.get("hookType")}
    for av, kind in sorted(hook_kinds | {("batch/v1", "Job")}):
        for ns in sorted(namespaces | {spec.destination.namespace or "default"}):
            try:
                objs = cluster.list(av, kind, ns)
            except ApiError:
                continue
            for o in objs:
                if app_of(o) != app_name or not is_hook(o):
                    continue
                md = o["metadata"]
                nid = _node_id(kind, md.get("namespace", ""), md["name"])
                if nid in g:
                    continue
                hs, hm = _health(o)
                g.add_node(nid, kind=kind, name=md["name"], namespace=md.get("namespace", ""), health=hs,
                           health_message=hm, sync=None, wave=None, hook=",".join(hook_types(o)) or "hook",
                           requires_pruning=False, depth=1)
                g.add_edge(root, nid)
                frontier.append((nid, o))
    _descend(g, cluster, frontier)
    return g


def _descend(g: nx.DiGraph, cluster: Any, frontier: list[tuple[str, dict]]) -> None:
    listed: dict[tuple[str, str, str], list[dict]] = {}
    while frontier:
        parent_id, parent = frontier.pop(0)
        pmd = parent.get("metadata") or {}
        uid, ns = pmd.get("uid"), pmd.get("namespace") or ""
        depth = g.nodes[parent_id]["depth"] + 1
        for av, kind in CHILDREN.get(parent.get("kind", ""), []):
            key = (av, kind, ns)
            if key not in listed:
                try:
                    listed[key] = cluster.list(av, kind, ns or None)
                except ApiError:
                    listed[key] = []
            for child in listed[key]:
                cmd = child.get("metadata") or {}
                if not any(r.get("uid") == uid for r in cmd.get("ownerReferences") or []):
                    continue
                nid = _node_id(kind, cmd.get("namespace", ""), cmd["name"])
                if nid in g:
                    continue
                hs, hm = _health(child)
                g.add_node(nid, kind=kind, name=cmd["name"], namespace=cmd.get("namespace", ""), health=hs,
                           health_message=hm, sync=None, wave=None, hook=None, requires_pruning=False, depth=depth)
                g.add_edge(parent_id, nid)
                frontier.append((nid, child))


def _layout(g: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Left-to-right layers by depth; each node centred on its children, leaves stacked in order."""
    roots = [n for n in g if g.in_degree(n) == 0]
    order: list[str] = []
    y_of: dict[str, float] = {}
    next_leaf = [0.0]

    def place(n: str) -> float:
        kids = sorted(g.successors(n), key=lambda c: (g.nodes[c].get("hook") is not None, g.nodes[c].get("wave") or 0,
                                                      g.nodes[c]["kind"], g.nodes[c]["name"]))
        if not kids:
            y = next_leaf[0]
            next_leaf[0] += 1.0
        else:
            ys = [place(c) for c in kids]
            y = (min(ys) + max(ys)) / 2
        y_of[n] = y
        order.append(n)
        return y

    for r in sorted(roots):
        place(r)
    return {n: (float(g.nodes[n].get("depth", 0)), -y_of[n]) for n in g}


def draw_tree(graph: nx.DiGraph, ax: "Axes | None" = None, *, title: str | None = None) -> "Figure":
    """Draw a ``resource_tree`` graph (see module docstring) and return the matplotlib Figure."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyBboxPatch, Patch

    pos = _layout(graph)
    depth = max((p[0] for p in pos.values()), default=0)
    rows = max((-p[1] for p in pos.values()), default=0) + 1
    if ax is None:
        fig = Figure(figsize=(3.2 * (depth + 1) + 2.5, max(2.5, 0.62 * rows + 1.6)))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    for u, v in graph.edges:
        (x0, y0), (x1, y1) = pos[u], pos[v]
        ax.plot([x0 + 0.42, (x0 + x1) / 2 + 0.1, (x0 + x1) / 2 + 0.1, x1 - 0.42], [y0, y0, y1, y1],
                color="#9e9e9e", linewidth=1.0, zorder=1)
    for n, (x, y) in pos.items():
        a = graph.nodes[n]
        face = HEALTH_COLOURS.get(a.get("health"), HEALTH_COLOURS[None])
        edge, width = SYNC_EDGES.get(a.get("sync"), SYNC_EDGES[None])
        box = FancyBboxPatch((x - 0.42, y - 0.26), 0.84, 0.52, boxstyle="round,pad=0.02", facecolor=face,
                             edgecolor=edge, linewidth=width, zorder=2)
        ax.add_patch(box)
        label = f"{a['kind']}\n{a['name']}"
        extra = []
        if a.get("hook"):
            extra.append(f"hook {a['hook']}")
        if a.get("wave"):
            extra.append(f"wave {a['wave']}")
        if a.get("requires_pruning"):
            extra.append("prune")
        if extra:
            label += "\n" + ", ".join(extra)
        name = a["name"] if len(a["name"]) <= 26 else a["name"][:24] + "…"
        label = label.replace(a["name"], name, 1)
        ax.text(x, y, label, ha="center", va="center", fontsize=7, zorder=3,
                color="white" if a.get("health") in ("Healthy", "Degraded", "Suspended") else "black")
    ax.set_xlim(-0.6, depth + 0.6)
    ax.set_ylim(-rows + 0.4, 0.6)
    ax.set_axis_off()
    app = graph.graph.get("app", "")
    root = next((n for n in graph if graph.in_degree(n) == 0), None)
    summary = ""
    if root is not None:
        r = graph.nodes[root]
        summary = f" — {r.get('sync') or 'Unknown'}, {r.get('health') or 'Unknown'}"
    ax.set_title(title or f"Application {app}{summary}", fontsize=11)
    handles: list[Any] = [Patch(facecolor=HEALTH_COLOURS[k], edgecolor="none", label=k or "no health")
                          for k in ("Healthy", "Progressing", "Degraded", "Suspended", "Missing")]
    handles.append(Patch(facecolor=HEALTH_COLOURS[None], edgecolor="none", label="no health check"))
    handles += [Line2D([0], [0], color=SYNC_EDGES[s][0], linewidth=SYNC_EDGES[s][1], label=s)
                for s in ("Synced", "OutOfSync")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False,
              title="health / sync", title_fontsize=8)
    fig.tight_layout()
    return fig

