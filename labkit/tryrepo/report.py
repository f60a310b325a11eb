"""The three faces of a ``labkit try`` result: a terminal report, ``report.html``, and JSON.

Terminal (``print_report``): ``rich`` tables, in the order a person reads
them — what was reconciled (one row per Kustomization / Application: status,
health, reason, time to ready in virtual seconds, the file it comes from), the
objects (outcome, time to ready, why it failed), the apply order (stages,
waves, hooks, with ``dependsOn`` and ``applies`` edges), and the pitfalls
(severity, ``file:line``, object, message, fix and the docs it cites), then
notes (assumed CRDs, units that could not be reconciled and why).  Long object
lists are summarised; ``--json`` and the HTML page always have everything.

HTML (``write_html``): one self-contained page — no external assets, figures
embedded as ``data:image/png;base64`` — with the same sections as tables and
two figures: the apply-order graph (``labkit.tryrepo.order.order_figure``) and
a time-to-ready chart (one bar per object from creation to ready, per target,
failures in red; at most ``MAX_FIGURE_ROWS`` bars per target — not-ready
objects first, then the slowest — so a repository of thousands of objects
still gives a small PNG).  Both figures are checked with
``labkit.core.report.check_figure`` (a title and labelled axes) like every labkit
figure, and also written next to the page as PNG files.  ``--out`` is checked
before the analysis runs (``check_out_dir``): an existing file, or a path the
system refuses, is a ``LabkitError`` naming ``--out``.

JSON (``TryReport.to_json``): the schema is documented in
``labkit.tryrepo.model``.

Text from the repository — object and file names, messages — may hold escape
sequences meant for the reader's terminal.  The terminal report passes all of
it through ``labkit.core.textsafe.escape_text`` (control characters, bidi overrides,
undecodable bytes as backslash escapes) into ``rich.text.Text`` objects, which
never interpret markup (``[bold red]`` in a name shows as written); the HTML
page escapes the same way and then ``html.escape`` does; figure labels take
``$`` literally; the JSON document keeps the exact strings.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from labkit.core.errors import LabkitError
from labkit.core.textsafe import escape_text
from labkit.tryrepo.model import TryReport

__all__ = ["print_report", "write_html", "ready_figure", "write_outputs", "check_out_dir"]

_SEV_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_OUTCOME_STYLE = {"healthy": "green", "created": "green", "progressing": "yellow", "failed": "bold red",
                  "not-applied": "magenta"}
MAX_OBJECT_ROWS = 60
#: Bars per target in the time-to-ready figure (a repository with thousands of objects still gives a readable PNG).
MAX_FIGURE_ROWS = 60


def _t(x: float | None) -> str:
    return "" if x is None else f"{x:.1f}s"


def _where(file: str | None, line: int | None) -> str:
    if not file:
        return ""
    return f"{file}:{line}" if line else file


def _plain(x: Any) -> str:
    """Repository text for the terminal: control characters escaped (``labkit.core.textsafe``), newlines kept."""
    return escape_text(x, keep_newlines=True)


def print_report(rep: TryReport, console: Any = None) -> None:
    """Print the report as rich tables (see the module docstring)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text as _Text

    def Text(text: Any = "", style: str = "") -> Any:  # noqa: N802 - every rich Text here is escaped
        return _Text(_plain(text), style=style)

    con = console or Console()
    if console is None and not con.is_terminal:
        con = Console(width=150)
    head = f"labkit try {rep.root}  revision {rep.label}@{rep.revision[:12]}"
    if rep.dirty:
        head += " (working tree, uncommitted changes included)"
    con.print(Text(head, style="bold"))
    s = rep.summary()
    con.print(Text(f"{s['targets']} simulated cluster(s), {s['units']} unit(s), {s['objects']} object(s), "
                   f"{s['pitfalls']} pitfall(s) — {rep.wall_seconds:.1f} s wall"))

    units = Table("target", "unit", "status", "health", "reason", "ready at", "dependsOn", "source",
                  title="Kustomizations / Applications (ready at: virtual seconds after bootstrap)",
                  title_justify="left")
    for u in rep.units:
        style = "green" if u.status in ("Ready", "Synced") else ("bold red" if u.status == "Failed" else "yellow")
        units.add_row(Text(u.target), Text(u.ref), Text(u.status, style=style), Text(u.health), Text(u.reason),
                      Text(_t(u.ready_at)), Text(", ".join(u.depends_on)),
                      Text("synthesised" if u.synthesized else _where(u.file, u.line)))
    con.print(units)
    for u in rep.units:
        if u.status not in ("Ready", "Synced") and u.message:
            where = f" ({_where(u.file, u.line)})" if u.file else ""
            con.print(Text(f"  {u.ref}{where}: {u.message}", style="red" if u.status == "Failed" else "yellow"))

    objs = Table("target", "object", "outcome", "created", "time to ready", "message", title="Objects",
                 title_justify="left")
    interesting = sorted(rep.objects, key=lambda o: (o.outcome in ("healthy", "created"), o.target, o.key))
    for o in interesting[:MAX_OBJECT_ROWS]:
        objs.add_row(Text(o.target), Text(o.key), Text(o.outcome, style=_OUTCOME_STYLE.get(o.outcome, "")),
                     Text(_t(o.created_at)), Text(_t(o.time_to_ready)),
                     Text(o.message if o.outcome not in ("healthy", "created") else ""))
    con.print(objs)
    if len(interesting) > MAX_OBJECT_ROWS:
        con.print(Text(f"  ... {len(interesting) - MAX_OBJECT_ROWS} more (all in --json and report.html)"))

    order = Table("target", "unit", "#", "step", "objects", title="Apply order", title_justify="left")
    for st in rep.apply_order:
        shown = ", ".join(st.objects[:6]) + (f" (+{len(st.objects) - 6})" if len(st.objects) > 6 else "")
        order.add_row(Text(st.target), Text(st.unit), Text(str(st.order)), Text(st.label), Text(shown))
    con.print(order)
    for e in (e for e in rep.edges if e.kind != "step"):
        con.print(Text(f"  [{e.target}] {e.source} --{e.kind}--> {e.dest}"))

    con.print(Text(f"Pitfalls ({len(rep.pitfalls)})", style="bold"))
    if not rep.pitfalls:
        con.print(Text("  no pitfalls found", style="green"))
    for p in rep.pitfalls:
        con.print(_Text.assemble((f"{p.severity.upper():<8}", _SEV_STYLE.get(p.severity, "")), f" {p.id}  ",
                                 (_plain(_where(p.file, p.line) or "-"), "bold"), f"  {_plain(p.object)}"))
        con.print(Text(f"  {p.message}"))
        con.print(Text(f"  fix: {p.fix}", style="dim"))
        for d in p.docs:
            con.print(Text(f"       {d}", style="dim"))
    for t in rep.targets:
        if t.assumed_crds:
            con.print(Text(f"note [{t.name}]: assumed installed (CRDs not in the repository): "
                           f"{', '.join(t.assumed_crds)}"))
        for n in t.notes:
            con.print(Text(f"note [{t.name}]: {n}"))
    for u in rep.unreconciled:
        con.print(Text(f"not reconciled: {u['unit']} ({_where(u.get('file'), u.get('line'))}): {u['why']}",
                       style="magenta"))
    for n in rep.notes:
        con.print(Text(f"note: {n}"))


# ---------------------------------------------------------------------------- figures

def ready_figure(rep: TryReport) -> Any:
    """Per target, one bar per applied object from creation to ready (virtual seconds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = [t.name for t in rep.targets] or ["(none)"]
    rows: dict[str, list[Any]] = {}
    total: dict[str, int] = {}
    for t in targets:
        created = [o for o in rep.objects if o.target == t and o.created_at is not None]
        total[t] = len(created)
        if len(created) > MAX_FIGURE_ROWS:  # the ones worth a look: not ready first, then the slowest
            created = sorted(created, key=lambda o: (o.outcome in ("healthy", "created"),
                                                     -(o.time_to_ready or 0.0), o.key))[:MAX_FIGURE_ROWS]
        rows[t] = created
    heights = [max(2.2, 0.22 * len(rows[t]) + 1.2) for t in targets]
    fig, axes = plt.subplots(len(targets), 1, figsize=(11, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    fig.suptitle("Time to ready per object (virtual seconds after the bootstrap was applied)", fontsize=12)
    for ax, t in zip(axes[:, 0], targets):
        objs = sorted(rows[t], key=lambda o: (o.created_at or 0, o.key))
        end = max([o.ready_at or 0 for o in objs] + [x.settled_at for x in rep.targets if x.name == t] + [1])
        for i, o in enumerate(objs):
            start = o.created_at or 0.0
            stop = o.ready_at if o.ready_at is not None else end
            color = {"failed": "#d62728", "progressing": "#ff7f0e"}.get(o.outcome, "#2ca02c")
            ax.barh(i, max(stop - start, end * 0.004), left=start, color=color, height=0.6)
        ax.set_yticks(range(len(objs)))
        ax.set_yticklabels([_fig_text(o.key) for o in objs], fontsize=7)
        ax.invert_yaxis()
        shown = "" if total[t] <= len(objs) else \
            f" ({len(objs)} of {total[t]} objects: not ready first, then the slowest; all in the tables)"
        ax.set_title(_fig_text(f"target {t}{shown}"), loc="left", fontsize=10)
        ax.set_xlabel("virtual time (s)")
        ax.set_ylabel("object")
        if not objs:
            ax.text(0.5, 0.5, "no object was created", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig


def _fig_text(x: Any) -> str:
    """Repository text for a matplotlib label: escaped, and ``$`` literal (never mathtext)."""
    return escape_text(x).replace("$", r"\$")


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


# ---------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3} .error{color:#b00020;font-weight:bold} .warning{color:#a66300}
.info{color:#006680} .ok{color:#1b7f1b} .bad{color:#b00020} .wait{color:#a66300}
code{background:#f6f6f6;padding:0 3px} img{max-width:100%;border:1px solid #eee}
"""


def _esc(x: Any) -> str:
    """Repository text for HTML: control characters (and undecodable bytes) escaped, then HTML-escaped."""
    return html.escape(escape_text(x, keep_newlines=True))


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html(rep: TryReport, path: Path, figures: dict[str, bytes]) -> Path:
    """Write the self-contained HTML page (see the module docstring)."""
    s = rep.summary()
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>labkit try {_esc(rep.root)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>labkit try: {_esc(rep.root)}</h1>",
             f"<p>Revision <code>{_esc(rep.label)}@{_esc(rep.revision[:12])}</code>"
             f"{' (working tree, uncommitted changes included)' if rep.dirty else ''}; seed {rep.seed}; "
             f"{s['targets']} simulated cluster(s), {s['units']} unit(s), {s['objects']} object(s), "
             f"{s['pitfalls']} pitfall(s); {rep.wall_seconds:.1f} s wall.</p>"]
    parts.append("<h2>Kustomizations / Applications</h2>")
    rows = []
    for u in rep.units:
        cls = "ok" if u.status in ("Ready", "Synced") else ("bad" if u.status == "Failed" else "wait")
        rows.append([_esc(u.target), f"<code>{_esc(u.ref)}</code>", f"<span class='{cls}'>{_esc(u.status)}</span>",
                     _esc(u.health), _esc(u.reason), _esc(u.message), _esc(_t(u.ready_at)),
                     _esc(", ".join(u.depends_on)), _esc("synthesised" if u.synthesized else _where(u.file, u.line))])
    parts.append(_table(["target", "unit", "status", "health", "reason", "message", "ready at", "dependsOn",
                         "source"], rows))
    parts.append("<h2>Pitfalls</h2>")
    if rep.pitfalls:
        rows = [[f"<span class='{p.severity}'>{_esc(p.severity)}</span>", _esc(p.id),
                 f"<code>{_esc(_where(p.file, p.line))}</code>", _esc(p.object), _esc(p.message),
                 _esc(p.fix) + "<br>" + "<br>".join(f"<a href='{_esc(d)}'>{_esc(d)}</a>" for d in p.docs)]
                for p in rep.pitfalls]
        parts.append(_table(["severity", "id", "where", "object", "message", "fix"], rows))
    else:
        parts.append("<p class='ok'>No pitfalls found.</p>")
    parts.append("<h2>Apply order</h2>")
    if "apply-order" in figures:
        parts.append(f"<img alt='apply order graph' src='data:image/png;base64,"
                     f"{base64.b64encode(figures['apply-order']).decode()}'>")
    rows = [[_esc(st.target), f"<code>{_esc(st.unit)}</code>", str(st.order), _esc(st.label),
             _esc(", ".join(st.objects))] for st in rep.apply_order]
    parts.append(_table(["target", "unit", "#", "step", "objects"], rows))
    rel = [e for e in rep.edges if e.kind != "step"]
    if rel:
        parts.append(_table(["target", "from", "edge", "to"],
                            [[_esc(e.target), _esc(e.source), _esc(e.kind), _esc(e.dest)] for e in rel]))
    parts.append("<h2>Objects</h2>")
    if "time-to-ready" in figures:
        parts.append(f"<img alt='time to ready' src='data:image/png;base64,"
                     f"{base64.b64encode(figures['time-to-ready']).decode()}'>")
    rows = [[_esc(o.target), _esc(o.cluster), f"<code>{_esc(o.key)}</code>", _esc(o.unit),
             _esc(o.outcome), _esc(_t(o.created_at)), _esc(_t(o.time_to_ready)), _esc(o.message),
             _esc(_where(o.file, o.line))] for o in rep.objects]
    parts.append(_table(["target", "cluster", "object", "unit", "outcome", "created", "time to ready", "message",
                         "source"], rows))
    notes = []
    for t in rep.targets:
        if t.assumed_crds:
            notes.append(f"[{t.name}] assumed installed (CRDs not in the repository): {', '.join(t.assumed_crds)}")
        notes += [f"[{t.name}] {n}" for n in t.notes]
    notes += [f"not reconciled: {u['unit']} ({_where(u.get('file'), u.get('line'))}): {u['why']}"
              for u in rep.unreconciled]
    notes += rep.notes
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def check_out_dir(out_dir: Path) -> None:
    """``LabkitError`` (file: the path, field ``--out``) unless ``out_dir`` is, or can become, a directory.

    Checked before the analysis runs, so a mistyped ``--out`` costs nothing; nothing is created here.
    """
    shown = str(out_dir)
    try:
        if out_dir.exists() and not out_dir.is_dir():
            raise LabkitError("exists and is not a directory; give a directory for the report", file=shown,
                              field="--out")
        parent = out_dir.absolute().parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise LabkitError(f"{parent} is not a directory", file=shown, field="--out")
    except OSError as exc:  # a name longer than NAME_MAX / PATH_MAX ...
        raise LabkitError(exc.strerror or str(exc), file=shown, field="--out") from None


def write_outputs(rep: TryReport, out_dir: Path, order_fig: Any) -> dict[str, Path]:
    """Write ``report.html``, ``report.json`` and the figures' PNGs to ``out_dir``; returns the paths.

    A directory that cannot be created or written is a ``LabkitError`` naming ``--out``.
    """
    import matplotlib.pyplot as plt

    from labkit.core.report import check_figure

    check_out_dir(out_dir)
    figs = {"apply-order": order_fig, "time-to-ready": ready_figure(rep)}
    pngs: dict[str, bytes] = {}
    paths: dict[str, Path] = {}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, fig in figs.items():
            check_figure(fig, name)
            data = _png(fig)
            pngs[name] = data
            p = out_dir / f"{name}.png"
            p.write_bytes(data)
            paths[name] = p
            plt.close(fig)
        paths["html"] = write_html(rep, out_dir / "report.html", pngs)
        jp = out_dir / "report.json"
        jp.write_text(rep.to_json() + "\n", encoding="utf-8")
        paths["json"] = jp
    except OSError as exc:
        raise LabkitError(f"cannot write the report: {exc.strerror or exc}", file=str(out_dir), field="--out") \
            from None
    finally:
        for fig in figs.values():
            plt.close(fig)
    return paths
