"""Errors labkit raises, and the outcome vocabulary every layer shares.

There are two families.

``ApiError`` is what a Kubernetes API server answers when it refuses a request: a
``Status`` object with ``reason`` (NotFound, Invalid, Forbidden, Conflict,
AlreadyExists, ...), an HTTP ``code`` and a ``message`` in the API server's own
form (``StatefulSet.apps "db" is invalid: spec: Forbidden: ...``).  The embedded
simulator raises it for every rejected request, and the real-cluster backend
translates the official client's ``ApiException`` into the same type, so the
engine handles one error shape whichever cluster sits behind the seam.

``LabkitError`` is a user-facing error about *input*: a malformed manifest, an
unknown scenario parameter, a kustomize failure.  It always names the file and,
where there is one, the field, so the CLI can print a single clear line instead of
a traceback.

The outcome types (``RetryAfter``, ``TemporaryError``, ``PermanentError``) follow
kopf: a reconcile stage says *how* it failed, and the outer lifecycle decides
whether to requeue after an interval, back off, or stop until the input changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class LabkitError(Exception):
    """A clear, user-facing error about input; never shown as a traceback."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file = file
        self.field = field
        self.detail = message
        where = ""
        if file and field:
            where = f"{file}: {field}: "
        elif file:
            where = f"{file}: "
        elif field:
            where = f"{field}: "
        super().__init__(where + message)


_CODES = {
    "BadRequest": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "AlreadyExists": 409,
    "Conflict": 409,
    "Gone": 410,
    "Invalid": 422,
    "TooManyRequests": 429,
    "InternalError": 500,
    "ServiceUnavailable": 503,
    "Timeout": 504,
}


class ApiError(Exception):
    """A Kubernetes ``Status`` failure, as the API server returns it."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        code: int | None = None,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ):
        self.reason = reason
        self.code = code if code is not None else _CODES.get(reason, 500)
        self.message = message
        self.details = details or {}
        self.retry_after = retry_after
        super().__init__(message)

    def __reduce__(self):  # picklable / re-raisable across processes and SimPy failures
        return (_rebuild_api_error, (self.reason, self.message, self.code, self.details, self.retry_after))

    def status(self) -> dict[str, Any]:
        """The error as a ``v1.Status`` object."""
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }

    @property
    def retryable(self) -> bool:
        """Whether retrying the same request later may succeed (5xx, 429, timeouts, conflicts on update)."""
        return self.code >= 500 or self.code == 429

    def __repr__(self) -> str:
        return f"ApiError({self.reason!r}, {self.code}, {self.message!r})"


def _rebuild_api_error(reason: str, message: str, code: int, details: dict, retry_after: float | None) -> "ApiError":
    return ApiError(reason, message, code=code, details=details, retry_after=retry_after)


def group_of(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def qualified_kind(api_version: str, kind: str) -> str:
    """``StatefulSet.apps``, ``Pod`` (core group has no suffix), as in API messages."""
    group = group_of(api_version)
    return f"{kind}.{group}" if group else kind


def resource_name(kind: str) -> str:
    """Lower-case plural resource name, as used in NotFound / AlreadyExists messages."""
    k = kind.lower()
    if k.endswith("s"):
        return k + "es"
    if k.endswith("y"):
        return k[:-1] + "ies"
    return k + "s"


def qualified_resource(api_version: str, kind: str) -> str:
    """``deployments.apps``, ``configmaps``, as in NotFound / AlreadyExists messages."""
    group = group_of(api_version)
    res = resource_name(kind)
    return f"{res}.{group}" if group else res


def not_found(api_version: str, kind: str, name: str) -> ApiError:
    return ApiError(
        "NotFound",
        f'{qualified_resource(api_version, kind)} "{name}" not found',
        details={"name": name, "group": group_of(api_version), "kind": resource_name(kind)},
    )


def already_exists(api_version: str, kind: str, name: str) -> ApiError:
    return ApiError(
        "AlreadyExists",
        f'{qualified_resource(api_version, kind)} "{name}" already exists',
        details={"name": name, "group": group_of(api_version), "kind": resource_name(kind)},
    )


@dataclass
class FieldCause:
    """One entry of ``details.causes``: ``reason`` is FieldValueInvalid, FieldValueForbidden, ..."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"


def invalid(api_version: str, kind: str, name: str, causes: list[FieldCause]) -> ApiError:
    """``<Kind>.<group> "<name>" is invalid: <field>: <message>[, <field>: <message>]``."""
    text = ", ".join(f"{c.field}: {c.message}" for c in causes)
    if len(causes) > 1:
        text = f"[{text}]"
    return ApiError(
        "Invalid",
        f'{qualified_kind(api_version, kind)} "{name}" is invalid: {text}',
        details={
            "name": name,
            "group": group_of(api_version),
            "kind": kind,
            "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes],
        },
    )


def conflict(message: str, causes: list[dict[str, str]] | None = None, *, name: str = "", kind: str = "") -> ApiError:
    return ApiError("Conflict", message, details={"name": name, "kind": kind, "causes": causes or []})


# ---------------------------------------------------------------- outcome types

@dataclass
class Outcome(Exception):
    """Base of the explicit reconcile outcomes (kopf style)."""

    message: str = ""
    reason: str = ""

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


@dataclass
class RetryAfter(Outcome):
    """Not a failure: come back after ``delay`` seconds (e.g. a dependency is not ready)."""

    delay: float = 30.0


@dataclass
class TemporaryError(Outcome):
    """A failure that may clear by itself (API 5xx, git unreachable): retry with back-off."""

    delay: float | None = None


@dataclass
class PermanentError(Outcome):
    """A failure that will recur until the input changes (build error, immutable field)."""

    details: dict[str, Any] = field(default_factory=dict)
