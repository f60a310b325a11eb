"""What the explorers show, computed from the simulation and rendered as HTML (no Jupyter here).

The live explorers (``labkit.scenarios.explorer``) put a scenario's lab under a
participant's hands; this module is their read side, free of ipywidgets so it
can be tested and benchmarked on its own:

* **The plan as a field-level diff.**  ``field_plan(live, after, desired,
  applier=...)`` compares the live object with the object the next apply would
  leave (the server-side dry-run with ownership forced, as Flux's plan and Argo
  CD's diff compute it) field by field, and names the managers that own each
  field in the live object's ``managedFields``.  Two kinds of rows:

  - *changes*: a field the next apply changes, adds or removes;
  - *kept*: a field that is **not in git**, owned by another manager (a
    ``kubectl edit`` hotfix, the HPA's ``spec.replicas``) and left alone by the
    next apply, because server-side apply only takes over the fields the
    applier sends.  That is why a hotfix that *adds* a field survives in
    labkit, while one that *changes* a field git sets is taken back.  Real Flux
    (``fluxcd/pkg/ssa``) additionally hands itself the fields of managers named
    ``kubectl…`` or ``before-first-apply`` before applying, and would remove
    such a field; labkit's engine does not model that cleanup, and the row says
    so (``FLUX_CLEANUP_NOTE``).

* **Owners.**  ``owners_table`` lists each ``managedFields`` entry: manager,
  operation, subresource, time and how many fields it owns.
* **Conditions and events with their messages** (``conditions_html``,
  ``event_message``, ``events_html``).
* **A timeline that grows with the clock** (``timeline_svg``): one lane per
  actor (git, webhook, the GitOps controllers, the workload controllers, people),
  drawn as inline SVG, so a refresh costs microseconds, not a matplotlib figure.

Every function reads plain dicts and ``labkit.core.events.Event`` records, the same
data the scenarios' metrics come from.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from labkit.core.events import Event
from labkit.sim import fieldset

__all__ = ["FieldRow", "ObjectPlan", "field_plan", "owners_of_paths", "owners_table", "plan_html",
           "conditions_html", "event_message", "events_html", "timeline_svg", "kv_table", "esc", "fmt_value",
           "FLUX_CLEANUP_NOTE", "Mark"]

#: Why a kept ``kubectl…`` field would not survive real Flux (see the module docstring).
FLUX_CLEANUP_NOTE = ("real Flux would remove it: before applying, kustomize-controller takes over the fields of "
                     "managers named kubectl* and before-first-apply (fluxcd/pkg ssa cleanup), which labkit's engine "
                     "does not model yet")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_MISSING = fieldset.MISSING


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt_value(value: Any, limit: int = 70) -> str:
    """A field value as a participant reads it: strings bare, everything else as compact JSON."""
    if value is _MISSING:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------ field ownership

def _canon(step: Any) -> Any:
    if isinstance(step, tuple) and step and step[0] == "k":
        return ("k", tuple(sorted(step[1])))
    return step


def _canon_path(path: tuple) -> tuple:
    return tuple(_canon(s) for s in path)


def _fields_v1_paths(node: Mapping[str, Any], prefix: tuple, out: set) -> None:
    for key, child in node.items():
        if key == ".":
            out.add(prefix)
            continue
        if key.startswith("f:"):
            step: Any = key[2:]
        elif key.startswith("k:"):
            try:
                step = ("k", tuple(sorted(json.loads(key[2:]).items())))
            except ValueError:
                continue
        elif key.startswith("v:"):
            try:
                value = json.loads(key[2:])
            except ValueError:
                continue
            step = ("v", json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value)
        else:
            continue
        path = prefix + (step,)
        if isinstance(child, Mapping) and any(k != "." for k in child):
            _fields_v1_paths(child, path, out)
            if "." in child:
                out.add(path)
        else:
            out.add(path)


@dataclass(frozen=True)
class Manager:
    """One ``managedFields`` entry."""

    manager: str
    operation: str
    subresource: str
    time: str
    paths: frozenset

    @property
    def label(self) -> str:
        sub = f", {self.subresource}" if self.subresource else ""
        return f"{self.manager} ({self.operation}{sub})"


def managers_of(obj: Mapping[str, Any] | None) -> list[Manager]:
    """The ``managedFields`` entries of ``obj`` with their field sets as paths."""
    out = []
    for e in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        paths: set = set()
        _fields_v1_paths(e.get("fieldsV1") or {}, (), paths)
        out.append(Manager(e.get("manager", ""), e.get("operation", ""), e.get("subresource", "") or "",
                           e.get("time", "") or "", frozenset(paths)))
    return out


def owners_of_paths(managers: Sequence[Manager], path: tuple) -> list[Manager]:
    """The managers owning ``path`` (exactly, or an atomic ancestor of it)."""
    p = _canon_path(path)
    exact = [m for m in managers if p in m.paths]
    if exact:
        return exact
    for n in range(len(p) - 1, 0, -1):
        up = [m for m in managers if p[:n] in m.paths and not isinstance(p[n - 1], tuple)]
        if up:
            return up
    return []


# ------------------------------------------------------------------ the field-level plan

@dataclass
class FieldRow:
    """One field of one object in the plan."""

    path: str
    before: Any
    after: Any
    owners: list[str]
    kind: str  # change | add | remove | kept
    note: str = ""


@dataclass
class ObjectPlan:
    """What the next apply does to one object."""

    subject: str
    action: str  # created | configured | unchanged | prune | skipped | failed | ...
    rows: list[FieldRow] = field(default_factory=list)
    note: str = ""

    @property
    def changes(self) -> list[FieldRow]:
        return [r for r in self.rows if r.kind != "kept"]

    @property
    def kept(self) -> list[FieldRow]:
        return [r for r in self.rows if r.kind == "kept"]


def _view(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """The part of an object a plan talks about: labels, annotations and everything but metadata and status."""
    if not obj:
        return {}
    out: dict[str, Any] = {}
    md = obj.get("metadata") or {}
    meta: dict[str, Any] = {}
    if md.get("labels"):
        meta["labels"] = md["labels"]
    ann = {k: v for k, v in (md.get("annotations") or {}).items() if k != _LAST_APPLIED}
    if ann:
        meta["annotations"] = ann
    if meta:
        out["metadata"] = meta
    for k, v in obj.items():
        if k not in ("apiVersion", "kind", "metadata", "status"):
            out[k] = v
    return out


def _is_element(path: tuple) -> bool:
    return bool(path) and isinstance(path[-1], tuple) and path[-1][0] == "k"


def _sort_key(path: tuple) -> str:
    return fieldset.format_path(path)


def field_plan(
    live: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    desired: Mapping[str, Any] | None = None,
    *,
    applier: str,
    cleanup_note: bool = False,
    max_rows: int = 40,
) -> list[FieldRow]:
    """Field rows for one object: what the apply changes (live → after) and what it keeps that git lacks.

    ``after`` is the dry-run result (None when the object would be deleted); ``desired``
    what git says (for the *kept* rows).  ``cleanup_note`` marks kept fields of
    ``kubectl…`` managers with ``FLUX_CLEANUP_NOTE`` (the Flux dialect).
    """
    managers = managers_of(live)
    L, A = _view(live), _view(after)
    lp = {_canon_path(p) for p in fieldset.fields_of(L)}
    ap = {_canon_path(p) for p in fieldset.fields_of(A)}
    rows: list[FieldRow] = []
    covered: list[tuple] = []

    def owners(p: tuple) -> list[str]:
        return [m.label for m in owners_of_paths(managers, p)]

    def under_covered(p: tuple) -> bool:
        return any(len(c) < len(p) and p[: len(c)] == c for c in covered)

    for p in sorted(lp | ap, key=_sort_key):
        if under_covered(p):
            continue
        if _is_element(p):
            if (p in lp) != (p in ap):
                before = fieldset.get_path(L, p) if p in lp else _MISSING
                now = fieldset.get_path(A, p) if p in ap else _MISSING
                rows.append(FieldRow(fieldset.format_path(p), before, now, owners(p),
                                     "remove" if p in lp else "add"))
                covered.append(p)
            continue
        before, now = fieldset.get_path(L, p), fieldset.get_path(A, p)
        if before == now:
            continue
        kind = "add" if before is _MISSING else "remove" if now is _MISSING else "change"
        rows.append(FieldRow(fieldset.format_path(p), before, now, owners(p), kind))
    if live is not None and after is not None:
        rows.extend(_kept_rows(L, A, lp, ap, desired, managers, applier, cleanup_note,
                               {r.path for r in rows}))
    return rows[:max_rows]


def _kept_rows(L: dict, A: dict, lp: set, ap: set, desired: Mapping[str, Any] | None, managers: list[Manager],
               applier: str, cleanup_note: bool, seen: set[str]) -> list[FieldRow]:
    """Fields outside git, owned by someone else, that the apply leaves as they are."""
    if desired is None:
        return []
    dp = {_canon_path(p) for p in fieldset.fields_of(_view(desired))}
    out: list[FieldRow] = []
    covered: list[tuple] = []
    for p in sorted(lp & ap, key=_sort_key):
        if not p or p[0] == "metadata" or p in dp:
            continue
        if any(len(c) < len(p) and p[: len(c)] == c for c in covered):
            continue
        owned = owners_of_paths(managers, p)
        others = [m for m in owned if m.manager != applier]
        if not others or any(m.manager == applier for m in owned):
            continue
        value = fieldset.get_path(L, p)
        if value != fieldset.get_path(A, p):
            continue
        text = fieldset.format_path(p)
        if text in seen:
            continue
        note = "not in git: the apply does not send it, so its owner keeps it"
        if cleanup_note and any(m.manager.startswith("kubectl") or m.manager == "before-first-apply" for m in others):
            note += " †"
        out.append(FieldRow(text, value, value, [m.label for m in owned], "kept", note))
        if _is_element(p):
            covered.append(p)
    return out


# ------------------------------------------------------------------ HTML

_CELL = ("padding:1px 6px;border-bottom:1px solid #e3e3e3;vertical-align:top;text-align:left;"
         "overflow-wrap:anywhere")
_HEAD = _CELL.replace("overflow-wrap:anywhere", "white-space:nowrap") + ";background:#f3f3f3;font-weight:600"
_CODE = "white-space:normal;overflow-wrap:anywhere;font-size:11px"
_KIND_STYLE = {"change": "#b35c00", "add": "#1a7f37", "remove": "#c0392b", "kept": "#6f42c1"}
_KIND_WORD = {"change": "changes", "add": "adds", "remove": "removes", "kept": "keeps"}
_ACTION_STYLE = {"configured": "#b35c00", "created": "#1a7f37", "prune": "#c0392b", "failed": "#c0392b",
                 "unchanged": "#555", "skipped": "#555", "OutOfSync": "#b35c00", "Synced": "#555"}


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False) -> str:
    """A compact HTML table; cells are escaped unless ``raw``."""
    head = "".join(f'<th style="{_HEAD}">{esc(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f'<td style="{_CELL}">{c if raw else esc(c)}</td>' for c in r) + "</tr>"
                   for r in rows)
    return f'<table style="border-collapse:collapse;font-size:12px;margin:2px 0 6px 0;max-width:100%">' \
           f"<tr>{head}</tr>{body}</table>"


def kv_table(items: Iterable[tuple[str, str]]) -> str:
    """Label / value rows; values are HTML."""
    body = "".join(f'<tr><td style="{_CELL};color:#555;white-space:nowrap">{esc(k)}</td>'
                   f'<td style="{_CELL}">{v}</td></tr>' for k, v in items)
    return f'<table style="border-collapse:collapse;font-size:12px">{body}</table>'


def plan_html(plans: Sequence[ObjectPlan], *, header: str = "", applier: str = "") -> str:
    """The plan panel: one block per object, field rows with owners."""
    parts = [header] if header else []
    if not plans:
        parts.append("<i>no objects</i>")
    for p in plans:
        colour = _ACTION_STYLE.get(p.action, "#333")
        n = len(p.changes)
        summary = f"{n} field{'s' if n != 1 else ''}" if n else "no field changes"
        kept = f", {len(p.kept)} kept outside git" if p.kept else ""
        parts.append(f'<div style="margin-top:4px"><b>{esc(p.subject)}</b>: '
                     f'<span style="color:{colour};font-weight:600">{esc(p.action)}</span>'
                     f' <span style="color:#666">({summary}{kept})</span>'
                     + (f'<br><span style="color:#666">{esc(p.note)}</span>' if p.note else "") + "</div>")
        if p.rows:
            rows = []
            for r in p.rows:
                colour = _KIND_STYLE.get(r.kind, "#333")
                who = ", ".join(r.owners) or "no owner (defaulted by the API server)"
                after = f"{esc(applier)} takes it" if applier and r.kind in ("change", "add") else ""
                if r.kind == "remove":
                    after = "removed"
                if r.kind == "kept":
                    after = "stays with its owner"
                word = f'<span style="color:{colour};font-weight:600;white-space:nowrap">{_KIND_WORD[r.kind]}</span>'
                after_value = f'<code style="{_CODE}">{esc(fmt_value(r.after, 48))}</code>' if r.kind != "kept" else "—"
                rows.append([f'<code style="{_CODE}">{esc(r.path)}</code>', word,
                             f'<code style="{_CODE}">{esc(fmt_value(r.before, 48))}</code>', after_value,
                             esc(who), esc(after) + (f'<br><span style="color:#6f42c1">{esc(r.note)}</span>'
                                                     if r.note else "")])
            parts.append(table(["field", "apply", "live now", "after apply", "owned now by", "then"], rows, raw=True))
    if any(r.note.endswith("†") for p in plans for r in p.rows):
        parts.append(f'<div style="font-size:12px;color:#6f42c1">† {esc(FLUX_CLEANUP_NOTE)}.</div>')
    return "".join(parts)


def owners_table(obj: Mapping[str, Any] | None, *, title: str = "") -> str:
    """``managedFields`` of ``obj``: who owns how many fields, and a sample of them."""
    managers = managers_of(obj)
    if not managers:
        return ""
    rows = []
    for m in managers:
        leaves = sorted((p for p in m.paths if p and p[0] != "metadata" and not _is_element(p)), key=_sort_key)
        sample = ", ".join(fieldset.format_path(p) for p in leaves[:4]) + (" …" if len(leaves) > 4 else "")
        rows.append([m.manager, m.operation + (f" ({m.subresource})" if m.subresource else ""), m.time,
                     str(len(m.paths)), sample])
    return (f"<b>{esc(title)}</b>" if title else "") + table(["manager", "operation", "time", "fields", "e.g."], rows)


def conditions_html(objects: Iterable[tuple[str, Mapping[str, Any] | None]]) -> str:
    """Every condition of each ``(label, object)`` with its reason and message."""
    rows = []
    for label, obj in objects:
        conds = ((obj or {}).get("status") or {}).get("conditions") or []
        if obj is None:
            rows.append([esc(label), "—", "", "", "not found"])
            continue
        if not conds:
            rows.append([esc(label), "—", "", "", "no conditions yet"])
        for c in conds:
            status = str(c.get("status", ""))
            colour = {"True": "#1a7f37", "False": "#c0392b"}.get(status, "#b35c00")
            rows.append([esc(label), esc(c.get("type", "")),
                         f'<span style="color:{colour};font-weight:600">{esc(status)}</span>',
                         esc(c.get("reason", "")), esc(c.get("message", ""))])
    return table(["object", "type", "status", "reason", "message"], rows, raw=True)


# ------------------------------------------------------------------ events

_QUIET = {("api", "StatusUpdated")}


def event_message(e: Event) -> str:
    """A one-line message for an event log record, the way ``kubectl get events`` or a controller log says it."""
    d = e.detail or {}
    msg = d.get("message")
    if isinstance(msg, str) and msg:
        return msg
    if e.component == "api":
        who = d.get("manager", "")
        op = d.get("operation", "")
        gen = d.get("generation")
        if e.event in ("Created", "Updated"):
            return f"{e.event.lower()} by {who}" + (f" ({op})" if op else "") + (f", generation {gen}" if gen else "")
        if e.event == "Deleted":
            return "deleted" + (f" by {who}" if who else "")
        if e.event == "DeletionStarted":
            return f"deletion started by {who} ({d.get('propagation', '')})"
    if "changeset" in d and d.get("changeset"):
        return str(d["changeset"])
    if "stage" in d:
        dur = d.get("duration")
        return f"{d['stage']} took {float(dur):.2f} s" if isinstance(dur, (int, float)) else str(d["stage"])
    if "plan" in d:
        return f"plan: {d['plan']}"
    for key in ("reason", "error"):  # a sentence in its own right
        if isinstance(d.get(key), str) and len(d[key]) > 24:
            rest = {k: v for k, v in d.items() if k not in (key, "started", "duration", "stage", "time")}
            tail = ", ".join(f"{k}={fmt_value(v, 24)}" for k, v in rest.items())
            return d[key] + (f" ({tail})" if tail else "")
    skip = {"started", "duration", "stage", "time"}
    parts = [f"{k}={fmt_value(v, 40)}" for k, v in d.items() if k not in skip]
    return ", ".join(parts)


def quiet(e: Event) -> bool:
    """Records the events panel leaves out: status-only writes."""
    return (e.component, e.event) in _QUIET


def events_html(events: Sequence[Event], *, source: str = "", t0: float = 0.0) -> str:
    rows = []
    for e in events:
        warn = (e.detail or {}).get("type") == "Warning" or any(
            w in e.event for w in ("Fail", "Error", "BackOff", "Blocked", "Refused", "Drift"))
        colour = "#c0392b" if warn else "#333"
        reason = f'<span style="color:{colour};font-weight:600">{esc(e.event)}</span>'
        rows.append([f"{e.time:,.1f}", esc(e.component), reason,
                     esc(e.object), esc(e.revision.rsplit(":", 1)[-1][:7] if e.revision else ""),
                     esc(event_message(e))])
    return table(["t (s)", "component", "reason", "object", "rev", "message"], rows, raw=True)


# ------------------------------------------------------------------ timeline

@dataclass(frozen=True)
class Mark:
    """A point or span on the timeline."""

    time: float
    lane: str
    label: str
    end: float | None = None
    colour: str = "#1f77b4"


def timeline_svg(marks: Sequence[Mark], lanes: Sequence[str], t0: float, t1: float, *, width: int = 860,
                 now: float | None = None, unit: str | None = None) -> str:
    """Marks on one lane per actor between ``t0`` and ``t1``, as inline SVG (hover a mark for its label)."""
    t1 = max(t1, t0 + 1.0)
    span = t1 - t0
    if unit is None:
        unit = "h" if span > 4 * 3600 else "min" if span > 300 else "s"
    scale = {"s": 1.0, "min": 60.0, "h": 3600.0}[unit]
    left, right, lane_h, top = 130, 34, 18, 6
    plot_w = width - left - right
    height = top + lane_h * len(lanes) + 22

    def x(t: float) -> float:
        return left + (min(max(t, t0), t1) - t0) / span * plot_w

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'style="font-family:sans-serif;font-size:10px;background:#fff">']
    index = {lane: i for i, lane in enumerate(lanes)}
    for i, lane in enumerate(lanes):
        y = top + i * lane_h
        if i % 2 == 0:
            out.append(f'<rect x="{left}" y="{y}" width="{plot_w}" height="{lane_h}" fill="#f7f7f7"/>')
        out.append(f'<text x="{left - 4}" y="{y + lane_h - 5}" text-anchor="end" fill="#333">{esc(lane)}</text>')
    axis_y = top + lane_h * len(lanes)
    out.append(f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" stroke="#999"/>')
    for k in range(6):
        t = t0 + span * k / 5
        xx = x(t)
        out.append(f'<line x1="{xx:.1f}" y1="{axis_y}" x2="{xx:.1f}" y2="{axis_y + 3}" stroke="#999"/>')
        out.append(f'<text x="{xx:.1f}" y="{axis_y + 13}" text-anchor="middle" fill="#555">'
                   f'{t / scale:,.1f} {unit}</text>')
    for m in marks:
        i = index.get(m.lane)
        if i is None or (m.end if m.end is not None else m.time) < t0 or m.time > t1:
            continue
        y = top + i * lane_h
        tip = f"<title>{esc(f'{m.time:,.1f} s: {m.label}')}</title>"
        if m.end is not None and m.end > m.time:
            x0, x1_ = x(m.time), x(m.end)
            out.append(f'<rect x="{x0:.1f}" y="{y + 4}" width="{max(x1_ - x0, 1.5):.1f}" height="{lane_h - 8}" '
                       f'fill="{m.colour}" opacity="0.75">{tip}</rect>')
        else:
            xx = x(m.time)
            out.append(f'<circle cx="{xx:.1f}" cy="{y + lane_h / 2}" r="3.2" fill="{m.colour}">{tip}</circle>')
    if now is not None:
        xx = x(now)
        out.append(f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{axis_y}" stroke="#c0392b" '
                   f'stroke-dasharray="3,2"/>')
    out.append("</svg>")
    return "".join(out)
