"""Go / Kubernetes duration strings: ``"1m"``, ``"1m30s"``, ``"500ms"``, ``"2h45m"``.

Every interval in the GitOps objects labkit reads is written the way Go's
``time.ParseDuration`` reads it: Flux's ``spec.interval``, ``retryInterval``,
``timeout``; Argo CD's ``retry.backoff.duration`` and ``maxDuration``; the
scenario files' own timing knobs.  This module is the one place that turns such
a string into seconds (a ``float``, what the SimPy clock counts in) and back.

Parsing follows ``time.ParseDuration`` (Go ``src/time/format.go``) exactly:

* a duration is an optional sign followed by one or more ``<number><unit>``
  terms, e.g. ``"300ms"``, ``"-1.5h"``, ``"2h45m"``, ``"1h0m0s"``;
* the number may carry a decimal fraction (``"1.5s"``, ``".5s"``, ``"1.s"``);
* units are ``ns``, ``us`` (or ``µs`` / ``μs``), ``ms``, ``s``, ``m``, ``h`` —
  days and weeks are *not* units (``"1d"`` is an error, as in Go);
* the bare string ``"0"`` is the only unit-less value accepted;
* the arithmetic is done in integer nanoseconds, so ``"1.1s"`` is exactly
  1 100 000 000 ns and rounding never drifts.

Formatting (``format_duration``) mirrors Go's ``Duration.String``: ``"0s"``,
``"500ms"``, ``"1.5µs"``, ``"1m30s"``, ``"1h0m0s"``, ``"2h45m0s"`` — the form
Flux prints in its events (``next run in 10m0s``).  ``format_duration`` of a
parsed value is therefore not always the input text (``"10m"`` comes back as
``"10m0s"``), but parsing the formatted text always gives the same value.

Flux's CRDs are stricter than ``ParseDuration``: their OpenAPI schema requires
``^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$`` (no sign, no ``ns``/``us``, no bare
``"0"``).  ``parse_duration(..., pattern=FLUX_DURATION_PATTERN)`` applies that
check first, so a manifest the API server would reject is rejected here with
the same field path.

Invalid input raises ``labkit.core.errors.LabkitError`` naming the field (and file
when given): ``spec.interval: invalid duration "1x": unknown unit "x"``.
"""
from __future__ import annotations

import re

from labkit.core.errors import LabkitError

__all__ = [
    "FLUX_DURATION_PATTERN",
    "FLUX_GIT_TIMEOUT_PATTERN",
    "NANOSECOND",
    "parse_duration",
    "parse_duration_ns",
    "format_duration",
    "format_duration_ns",
]

NANOSECOND = 1
_MICRO = 1_000
_MILLI = 1_000_000
_SECOND = 1_000_000_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE

_UNITS: dict[str, int] = {
    "ns": NANOSECOND,
    "us": _MICRO,
    "\u00b5s": _MICRO,  # U+00B5 micro sign
    "\u03bcs": _MICRO,  # U+03BC Greek small letter mu
    "ms": _MILLI,
    "s": _SECOND,
    "m": _MINUTE,
    "h": _HOUR,
}

# The validation pattern of Flux's duration fields (kustomize-controller and
# source-controller api/v1: ``+kubebuilder:validation:Pattern``).
FLUX_DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
# GitRepository ``spec.timeout`` omits hours.
FLUX_GIT_TIMEOUT_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$"

_MAX_INT64 = (1 << 63) - 1


def _fail(text: object, why: str | None, field: str | None, file: str | None) -> LabkitError:
    shown = text if isinstance(text, str) else repr(text)
    msg = f'invalid duration "{shown}"' if isinstance(text, str) else f"invalid duration {shown}"
    if why:
        msg += f": {why}"
    return LabkitError(msg, file=file, field=field)


def parse_duration_ns(
    text: str,
    *,
    field: str | None = None,
    file: str | None = None,
    pattern: str | None = None,
) -> int:
    """Parse a Go duration string to integer nanoseconds (see the module docstring)."""
    if not isinstance(text, str):
        raise _fail(text, 'must be a string such as "1m" or "30s"', field, file)
    if pattern is not None and not re.fullmatch(pattern, text):
        raise _fail(text, f"must match {pattern}", field, file)
    s = text
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise _fail(text, None, field, file)
    total = 0
    while s:
        # the number: integer part, optional fraction
        m = re.match(r"([0-9]*)(\.([0-9]*))?", s)
        assert m is not None
        int_part, frac_part = m.group(1), m.group(3)
        if int_part == "" and not frac_part:
            raise _fail(text, None, field, file)
        s = s[m.end():]
        u = re.match(r"[^0-9.]+", s)
        if u is None:
            raise _fail(text, "missing unit", field, file)
        unit = u.group(0)
        s = s[u.end():]
        scale = _UNITS.get(unit)
        if scale is None:
            raise _fail(text, f'unknown unit "{unit}"', field, file)
        value = int(int_part or "0") * scale
        if frac_part:
            # exact: fraction digits scaled to nanoseconds, truncated like Go
            value += int(frac_part) * scale // (10 ** len(frac_part))
        total += value
        if total > _MAX_INT64:
            raise _fail(text, "overflow", field, file)
    return -total if neg else total


def parse_duration(
    text: str,
    *,
    field: str | None = None,
    file: str | None = None,
    pattern: str | None = None,
) -> float:
    """Parse a Go duration string (``"1m30s"``) to seconds as a float.

    ``field`` / ``file`` name where the value came from, for the error message;
    ``pattern`` adds a regular-expression check first (e.g. ``FLUX_DURATION_PATTERN``).
    """
    return parse_duration_ns(text, field=field, file=file, pattern=pattern) / _SECOND


def _fmt_frac(v: int, prec: int) -> tuple[str, int]:
    """Go's fmtFrac: the fractional digits of v / 10**prec (trailing zeros dropped)."""
    digits = ""
    printed = False
    for _ in range(prec):
        digit = v % 10
        printed = printed or digit != 0
        if printed:
            digits = str(digit) + digits
        v //= 10
    return ("." + digits if printed else ""), v


def format_duration_ns(ns: int) -> str:
    """Go's ``time.Duration.String`` for an integer number of nanoseconds."""
    ns = int(ns)
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    if u < _SECOND:
        if u < _MICRO:
            out = f"{u}ns"
        elif u < _MILLI:
            frac, whole = _fmt_frac(u, 3)
            out = f"{whole}{frac}\u00b5s"
        else:
            frac, whole = _fmt_frac(u, 6)
            out = f"{whole}{frac}ms"
    else:
        frac, secs = _fmt_frac(u, 9)
        out = f"{secs % 60}{frac}s"
        mins = secs // 60
        if mins > 0:
            out = f"{mins % 60}m" + out
            hours = mins // 60
            if hours > 0:
                out = f"{hours}h" + out
    return "-" + out if neg else out


def format_duration(seconds: float) -> str:
    """Seconds to Go's duration text: ``90.0`` -> ``"1m30s"``, ``3600`` -> ``"1h0m0s"``."""
    return format_duration_ns(round(seconds * _SECOND))
