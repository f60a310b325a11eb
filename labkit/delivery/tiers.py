"""DORA 2024 performance clusters and nearest-cluster classification.

The data
========

``labkit/data/dora_2024.yaml`` carries the four clusters of the *Accelerate
State of DevOps Report 2024* (DORA, Google Cloud, p. 13) with the citation:

=======  ================  ========================  =========  ==============  =====
cluster  lead time         deployment frequency      fail rate  recovery time   share
=======  ================  ========================  =========  ==============  =====
elite    < 1 day           on demand (several/day)   5 %        < 1 hour        19 %
high     1 day – 1 week    daily – weekly            20 %       < 1 day         22 %
medium   1 week – 1 month  weekly – monthly          10 %       < 1 day         35 %
low      1 – 6 months      monthly – every 6 months  40 %       1 week – 1 month 25 %
=======  ================  ========================  =========  ==============  =====

Why a tier cannot be read off one metric
========================================

The report does not define tiers by thresholds.  It runs a cluster analysis on
survey answers to all four questions at once and then *describes* each cluster
by its typical values.  The clusters are therefore not nested bands of one
scale, and the change-fail-rate column shows it: the medium cluster's typical
fail rate (10 %) is *better* than the high cluster's (20 %).  A team with a 10 %
fail rate is not "between high and elite"; on that metric alone it looks most
like a medium team, while its lead time may look elite.  Likewise the high and
medium clusters share the same recovery band ("less than one day").  Reading a
tier off any single column gives contradictory answers; the only reading
faithful to how the clusters were made is to ask which cluster the team's four
values *together* lie closest to.

The classification (``classify``)
=================================

Each cluster is a box in four dimensions: a band per time/frequency metric
(open ends allowed: elite lead time is ``(0, 24 h]``) and a point for the fail
rate (the report gives one value per cluster).  A team's distance to a cluster
is the Euclidean distance from its four values to that box after normalising
each axis so that the whole table spans about one unit on every axis:

* lead time, deployment frequency and recovery time are compared on a
  **log10 scale** — a team deploying every 2 days is as far from "daily" as one
  deploying twice a day, and these quantities vary over orders of magnitude.
  The distance on such an axis is how many decades the value lies outside the
  band (0 inside it), divided by the number of decades the table's finite band
  edges span (lead time 24 h…4380 h: 2.26 decades; frequency 1/182…1 per day:
  2.26 decades; recovery 1 h…730 h: 2.86 decades);
* the change fail rate is compared **linearly** (it is a proportion) and
  divided by the spread of the cluster values (40 % − 5 % = 35 points).

The nearest cluster wins; ties (a value on a shared band edge with the other
axes equidistant) go to the cluster listed first in the data, i.e. the better
one.  A metric that is undefined for a team (no incidents: no recovery time) is
left out of every distance.  ``classify`` returns the distances too, so a
notebook can show how close the runner-up was — the honest answer is often
"between high and elite".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

from labkit.core.errors import LabkitError

DATA_FILE = "dora_2024.yaml"
LOG_METRICS = ("lead_time_h", "deploys_per_day", "recovery_h")
METRICS = ("lead_time_h", "deploys_per_day", "change_failure_rate", "recovery_h")


@dataclass(frozen=True)
class Band:
    """A band ``[lo, hi]`` (either end may be open: ``None``) with the report's wording."""

    text: str
    lo: float | None
    hi: float | None

    def log_distance(self, value: float) -> float:
        """Decades (log10) from ``value`` to the band; 0 inside it."""
        if value <= 0:
            value = 1e-12
        if self.lo is not None and value < self.lo:
            return math.log10(self.lo / value)
        if self.hi is not None and value > self.hi:
            return math.log10(value / self.hi)
        return 0.0


@dataclass(frozen=True)
class Cluster:
    name: str
    share: float
    lead_time_h: Band
    deploys_per_day: Band
    change_failure_rate: float
    change_failure_rate_text: str
    recovery_h: Band


@dataclass(frozen=True)
class Clusters:
    """The clusters and the citation they come from."""

    clusters: tuple[Cluster, ...]
    source: Mapping[str, Any]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.clusters]

    def citation(self) -> str:
        s = self.source
        return f"{s['publisher']}, \"{s['title']}\" ({s['year']}), p. {s['page']}. {s['url']}"

    def spans(self) -> dict[str, float]:
        """Normalising span per metric (decades for log metrics, points for the fail rate)."""
        out: dict[str, float] = {}
        for m in LOG_METRICS:
            edges = [e for c in self.clusters for e in (getattr(c, m).lo, getattr(c, m).hi) if e is not None]
            out[m] = math.log10(max(edges) / min(edges))
        rates = [c.change_failure_rate for c in self.clusters]
        out["change_failure_rate"] = max(rates) - min(rates)
        return out

    def get(self, name: str) -> Cluster:
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass(frozen=True)
class Classification:
    tier: str
    distances: dict[str, float]
    per_metric: dict[str, dict[str, float]] = field(default_factory=dict)
    used: tuple[str, ...] = ()

    @property
    def runner_up(self) -> str:
        ordered = sorted(self.distances, key=lambda k: self.distances[k])
        return ordered[1] if len(ordered) > 1 else ordered[0]


def _band(data: Any, where: str) -> Band:
    if not isinstance(data, Mapping) or "text" not in data:
        raise LabkitError("a band needs text, min and max", file=DATA_FILE, field=where)
    lo, hi = data.get("min"), data.get("max")
    return Band(str(data["text"]), None if lo is None else float(lo), None if hi is None else float(hi))


def parse_clusters(doc: Mapping[str, Any]) -> Clusters:
    """Read the YAML document's ``source`` and ``clusters``."""
    if not isinstance(doc, Mapping) or "clusters" not in doc or "source" not in doc:
        raise LabkitError("expected 'source' and 'clusters'", file=DATA_FILE)
    out = []
    for i, c in enumerate(doc["clusters"]):
        w = f"clusters[{i}]"
        try:
            cfr = c["change_failure_rate"]
            out.append(Cluster(
                name=str(c["name"]), share=float(c["share"]),
                lead_time_h=_band(c["lead_time_h"], f"{w}.lead_time_h"),
                deploys_per_day=_band(c["deploys_per_day"], f"{w}.deploys_per_day"),
                change_failure_rate=float(cfr["value"]), change_failure_rate_text=str(cfr["text"]),
                recovery_h=_band(c["recovery_h"], f"{w}.recovery_h"),
            ))
        except (KeyError, TypeError, ValueError) as err:
            raise LabkitError(f"malformed cluster: {err}", file=DATA_FILE, field=w) from None
    return Clusters(tuple(out), dict(doc["source"]))


@lru_cache(maxsize=1)
def dora_2024() -> Clusters:
    """The DORA 2024 clusters shipped in ``labkit/data/dora_2024.yaml``."""
    text = (Path(__file__).resolve().parent.parent / "data" / DATA_FILE).read_text(encoding="utf-8")
    return parse_clusters(yaml.safe_load(text))


def classify(
    *,
    lead_time_h: float | None,
    deploys_per_day: float | None,
    change_failure_rate: float | None,
    recovery_h: float | None,
    clusters: Clusters | None = None,
) -> Classification:
    """Nearest DORA cluster on all four metrics together (see the module docstring)."""
    cl = clusters or dora_2024()
    spans = cl.spans()
    values = {"lead_time_h": lead_time_h, "deploys_per_day": deploys_per_day,
              "change_failure_rate": change_failure_rate, "recovery_h": recovery_h}
    used = tuple(m for m in METRICS if values[m] is not None and not (isinstance(values[m], float) and math.isnan(values[m])))
    if not used:
        raise LabkitError("no metric to classify on: every value is missing", field="metrics")
    distances: dict[str, float] = {}
    per_metric: dict[str, dict[str, float]] = {}
    for c in cl.clusters:
        parts: dict[str, float] = {}
        for m in used:
            v = float(values[m])  # type: ignore[arg-type]
            if m == "change_failure_rate":
                parts[m] = abs(v - c.change_failure_rate) / spans[m]
            else:
                parts[m] = getattr(c, m).log_distance(v) / spans[m]
        per_metric[c.name] = parts
        distances[c.name] = math.sqrt(sum(p * p for p in parts.values()))
    best = min(cl.names, key=lambda n: (round(distances[n], 12), cl.names.index(n)))
    return Classification(best, distances, per_metric, used)
