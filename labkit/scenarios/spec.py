"""Scenario definitions: ``scenarios/<name>.yaml``, loaded, validated and parametrised.

A scenario file says which notebook to run and what a user may change::

    name: tour                       # must match the file name
    title: The reconcile loop, end to end
    summary: >
      One paragraph on what the scenario shows.
    notebook: notebooks/tour.ipynb   # relative to the labkit home (the repo root)
    parameters:                      # may be {} -- seed, cluster, out_dir are implicit
      poll_interval_s:
        type: float                  # int | float | bool | str | list
        default: 60
        help: Flux GitRepository .spec.interval, in seconds
        min: 1                       # optional, numbers (and lists of numbers)
        max: 3600
      provider:
        type: str
        default: flux
        help: which dialect reconciles
        choices: [flux, argo]        # optional
      intervals:
        type: list
        items: float                 # optional element type for lists
        default: [30, 60, 120]
        help: poll intervals to sweep
    metrics:                         # every key the notebook's metrics.json holds
      commit_to_applied_s: seconds from git push to the object applied
    clusters: [sim, kwok, kind, context]   # optional: where it runs (default [sim])
    real_cluster:                    # optional
      note: why it cannot run on a real cluster, or what differs there
      parameters:                    # defaults on a real cluster (wall time): compressed intervals
        poll_interval_s: 5

``clusters`` lists the kinds of ``--cluster`` value the scenario supports: ``sim`` (the
embedded simulator), ``kwok`` (the local control plane), ``kind``, ``context`` (any other
kubeconfig context).  ``labkit run`` refuses any other with one clear error, before
papermill starts, quoting ``real_cluster.note``.  On a real cluster the declared defaults
are overlaid with ``real_cluster.parameters`` (then with ``--param``): time there is wall
time, so the scenario's intervals are compressed to seconds.

Other top-level keys (timing distributions, a repo seed, ...) are kept in
``Scenario.extra`` for the scenario's own code.

Any problem is a :class:`labkit.core.errors.LabkitError` naming the scenario file and the
field, so the CLI prints one line instead of a traceback.  ``--param k=v`` strings are
coerced to the declared type by :meth:`Scenario.resolve_params`.

The scenarios live in ``<home>/scenarios``; the home is the repository root (the
parent of the ``labkit`` package folder) unless ``LABKIT_HOME`` names another one.
"""
from __future__ import annotations

import keyword
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from labkit.core.errors import LabkitError
from labkit.kube.locate import KINDS, kind_of  # what a ``cluster`` value names; KINDS: what ``clusters:`` may list

#: Parameters the runner injects into every notebook; a scenario may not declare them.
RESERVED_PARAMETERS = ("seed", "cluster", "out_dir")

TYPES = ("int", "float", "bool", "str", "list")
ITEM_TYPES = ("int", "float", "bool", "str")
_PARAM_KEYS = {"type", "default", "help", "choices", "min", "max", "items"}
_REQUIRED_TOP = ("name", "title", "summary", "notebook", "parameters", "metrics")
_CLUSTER_WORDS = {"sim": "the embedded simulator", "kwok": "the local control plane (kwok)",
                  "kind": "a kind cluster", "context": "a kubeconfig context"}
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}
_TYPE_WORDS = {"int": "an int", "float": "a float", "bool": "a bool (true/false)", "str": "a string", "list": "a list"}


# ------------------------------------------------------------------ where things are

def home() -> Path:
    """The labkit home: ``$LABKIT_HOME``, else the repository root holding the package."""
    env = os.environ.get("LABKIT_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parents[2]


def scenarios_dir() -> Path:
    return home() / "scenarios"


def notebooks_dir() -> Path:
    return home() / "notebooks"


def display_path(path: Path | str) -> str:
    """``path`` as a user should read it: relative to the current directory when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)


# ------------------------------------------------------------------ parameters

def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type_ok(kind: str, v: Any) -> bool:
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "float":
        return _is_number(v)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "str":
        return isinstance(v, str)
    if kind == "list":
        return isinstance(v, list)
    raise AssertionError(kind)


def _parse_scalar(kind: str, raw: str) -> Any:
    """Parse one command-line string as ``kind``; ``ValueError`` when it is not one."""
    text = raw.strip()
    if kind == "int":
        return int(text)
    if kind == "float":
        value = float(text)
        if math.isnan(value):
            raise ValueError("nan")
        return value
    if kind == "bool":
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(raw)
    if kind == "str":
        return raw
    raise AssertionError(kind)


@dataclass(frozen=True)
class Parameter:
    """One declared scenario parameter."""

    name: str
    type: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    items: str | None = None  # element type of a list parameter
    file: str = ""  # the scenario file, for messages

    @property
    def field(self) -> str:
        return f"parameters.{self.name}"

    def _fail(self, message: str, sub: str = "") -> LabkitError:
        return LabkitError(message, file=self.file, field=self.field + (f".{sub}" if sub else ""))

    def describe_type(self) -> str:
        if self.type == "list" and self.items:
            return f"list of {self.items}"
        return self.type

    def check(self, value: Any, *, sub: str = "") -> Any:
        """Validate an already-typed value (a YAML default or a coerced CLI value); returns it normalised."""
        if not _type_ok(self.type, value):
            raise self._fail(f"expects {_TYPE_WORDS[self.type]}, got {value!r} ({type(value).__name__})", sub)
        if self.type == "float":
            value = float(value)
        if self.type == "list":
            out = []
            for i, item in enumerate(value):
                if isinstance(item, (list, dict)):
                    raise self._fail(f"list items must be plain values, item {i} is {item!r}", sub)
                if self.items:
                    if not _type_ok(self.items, item):
                        raise self._fail(
                            f"expects a list of {self.items}, item {i} is {item!r} ({type(item).__name__})", sub
                        )
                    if self.items == "float":
                        item = float(item)
                self._check_bounds(item, sub, what=f"item {i} ({item!r})")
                out.append(item)
            return out
        self._check_bounds(value, sub, what=repr(value))
        return value

    def _check_bounds(self, value: Any, sub: str, *, what: str) -> None:
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) if isinstance(c, str) else str(c) for c in self.choices)
            raise self._fail(f"{what} is not one of the choices: {allowed}", sub)
        if _is_number(value):
            if self.min is not None and value < self.min:
                raise self._fail(f"{what} is below the minimum {self.min}", sub)
            if self.max is not None and value > self.max:
                raise self._fail(f"{what} is above the maximum {self.max}", sub)

    def coerce(self, raw: Any) -> Any:
        """Turn a ``--param`` string (or an already-typed value) into a validated value."""
        if not isinstance(raw, str):
            return self.check(raw)
        if self.type == "list":
            return self.check(self._parse_list(raw))
        try:
            value = _parse_scalar(self.type, raw)
        except ValueError:
            raise self._fail(f"expects {_TYPE_WORDS[self.type]}, got {raw!r}") from None
        return self.check(value)

    def _parse_list(self, raw: str) -> list[Any]:
        text = raw.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                parsed = yaml.safe_load(text)
            except yaml.YAMLError:
                parsed = None
            if not isinstance(parsed, list):
                raise self._fail(f"expects a list such as [1, 2, 3] or 1,2,3, got {raw!r}")
            if self.items:
                return [self._coerce_item(str(x)) if not isinstance(x, (list, dict)) else x for x in parsed]
            return parsed
        parts = [p.strip() for p in text.split(",")]
        if self.items:
            return [self._coerce_item(p) for p in parts]
        out: list[Any] = []
        for p in parts:
            try:
                v = yaml.safe_load(p)
            except yaml.YAMLError:
                v = p
            out.append(v if isinstance(v, (int, float, bool, str)) else p)
        return out

    def _coerce_item(self, text: str) -> Any:
        assert self.items is not None
        try:
            return _parse_scalar(self.items, text)
        except ValueError:
            raise self._fail(f"expects a list of {self.items}, item {text!r} is not {_TYPE_WORDS[self.items]}") from None


def _load_parameter(name: Any, spec: Any, file: str) -> Parameter:
    fld = f"parameters.{name}"
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise LabkitError(f"parameter name {name!r} is not a valid Python identifier", file=file, field=fld)
    if name in RESERVED_PARAMETERS:
        raise LabkitError(
            f"{name!r} is set by the runner for every scenario (--seed, --cluster, --out); do not declare it",
            file=file,
            field=fld,
        )
    if not isinstance(spec, dict):
        raise LabkitError("must be a mapping with type, default and help", file=file, field=fld)
    unknown = sorted(set(map(str, spec)) - _PARAM_KEYS)
    if unknown:
        raise LabkitError(
            f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_PARAM_KEYS))}", file=file, field=fld
        )
    for key in ("type", "default", "help"):
        if key not in spec:
            raise LabkitError(f"missing required key {key!r}", file=file, field=fld)
    kind = spec["type"]
    if kind not in TYPES:
        raise LabkitError(f"type must be one of {', '.join(TYPES)}, got {kind!r}", file=file, field=f"{fld}.type")
    if not isinstance(spec["help"], str) or not spec["help"].strip():
        raise LabkitError("help must be a non-empty string", file=file, field=f"{fld}.help")
    items = spec.get("items")
    if items is not None:
        if kind != "list":
            raise LabkitError("items is only allowed for type list", file=file, field=f"{fld}.items")
        if items not in ITEM_TYPES:
            raise LabkitError(
                f"items must be one of {', '.join(ITEM_TYPES)}, got {items!r}", file=file, field=f"{fld}.items"
            )
    numeric = kind in ("int", "float") or (kind == "list" and items in ("int", "float"))
    bounds: dict[str, float | None] = {}
    for key in ("min", "max"):
        val = spec.get(key)
        if val is not None:
            if not numeric:
                raise LabkitError(
                    f"{key} only applies to int, float and lists of numbers (type is {kind})",
                    file=file,
                    field=f"{fld}.{key}",
                )
            if not _is_number(val):
                raise LabkitError(f"{key} must be a number, got {val!r}", file=file, field=f"{fld}.{key}")
        bounds[key] = val
    if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
        raise LabkitError(f"min {bounds['min']} is greater than max {bounds['max']}", file=file, field=fld)
    choices = spec.get("choices")
    if choices is not None:
        if not isinstance(choices, list) or not choices:
            raise LabkitError("choices must be a non-empty list", file=file, field=f"{fld}.choices")
        element = items if kind == "list" else kind
        if kind == "list" and element is None:
            raise LabkitError("choices on a list parameter need items: <type>", file=file, field=f"{fld}.choices")
        for c in choices:
            if not _type_ok(element, c):
                raise LabkitError(
                    f"choice {c!r} is not {_TYPE_WORDS[element]}", file=file, field=f"{fld}.choices"
                )
        choices = tuple(float(c) if element == "float" else c for c in choices)
    param = Parameter(
        name=name,
        type=kind,
        default=None,
        help=spec["help"].strip(),
        choices=choices,
        min=bounds["min"],
        max=bounds["max"],
        items=items,
        file=file,
    )
    default = param.check(spec["default"], sub="default")
    return replace(param, default=default)


# ------------------------------------------------------------------ scenarios

@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    summary: str
    notebook: Path  # absolute
    notebook_rel: str  # as written in the YAML
    parameters: dict[str, Parameter]
    metrics: dict[str, str]
    file: Path
    extra: dict[str, Any] = field(default_factory=dict)
    clusters: tuple[str, ...] = ("sim",)
    real_defaults: dict[str, Any] = field(default_factory=dict)
    real_note: str = ""

    @property
    def display_file(self) -> str:
        return display_path(self.file)

    def check_cluster(self, cluster: str) -> str:
        """The kind of target ``cluster`` names; a ``LabkitError`` on ``cluster`` if the scenario does not run there."""

        if not isinstance(cluster, str) or not cluster.strip():
            raise LabkitError("--cluster expects sim, kwok, kind or a kube context name", field="cluster")
        kind = kind_of(cluster)
        if kind not in self.clusters:
            where = ", ".join(_CLUSTER_WORDS[k] for k in self.clusters)
            why = f": {self.real_note}" if self.real_note else ""
            raise LabkitError(
                f"scenario {self.name!r} cannot run on {cluster.strip()!r} ({_CLUSTER_WORDS[kind]}); it runs on "
                f"{where} (clusters: in {self.display_file}){why}",
                field="cluster",
            )
        return kind

    def defaults(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.parameters.items()}

    def resolve_params(self, overrides: Mapping[str, Any] | Iterable[str] | None = None, *,
                       cluster: str = "sim") -> dict[str, Any]:
        """Declared defaults overlaid with ``overrides`` (``{"k": "v"}`` or ``["k=v", ...]``), coerced and checked.

        On a real ``cluster`` the defaults are first overlaid with ``real_cluster.parameters``;
        a cluster the scenario does not support is a ``LabkitError`` (``check_cluster``).
        """
        kind = self.check_cluster(cluster)
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, Mapping):
            overrides = parse_assignments(overrides)
        values = self.defaults()
        if kind != "sim":
            values.update(self.real_defaults)
        for key, raw in overrides.items():
            if key in RESERVED_PARAMETERS:
                flag = {"seed": "--seed", "cluster": "--cluster", "out_dir": "--out"}[key]
                raise LabkitError(f"{key!r} is not a --param; use {flag}", file=self.display_file, field=key)
            if key not in self.parameters:
                if self.parameters:
                    valid = "valid parameters: " + ", ".join(sorted(self.parameters))
                else:
                    valid = "this scenario declares no parameters (only --seed and --cluster)"
                raise LabkitError(
                    f"unknown parameter {key!r} for scenario {self.name!r}; {valid}",
                    file=self.display_file,
                    field="parameters",
                )
            values[key] = self.parameters[key].coerce(raw)
        return values


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; a later repeat wins."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise LabkitError(f"--param expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def _mark(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return problem


def load(path: Path | str, *, base: Path | None = None) -> Scenario:
    """Load and validate one scenario file; ``notebook`` is resolved against ``base`` (default: the home)."""
    path = Path(path)
    file = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabkitError("no such scenario file", file=file) from None
    except OSError as exc:
        raise LabkitError(f"cannot read scenario file: {exc.strerror}", file=file) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LabkitError(f"malformed YAML: {_mark(exc)}", file=file) from None
    if not isinstance(data, dict):
        raise LabkitError("a scenario file must be a YAML mapping (name, title, summary, notebook, ...)", file=file)
    for key in _REQUIRED_TOP:
        if key not in data:
            raise LabkitError(f"missing required field {key!r}", file=file, field=key)
    for key in ("name", "title", "summary", "notebook"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise LabkitError("must be a non-empty string", file=file, field=key)
    name = data["name"].strip()
    if not _NAME_RE.match(name):
        raise LabkitError(f"{name!r} is not a valid scenario name (lower-case letters, digits, '-')", file=file, field="name")
    if name != path.stem:
        raise LabkitError(f"name {name!r} does not match the file name {path.name!r}", file=file, field="name")

    base = home() if base is None else base
    notebook_rel = data["notebook"].strip()
    notebook = (base / notebook_rel).resolve()
    if notebook.suffix != ".ipynb":
        raise LabkitError(f"{notebook_rel!r} is not a .ipynb notebook", file=file, field="notebook")
    if not notebook.is_file():
        raise LabkitError(f"notebook {notebook_rel!r} does not exist (looked in {base})", file=file, field="notebook")

    params_spec = data["parameters"]
    if params_spec is None:
        params_spec = {}
    if not isinstance(params_spec, dict):
        raise LabkitError("must be a mapping of parameter name to its spec (or {})", file=file, field="parameters")
    parameters = {str(n): _load_parameter(n, s, file) for n, s in params_spec.items()}

    metrics_spec = data["metrics"]
    if not isinstance(metrics_spec, dict) or not metrics_spec:
        raise LabkitError("must be a non-empty mapping of metric key to its description", file=file, field="metrics")
    metrics: dict[str, str] = {}
    for key, desc in metrics_spec.items():
        if not isinstance(key, str) or not key:
            raise LabkitError(f"metric key {key!r} must be a non-empty string", file=file, field="metrics")
        if not isinstance(desc, str) or not desc.strip():
            raise LabkitError("needs a description (a non-empty string)", file=file, field=f"metrics.{key}")
        metrics[key] = " ".join(desc.split())

    clusters, real_defaults, real_note = _load_clusters(data, parameters, file)
    extra = {k: v for k, v in data.items() if k not in _REQUIRED_TOP and k not in ("clusters", "real_cluster")}
    return Scenario(
        clusters=clusters,
        real_defaults=real_defaults,
        real_note=real_note,
        name=name,
        title=data["title"].strip(),
        summary=" ".join(data["summary"].split()),
        notebook=notebook,
        notebook_rel=notebook_rel,
        parameters=parameters,
        metrics=metrics,
        file=path.resolve(),
        extra=extra,
    )


def _load_clusters(data: dict, parameters: dict[str, Parameter],
                   file: str) -> tuple[tuple[str, ...], dict[str, Any], str]:
    """``clusters:`` and ``real_cluster:`` (see the module docstring), validated."""
    raw = data.get("clusters", ["sim"])
    if not isinstance(raw, list) or not raw or not all(isinstance(c, str) for c in raw):
        raise LabkitError(f"must be a non-empty list of {', '.join(KINDS)}", file=file, field="clusters")
    unknown = [c for c in raw if c not in KINDS]
    if unknown:
        raise LabkitError(f"unknown cluster kind(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(KINDS)}",
                          file=file, field="clusters")
    real = data.get("real_cluster") or {}
    if not isinstance(real, dict):
        raise LabkitError("must be a mapping with note and/or parameters", file=file, field="real_cluster")
    extra_keys = sorted(set(map(str, real)) - {"note", "parameters"})
    if extra_keys:
        raise LabkitError(f"unknown key(s) {', '.join(extra_keys)}; allowed: note, parameters", file=file,
                          field="real_cluster")
    note = real.get("note") or ""
    if not isinstance(note, str):
        raise LabkitError("must be a string", file=file, field="real_cluster.note")
    params = real.get("parameters") or {}
    if not isinstance(params, dict):
        raise LabkitError("must be a mapping of parameter name to value", file=file, field="real_cluster.parameters")
    defaults: dict[str, Any] = {}
    for key, value in params.items():
        if key not in parameters:
            raise LabkitError(f"{key!r} is not a declared parameter", file=file, field=f"real_cluster.parameters.{key}")
        try:
            defaults[key] = parameters[key].check(value)
        except LabkitError as exc:
            raise LabkitError(exc.detail, file=file, field=f"real_cluster.parameters.{key}") from None
    return tuple(dict.fromkeys(raw)), defaults, " ".join(note.split())


def discover(directory: Path | None = None) -> list[Path]:
    """Scenario files in ``directory`` (default: ``<home>/scenarios``), sorted by name."""
    directory = scenarios_dir() if directory is None else directory
    if not directory.is_dir():
        raise LabkitError("no scenarios folder (set LABKIT_HOME to the labkit checkout)", file=str(directory))
    return sorted(p for p in directory.glob("*.yaml") if p.is_file())


def load_all(directory: Path | None = None) -> list[Scenario]:
    directory = scenarios_dir() if directory is None else directory
    return [load(p, base=directory.parent) for p in discover(directory)]


def names(directory: Path | None = None) -> list[str]:
    return [p.stem for p in discover(directory)]


def get(name: str, directory: Path | None = None) -> Scenario:
    """The scenario called ``name``; an unknown name lists the known ones."""
    directory = scenarios_dir() if directory is None else directory
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = names(directory)
        listing = ", ".join(known) if known else "(none)"
        raise LabkitError(f"unknown scenario {name!r}; known scenarios: {listing}", file=display_path(directory))
    return load(path, base=directory.parent)


# ------------------------------------------------------------------ docs

def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def metrics_cell_doc(scenario_name: str) -> str:
    """Markdown listing the scenario's metric keys and their descriptions (a notebook's first cell)."""
    sc = get(scenario_name)
    rows = "\n".join(f"| `{key}` | {_md_cell(desc)} |" for key, desc in sc.metrics.items())
    return (
        f"### {sc.title}\n\n"
        f"{sc.summary}\n\n"
        f"This notebook writes `metrics.json` to `out_dir` with these keys "
        f"(declared in `scenarios/{sc.name}.yaml`):\n\n"
        f"| key | meaning |\n|---|---|\n{rows}\n"
    )
