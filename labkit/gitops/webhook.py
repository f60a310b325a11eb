"""Push webhooks: GitHub-style HMAC signing and a Flux-style receiver.

Why it matters
==============

Without a webhook a GitOps controller notices a commit only when its poll
interval comes round (Flux's ``GitRepository.spec.interval``, bootstrap default
1m; Argo CD's 3 minutes).  With one, the git host POSTs a ``push`` event the
moment the ref moves, and the controller fetches at once.  The "tour" and
"rollback" scenarios measure exactly that difference, so the lab models the
webhook path for real: payload, signature, verification, rejection.

The signature (GitHub)
======================

GitHub signs each delivery with the webhook secret: ``X-Hub-Signature-256:
sha256=<hex>``, where ``<hex>`` is ``HMAC-SHA256(secret, raw request body)``.
The legacy ``X-Hub-Signature: sha1=<hex>`` header is still sent; a verifier
uses the SHA-256 header when present and falls back to SHA-1 -- this is what
``go-github``'s ``ValidatePayload`` does, and Flux's notification-controller
uses ``go-github`` for its ``github`` Receiver type.  Verification must compare
in constant time (``hmac.compare_digest``) and over the *raw bytes*: parsing
and re-serialising the JSON first would change the bytes and break the MAC.

The receiver (Flux notification-controller)
===========================================

A Flux ``Receiver`` listens on ``/hook/<digest>`` with
``digest = sha256(token + name + namespace)`` (the ``Receiver`` API:
"Generated webhook URL in the format of '/hook/sha256sum(token+name+namespace)'");
``receiver_path`` computes it.  For each request the controller
(``internal/server/receiver_handlers.go``):

* reads the body with a size cap -- ``maxRequestSizeBytes = 3 MiB`` in
  ``internal/server/limits.go``; more is answered ``413`` with
  ``request body exceeds the maximum size of 3145728 bytes``;
* validates the signature; a failure is logged as ``the GitHub signature
  header is invalid, err: <go-github error>`` (``missing signature``,
  ``payload signature check failed``, ...) and answered ``400``;
* checks the event type against ``spec.events`` when that list is set
  (``the GitHub event '<e>' is not authorised``);
* annotates the listed sources with ``reconcile.fluxcd.io/requestedAt`` so they
  reconcile at once.

``WebhookReceiver.receive(headers, body)`` does the checking part and returns
``True``/``False`` (the HTTP status is in the log detail); accepted deliveries
are logged as ``WebhookReceived`` and handed to the registered callbacks as a
``WebhookDelivery`` (event, repository, ref, before/after SHAs, the parsed
payload); the callback -- the Flux dialect -- decides what to reconcile.
Rejections are logged as ``WebhookRejected`` with the reason.  The token never
appears in a log record, an exception or a ``repr``.  Delivery delay (GitHub's
queue, the network) is modelled by the caller on the simulation clock, not here.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from labkit.core.events import EventLog

__all__ = [
    "EVENT_HEADER",
    "MAX_BODY_BYTES",
    "SIGNATURE_HEADER",
    "SIGNATURE_HEADER_SHA1",
    "WebhookDelivery",
    "WebhookReceiver",
    "github_delivery",
    "receiver_path",
    "sign",
]

SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_HEADER_SHA1 = "X-Hub-Signature"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
#: notification-controller's ``maxRequestSizeBytes`` (3 MiB).
MAX_BODY_BYTES = 3 * 1024 * 1024

_HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def _key(token: str | bytes) -> bytes:
    return token.encode("utf-8") if isinstance(token, str) else bytes(token)


def sign(body: bytes | str, token: str | bytes, *, algorithm: str = "sha256") -> str:
    """The signature header value GitHub sends: ``sha256=<hex HMAC of body>``."""
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return f"{algorithm}=" + hmac.new(_key(token), data, _HASHES[algorithm]).hexdigest()


def receiver_path(token: str | bytes, name: str, namespace: str) -> str:
    """Flux Receiver URL path: ``/hook/`` + ``sha256(token + name + namespace)``."""
    return "/hook/" + hashlib.sha256(_key(token) + name.encode("utf-8") + namespace.encode("utf-8")).hexdigest()


def github_delivery(
    payload: Mapping[str, Any],
    token: str | bytes,
    *,
    event: str = "push",
    delivery_id: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """Serialise and sign a payload as GitHub would deliver it: ``(headers, body)``.

    ``delivery_id`` defaults to a UUID derived from the body, so deliveries are
    reproducible.
    """
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if delivery_id is None:
        delivery_id = str(uuid.UUID(bytes=hashlib.sha256(body).digest()[:16]))
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
        SIGNATURE_HEADER: sign(body, token),
        SIGNATURE_HEADER_SHA1: sign(body, token, algorithm="sha1"),
        "User-Agent": "GitHub-Hookshot/labkit",
    }
    return headers, body


@dataclass(frozen=True)
class WebhookDelivery:
    """An accepted, verified delivery."""

    event: str
    repository: str
    ref: str
    before: str
    after: str
    delivery: str
    payload: dict[str, Any] = field(default_factory=dict, repr=False)


class _Reject(Exception):
    def __init__(self, reason: str, status: int = 400):
        self.reason = reason
        self.status = status
        super().__init__(reason)


def _validate_signature(signature: str, body: bytes, key: bytes) -> None:
    """go-github's ``ValidateSignature``: parse ``<alg>=<hex>`` and compare the MAC."""
    if not signature:
        raise _Reject("the GitHub signature header is invalid, err: missing signature")
    alg, sep, hexdigest = signature.partition("=")
    if not sep or not hexdigest:
        raise _Reject("the GitHub signature header is invalid, err: error parsing signature")
    fn = _HASHES.get(alg)
    if fn is None:
        raise _Reject(f"the GitHub signature header is invalid, err: unknown hash type prefix: {alg!r}")
    try:
        given = bytes.fromhex(hexdigest)
    except ValueError:
        raise _Reject("the GitHub signature header is invalid, err: error decoding signature") from None
    expected = hmac.new(key, body, fn).digest()
    if not hmac.compare_digest(given, expected):
        raise _Reject("the GitHub signature header is invalid, err: payload signature check failed")


class WebhookReceiver:
    """A ``github``-type Flux Receiver: verifies deliveries and notifies subscribers.

    ``events`` (like ``spec.events``) restricts the accepted ``X-GitHub-Event``
    values, case-insensitively; empty accepts all.  ``component`` names the
    event-log component (default ``webhook``).
    """

    def __init__(
        self,
        token: str | bytes,
        log: EventLog | None = None,
        *,
        name: str = "github-receiver",
        namespace: str = "flux-system",
        events: Iterable[str] = ("ping", "push"),
        max_body: int = MAX_BODY_BYTES,
        component: str = "webhook",
    ):
        if not token:
            raise ValueError("a webhook receiver needs a non-empty token")
        self.__key = _key(token)
        self.log = log
        self.name = name
        self.namespace = namespace
        self.events = [e.lower() for e in events]
        self.max_body = max_body
        self.component = component
        self._callbacks: list[Callable[[WebhookDelivery], None]] = []
        self.path = receiver_path(self.__key, name, namespace)
        self.accepted = 0
        self.rejected = 0

    def __repr__(self) -> str:  # never show the token
        return f"WebhookReceiver(name={self.name!r}, namespace={self.namespace!r}, path={self.path!r})"

    @property
    def object_key(self) -> str:
        return f"Receiver/{self.namespace}/{self.name}"

    def subscribe(self, fn: Callable[[WebhookDelivery], None]) -> Callable[[], None]:
        """Call ``fn(WebhookDelivery)`` for every accepted delivery; returns an unsubscribe function."""
        self._callbacks.append(fn)
        return lambda: self._callbacks.remove(fn) if fn in self._callbacks else None

    def receive(self, headers: Mapping[str, str], body: bytes | str, *, time: float | None = None) -> bool:
        """Verify one delivery; ``True`` if accepted (callbacks called), ``False`` if rejected."""
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        h = {str(k).lower(): str(v) for k, v in headers.items()}
        delivery = h.get(DELIVERY_HEADER.lower(), "")
        event = h.get(EVENT_HEADER.lower(), "")
        try:
            if len(data) > self.max_body:
                raise _Reject(f"request body exceeds the maximum size of {self.max_body} bytes", status=413)
            signature = h.get(SIGNATURE_HEADER.lower()) or h.get(SIGNATURE_HEADER_SHA1.lower(), "")
            _validate_signature(signature, data, self.__key)
            if self.events and event.lower() not in self.events:
                raise _Reject(f"the GitHub event '{event}' is not authorised")
            try:
                payload = json.loads(data.decode("utf-8")) if data else {}
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise _Reject(f"cannot decode GitHub webhook payload: {exc.__class__.__name__}") from None
            if not isinstance(payload, dict):
                raise _Reject("cannot decode GitHub webhook payload: not a JSON object")
        except _Reject as rej:
            self.rejected += 1
            if self.log is not None:
                self.log.record(
                    self.component, "WebhookRejected", self.object_key, "",
                    {"reason": rej.reason, "status": rej.status, "event": event, "delivery": delivery,
                     "bytes": len(data)},
                    time=time,
                )
            return False
        repo = payload.get("repository") or {}
        item = WebhookDelivery(
            event=event,
            repository=str(repo.get("full_name") or repo.get("name") or ""),
            ref=str(payload.get("ref") or ""),
            before=str(payload.get("before") or ""),
            after=str(payload.get("after") or ""),
            delivery=delivery,
            payload=payload,
        )
        self.accepted += 1
        if self.log is not None:
            self.log.record(
                self.component, "WebhookReceived", self.object_key, item.after,
                {"event": event, "repository": item.repository, "ref": item.ref, "delivery": delivery},
                time=time,
            )
        for fn in list(self._callbacks):
            fn(item)
        return True
