"""Helpers the secrets, migrations, stateful-edges and push-vs-pull exercises share.

* **Lab keys, derived from a seed.**  A participant seals or encrypts against
  the lab's *public* key at the start of an exercise (``kubeseal --fetch-cert
  > pub-cert.pem``; an age recipient in ``.sops.yaml``); the judge later
  builds a fresh lab whose controller must hold the matching *private* key.
  Neither side can carry a private key in the participant's repository, so
  both derive it from the exercise's seed: ``lab_rsa_key`` makes an RSA key
  from primes drawn by a seeded generator (Miller–Rabin), ``lab_certificate``
  its self-signed sealed-secrets certificate (deterministic: PKCS#1 v1.5
  signatures are), ``sealing_key_backup`` the controller's key Secret in the
  shape ``kubectl get secret -l sealedsecrets.bitnami.com/sealed-secrets-key
  -o yaml`` gives (restored before the controller starts, the documented
  disaster-recovery path), and ``lab_age_key`` an age X25519 identity from
  seeded bytes (bech32, as ``age-keygen`` writes it).  These are *lab* keys,
  public by construction — never use them for anything real.
* **YAML edits** for the reference solutions and the wrong answers
  (``edit_docs``), a readable duration (``fmt_s``) and ``times``.
* **History mapping**: ``participant_commit_of`` finds which of the
  participant's commits put a file's content (as found in the lab's
  repository) into git — feedback names *their* commit, not the lab's copy.
"""
from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
import math
import random
from typing import Any, Callable, Iterable, Mapping

import yaml

from labkit.workshop.model import Commit, History
from labkit.workshop.yamltext import yaml_dump

__all__ = ["lab_rsa_key", "lab_certificate_pem", "sealing_key_backup", "lab_age_key", "edit_docs", "annotate",
           "fmt_s", "times", "participant_commit_of", "docs_of", "dump_docs"]

def _primorial(limit: int) -> int:
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(limit ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(sieve[i * i::i]))
    out = 1
    for i in range(3, limit + 1, 2):
        if sieve[i]:
            out *= i
    return out


_PRIMORIAL = _primorial(60000)


def _probable_prime(n: int, rng: random.Random, rounds: int = 6) -> bool:
    """Trial division (one gcd with a primorial), a base-2 Fermat test, then Miller-Rabin rounds."""
    if math.gcd(n, _PRIMORIAL) != 1 or pow(2, n - 1, n) != 1:
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        a = rng.randrange(2, n - 2)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, rng: random.Random, e: int) -> int:
    while True:
        c = rng.getrandbits(bits) | (3 << (bits - 2)) | 1  # top two bits set: p*q has exactly 2*bits bits
        if (c - 1) % e and _probable_prime(c, rng):
            return c


@functools.lru_cache(maxsize=8)
def lab_rsa_key(seed: str, bits: int = 2048) -> Any:
    """An RSA private key (``cryptography``) derived from ``seed``: the same key on every machine."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    rng = random.Random(hashlib.sha256(f"labkit-workshop-rsa:{seed}:{bits}".encode()).digest())
    e = 65537
    p = _prime(bits // 2, rng, e)
    q = _prime(bits // 2, rng, e)
    while q == p:
        q = _prime(bits // 2, rng, e)
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                    rsa.rsa_crt_iqmp(p, q), rsa.RSAPublicNumbers(e, p * q))
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


@functools.lru_cache(maxsize=8)
def _certificate(seed: str, bits: int) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID, ObjectIdentifier

    from labkit.core.clock import EPOCH_UNIX
    from labkit.secrets.sealed import DEFAULT_CERT_VALID_FOR, DEFAULT_CN

    key = lab_rsa_key(seed, bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEFAULT_CN)])
    not_before = _dt.datetime.fromtimestamp(EPOCH_UNIX, tz=_dt.timezone.utc)
    serial = int.from_bytes(hashlib.sha256(f"labkit-workshop-serial:{seed}".encode()).digest()[:16], "big") >> 1
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(serial).not_valid_before(not_before)
               .not_valid_after(not_before + _dt.timedelta(seconds=DEFAULT_CERT_VALID_FOR))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("2.5.29.15"), b"\x03\x02\x00\x01"),
                              critical=True))
    return builder.sign(key, hashes.SHA256())


def lab_certificate_pem(seed: str, bits: int = 2048) -> str:
    """The sealed-secrets certificate of the lab key (what ``kubeseal --fetch-cert`` prints)."""
    from labkit.secrets.sealed import certificate_pem

    return certificate_pem(_certificate(seed, bits))


def sealing_key_backup(seed: str, bits: int = 2048) -> list[dict[str, Any]]:
    """The controller's key Secret for the lab key, as a backup to restore before the controller starts."""
    from cryptography.hazmat.primitives import serialization

    from labkit.secrets.sealed import CONTROLLER_NAMESPACE, KEY_LABEL, KEY_PREFIX

    key = lab_rsa_key(seed, bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    return [{"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
             "metadata": {"name": f"{KEY_PREFIX}-workshop", "namespace": CONTROLLER_NAMESPACE,
                          "labels": {KEY_LABEL: "active"}},
             "data": {"tls.key": base64.b64encode(pem).decode(),
                      "tls.crt": base64.b64encode(lab_certificate_pem(seed, bits).encode()).decode()}}]


# ------------------------------------------------------------------ age

_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: Iterable[int]) -> int:
    gen = (0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1ffffff) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _bech32(hrp: str, data: bytes) -> str:
    acc, bits, five = 0, 0, []
    for b in data:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 5:
            bits -= 5
            five.append((acc >> bits) & 31)
    if bits:
        five.append((acc << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    pm = _polymod(expanded + five + [0] * 6) ^ 1
    check = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[d] for d in five + check)


@functools.lru_cache(maxsize=8)
def lab_age_key(seed: str) -> Any:
    """An age identity (``labkit.secrets.sops.AgeKey``) derived from ``seed``."""
    from labkit.secrets.sops import AgeKey

    raw = hashlib.sha256(f"labkit-workshop-age:{seed}".encode()).digest()
    return AgeKey.from_identity(_bech32("age-secret-key-", raw).upper())


# ------------------------------------------------------------------ YAML and text

def docs_of(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def dump_docs(docs: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml_dump(d, sort_keys=False) for d in docs)


def edit_docs(path: str, fn: Callable[[dict[str, Any]], None], *,
              kind: str | None = None, name: str | None = None) -> Callable[[Mapping[str, str]], dict[str, str]]:
    """A ``Change.edit``: apply ``fn`` to the documents of ``path`` (of ``kind`` / ``name`` when given)."""
    def edit(files: Mapping[str, str]) -> dict[str, str]:
        docs = docs_of(files[path])
        for d in docs:
            if kind is not None and d.get("kind") != kind:
                continue
            if name is not None and (d.get("metadata") or {}).get("name") != name:
                continue
            fn(d)
        return {path: dump_docs(docs)}
    return edit


def annotate(key: str, value: str) -> Callable[[dict[str, Any]], None]:
    def fn(d: dict[str, Any]) -> None:
        d.setdefault("metadata", {}).setdefault("annotations", {})[key] = value
    return fn


def fmt_s(seconds: float | None) -> str:
    """``42 s``, ``3.5 min``, ``2.1 h``."""
    if seconds is None:
        return "never"
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f}".rstrip("0").rstrip(".") + " min"
    return f"{seconds / 3600:.1f}".rstrip("0").rstrip(".") + " h"


def times(n: int) -> str:
    return f"{n} time{'' if n == 1 else 's'}"


def participant_commit_of(history: History, path: str, text: str | None) -> Commit | None:
    """The first participant commit whose ``path`` holds ``text`` (None: it came with the start state)."""
    if text is None:
        return None
    for c in history.commits:
        if c.files.get(path) == text:
            return c
    return None
