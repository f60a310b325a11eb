"""A plaintext-secret guard for labkit's git helpers: refuse credentials before they reach git.

Why
===

Git never forgets: a password committed once lives in every clone and every
fork, and removing it needs a history rewrite *and* a rotation.  Tools such as
gitleaks, detect-secrets and GitHub's push protection run as pre-commit hooks
or at push time; this module is labkit's version of that hook, aimed at
Kubernetes manifests.

What is refused
===============

``check_changes(changes)`` looks at every YAML/JSON file a commit would write
(``{path: text}``, as ``ManifestRepo.commit`` takes them) and reports
``Finding`` records — file, document, object, field and rule, **never the
value**:

* ``plaintext-secret`` — a ``v1`` ``Secret`` that is not SOPS-encrypted (no
  ``sops`` stanza, or values that are not ``ENC[...]``) with any
  ``data`` / ``stringData`` entry: one finding per key.  A Secret's values are
  credentials by definition; base64 is an encoding, not encryption.
* ``base64-credential`` — in any other object, a string value that decodes
  from base64 to printable text that looks like a credential: the key names a
  credential (``password``, ``passwd``, ``secret``, ``token``, ``api_key``,
  ``apikey``, ``access_key``, ``private_key``, ``credentials``, ``auth``) or the
  decoded text matches a known token shape, or it is long and of high entropy
  (at least 20 characters and 3.5 bits of Shannon entropy per character with
  mixed character classes).
* ``credential-pattern`` — a value (plain or decoded) matching a known token
  shape: a PEM private key block, an age secret key (``AGE-SECRET-KEY-1…``),
  an AWS access key id (``AKIA…``/``ASIA…``), GitHub tokens (``ghp_``, ``gho_``,
  ``ghs_``, ``github_pat_``), Slack tokens (``xox[baprs]-``), a JWT.
* ``credential-value`` — a plain (non-base64) string value under a credential
  key name in a ConfigMap ``data`` or a container ``env[].value``, unless it is
  empty or a ``${VAR}`` placeholder.

What passes: SOPS-encrypted Secrets (a ``sops`` stanza with a ``mac`` and
only ``ENC[...]`` values), ``SealedSecret`` manifests (their
``encryptedData`` is RSA/AES ciphertext that decodes to binary, not text),
``ExternalSecret`` / ``SecretStore`` (references, not values), ``.sops.yaml``
(age *recipients* are public keys) and everything that is not YAML/JSON.

Using it
========

``guarded_commit(repo, changes, message=, author=, ...)`` runs the check and
commits only when it finds nothing; otherwise it raises
``PlaintextSecretRefused`` (a ``LabkitError``) whose message names each file
and field — "refusing to commit: apps/db/secret.yaml: Secret/podinfo/db field
data.password is a plaintext secret value (…)".  ``GuardedRepo(repo)`` wraps a
``ManifestRepo`` so that its ``commit``, ``open_pull_request`` and
``seed``-free writes go through the same check (every other attribute is the
repository's own); ``guarded_working_copy_commit(wc, ...)`` checks what a
clone's ``git add -A`` would stage.  A refusal is recorded in the repository's
event log as ``CommitRefused`` with the paths and fields.

``scan_history(repo)`` is the after-the-fact audit (what ``gitleaks detect``
does): every commit reachable from every branch is compared with its first
parent and each finding in a file the commit added or changed is listed with
the commit SHA — so a credential that got in before the guard existed (or
through a path that skipped it) is found, with where to start the clean-up.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

import yaml

from labkit.core.errors import LabkitError

__all__ = ["Finding", "PlaintextSecretRefused", "check_changes", "check_text", "guarded_commit", "GuardedRepo",
           "guarded_working_copy_commit", "scan_history"]

_YAML_SUFFIXES = (".yaml", ".yml", ".json")
_CRED_KEY = re.compile(r"(pass(word|wd)?|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|credential|auth|pwd)",
                       re.I)
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("PEM private key", re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----")),
    ("age secret key", re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{58}")),
    ("AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{22,}")),
    ("Slack token", re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}")),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
]
_ENC = re.compile(r"^ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:\w+\]$")
_B64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_PASSING_KINDS = {("bitnami.com", "SealedSecret"), ("external-secrets.io", "ExternalSecret"),
                  ("external-secrets.io", "SecretStore"), ("external-secrets.io", "ClusterSecretStore")}


@dataclass(frozen=True)
class Finding:
    """One credential-looking value: where it is and why it was flagged (never the value)."""

    path: str
    object: str
    field: str
    rule: str
    reason: str
    commit: str = ""

    def describe(self) -> str:
        where = f"{self.commit[:12]} " if self.commit else ""
        obj = f"{self.object} " if self.object else ""
        return f"{where}{self.path}: {obj}field {self.field} {self.reason}"


class PlaintextSecretRefused(LabkitError):
    """A commit refused by the guard; ``findings`` lists what was found."""

    def __init__(self, findings: list[Finding]):
        self.findings = findings
        lines = "; ".join(f.describe() for f in findings)
        super().__init__(f"refusing to commit: {lines}. Encrypt it with SOPS (labkit.secrets.sops) or seal it "
                         "with kubeseal (labkit.secrets.sealed), or keep it in an external secrets manager")
        self.file = findings[0].path if findings else None


# ------------------------------------------------------------------ heuristics

def _entropy(text: str) -> float:
    if not text:
        return 0.0
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _pattern(text: str) -> str | None:
    for name, rx in _PATTERNS:
        if rx.search(text):
            return name
    return None


def _high_entropy(text: str) -> bool:
    if len(text) < 20 or " " in text.strip():
        return False
    classes = sum(bool(re.search(rx, text)) for rx in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"))
    return classes >= 3 and _entropy(text) >= 3.5


def _decode_b64(value: str) -> str | None:
    v = value.strip()
    if len(v) < 8 or len(v) % 4 or not _B64.match(v):
        return None
    try:
        raw = base64.b64decode(v, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not text or any(ord(c) < 32 and c not in "\n\r\t" for c in text):
        return None
    return text


def _obj_label(doc: Mapping[str, Any]) -> str:
    md = doc.get("metadata") or {}
    ns = md.get("namespace")
    name = md.get("name", "")
    return f"{doc.get('kind', '')}/{ns}/{name}" if ns else f"{doc.get('kind', '')}/{name}"


def _group(api_version: Any) -> str:
    s = str(api_version or "")
    return s.split("/")[0] if "/" in s else ""


def _sops_encrypted(doc: Mapping[str, Any]) -> bool:
    sops = doc.get("sops")
    if not isinstance(sops, dict) or not sops.get("mac"):
        return False
    for section in ("data", "stringData"):
        for v in (doc.get(section) or {}).values():
            if not (isinstance(v, str) and _ENC.match(v)):
                return False
    return True


def _walk(value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """``(field path, last key, string value)`` for every string leaf."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, path.rsplit(".", 1)[-1].split("[")[0], value


def _env_key(field: str, doc_value: Any) -> str | None:
    """For ``...env[3].value`` the env var's name."""
    m = re.search(r"env\[(\d+)\]\.value$", field)
    if not m:
        return None
    node: Any = doc_value
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", field.rsplit(".value", 1)[0]):
        if part.startswith("["):
            idx = int(part[1:-1])
            node = node[idx] if isinstance(node, list) and idx < len(node) else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None
    return node.get("name") if isinstance(node, dict) else None


def _check_doc(doc: Any, path: str, index: int) -> list[Finding]:
    if not isinstance(doc, dict):
        return []
    kind = doc.get("kind")
    label = _obj_label(doc) if kind else f"document {index}"
    out: list[Finding] = []
    if (_group(doc.get("apiVersion")), kind) in _PASSING_KINDS:
        return []
    if kind == "Secret" and _group(doc.get("apiVersion")) == "":
        has_sops = isinstance(doc.get("sops"), dict) and bool(doc["sops"].get("mac"))
        for section in ("data", "stringData"):
            for k, v in sorted((doc.get(section) or {}).items()):
                if has_sops and isinstance(v, str) and _ENC.match(v):
                    continue  # this value is SOPS ciphertext
                out.append(Finding(path, label, f"{section}.{k}", "plaintext-secret",
                                   "is a plaintext secret value (the Secret is neither SOPS-encrypted nor sealed; "
                                   "base64 is an encoding, not encryption)"))
        return out
    if "sops" in doc and _sops_encrypted(doc):
        return []
    for field, key, value in _walk({k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}, ""):
        if field.startswith("metadata.name") or field.startswith("metadata.namespace"):
            continue
        name = _env_key(field, doc) or key
        hit = _pattern(value)
        if hit:
            out.append(Finding(path, label, field, "credential-pattern", f"looks like a credential ({hit})"))
            continue
        decoded = _decode_b64(value)
        if decoded is not None:
            hit = _pattern(decoded)
            if hit or _CRED_KEY.search(name) or _high_entropy(decoded):
                why = hit or ("its key names a credential" if _CRED_KEY.search(name) else "high entropy")
                out.append(Finding(path, label, field, "base64-credential",
                                   f"decodes from base64 to a credential-looking value ({why})"))
            continue
        in_data = field.startswith("data.") or re.search(r"env\[\d+\]\.value$", field)
        if in_data and _CRED_KEY.search(name) and value.strip() and not re.fullmatch(r"\$\{[^}]+\}", value.strip()):
            out.append(Finding(path, label, field, "credential-value",
                               "holds a plaintext value under a credential name"))
    return out


def check_text(path: str, text: str | bytes) -> list[Finding]:
    """Findings for one file's content (YAML/JSON only; other files are not inspected)."""
    if not path.lower().endswith(_YAML_SUFFIXES) or path.rsplit("/", 1)[-1] == ".sops.yaml":
        return []
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return []
    try:
        docs = list(yaml.safe_load_all(text)) if not path.lower().endswith(".json") else [json.loads(text)]
    except (yaml.YAMLError, ValueError):
        return []
    out: list[Finding] = []
    for i, doc in enumerate(docs):
        out.extend(_check_doc(doc, path, i))
    return out


def check_changes(changes: Mapping[str, str | bytes | None]) -> list[Finding]:
    """Findings for a commit's changes (``{path: new text, or None for a deletion}``)."""
    out: list[Finding] = []
    for path in sorted(changes):
        content = changes[path]
        if content is not None:
            out.extend(check_text(path, content))
    return out


# ------------------------------------------------------------------ wrappers

def _refuse(repo: Any, findings: list[Finding]) -> None:
    log = getattr(repo, "log", None)
    if log is not None:
        log.record("git", "CommitRefused", getattr(repo, "object_key", ""),
                   detail={"findings": [{"path": f.path, "object": f.object, "field": f.field, "rule": f.rule}
                                        for f in findings]})
    raise PlaintextSecretRefused(findings)


def guarded_commit(repo: Any, changes: Mapping[str, str | bytes | None], **kw: Any) -> str:
    """``repo.commit(changes, **kw)`` after the pre-commit check; ``PlaintextSecretRefused`` on findings."""
    findings = check_changes(changes)
    if findings:
        _refuse(repo, findings)
    return repo.commit(changes, **kw)


class GuardedRepo:
    """A ``ManifestRepo`` whose commit paths run the guard first; everything else is the repo's own."""

    def __init__(self, repo: Any):
        self._repo = repo

    def commit(self, changes: Mapping[str, str | bytes | None], **kw: Any) -> str:
        return guarded_commit(self._repo, changes, **kw)

    def open_pull_request(self, branch: str, changes: Mapping[str, str | bytes | None], **kw: Any) -> Any:
        findings = check_changes(changes)
        if findings:
            _refuse(self._repo, findings)
        return self._repo.open_pull_request(branch, changes, **kw)

    @property
    def unguarded(self) -> Any:
        return self._repo

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repo, name)


def guarded_working_copy_commit(wc: Any, message: str, **kw: Any) -> str:
    """``wc.commit(message, ...)`` after checking every file ``git add -A`` would stage."""
    status = wc.git.git.status("--porcelain", "-z", "--untracked-files=all")
    changes: dict[str, str | bytes | None] = {}
    entries = status.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if not entry:
            continue
        code, rel = entry[:2], entry[3:]
        if code.startswith("R") or code.startswith("C"):
            i += 1  # the source path follows
        p = wc.path / rel
        changes[rel] = p.read_bytes() if p.is_file() else None
    findings = check_changes(changes)
    if findings:
        _refuse(wc.repo, findings)
    return wc.commit(message, **kw)


def scan_history(repo: Any, refs: Iterable[str] | None = None) -> list[Finding]:
    """Findings in every commit reachable from ``refs`` (default: all branches), oldest commit first."""
    g = repo.git.git
    targets = list(refs) if refs is not None else sorted(repo.branches())
    if not targets:
        return []
    shas = [s for s in g.rev_list("--reverse", "--topo-order", *targets).split() if s]
    out: list[Finding] = []
    for sha in shas:
        changed = g.diff_tree("--root", "--no-commit-id", "-r", "-m", "--first-parent", "--name-status", "-z",
                              "--diff-filter=AMRC", sha)
        parts = [p for p in changed.split("\0") if p]
        paths: list[str] = []
        j = 0
        while j < len(parts):
            status = parts[j]
            if status[:1] in ("R", "C"):
                paths.append(parts[j + 2])
                j += 3
            else:
                paths.append(parts[j + 1])
                j += 2
        for path in sorted(set(paths)):
            if not path.lower().endswith(_YAML_SUFFIXES):
                continue
            text = g.show(f"{sha}:{path}")
            for f in check_text(path, text):
                out.append(Finding(f.path, f.object, f.field, f.rule, f.reason, commit=sha))
    return out
