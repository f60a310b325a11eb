"""The result types of ``labkit try``: what the report, the HTML page and ``--json`` are made of.

Everything here is a plain dataclass of JSON-ready values (strings, numbers,
booleans, ``None`` and lists of those), so ``TryReport.to_json()`` is a
straight ``dataclasses.asdict`` and the JSON document's schema is this module:

``TryReport``
    ``schema`` (``"labkit.try/v1"``), ``input``, ``root``, ``revision``,
    ``label``, ``dirty``, ``dialects``, ``seed``, ``targets``, ``units``,
    ``objects``, ``apply_order``, ``edges``, ``pitfalls``, ``unreconciled``,
    ``notes``, ``summary`` and ``wall_seconds``.
``TargetResult``
    one simulated cluster: its name, dialect, the roots applied at bootstrap,
    the assumed CRDs, the virtual time at which everything settled.
``UnitResult``
    one Flux Kustomization or Argo CD Application: ``status`` (``Ready`` /
    ``Failed`` / ``Waiting`` / ``Suspended`` for Flux; the Application's sync
    status for Argo), ``health``, ``reason`` and ``message`` as the controller
    wrote them, ``ready_at`` (virtual seconds since the bootstrap was applied)
    and ``depends_on``.
``ObjectResult``
    one object a unit renders: ``outcome`` is ``healthy`` (kstatus Current
    with a real health signal: a rolled-out Deployment, a completed Job),
    ``created`` (exists; nothing to wait for: a ConfigMap, a Service),
    ``progressing`` (created, not ready when the run settled), ``failed``
    (kstatus Failed, or a unit failure that blocked it), or ``not-applied``
    (never created; ``message`` says why); ``time_to_ready`` is ready time
    minus creation time.
``ApplyStep``
    one step of a unit's apply order: Flux stages (cluster definitions, class
    definitions, resources) or Argo phase/wave groups, hooks marked.
``Edge``
    an edge of the order graph: ``applies`` (a unit's apply creates another
    unit), ``dependsOn`` (Flux), ``step`` (step to step within a unit).
``Pitfall``
    ``id``, ``severity`` (``error`` | ``warning`` | ``info``), ``file``,
    ``line``, ``object``, ``message``, ``fix`` and ``docs`` (the URLs the fix
    comes from).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Pitfall", "ObjectResult", "UnitResult", "TargetResult", "ApplyStep", "Edge", "TryReport", "SCHEMA"]

SCHEMA = "labkit.try/v1"
SEVERITIES = ("error", "warning", "info")


@dataclass
class Pitfall:
    id: str
    severity: str
    file: str | None
    line: int | None
    object: str
    message: str
    fix: str
    docs: list[str] = field(default_factory=list)
    target: str | None = None


@dataclass
class ObjectResult:
    target: str
    cluster: str
    unit: str
    api_version: str
    kind: str
    namespace: str
    name: str
    outcome: str
    created_at: float | None = None
    ready_at: float | None = None
    time_to_ready: float | None = None
    message: str = ""
    file: str | None = None
    line: int | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


@dataclass
class UnitResult:
    target: str
    dialect: str
    kind: str
    namespace: str
    name: str
    path: str
    status: str
    health: str = ""
    reason: str = ""
    message: str = ""
    ready_at: float | None = None
    depends_on: list[str] = field(default_factory=list)
    file: str | None = None
    line: int | None = None
    synthesized: bool = False
    objects: int = 0

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass
class TargetResult:
    name: str
    dialect: str
    roots: list[str]
    assumed_crds: list[str] = field(default_factory=list)
    settled_at: float = 0.0
    settled: bool = True
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class ApplyStep:
    target: str
    unit: str
    order: int
    label: str  # "stage 0: cluster definitions", "PreSync hooks", "wave -1" ...
    kind: str  # stage | wave | hook
    objects: list[str] = field(default_factory=list)


@dataclass
class Edge:
    target: str
    source: str
    dest: str
    kind: str  # applies | dependsOn | step


@dataclass
class TryReport:
    input: str
    root: str
    revision: str
    label: str
    dirty: bool
    seed: int
    dialects: list[str] = field(default_factory=list)
    targets: list[TargetResult] = field(default_factory=list)
    units: list[UnitResult] = field(default_factory=list)
    objects: list[ObjectResult] = field(default_factory=list)
    apply_order: list[ApplyStep] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    pitfalls: list[Pitfall] = field(default_factory=list)
    unreconciled: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)
    wall_seconds: float = 0.0
    schema: str = SCHEMA

    def summary(self) -> dict[str, Any]:
        by_sev = {s: sum(1 for p in self.pitfalls if p.severity == s) for s in SEVERITIES}
        outcomes: dict[str, int] = {}
        for o in self.objects:
            outcomes[o.outcome] = outcomes.get(o.outcome, 0) + 1
        return {
            "targets": len(self.targets),
            "units": len(self.units),
            "units_ready": sum(1 for u in self.units
                               if u.status in ("Ready", "Synced") and u.health in ("", "Healthy")),
            "units_failed": sum(1 for u in self.units if u.status == "Failed" or u.health == "Degraded"),
            "objects": len(self.objects),
            "outcomes": outcomes,
            "pitfalls": len(self.pitfalls),
            "pitfalls_by_severity": by_sev,
            "unreconciled": len(self.unreconciled),
        }

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        out = {"schema": d.pop("schema")}
        out.update(d)
        out["summary"] = self.summary()
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False, default=str)
