"""Plaintext secrets in the repository: ``labkit.secrets.guard`` when present, a minimal check otherwise.

``scan_file(file, docs)`` returns ``(document, SecretFinding)`` pairs for
one YAML file's documents as ``labkit.tryrepo.index`` read them — the tree's
files from the index, and earlier versions of files read from git history,
both through ``labkit.gitops.yamlbounds``, so the scan never parses text
itself and never sees a file over a limit (an alias bomb in ``docs/`` is
refused by the index, not expanded here).  Findings name the offending keys
and fields, never their values.

With ``labkit.secrets.guard`` (the project's commit guard) importable, its
per-document check (the one ``check_text`` runs on each document it parses)
decides what is a credential — plaintext ``Secret`` values
(SOPS-encrypted Secrets with a ``mac`` and ``ENC[...]`` values, SealedSecrets
and ExternalSecrets pass), base64 values that decode to credential-looking
text, known token shapes (PEM keys, age keys, AWS / GitHub / Slack tokens,
JWTs), and credential-named literals in ConfigMaps and ``env`` — so
``labkit try`` and the guard agree on every finding.  One finding per object
and rule, listing the fields.

Without it (older checkouts), the minimal check here applies:

* a core ``v1`` ``Secret`` with a non-empty value under ``data`` (base64 is an
  encoding, not encryption) or ``stringData`` — unless the document is
  SOPS-encrypted (a top-level ``sops:`` block, values ``ENC[...]``), or every
  value is a Flux ``postBuild`` placeholder (``${DB_PASSWORD}``);
* a credential-looking literal: a container ``env`` entry whose name says
  password / secret / token / api key / credentials / private key, with a
  literal ``value``; a ``ConfigMap`` key with such a name.

In both cases a kustomize ``secretGenerator`` with ``literals`` (the value is in
the kustomization file) or ``files`` / ``envs`` (the value is a file in the
repository) is reported too: the guard does not look inside kustomizations.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from labkit.tryrepo.index import SourceDoc

__all__ = ["SecretFinding", "scan_doc", "scan_file", "guard_available", "field_path", "CREDENTIAL_NAME"]

CREDENTIAL_NAME = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|apikey|credential|private[_-]?key|access[_-]?key)", re.I)
_PLACEHOLDER = re.compile(r"^\$\{[^}]+\}$")
_SOPS_VALUE = re.compile(r"^ENC\[")


@dataclass
class SecretFinding:
    kind: str  # secret | generator | env | configmap
    path: list[Any]  # field path inside the document, for the line
    keys: list[str]  # the offending keys (never the values)
    detail: str


def _real_values(values: dict[str, Any]) -> list[str]:
    out = []
    for k, v in values.items():
        if v is None or v == "":
            continue
        text = str(v)
        if _PLACEHOLDER.match(text.strip()) or _SOPS_VALUE.match(text.strip()):
            continue
        out.append(str(k))
    return out


def scan_doc(doc: SourceDoc) -> list[SecretFinding]:
    """Plaintext secrets in one YAML document (see the module docstring)."""
    data = doc.data
    if not isinstance(data, dict):
        return []
    out: list[SecretFinding] = []
    kind = doc.kind
    if kind == "Secret" and doc.api_version == "v1":
        if isinstance(data.get("sops"), dict):
            return []
        for field in ("data", "stringData"):
            values = data.get(field)
            if isinstance(values, dict):
                keys = _real_values(values)
                if keys:
                    how = "base64-encoded (not encrypted)" if field == "data" else "in plain text"
                    out.append(SecretFinding("secret", [field, keys[0]], keys,
                                             f"{field} holds {len(keys)} value(s) {how}"))
        return out
    if kind in ("Kustomization", "") and ("secretGenerator" in data):
        for i, g in enumerate(data.get("secretGenerator") or []):
            if not isinstance(g, dict):
                continue
            lits = [str(x).split("=", 1)[0] for x in g.get("literals") or []
                    if isinstance(x, str) and not _PLACEHOLDER.match(x.split("=", 1)[-1])]
            files = [str(x) for x in (g.get("files") or []) + (g.get("envs") or []) if isinstance(x, str)]
            if lits:
                out.append(SecretFinding("generator", ["secretGenerator", i, "literals"], lits,
                                         f"secretGenerator {g.get('name')!s} has literal values"))
            if files:
                out.append(SecretFinding("generator", ["secretGenerator", i], files,
                                         f"secretGenerator {g.get('name')!s} reads plaintext files from the "
                                         "repository"))
        return out
    if kind == "ConfigMap":
        values = data.get("data")
        if isinstance(values, dict):
            keys = [k for k in _real_values(values) if CREDENTIAL_NAME.search(k)]
            if keys:
                out.append(SecretFinding("configmap", ["data", keys[0]], keys,
                                         "a ConfigMap holds credential-named keys"))
        return out
    for path, env in _envs(data):
        if CREDENTIAL_NAME.search(str(env.get("name") or "")) and isinstance(env.get("value"), (str, int)) \
                and str(env.get("value")) and not _PLACEHOLDER.match(str(env.get("value"))):
            out.append(SecretFinding("env", path, [str(env.get("name"))],
                                     f"env {env.get('name')} has a literal value"))
    return out


def _envs(data: dict[str, Any]) -> Iterable[tuple[list[Any], dict[str, Any]]]:
    spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
    candidates: list[tuple[list[Any], Any]] = []
    if data.get("kind") == "Pod":
        candidates.append((["spec"], spec))
    tmpl = spec.get("template") if isinstance(spec.get("template"), dict) else None
    if tmpl is not None:
        candidates.append((["spec", "template", "spec"], tmpl.get("spec")))
    jt = spec.get("jobTemplate") if isinstance(spec.get("jobTemplate"), dict) else None
    if jt is not None:
        candidates.append((["spec", "jobTemplate", "spec", "template", "spec"],
                           (((jt.get("spec") or {}).get("template") or {}).get("spec"))))
    for base, pod in candidates:
        if not isinstance(pod, dict):
            continue
        for ckey in ("initContainers", "containers"):
            for c in pod.get(ckey) or []:
                if not isinstance(c, dict):
                    continue
                for e in c.get("env") or []:
                    if isinstance(e, dict):
                        yield base + [ckey, {"name": c.get("name")}, "env", {"name": e.get("name")}], e


def guard_available() -> bool:
    """Whether ``labkit.secrets.guard`` (with ``check_text``) can be used."""
    import importlib.util

    if importlib.util.find_spec("labkit.secrets") is None or importlib.util.find_spec("labkit.secrets.guard") is None:
        return False
    try:
        from labkit.secrets import guard
    except Exception:  # noqa: BLE001 - a half-written module: fall back
        return False
    return callable(getattr(guard, "check_text", None))


def field_path(field: str) -> list[Any]:
    """``spec.template.spec.containers[0].env[2].value`` → ``["spec", ..., "containers", 0, "env", 2, "value"]``."""
    out: list[Any] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", field):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return out


def _label(data: Any) -> str:
    md = data.get("metadata") if isinstance(data, dict) and isinstance(data.get("metadata"), dict) else {}
    ns, name = md.get("namespace"), md.get("name", "")
    kind = data.get("kind", "") if isinstance(data, dict) else ""
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


def scan_file(file: str, docs: list[SourceDoc]) -> list[tuple[SourceDoc, SecretFinding]]:
    """Findings of one YAML file's documents, each with the document it is in (see the module docstring)."""
    out: list[tuple[SourceDoc, SecretFinding]] = []
    check_doc = _guard_check_doc()
    if check_doc is None:
        for d in docs:
            out.extend((d, f) for f in scan_doc(d))
        return out
    for d in docs:  # secretGenerator: not covered by the guard
        out.extend((d, f) for f in scan_doc(d) if f.kind == "generator")
    groups: dict[tuple[str, str], list[Any]] = {}
    for d in docs:
        for f in check_doc(d.data, file, d.index):
            groups.setdefault((f.object, f.rule), []).append(f)
    for (obj, rule), fs in groups.items():
        doc = next((d for d in docs if _label(d.data) == obj), None) or \
            next((d for d in docs if isinstance(d.data, dict)), None)
        if doc is None:
            continue
        fields = sorted((f.field for f in fs), key=lambda x: doc.line_of(field_path(x)))  # file order
        detail = f"{', '.join(fields)} {fs[0].reason}" if len(fs) == 1 else \
            f"{len(fs)} fields ({', '.join(fields)}) {fs[0].reason.replace('is a ', 'are ', 1)}"
        out.append((doc, SecretFinding(rule, field_path(fields[0]), fields, detail)))
    return out


@functools.lru_cache(maxsize=1)
def _guard_check_doc() -> Callable[[Any, str, int], list[Any]] | None:
    """The guard's per-document check (``check_text`` minus its own, unbounded, YAML parse), or None."""
    if not guard_available():
        return None
    from labkit.secrets import guard

    fn = getattr(guard, "_check_doc", None)
    return fn if callable(fn) else None
