"""An interactive reconcile explorer for workshops (ipywidgets; notebooks only).

``ReconcileExplorer(lab)`` puts a ``FleetLab`` under a participant's hands: commit
a change to git (bump podinfo's tag, or push a tag that does not exist), edit live
state behind GitOps' back (a ``kubectl edit``-style hotfix), step the virtual
clock, and watch what the controllers do — the plan (``flux diff``: what the next
reconcile would change), the latest changeset, the Kustomization's Ready
condition, the Deployment's rollout and the newest events.

This is the only module of labkit that imports ipywidgets, and only notebooks
import it: the engine and the simulator know nothing about Jupyter.
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from labkit.scenarios.lab import PODINFO, PODINFO_TAGS, FleetLab


class ReconcileExplorer:
    def __init__(self, lab: FleetLab, environment: str = "staging"):
        self.lab = lab
        self.environment = environment
        self._tag_index = 1
        self.status = widgets.HTML()
        self.output = widgets.HTML()
        b = widgets.Button
        self.buttons = {
            "commit": b(description="git commit: next tag", button_style="primary"),
            "bad": b(description="git commit: missing tag", button_style="warning"),
            "edit": b(description="kubectl edit: hotfix", button_style="danger"),
            "10s": b(description="+10 s"),
            "1m": b(description="+1 min"),
            "10m": b(description="+10 min"),
        }
        self.buttons["commit"].on_click(lambda _: self._commit(PODINFO_TAGS[self._next_tag()]))
        self.buttons["bad"].on_click(lambda _: self._commit("9.9.9-missing"))
        self.buttons["edit"].on_click(lambda _: self._hotfix())
        for label, secs in (("10s", 10), ("1m", 60), ("10m", 600)):
            self.buttons[label].on_click(lambda _, s=secs: self._advance(s))
        self.widget = widgets.VBox([
            widgets.HBox([self.buttons["commit"], self.buttons["bad"], self.buttons["edit"]]),
            widgets.HBox([self.buttons["10s"], self.buttons["1m"], self.buttons["10m"]]),
            self.status, self.output,
        ])
        self.refresh()

    def _next_tag(self) -> int:
        i = self._tag_index
        self._tag_index = 1 + (self._tag_index % (len(PODINFO_TAGS) - 1))
        return i

    def _commit(self, tag: str) -> None:
        sha = self.lab.set_image(self.environment, tag, author="participant")
        self.refresh(f"committed {sha[:7]}: {PODINFO}:{tag}")

    def _hotfix(self) -> None:
        cluster = self.lab.cluster(self.environment)

        def edit(obj: dict[str, Any]) -> None:
            c = obj["spec"]["template"]["spec"]["containers"][0]
            env = [e for e in c.get("env") or [] if e.get("name") != "HOTFIX"]
            c["env"] = env + [{"name": "HOTFIX", "value": f"t={self.lab.now:.0f}"}]

        cluster.kubectl_edit("apps/v1", "Deployment", "podinfo", f"podinfo-{self.environment}", edit)
        self.refresh("kubectl edit: added env HOTFIX to the Deployment")

    def _advance(self, seconds: float) -> None:
        self.lab.advance(seconds)
        self.refresh(f"advanced {seconds:.0f} s")

    def refresh(self, note: str = "") -> None:
        lab, env = self.lab, self.environment
        ready = lab.ready(env)
        dep = lab.deployment(env) or {}
        st = dep.get("status") or {}
        self.status.value = (
            f"<b>t = {lab.now:.1f} s</b> {html.escape(note)}<br>"
            f"apps Ready: <b>{ready.get('status', '?')}</b> {html.escape(ready.get('reason', ''))} — "
            f"{html.escape(ready.get('message', '')[:160])}<br>"
            f"Deployment image {html.escape(lab.image(env) or '-')}: ready {st.get('readyReplicas', 0)}/"
            f"{(dep.get('spec') or {}).get('replicas', '?')}, updated {st.get('updatedReplicas', 0)}"
        )
        try:
            p = lab.flux[env].diff("apps")
            plan_rows = "".join(f"<li>{html.escape(e.subject)}: {e.action.value}"
                                f"{' — ' + html.escape(', '.join(e.drift[:4])) if e.drift else ''}</li>"
                                for e in p.entries)
        except Exception as err:  # noqa: BLE001 - shown to the participant, never raised
            plan_rows = f"<li>plan unavailable: {html.escape(str(err))}</li>"
        events = lab.cluster(env).log.records()[-12:]
        ev_rows = "".join(f"<tr><td>{e.time:.1f}</td><td>{html.escape(e.component)}</td><td>{html.escape(e.event)}</td>"
                          f"<td>{html.escape(e.object)}</td></tr>" for e in events)
        self.output.value = (f"<b>Plan of the next reconcile (flux diff)</b><ul>{plan_rows}</ul>"
                             f"<b>Newest events</b><table>{ev_rows}</table>")
