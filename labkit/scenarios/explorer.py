"""The live explorer of every scenario notebook (ipywidgets; notebooks only).

``explore(result, enabled=explorer, cluster=cluster)`` — the last line of each
scenario notebook — puts the lab the scenario just ran under a participant's
hands.  One reusable core, ``Explorer``, around a per-scenario driver
(``labkit.scenarios.explorer_labs`` / ``explorer_delivery``):

* **controls**: the driver's buttons (git commit, revert, promote, a
  ``kubectl edit`` hotfix, ``flux reconcile`` / ``argocd app sync`` …) and
  toggles (webhook, load, suspend …), plus the clock: **+10 s**, **+1 min**,
  **+10 min** of virtual time, and a view selector when the lab has several
  environments, labs or worlds;
* **panels that explain**: a status block (virtual time; git HEAD → fetched →
  applied revisions; the GitOps object's Ready state next to the workload's own
  kstatus, so a rollout in progress is never hidden behind an old Ready=True),
  a **timeline** that grows with the clock, and tabs for the **plan** of the
  next reconcile as a field-level diff with each field's owner (from
  ``managedFields``), the **events** with their messages, the **conditions**
  with their messages, the **live state**, and the **field owners**.

Every click runs the same simulation objects the headless scenario ran — the
explorer adds no second model — and then refreshes every panel.  ``click``,
``toggle`` and ``select`` drive it programmatically (tests, benchmarks);
``latencies`` keeps each click's wall time (handler + refresh).  In the browser the
widgets carry CSS classes: ``lkx-explorer`` on the whole explorer,
``lkx-button-<key>`` on each button (``lkx-button-commit``, ``lkx-button-plus-10-min``),
``lkx-toggle-<key>`` on each switch and ``lkx-panel-<name>`` on each panel (``status``,
``note``, ``timeline``, ``plan``, ``events``, ``conditions``, ``live``, ``owners``).

Whether the explorer shows is the scenario's ``explorer`` parameter: the
notebooks' parameters cell says ``explorer = True`` (what JupyterLab runs),
while ``labkit run`` injects the scenario YAML's default, ``false``, so headless
runs skip it unless asked (``labkit run NAME --param explorer=true``).  On a
real cluster (``cluster`` other than ``sim``) the explorer is not offered: it
steps the simulator's virtual clock.

This is the only module of labkit that imports ipywidgets, and only notebooks
(and the explorer's tests and benchmark) import it.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import ipywidgets as widgets

from labkit.scenarios import explorer_panels as P
from labkit.scenarios.explorer_delivery import DeliveryDriver, SecretsDriver
from labkit.scenarios.explorer_labs import Driver, FleetDriver, HpaDriver, MigrationsDriver, StatefulDriver

__all__ = ["Explorer", "ReconcileExplorer", "explore", "driver_for", "CLOCK_STEPS", "TABS"]

#: The clock buttons: label -> virtual seconds.
CLOCK_STEPS = {"+10 s": 10.0, "+1 min": 60.0, "+10 min": 600.0}
TABS = ("plan", "events", "conditions", "live", "owners")
_TAB_TITLES = {"plan": "Plan (next reconcile)", "events": "Events", "conditions": "Conditions",
               "live": "Live state", "owners": "Field owners"}
_AUTO = widgets.Layout(width="auto")


class Explorer:
    """The explorer core: a driver's controls, the clock, and the panels (see the module docstring)."""

    def __init__(self, driver: Driver, *, title: str | None = None):
        self.driver = driver
        self._syncing = False
        self.latencies: list[float] = []
        self.last_note = ""
        self.buttons: dict[str, widgets.Button] = {}
        self.toggles: dict[str, widgets.ToggleButton] = {}
        for ctl in driver.controls:
            b = widgets.Button(description=ctl.label, button_style=ctl.style, tooltip=ctl.tooltip or ctl.label,
                               layout=_AUTO)
            b.on_click(lambda _b, c=ctl: self._act(c.run))
            self.buttons[ctl.key] = b
        for label, seconds in CLOCK_STEPS.items():
            b = widgets.Button(description=label, icon="clock-o", tooltip=f"run the virtual clock {label[1:]}",
                               layout=_AUTO)
            b.on_click(lambda _b, s=seconds: self._act(lambda: driver.advance(s)))
            self.buttons[label] = b
        for tg in driver.toggles:
            on = bool(tg.get())
            t = widgets.ToggleButton(value=on, description=tg.label, tooltip=tg.tooltip or tg.label,
                                     icon="toggle-on" if on else "toggle-off", button_style="success" if on else "",
                                     layout=_AUTO)
            t.observe(lambda change, g=tg: self._on_toggle(g, change), names="value")
            self.toggles[tg.key] = t
        self.view_selector: widgets.ToggleButtons | None = None
        if len(driver.views) > 1:
            self.view_selector = widgets.ToggleButtons(options=driver.views, value=driver.view,
                                                       description="view:", style={"button_width": "auto"})
            self.view_selector.observe(self._on_view, names="value")
        self.panels: dict[str, widgets.HTML] = {k: widgets.HTML(layout=widgets.Layout(width="100%", overflow="auto"))
                                                for k in ("status", "note", "timeline", *TABS)}
        self.tabs = widgets.Tab(children=[self.panels[k] for k in TABS])
        for i, k in enumerate(TABS):
            self.tabs.set_title(i, _TAB_TITLES[k])
        wrap = widgets.Layout(flex_flow="row wrap", align_items="center")
        controls = widgets.HBox([self.buttons[c.key] for c in driver.controls], layout=wrap)
        clock_row = [widgets.HTML("<b>clock</b>&nbsp;")] + [self.buttons[k] for k in CLOCK_STEPS]
        if self.toggles:
            clock_row += [widgets.HTML("&nbsp;&nbsp;<b>switches</b>&nbsp;")] + list(self.toggles.values())
        second = widgets.HBox(clock_row, layout=wrap)
        header = widgets.HTML(f"<h3 style='margin:4px 0'>{P.esc(title or driver.title)}</h3>")
        rows: list[widgets.Widget] = [header, controls, second]
        if self.view_selector is not None:
            rows.append(self.view_selector)
        rows += [self.panels["note"], self.panels["status"], self.panels["timeline"], self.tabs]
        self.widget = widgets.VBox(rows)
        # stable hooks for browser tests and styling: lkx-explorer, lkx-button-<key>, lkx-toggle-<key>, lkx-panel-<name>
        self.widget.add_class("lkx-explorer")
        for key, b in self.buttons.items():
            b.add_class("lkx-button-" + _css(key))
        for key, t in self.toggles.items():
            t.add_class("lkx-toggle-" + _css(key))
        for key, w in self.panels.items():
            w.add_class("lkx-panel-" + key)
        self.refresh("")

    # ---------------------------------------------------------------- Jupyter
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # ---------------------------------------------------------------- programmatic use
    def click(self, key: str) -> str:
        """Press a button (a control's key, or a clock label such as ``"+10 min"``); returns the note shown."""
        if key not in self.buttons:
            raise KeyError(f"no button {key!r}; buttons: {', '.join(self.buttons)}")
        self.buttons[key].click()
        return self.last_note

    def toggle(self, key: str, value: bool) -> str:
        """Set a switch (``"webhook"``, ``"load"`` …); returns the note shown."""
        self.toggles[key].value = bool(value)
        return self.last_note

    def select(self, view: str) -> None:
        """Show another environment / lab / world."""
        if self.view_selector is None:
            if view != self.driver.view:
                raise KeyError(f"no view {view!r}")
            return
        self.view_selector.value = view

    def text(self, panel: str) -> str:
        """A panel's content as plain text (tags stripped), for tests."""
        import re

        return re.sub(r"<[^>]+>", " ", self.panels[panel].value).replace("&nbsp;", " ")

    # ---------------------------------------------------------------- handlers
    def _act(self, fn: Callable[[], str]) -> None:
        t0 = time.perf_counter()
        try:
            note = fn()
        except Exception as err:  # noqa: BLE001 - one clear line in the widget, never a traceback
            note = f"that did not work: {err}"
        self.refresh(note)
        self.latencies.append(time.perf_counter() - t0)

    def _on_toggle(self, tg: Any, change: dict) -> None:
        if self._syncing:
            return
        value = bool(change["new"])
        self.toggles[tg.key].icon = "toggle-on" if value else "toggle-off"
        self.toggles[tg.key].button_style = "success" if value else ""
        self._act(lambda: tg.set(value))

    def _on_view(self, change: dict) -> None:
        self.driver.view = change["new"]
        self._syncing = True  # reflect the new view's switches without acting on them
        try:
            for tg in self.driver.toggles:
                t = self.toggles[tg.key]
                current = bool(_safe(tg.get, False))
                t.value = current
                t.icon = "toggle-on" if current else "toggle-off"
                t.button_style = "success" if current else ""
        finally:
            self._syncing = False
        self.refresh(f"showing {change['new']}")

    # ---------------------------------------------------------------- panels
    def refresh(self, note: str = "") -> None:
        d = self.driver
        self.last_note = note
        self.panels["note"].value = (f'<div style="padding:3px 6px;background:#eef5ff;border-left:3px solid #1f77b4;'
                                     f'font-size:13px">{P.esc(note)}</div>' if note else "")
        self.panels["status"].value = _safe(d.status, "", label="status")
        self.panels["timeline"].value = ("<b>Timeline</b> <span style='color:#666;font-size:12px'>(hover a mark for "
                                         "its event; the dashed line is now)</span><br>"
                                         + _safe(d.timeline, "", label="timeline"))

        def plan() -> str:
            header, plans, applier = d.plan()
            return P.plan_html(plans, header=header, applier=applier)

        self.panels["plan"].value = _safe(plan, "", label="plan")
        self.panels["events"].value = _safe(lambda: "<b>Newest first</b>" + P.events_html(d.events()), "",
                                            label="events")
        self.panels["conditions"].value = _safe(lambda: P.conditions_html(d.conditions()), "", label="conditions")
        self.panels["live"].value = _safe(d.live, "", label="live state")
        self.panels["owners"].value = _safe(
            lambda: "".join(P.owners_table(obj, title=title) for title, obj in d.owners()) or
            "<i>no managed fields</i>", "", label="owners")


def _css(key: str) -> str:
    """A button key as a CSS class part: ``+10 min`` → ``plus-10-min``."""
    import re

    return re.sub(r"[^a-z0-9]+", "-", key.lower().replace("+", "plus-")).strip("-")


def _safe(fn: Callable[[], Any], default: Any, *, label: str = "") -> Any:
    try:
        return fn()
    except Exception as err:  # noqa: BLE001 - a panel that cannot be read says so
        return f"<i>{P.esc(label)} unavailable: {P.esc(err)}</i>" if label else default


class ReconcileExplorer(Explorer):
    """The tour's explorer over one ``FleetLab`` environment (kept for notebooks written against it)."""

    def __init__(self, lab: Any, environment: str = "staging"):
        super().__init__(FleetDriver(lab, environments=[environment], scenario="tour"))
        self.lab = lab
        self.environment = environment


def driver_for(result: Any, *, scenario: str | None = None, seed: int = 0) -> Driver:
    """The driver for a scenario's result object (what the notebooks pass to ``explore``)."""
    name = type(result).__name__
    if name == "TourResult":
        return FleetDriver(result.labs["webhook"], environments=["staging"], scenario="tour")
    if name == "PromotionResult":
        return FleetDriver(result.lab, environments=["staging", "prod"], scenario="promotion", bot=result.bot)
    if name == "DriftResult":
        return FleetDriver(result.lab, environments=["staging"], scenario="drift")
    if name == "HpaResult":
        return HpaDriver(result)
    if name == "StatefulResult":
        return StatefulDriver(result)
    if name == "MigrationsResult":
        return MigrationsDriver(result)
    if name == "SecretsResult":
        return SecretsDriver(result)
    if name in ("RollbackStudy", "PushVsPullStudy"):
        return DeliveryDriver.for_study(result, scenario="rollback" if name == "RollbackStudy" else "push-vs-pull",
                                        seed=seed)
    raise TypeError(f"no explorer for {name}")


def explore(result: Any, *, enabled: bool = True, cluster: str = "sim", seed: int = 0) -> Any:
    """The explorer for a scenario's result, to be the **last expression** of a notebook cell.

    ``enabled`` is the notebook's ``explorer`` parameter: False returns None (nothing
    is displayed).  On a real cluster a one-line note replaces the explorer.
    """
    if not enabled:
        return None
    if cluster != "sim":
        return widgets.HTML("<i>The explorer steps the simulator's virtual clock: run this notebook with "
                            "<code>cluster='sim'</code> to use it.</i>")
    return Explorer(driver_for(result, seed=seed))
