"""ApplicationSet templates: fasttemplate ``{{param}}`` strings, and a subset of Go templates.

Argo's ApplicationSet controller renders the ``template`` once per parameter set,
in one of two languages:

``goTemplate: false`` (the default) — fasttemplate
    ``{{ name }}``, ``{{path.basename}}``, ``{{metadata.labels.env}}``: every
    ``{{ ... }}`` whose (trimmed) content is a parameter name is replaced by the
    parameter's string value; an unknown name is **left as it is** (Argo keeps the
    original tag), so a typo shows up verbatim in the generated Application.

``goTemplate: true`` — Go ``text/template``, labkit's subset
    Actions ``{{ PIPELINE }}`` (``{{- ... -}}`` trims are accepted) where a
    pipeline is an argument followed by ``| function`` calls.  Arguments:
    field chains from the parameters (``.path.basename``, ``.name``,
    ``.metadata.labels.env``, ``.path.segments``), string and number literals.
    Functions: ``lower``, ``upper``, ``title``, ``trim``, ``trunc N``,
    ``default X``, ``quote``, ``replace OLD NEW``, ``index COLLECTION KEY...``,
    ``printf FORMAT ARGS...`` (``%s``/``%d``/``%v``), ``join SEP``,
    ``normalize`` (Argo's sanitiser).  A missing map key renders ``<no value>``
    by default; with ``goTemplateOptions: ["missingkey=error"]`` it is an error
    in Go's words: ``template: :1:2: executing "" at <.path.basenam>: map has
    no entry for key "basenam"``.  ``if``/``range``/``with`` blocks are not
    supported and are refused with a clear message.

``render_template(template, params, go=..., options=...)`` renders every string
of a nested template (keys are left alone) and returns a new structure; errors
are ``LabkitError`` naming the template field.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping

from labkit.core.errors import LabkitError

__all__ = ["render_template", "render_string", "sanitize_name", "TemplateError"]

_FAST = re.compile(r"\{\{(.*?)\}\}", re.S)
_ACTION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.S)


class TemplateError(LabkitError):
    """A template that cannot be rendered with the given parameters."""


def sanitize_name(name: str) -> str:
    """Argo's ``SanitizeName``: lower-case, invalid characters to ``-``, at most 253 characters."""
    out = re.sub(r"[^a-z0-9.-]", "-", name.lower())
    out = re.sub(r"-+", "-", out).strip("-.")
    return out[:253]


def _fast(text: str, params: Mapping[str, Any]) -> str:
    def repl(m: re.Match[str]) -> str:
        key = m.group(1).strip()
        if key in params:
            v = params[key]
            return v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list)) else str(v)
        return m.group(0)
    return _FAST.sub(repl, text)


# ------------------------------------------------------------------ Go template subset

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)|(?P<num>-?\d+(?:\.\d+)?)|(?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)'
                    r'|(?P<pipe>\|)|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<paren>[()]))')


class _Missing(Exception):
    def __init__(self, field: str, key: str):
        self.field, self.key = field, key


_NO_VALUE = "<no value>"


def _lookup(params: Any, chain: str, option: str) -> Any:
    if chain == ".":
        return params
    cur = params
    for part in chain.strip(".").split("."):
        if isinstance(cur, Mapping):
            if part in cur:
                cur = cur[part]
                continue
            if option == "error":
                raise _Missing(chain, part)
            return None
        if option == "error":
            raise _Missing(chain, part)
        return None
    return cur


def _to_text(v: Any) -> str:
    if v is None:
        return _NO_VALUE
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + " ".join(_to_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_to_text(x)}" for k, x in sorted(v.items())) + "]"
    return str(v)


def _printf(fmt: str, args: list[Any]) -> str:
    out, i = [], 0
    parts = re.split(r"(%[sdvq%])", fmt)
    for p in parts:
        if p == "%%":
            out.append("%")
        elif p in ("%s", "%d", "%v", "%q"):
            v = args[i] if i < len(args) else "%!" + p[1] + "(MISSING)"
            i += 1
            out.append(json.dumps(_to_text(v)) if p == "%q" else _to_text(v))
        else:
            out.append(p)
    return "".join(out)


_FUNCS = {"lower", "upper", "title", "trim", "trunc", "default", "quote", "replace", "index", "printf", "join",
          "normalize"}


def _call(name: str, args: list[Any], piped: Any, has_piped: bool) -> Any:
    full = args + ([piped] if has_piped else [])
    text = lambda v: "" if v is None else _to_text(v)  # noqa: E731
    if name == "lower":
        return text(full[-1]).lower()
    if name == "upper":
        return text(full[-1]).upper()
    if name == "title":
        return text(full[-1]).title()
    if name == "trim":
        return text(full[-1]).strip()
    if name == "quote":
        return json.dumps(text(full[-1]))
    if name == "normalize":
        return sanitize_name(text(full[-1]))
    if name == "trunc":
        n, s = int(full[0]), text(full[1])
        return s[:n] if n >= 0 else s[n:]
    if name == "default":
        dflt, v = full[0], full[1] if len(full) > 1 else None
        return dflt if v in (None, "", [], {}, 0, False) else v
    if name == "replace":
        return text(full[2]).replace(text(full[0]), text(full[1]))
    if name == "join":
        sep, lst = text(full[0]), full[1]
        return sep.join(text(x) for x in (lst or []))
    if name == "printf":
        return _printf(text(full[0]), full[1:])
    if name == "index":
        cur = full[0]
        for k in full[1:]:
            if isinstance(cur, list):
                cur = cur[int(k)] if 0 <= int(k) < len(cur) else None
            elif isinstance(cur, Mapping):
                cur = cur.get(k)
            else:
                cur = None
        return cur
    raise LabkitError(f'function "{name}" not defined')


def _eval_action(body: str, params: Any, option: str, offset: int) -> str:
    body_s = body.strip()
    if not body_s:
        raise LabkitError("missing value for command")
    first = re.match(r"(if|range|with|end|else|define|template|block)\b", body_s)
    if first:
        raise LabkitError(f'"{first.group(1)}" blocks are not supported by labkit\'s Go template subset')
    if body_s.startswith("/*"):
        return ""
    stages: list[list[tuple[str, str]]] = [[]]
    pos = 0
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if not m or m.end() == pos:
            rest = body[pos:].strip()
            if not rest:
                break
            raise LabkitError(f"unexpected {rest[:10]!r} in command")
        kind = m.lastgroup or ""
        if kind == "pipe":
            stages.append([])
        else:
            stages[-1].append((kind, m.group(kind)))
        pos = m.end()
    value: Any = None
    has_value = False
    for stage in stages:
        if not stage:
            raise LabkitError("missing value for command")
        kind, tok = stage[0]
        args: list[Any] = []
        for k, t in stage[1:]:
            args.append(_arg(k, t, params, option, offset, body))
        if kind == "ident":
            if tok not in _FUNCS:
                raise LabkitError(f'function "{tok}" not defined')
            value = _call(tok, args, value, has_value)
        else:
            if has_value or args:
                raise LabkitError(f"can't give argument to non-function {tok}")
            value = _arg(kind, tok, params, option, offset, body)
        has_value = True
    return _to_text(value)


def _arg(kind: str, tok: str, params: Any, option: str, offset: int, body: str) -> Any:
    if kind == "str":
        return json.loads(tok) if tok.startswith('"') else tok[1:-1]
    if kind == "num":
        return float(tok) if "." in tok else int(tok)
    if kind == "field":
        try:
            return _lookup(params, tok, option)
        except _Missing as miss:
            col = offset + body.index(tok)
            raise LabkitError(f'template: :1:{col}: executing "" at <{miss.field}>: map has no entry for key '
                              f'"{miss.key}"') from None
    raise LabkitError(f"unexpected {tok!r} in command")


def _go(text: str, params: Any, options: tuple[str, ...]) -> str:
    option = "default"
    for o in options:
        if o.startswith("missingkey="):
            option = o.split("=", 1)[1]
    out: list[str] = []
    pos = 0
    for m in _ACTION.finditer(text):
        chunk = text[pos:m.start()]
        if m.group(1):
            chunk = chunk.rstrip()
        out.append(chunk)
        value = _eval_action(m.group(2), params, option, m.start(2))
        out.append("" if (option == "zero" and value == _NO_VALUE) else value)
        pos = m.end()
        if m.group(3):
            rest = text[pos:]
            pos += len(rest) - len(rest.lstrip())
    out.append(text[pos:])
    if "{{" in text[pos:]:
        raise LabkitError("unclosed action")
    return "".join(out)


def render_string(text: str, params: Mapping[str, Any], *, go: bool = False, options: tuple[str, ...] = ()) -> str:
    return _go(text, params, options) if go else _fast(text, params)


def render_template(template: Any, params: Mapping[str, Any], *, go: bool = False, options: tuple[str, ...] = (),
                    path: str = "spec.template") -> Any:
    """Render every string in ``template`` (see module docstring); errors name the template field."""
    if isinstance(template, str):
        if "{{" not in template:
            return template
        try:
            return render_string(template, params, go=go, options=options)
        except LabkitError as err:
            raise TemplateError(err.detail, field=path) from None
    if isinstance(template, Mapping):
        return {k: render_template(v, params, go=go, options=options, path=f"{path}.{k}") for k, v in template.items()}
    if isinstance(template, list):
        return [render_template(v, params, go=go, options=options, path=f"{path}[{i}]") for i, v in enumerate(template)]
    return template
