"""Sealed Secrets: Bitnami's controller and ``kubeseal``, with the real cryptography.

What the upstream project does
==============================

Sealed Secrets (github.com/bitnami-labs/sealed-secrets) lets a team commit
secrets to git by encrypting them with a public key whose private half only
the in-cluster controller holds.  labkit reproduces its behaviour from the
project's source (``pkg/crypto/crypto.go``, ``pkg/crypto/keys.go``,
``pkg/apis/sealedsecrets/v1alpha1/sealedsecret_expansion.go`` and ``types.go``,
``pkg/controller/{controller,keyregistry,keys,main}.go``) and its
``docs/developer/crypto.md``; no code is copied.

The hybrid scheme (``HybridEncrypt`` / ``HybridDecrypt``)
    Every value is sealed on its own.  A fresh 32-byte session key encrypts the
    value with **AES-256-GCM** under an all-zero 12-byte nonce (safe because the
    key is used exactly once); the session key itself is encrypted with
    **RSA-OAEP** using SHA-256 (for both the hash and MGF1) and an OAEP *label*.
    The output is::

        uint16 big-endian len(rsa_ciphertext) || rsa_ciphertext || aes_gcm_ciphertext+tag

    and a SealedSecret carries it base64-encoded (standard alphabet, padded) in
    ``spec.encryptedData[<key>]``.  ``hybrid_encrypt`` / ``hybrid_decrypt``
    implement exactly that with ``cryptography``'s RSA and AESGCM primitives;
    ``tests/secrets/test_sealed.py`` takes the wire format apart independently.

Scopes: the OAEP label
    The label binds a ciphertext to where it may be unsealed
    (``EncryptionLabel``): ``"<namespace>/<name>"`` for the default *strict*
    scope, ``"<namespace>"`` for *namespace-wide*
    (annotation ``sealedsecrets.bitnami.com/namespace-wide: "true"``) and the
    empty string for *cluster-wide* (``sealedsecrets.bitnami.com/cluster-wide:
    "true"``).  The controller decrypts with the label computed from the
    SealedSecret's own metadata, so a strict-scope secret renamed or moved to
    another namespace fails OAEP's label check and cannot be unsealed.  The scope
    annotations live on the SealedSecret and on ``spec.template.metadata``
    (``SecretScope`` reads the template's).

Keys, certificates and rotation (``KeyRegistry`` / ``initKeyRenewal``)
    The controller keeps its RSA key pairs (4096 bits by default;
    ``--key-size``) as ``kubernetes.io/tls`` Secrets in its own namespace,
    named ``sealed-secrets-key<suffix>`` (``generateName``) and labelled
    ``sealedsecrets.bitnami.com/sealed-secrets-key: active``, each with a
    self-signed certificate (CN ``sealed-secret``, 10-year validity, key usage
    *encipher only*, CA basic constraints).  At start-up it loads every such
    Secret; if there are none it generates one.  Then every
    ``--key-renew-period`` (30 days by default, counted from the most recent
    key) it **adds** a new key: old keys are never deleted, so everything
    sealed earlier keeps unsealing, while ``kubeseal --fetch-cert`` hands out
    the newest certificate for new seals.  ``kubeseal --re-encrypt`` (the
    controller's ``/v1/rotate``) re-seals a SealedSecret with the newest key.
    Unsealing tries every key (``HybridDecrypt`` over the registry) and fails
    with ``no key could decrypt secret``, tagged with the data keys that failed
    (``mkmik/multierror``: ``no key could decrypt secret (password, username)``).

    The private keys exist only in the cluster.  Lose them — a cluster rebuilt
    from git without a backup of the key Secrets — and every SealedSecret in
    git is ciphertext nobody can open: the new controller generates a new key
    and reports ``Synced=False``.  ``SealedSecretsController.backup_keys()`` is
    ``kubectl get secret -n kube-system -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml``;
    ``install_sealed_secrets(..., restore=backup)`` applies it before the
    controller starts, as the upstream disaster-recovery guide says.

The controller loop (``controller.go``)
    A work queue of SealedSecret keys, fed by SealedSecret adds, spec changes
    and deletes, and by deletions of Secrets the controller owns (so a deleted
    Secret is recreated).  ``unseal`` builds the Secret from
    ``spec.template`` (metadata, type) plus the decrypted values, owned by the
    SealedSecret (``ownerReferences`` with ``controller: true``), creates it or
    updates the existing one if it is controlled by this SealedSecret (or
    annotated ``sealedsecrets.bitnami.com/managed: "true"``); an unrelated
    existing Secret is refused (``Resource "x" already exists and is not managed
    by SealedSecret``).  Events, under component ``sealed-secrets``: ``Unsealed``
    "SealedSecret unsealed successfully", ``ErrUnsealFailed`` "Failed to
    unseal: …", ``ErrUpdateFailed``.  A failed key is retried with the work
    queue's rate limiter up to 5 times (``maxRetries``), then dropped until the
    next change.  The status subresource gets a ``Synced`` condition (True, or
    False with the error text) and ``observedGeneration``, written only when the
    condition's status changes or the generation moved — with upstream's quirk
    that ``lastTransitionTime`` takes the previous ``lastUpdateTime``.

What labkit leaves out: ``spec.template.data`` (sprig templates), the deprecated
single-blob ``spec.data``, ``--key-cutoff-time``, the patch annotation, the
HTTP server (``fetch_cert`` / ``rotate`` / ``validate`` are method calls), and
certificate expiry checks in kubeseal.

Randomness: key pairs, session keys and OAEP seeds come from the operating
system's CSPRNG, as they must — a seed fixes every time and outcome of a run,
not the bytes of a ciphertext.  Secret values never reach the event log:
events name SealedSecrets, keys and fingerprints only.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import os
import struct
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import simpy
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID, ObjectIdentifier

from labkit.core.clock import EPOCH_UNIX
from labkit.core.errors import ApiError, LabkitError
from labkit.core.events import object_key
from labkit.core.workqueue import WorkQueue

__all__ = [
    "API_VERSION", "GROUP", "KIND", "CLUSTER_WIDE_ANNOTATION", "NAMESPACE_WIDE_ANNOTATION", "MANAGED_ANNOTATION",
    "KEY_LABEL", "KEY_PREFIX", "CONTROLLER_NAMESPACE", "DEFAULT_KEY_BITS", "DEFAULT_RENEW_PERIOD",
    "SESSION_KEY_BYTES", "UnsealError", "SealingKey", "encryption_label", "secret_scope", "hybrid_encrypt",
    "hybrid_decrypt", "public_key_fingerprint", "generate_key", "certificate_pem", "load_certificate", "seal",
    "unseal", "sealed_secret_crd", "SealedSecretsController", "install_sealed_secrets",
]

GROUP = "bitnami.com"
API_VERSION = f"{GROUP}/v1alpha1"
KIND = "SealedSecret"
CRD_API_VERSION = "apiextensions.k8s.io/v1"
_ANNO = "sealedsecrets.bitnami.com/"
CLUSTER_WIDE_ANNOTATION = _ANNO + "cluster-wide"
NAMESPACE_WIDE_ANNOTATION = _ANNO + "namespace-wide"
MANAGED_ANNOTATION = _ANNO + "managed"
SKIP_OWNER_REFERENCES_ANNOTATION = _ANNO + "skip-set-owner-references"
KEY_LABEL = _ANNO + "sealed-secrets-key"
KEY_PREFIX = "sealed-secrets-key"
CONTROLLER_NAMESPACE = "kube-system"
CONTROLLER_NAME = "sealed-secrets-controller"
COMPONENT = "sealed-secrets"
FIELD_MANAGER = "sealed-secrets-controller"
DEFAULT_KEY_BITS = 4096
DEFAULT_RENEW_PERIOD = 30 * 24 * 3600.0
DEFAULT_CERT_VALID_FOR = 10 * 365 * 24 * 3600.0
DEFAULT_CN = "sealed-secret"
SESSION_KEY_BYTES = 32
MAX_RETRIES = 5
_NO_KEY = "no key could decrypt secret"
_LAST_APPLIED = ("kubectl.kubernetes.io/last-applied-configuration", "kubecfg.ksonnet.io/last-applied-configuration")

STRICT, NAMESPACE_WIDE, CLUSTER_WIDE = "strict", "namespace-wide", "cluster-wide"


class UnsealError(Exception):
    """Unsealing failed; ``str()`` is the controller's message (``no key could decrypt secret (password)``)."""


# ------------------------------------------------------------------ scopes and labels

def secret_scope(annotations: Mapping[str, str] | None) -> str:
    """``SecretScope``: cluster-wide wins over namespace-wide; strict otherwise."""
    annotations = annotations or {}
    if annotations.get(CLUSTER_WIDE_ANNOTATION) == "true":
        return CLUSTER_WIDE
    if annotations.get(NAMESPACE_WIDE_ANNOTATION) == "true":
        return NAMESPACE_WIDE
    return STRICT


def encryption_label(namespace: str, name: str, scope: str = STRICT) -> bytes:
    """``EncryptionLabel``: the OAEP label binding a ciphertext to its scope."""
    if scope == CLUSTER_WIDE:
        return b""
    if scope == NAMESPACE_WIDE:
        return namespace.encode()
    if scope != STRICT:
        raise LabkitError("must be one of: strict, namespace-wide, cluster-wide", field="scope")
    return f"{namespace}/{name}".encode()


def _scope_annotations(annotations: Mapping[str, str] | None, scope: str) -> dict[str, str]:
    """``UpdateScopeAnnotations``."""
    out = {k: v for k, v in (annotations or {}).items() if k not in (CLUSTER_WIDE_ANNOTATION, NAMESPACE_WIDE_ANNOTATION)}
    if scope == NAMESPACE_WIDE:
        out[NAMESPACE_WIDE_ANNOTATION] = "true"
    elif scope == CLUSTER_WIDE:
        out[CLUSTER_WIDE_ANNOTATION] = "true"
    return out


# ------------------------------------------------------------------ the hybrid scheme

def _oaep(label: bytes) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=label or None)


def hybrid_encrypt(public_key: rsa.RSAPublicKey, plaintext: bytes, label: bytes) -> bytes:
    """``HybridEncrypt``: ``len(rsa_ct) (uint16 BE) || rsa_ct || AES-256-GCM(plaintext)`` with a zero nonce."""
    session_key = os.urandom(SESSION_KEY_BYTES)
    rsa_ct = public_key.encrypt(session_key, _oaep(label))
    aes_ct = AESGCM(session_key).encrypt(b"\x00" * 12, plaintext, None)
    return struct.pack(">H", len(rsa_ct)) + rsa_ct + aes_ct


def _single_decrypt(private_key: rsa.RSAPrivateKey, ciphertext: bytes, label: bytes) -> bytes:
    if len(ciphertext) < 2:
        raise UnsealError("SealedSecret data is too short")
    (rsa_len,) = struct.unpack(">H", ciphertext[:2])
    if len(ciphertext) < rsa_len + 2:
        raise UnsealError("SealedSecret data is too short")
    session_key = private_key.decrypt(ciphertext[2:rsa_len + 2], _oaep(label))
    return AESGCM(session_key).decrypt(b"\x00" * 12, ciphertext[rsa_len + 2:], None)


def hybrid_decrypt(private_keys: Iterable[rsa.RSAPrivateKey], ciphertext: bytes, label: bytes) -> bytes:
    """``HybridDecrypt``: try every key; ``UnsealError("no key could decrypt secret")`` when none works."""
    for key in private_keys:
        try:
            return _single_decrypt(key, ciphertext, label)
        except Exception:  # noqa: BLE001 - wrong key, wrong label, tampered data: try the next key
            continue
    raise UnsealError(_NO_KEY)


# ------------------------------------------------------------------ keys and certificates

def public_key_fingerprint(public_key: rsa.RSAPublicKey) -> str:
    """``ssh.FingerprintSHA256`` of the public key: ``SHA256:<unpadded base64>``."""
    line = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _virtual_datetime(seconds: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(EPOCH_UNIX + int(seconds), tz=_dt.timezone.utc)


def generate_key(bits: int = DEFAULT_KEY_BITS, *, now: float = 0.0, valid_for: float = DEFAULT_CERT_VALID_FOR,
                 cn: str = DEFAULT_CN) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """``GeneratePrivateKeyAndCert``: an RSA key and its self-signed certificate dated at virtual ``now``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    not_before = _virtual_datetime(now)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(os.urandom(16), "big"))
        .not_valid_before(not_before)
        .not_valid_after(not_before + _dt.timedelta(seconds=valid_for))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # Go's x509.KeyUsageEncipherOnly alone: BIT STRING, bit 7 set (0x01), no unused bits.
        # (cryptography's KeyUsage refuses encipher_only without key_agreement, so it is written raw.)
        .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("2.5.29.15"), b"\x03\x02\x00\x01"), critical=True)
    )
    return key, builder.sign(key, hashes.SHA256())


def certificate_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_certificate(pem: str | bytes) -> x509.Certificate:
    """Parse a PEM certificate (what ``kubeseal --cert`` reads); ``LabkitError`` when it is not one."""
    try:
        return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    except ValueError as err:
        raise LabkitError(f"cannot parse the sealing certificate: {err}", field="cert") from None


@dataclass
class SealingKey:
    """One key pair of the controller's registry."""

    name: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    cert: x509.Certificate = field(repr=False)
    fingerprint: str
    ordering_time: float  # virtual seconds (the certificate's NotBefore)


# ------------------------------------------------------------------ kubeseal

def _b64(value: Any) -> bytes:
    return base64.b64decode(value) if value is not None else b""


def seal(secret: Mapping[str, Any], cert: str | bytes | x509.Certificate, *, scope: str | None = None) -> dict[str, Any]:
    """``kubeseal --cert cert.pem [--scope ...]``: a SealedSecret manifest for a Secret manifest.

    ``data`` values are base64 (decoded before sealing), ``stringData`` values plain
    text; ``scope`` (strict, namespace-wide, cluster-wide) overrides the scope
    annotations of the Secret.  The Secret's metadata becomes
    ``spec.template.metadata`` (without kubectl's last-applied annotation and owner
    references, which would leak or dangle).
    """
    if not isinstance(cert, x509.Certificate):
        cert = load_certificate(cert)
    public_key = cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise LabkitError("the sealing certificate does not hold an RSA public key", field="cert")
    if secret.get("kind") != "Secret":
        raise LabkitError(f"kubeseal expects a Secret, got {secret.get('kind')!r}", field="kind")
    md = dict(secret.get("metadata") or {})
    name, namespace = md.get("name", ""), md.get("namespace", "")
    template_annotations = dict(md.get("annotations") or {})
    if scope is not None:
        template_annotations = _scope_annotations(template_annotations, scope)
    eff_scope = secret_scope(template_annotations)
    if eff_scope != CLUSTER_WIDE and not namespace:
        raise LabkitError("secret must declare a namespace", field="metadata.namespace")
    if not name and eff_scope == STRICT:
        raise LabkitError("secret must declare a name", field="metadata.name")
    for k in _LAST_APPLIED:
        template_annotations.pop(k, None)
    label = encryption_label(namespace, name, eff_scope)
    encrypted: dict[str, str] = {}
    values: dict[str, bytes] = {k: _b64(v) for k, v in (secret.get("data") or {}).items()}
    values.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    for key in sorted(values):
        encrypted[key] = base64.b64encode(hybrid_encrypt(public_key, values[key], label)).decode()
    tmeta: dict[str, Any] = {"name": name}
    if namespace:
        tmeta["namespace"] = namespace
    for k in ("labels",):
        if md.get(k):
            tmeta[k] = dict(md[k])
    if template_annotations:
        tmeta["annotations"] = template_annotations
    template: dict[str, Any] = {"metadata": tmeta, "type": secret.get("type", "Opaque")}
    if secret.get("immutable") is not None:
        template["immutable"] = secret["immutable"]
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    ss_annotations = _scope_annotations({}, eff_scope)
    if ss_annotations:
        meta["annotations"] = ss_annotations
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta,
            "spec": {"encryptedData": encrypted, "template": template}}


def unseal(sealed: Mapping[str, Any], private_keys: Iterable[rsa.RSAPrivateKey]) -> dict[str, Any]:
    """``SealedSecret.Unseal``: the Secret (data base64) owned by the SealedSecret; ``UnsealError`` on failure."""
    keys = list(private_keys)
    md = sealed.get("metadata") or {}
    spec = sealed.get("spec") or {}
    template = spec.get("template") or {}
    tmeta = dict(template.get("metadata") or {})
    namespace, name = md.get("namespace", ""), md.get("name", "")
    label = encryption_label(namespace, name, secret_scope(tmeta.get("annotations")))
    if spec.get("data") is not None and not spec.get("encryptedData"):
        raise UnsealError("using deprecated 'data' field, use 'encryptedData' or flip the feature flag")
    data: dict[str, str] = {}
    failures: dict[str, list[str]] = {}
    for key in sorted(spec.get("encryptedData") or {}):
        try:
            blob = base64.b64decode(spec["encryptedData"][key], validate=True)
        except (ValueError, TypeError):
            failures.setdefault("illegal base64 data", []).append(key)
            continue
        try:
            plain = hybrid_decrypt(keys, blob, label)
        except UnsealError as err:
            failures.setdefault(str(err), []).append(key)
            continue
        data[key] = base64.b64encode(plain).decode()
    if failures:
        raise UnsealError("; ".join(f"{msg} ({', '.join(tags)})" for msg, tags in failures.items()))
    out_md: dict[str, Any] = {k: v for k, v in tmeta.items() if k in ("labels", "annotations") and v}
    out_md["name"], out_md["namespace"] = name, namespace
    annotations = tmeta.get("annotations") or {}
    if annotations.get(SKIP_OWNER_REFERENCES_ANNOTATION) != "true":
        out_md["ownerReferences"] = [{"apiVersion": sealed.get("apiVersion", API_VERSION), "kind": KIND, "name": name,
                                      "uid": md.get("uid", ""), "controller": True}]
    secret: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": out_md,
                              "type": template.get("type") or "Opaque", "data": data}
    if template.get("immutable") is not None:
        secret["immutable"] = template["immutable"]
    return secret


# ------------------------------------------------------------------ the CRD

def sealed_secret_crd() -> dict[str, Any]:
    """The ``sealedsecrets.bitnami.com`` CustomResourceDefinition (status subresource, open schema)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"sealedsecrets.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "listKind": "SealedSecretList", "plural": "sealedsecrets",
                      "singular": "sealedsecret"},
            "versions": [{"name": "v1alpha1", "served": True, "storage": True, "subresources": {"status": {}},
                          "schema": {"openAPIV3Schema": {"type": "object",
                                                         "x-kubernetes-preserve-unknown-fields": True}}}],
        },
    }


# ------------------------------------------------------------------ the controller

def _iso(seconds: float) -> str:
    from labkit.core.clock import timestamp

    return timestamp(seconds)


class SealedSecretsController:
    """The sealed-secrets controller on any ``Cluster`` with ``watch`` and ``create`` (see the module docstring).

    Built by ``install_sealed_secrets``; runs its work queue and its key-renewal
    job as SimPy processes on ``env`` (default ``cluster.env``) and records to
    ``log`` (default ``cluster.log``).  It reads and writes only through the
    ``labkit.core.cluster`` seam — get, list, create, update, patch_status, watch — so
    the same controller runs in the simulator and against a real API server
    (a ``KubeCluster`` bound to a clock).
    """

    component = COMPONENT

    def __init__(self, cluster: Any, *, key_bits: int = DEFAULT_KEY_BITS,
                 key_renew_period: float = DEFAULT_RENEW_PERIOD, namespace: str = CONTROLLER_NAMESPACE,
                 update_status: bool = True, env: simpy.Environment | None = None, log: Any = None):
        self.cluster = cluster
        self.env: simpy.Environment = env if env is not None else cluster.env
        self.log = log if log is not None else cluster.log
        self.key_bits = key_bits
        self.key_renew_period = float(key_renew_period)
        self.namespace = namespace
        self.update_status = update_status
        self.keys: dict[str, SealingKey] = {}
        self.most_recent: SealingKey | None = None
        self.queue = WorkQueue(self.env)
        self._retries: dict[tuple[str, str], int] = {}
        self._specs: dict[tuple[str, str], Any] = {}
        self._renewal: simpy.Process | None = None
        self.running = False
        cluster.watch(API_VERSION, KIND, self._on_sealed)
        cluster.watch("v1", "Secret", self._on_secret)
        self.env.process(self._worker())
        self.start()

    # -------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Controller start-up: load the key registry, renew keys, list every SealedSecret."""
        self._load_registry()
        self.running = True
        self._init_key_renewal()
        self.log.record(COMPONENT, "Started", object_key("Deployment", self.namespace, CONTROLLER_NAME),
                        detail={"keys": sorted(self.keys), "active_fingerprint": self.most_recent.fingerprint
                                if self.most_recent else ""})
        for ss in self.cluster.list(API_VERSION, KIND):
            md = ss["metadata"]
            self._specs[(md.get("namespace", ""), md["name"])] = ss.get("spec")
            self.queue.add((md.get("namespace", ""), md["name"]))

    def restart(self) -> None:
        """The controller pod restarted: the in-memory registry is rebuilt from the key Secrets."""
        if self._renewal is not None and self._renewal.is_alive:
            self._renewal.interrupt()
        self._renewal = None
        self.keys, self.most_recent = {}, None
        self.running = False
        self.start()

    def _load_registry(self) -> None:
        """``initKeyRegistry``: every Secret labelled ``sealed-secrets-key=active``, oldest first."""
        secrets = self.cluster.list("v1", "Secret", self.namespace, {KEY_LABEL: "active"})
        legacy = self.cluster.get("v1", "Secret", KEY_PREFIX, self.namespace)
        if legacy is not None and legacy not in secrets:
            secrets.append(legacy)
        secrets.sort(key=lambda s: s["metadata"].get("creationTimestamp", ""))
        for s in secrets:
            try:
                key = serialization.load_pem_private_key(_b64(s["data"]["tls.key"]), password=None)
                cert = x509.load_pem_x509_certificate(_b64(s["data"]["tls.crt"]))
            except (KeyError, ValueError, TypeError):
                self.log.record(COMPONENT, "KeyReadError", object_key("Secret", self.namespace, s["metadata"]["name"]),
                                detail={"message": f"Error reading key {s['metadata']['name']}"})
                continue
            if not isinstance(key, rsa.RSAPrivateKey):
                continue
            not_before = cert.not_valid_before_utc.timestamp() - EPOCH_UNIX
            self._register(s["metadata"]["name"], key, cert, not_before)

    def _register(self, name: str, key: rsa.RSAPrivateKey, cert: x509.Certificate, ordering_time: float) -> SealingKey:
        k = SealingKey(name, key, cert, public_key_fingerprint(key.public_key()), ordering_time)
        self.keys[k.fingerprint] = k
        if self.most_recent is None or self.most_recent.ordering_time < ordering_time:
            self.most_recent = k
        return k

    def generate_key(self) -> SealingKey:
        """``generateKey``: a new key pair, written as a labelled TLS Secret, registered as the newest."""
        key, cert = generate_key(self.key_bits, now=self.env.now)
        pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        created = self.cluster.create({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"generateName": KEY_PREFIX, "namespace": self.namespace, "labels": {KEY_LABEL: "active"}},
            "data": {"tls.key": base64.b64encode(pem_key).decode(),
                     "tls.crt": base64.b64encode(certificate_pem(cert).encode()).decode()},
        }, field_manager=FIELD_MANAGER)
        k = self._register(created["metadata"]["name"], key, cert, float(self.env.now))
        self.log.record(COMPONENT, "NewKeyWritten", object_key("Secret", self.namespace, k.name),
                        detail={"fingerprint": k.fingerprint, "bits": self.key_bits, "keys": len(self.keys)})
        return k

    def _init_key_renewal(self) -> None:
        if not self.keys:
            self.generate_key()
        if self.key_renew_period <= 0:
            return
        assert self.most_recent is not None
        delay = max(0.0, self.key_renew_period - (self.env.now - self.most_recent.ordering_time))
        self._renewal = self.env.process(self._renew(delay))

    def _renew(self, delay: float):
        """``ScheduleJobWithTrigger``: first after ``delay``, then every period."""
        try:
            yield self.env.timeout(delay)
            while True:
                self.generate_key()
                yield self.env.timeout(self.key_renew_period)
        except simpy.Interrupt:
            return

    # -------------------------------------------------------------- kubeseal's endpoints

    def certificate(self) -> x509.Certificate:
        if self.most_recent is None:
            raise LabkitError("cannot fetch certificate: key registry has no keys", field="cert")
        return self.most_recent.cert

    def fetch_cert(self) -> str:
        """``kubeseal --fetch-cert``: the newest certificate, PEM."""
        return certificate_pem(self.certificate())

    def validate(self, sealed: Mapping[str, Any]) -> bool:
        """``kubeseal --validate``: whether this controller can unseal the manifest."""
        try:
            unseal(sealed, [k.private_key for k in self.keys.values()])
        except UnsealError:
            return False
        return True

    def rotate(self, sealed: Mapping[str, Any]) -> dict[str, Any]:
        """``kubeseal --re-encrypt`` (``/v1/rotate``): unseal with any key, re-seal with the newest."""
        secret = unseal(sealed, [k.private_key for k in self.keys.values()])
        tmeta = dict(((sealed.get("spec") or {}).get("template") or {}).get("metadata") or {})
        secret["metadata"] = {**tmeta, "name": secret["metadata"]["name"], "namespace": secret["metadata"]["namespace"]}
        out = seal(secret, self.certificate())
        out["metadata"] = {**dict(sealed.get("metadata") or {}), **out["metadata"]}
        for f in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"):
            out["metadata"].pop(f, None)
        return out

    def backup_keys(self) -> list[dict[str, Any]]:
        """``kubectl get secret -n kube-system -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml``."""
        out = []
        for s in self.cluster.list("v1", "Secret", self.namespace, {KEY_LABEL: "active"}):
            md = s["metadata"]
            out.append({"apiVersion": "v1", "kind": "Secret", "type": s.get("type"),
                        "metadata": {"name": md["name"], "namespace": md["namespace"], "labels": dict(md["labels"])},
                        "data": dict(s["data"])})
        return out

    # -------------------------------------------------------------- watches

    def _on_sealed(self, ev: str, obj: dict) -> None:
        md = obj["metadata"]
        key = (md.get("namespace", ""), md["name"])
        if ev == "MODIFIED" and self._specs.get(key) == obj.get("spec"):
            return  # sealedSecretChanged: status and metadata updates are suppressed
        self._specs[key] = None if ev == "DELETED" else obj.get("spec")
        self._retries.pop(key, None)
        self.queue.add(key)

    def _on_secret(self, ev: str, obj: dict) -> None:
        if ev != "DELETED":
            return
        md = obj["metadata"]
        ss = self.cluster.get(API_VERSION, KIND, md["name"], md.get("namespace", ""))
        if ss is None:
            return
        controlled = any(r.get("controller") and r.get("uid") == ss["metadata"]["uid"]
                         for r in md.get("ownerReferences") or ())
        if controlled or (md.get("annotations") or {}).get(MANAGED_ANNOTATION) == "true":
            self.queue.add((md.get("namespace", ""), md["name"]))

    # -------------------------------------------------------------- the worker

    def _worker(self):
        while True:
            key = self.queue.pop()
            if key is None:
                yield self.queue.wait()
                continue
            if not self.running:
                continue
            try:
                self.sync(key)
            except (UnsealError, ApiError) as err:
                n = self._retries.get(key, 0)
                if n < MAX_RETRIES:
                    self._retries[key] = n + 1
                    self.queue.add_rate_limited(key)
                else:
                    self._retries.pop(key, None)
                    self.queue.forget(key)
                    self.log.record(COMPONENT, "GaveUp", object_key(KIND, key[0], key[1]),
                                    detail={"message": f"Error updating {key[0]}/{key[1]}, giving up: {err}"})
            else:
                self._retries.pop(key, None)
                self.queue.forget(key)
            if len(self.queue):
                yield self.env.timeout(0)

    def _event(self, reason: str, key: tuple[str, str], message: str, type: str = "Normal") -> None:
        self.log.record(COMPONENT, reason, object_key(KIND, key[0], key[1]), detail={"type": type, "message": message})

    def sync(self, key: tuple[str, str]) -> None:
        """``unseal(key)``: build the Secret and create or update it; report status and events."""
        ns, name = key
        ss = self.cluster.get(API_VERSION, KIND, name, ns)
        if ss is None:
            return  # the Secret goes with its owner (garbage collection)
        error: Exception | None = None
        try:
            self._unseal_into_secret(ss, key)
        except UnsealError as err:
            self._event("ErrUnsealFailed", key, f"Failed to unseal: {err}", "Warning")
            error = err
        except ApiError as err:
            self._event("ErrUpdateFailed", key, err.message, "Warning")
            error = err
        except _NotManaged as err:
            self._event("ErrUpdateFailed", key, err.message, "Warning")
            error = UnsealError(f"failed update: {err.message}")
        else:
            self._event("Unsealed", key, "SealedSecret unsealed successfully")
        self._status(key, error)
        if error is not None:
            raise error if isinstance(error, (UnsealError, ApiError)) else UnsealError(str(error))

    def _unseal_into_secret(self, ss: dict, key: tuple[str, str]) -> None:
        ns, name = key
        new = unseal(ss, [k.private_key for k in self.keys.values()])
        live = self.cluster.get("v1", "Secret", name, ns)
        if live is None:
            self.cluster.create(new, field_manager=FIELD_MANAGER)
            return
        md = live["metadata"]
        controlled = any(r.get("controller") and r.get("uid") == ss["metadata"]["uid"]
                         for r in md.get("ownerReferences") or ())
        if not controlled and (md.get("annotations") or {}).get(MANAGED_ANNOTATION) != "true":
            raise _NotManaged(f'Resource "{name}" already exists and is not managed by SealedSecret')
        updated = {**live, "metadata": {k: v for k, v in md.items() if k != "managedFields"},
                   "data": new["data"], "type": new["type"]}
        for f in ("annotations", "labels", "ownerReferences"):
            if new["metadata"].get(f):
                updated["metadata"][f] = new["metadata"][f]
            else:
                updated["metadata"].pop(f, None)
        self.cluster.update(updated, field_manager=FIELD_MANAGER)  # a no-op update writes nothing

    def _status(self, key: tuple[str, str], error: Exception | None) -> None:
        """``updateSealedSecretStatus`` / ``updateSealedSecretsStatusConditions``."""
        if not self.update_status:
            return
        ss = self.cluster.get(API_VERSION, KIND, key[1], key[0])
        if ss is None:
            return
        status = dict(ss.get("status") or {})
        conds = [dict(c) for c in status.get("conditions") or []]
        cond = next((c for c in conds if c.get("type") == "Synced"), None)
        if cond is None:
            cond = {"type": "Synced"}
            conds.append(cond)
        value = "True" if error is None else "False"
        if error is None:
            cond.pop("message", None)
        else:
            cond["message"] = str(error)
        required = False
        if cond.get("status") != value:
            if cond.get("lastUpdateTime"):
                cond["lastTransitionTime"] = cond["lastUpdateTime"]
            cond["status"] = value
            cond["lastUpdateTime"] = _iso(self.env.now)
            required = True
        gen = ss["metadata"].get("generation")
        if required or status.get("observedGeneration") != gen:
            status["observedGeneration"] = gen
            status["conditions"] = conds
            self.cluster.patch_status(API_VERSION, KIND, key[1], key[0], status, field_manager=FIELD_MANAGER)

    # -------------------------------------------------------------- reading

    def synced(self, namespace: str, name: str) -> dict[str, Any]:
        """The ``Synced`` condition of a SealedSecret ({} when absent)."""
        ss = self.cluster.get(API_VERSION, KIND, name, namespace)
        for c in ((ss or {}).get("status") or {}).get("conditions") or []:
            if c.get("type") == "Synced":
                return dict(c)
        return {}


class _NotManaged(Exception):
    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def install_sealed_secrets(cluster: Any, *, key_bits: int = DEFAULT_KEY_BITS,
                           key_renew_period: float = DEFAULT_RENEW_PERIOD,
                           restore: Iterable[Mapping[str, Any]] = (), env: simpy.Environment | None = None,
                           log: Any = None) -> SealedSecretsController:
    """Install the SealedSecret CRD and start the controller in ``cluster`` (any backend with watch and create).

    ``restore`` holds key Secrets from ``backup_keys()``, applied before the
    controller starts (the documented disaster-recovery path).  Returns the
    controller, also attached as ``cluster.sealed_secrets``.
    """
    if cluster.get(CRD_API_VERSION, "CustomResourceDefinition", f"sealedsecrets.{GROUP}") is None:
        cluster.create(sealed_secret_crd(), field_manager="helm")
    for s in restore:
        s = dict(s)
        if cluster.get("v1", "Secret", s["metadata"]["name"], s["metadata"].get("namespace", CONTROLLER_NAMESPACE)) is None:
            cluster.create(s, field_manager="kubectl-create")
    ctrl = SealedSecretsController(cluster, key_bits=key_bits, key_renew_period=key_renew_period, env=env, log=log)
    from labkit.secrets.podconfig import install_pod_secret_checks

    install_pod_secret_checks(cluster)  # a missing Secret blocks container start, when the kubelet has the hook
    cluster.sealed_secrets = ctrl
    return ctrl
