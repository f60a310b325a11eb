"""What a scenario notebook hands back: ``metrics.json`` and PNG figures in ``out_dir``.

Every scenario notebook ends with::

    from labkit.core import report
    report.write_metrics({"commit_to_applied_s": 41.5, ...}, out_dir)
    report.save_figure(fig, out_dir, "commit-to-applied")

``out_dir`` is the papermill parameter the runner injects (``labkit run`` sets it to
the run's output folder).  The runner then checks that ``metrics.json`` holds every key
the scenario's YAML declares under ``metrics:``.

The contract (DESIGN.md, "Contracts others rely on"): ``metrics.json`` is flat JSON --
numbers, strings, booleans, null and small lists of those -- so CI jobs and
spreadsheets can read it without knowing labkit.  Figures must be readable in a
workshop: a title and labelled axes, or :func:`save_figure` refuses them.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Mapping

from labkit.core.errors import LabkitError

METRICS_FILE = "metrics.json"
#: The longest list a metric value may be ("small lists").
MAX_LIST = 1000
FIGURE_DPI = 120
_FIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# ------------------------------------------------------------------ metrics

def _plain(value: Any) -> Any:
    """numpy scalars and 1-d arrays to Python values; anything else unchanged."""
    mod = type(value).__module__
    if mod == "numpy" or mod.startswith("numpy."):
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray) and value.ndim <= 1:
            return value.tolist()
    return value


def _check_scalar(key: str, value: Any, where: str) -> Any:
    value = _plain(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LabkitError(
                f"{where} is {value}, which JSON cannot hold; use None for 'no value'", field=f"metrics.{key}"
            )
        return value
    raise LabkitError(
        f"{where} is a {type(value).__name__} ({value!r:.80}); metrics are flat JSON: "
        "numbers, strings, booleans, None, or small lists of those",
        field=f"metrics.{key}",
    )


def validate_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-ready copy of ``metrics``; ``LabkitError`` naming the key when it is not flat JSON."""
    if not isinstance(metrics, Mapping):
        raise LabkitError(f"metrics must be a dict of key -> value, got {type(metrics).__name__}", field="metrics")
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key:
            raise LabkitError(f"metric keys must be non-empty strings, got {key!r}", field="metrics")
        value = _plain(value)
        if isinstance(value, (list, tuple)):
            if len(value) > MAX_LIST:
                raise LabkitError(
                    f"list of {len(value)} items is longer than {MAX_LIST}; write a summary, "
                    "or the full series to a CSV next to metrics.json",
                    field=f"metrics.{key}",
                )
            out[key] = [_check_scalar(key, item, f"item {i}") for i, item in enumerate(value)]
        else:
            out[key] = _check_scalar(key, value, "value")
    return out


def write_metrics(metrics: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Validate ``metrics`` and write them to ``<out_dir>/metrics.json``; returns the path."""
    clean = validate_metrics(metrics)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / METRICS_FILE
    path.write_text(json.dumps(clean, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def read_metrics(out_dir: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` of a run folder."""
    path = Path(out_dir) / METRICS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabkitError("no metrics.json here", file=str(path)) from None
    except json.JSONDecodeError as exc:
        raise LabkitError(f"not valid JSON: {exc.msg} (line {exc.lineno})", file=str(path)) from None
    if not isinstance(data, dict):
        raise LabkitError("metrics.json must hold a JSON object", file=str(path))
    return data


# ------------------------------------------------------------------ figures

def _has_text(label: Any) -> bool:
    return bool(label and str(label).strip())


def _fig_has_title(fig: Any) -> bool:
    sup = getattr(fig, "_suptitle", None)
    if sup is not None and _has_text(sup.get_text()):
        return True
    return any(_has_text(ax.get_title(loc)) for ax in fig.axes for loc in ("center", "left", "right"))


def _fig_label(fig: Any, which: str) -> bool:
    lab = getattr(fig, f"_sup{which}label", None)
    return lab is not None and _has_text(lab.get_text())


def _axis_labelled(ax: Any, which: str) -> bool:
    getter = "get_xlabel" if which == "x" else "get_ylabel"
    shared = ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()
    return any(_has_text(getattr(sib, getter)()) for sib in shared.get_siblings(ax))


def _is_colorbar(ax: Any) -> bool:
    return getattr(ax, "_colorbar", None) is not None or ax.get_label() == "<colorbar>"


def check_figure(fig: Any, name: str = "figure") -> None:
    """``LabkitError`` unless ``fig`` has a title and every axes with data has both axis labels."""
    where = f"figure {name!r}"
    if not _fig_has_title(fig):
        raise LabkitError("has no title: call fig.suptitle(...) or ax.set_title(...)", field=where)
    data_axes = [ax for ax in fig.axes if ax.has_data() and ax.axison and not _is_colorbar(ax)]
    for i, ax in enumerate(data_axes, 1):
        which_ax = f"axes {i} of {len(data_axes)}"
        title = ax.get_title() or ax.get_title("left")
        if title:
            which_ax += f" ({title!r})"
        for axis in ("x", "y"):
            axis_obj = ax.xaxis if axis == "x" else ax.yaxis
            if not axis_obj.get_visible():
                continue
            if _axis_labelled(ax, axis) or _fig_label(fig, axis):
                continue
            raise LabkitError(f"{which_ax} has no {axis}-axis label: call ax.set_{axis}label(...)", field=where)


def save_figure(fig: Any, out_dir: str | Path, name: str) -> Path:
    """Check ``fig`` is readable (see :func:`check_figure`) and save it as ``<out_dir>/<name>.png`` at 120 dpi."""
    if hasattr(fig, "figure") and not hasattr(fig, "savefig"):
        fig = fig.figure  # an Axes was passed
    if not hasattr(fig, "savefig") or not hasattr(fig, "axes"):
        raise LabkitError(f"expects a matplotlib Figure, got {type(fig).__name__}", field=f"figure {name!r}")
    stem = name[:-4] if name.lower().endswith(".png") else name
    if not _FIG_NAME.match(stem):
        raise LabkitError(
            "figure names use letters, digits, '.', '_' and '-' only (no folders)", field=f"figure {name!r}"
        )
    check_figure(fig, stem)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.png"
    fig.savefig(path, dpi=FIGURE_DPI, bbox_inches="tight", format="png")
    return path
