"""Semantic versions and ranges the way Flux's semver ImagePolicy reads them.

Flux's image-reflector-controller (``internal/policy/semver.go``) parses every
tag with ``fluxcd/pkg/version.ParseVersion`` — Masterminds/semver's *strict*
parser (``MAJOR.MINOR.PATCH``, no leading zeros, optional ``-prerelease`` and
``+build``) that additionally accepts a leading ``v`` — and checks it against the
policy's ``range`` with Masterminds/semver v3 ``NewConstraint`` / ``Check``.
Tags that do not parse are skipped; the greatest matching version wins and the
tag is returned as written (``Original()``, so ``v1.2.3`` stays ``v1.2.3``).

The range syntax reproduced here is Masterminds v3's:

* comparisons ``=``, ``!=``, ``>``, ``<``, ``>=`` (``=>``), ``<=`` (``=<``);
  AND by comma or space, OR by ``||``;
* hyphen ranges ``1.2 - 1.4.5`` → ``>= 1.2, <= 1.4.5``;
* wildcards ``x``, ``X``, ``*`` and missing parts: ``1.2.x`` and ``1.2`` both
  mean ``>= 1.2.0, < 1.3.0`` for ``=``; ``>1.2`` means "minor above 2";
  ``<=2`` admits every ``2.y.z``;
* tilde ``~1.2.3`` → ``>= 1.2.3, < 1.3.0``; ``~1`` → ``>= 1.0.0, < 2.0.0``;
* caret ``^1.2.3`` → ``>= 1.2.3, < 2.0.0``; ``^0.2.3`` → ``< 0.3.0``;
  ``^0.0.3`` → only ``0.0.3``; ``^0.0`` → ``0.0.x``; ``^0`` → ``0.x.y``;
* **pre-releases**: a version with a pre-release (``1.3.0-rc.1``) satisfies a
  comparison only if that comparison's own version carries a pre-release
  (``>= 1.3.0-0``); otherwise it is excluded (Masterminds issue 21).

Precedence is semver 2.0.0's: numeric identifiers compare numerically,
alphanumeric ones lexically, numeric < alphanumeric, a shorter pre-release
list is lower when it is a prefix, any pre-release is lower than the release,
and build metadata is ignored.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering
from typing import Iterable

from labkit.core.errors import LabkitError

_STRICT = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_LOOSE = re.compile(
    r"^v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: str = ""
    build: str = ""
    original: str = ""

    def _pre_key(self) -> tuple:
        if not self.pre:
            return (1,)
        parts = []
        for p in self.pre.split("."):
            parts.append((0, int(p), "") if p.isdigit() else (1, 0, p))
        return (0, tuple(parts))

    def key(self) -> tuple:
        return (self.major, self.minor, self.patch, self._pre_key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __lt__(self, other: "Version") -> bool:
        return self.key() < other.key()

    def __str__(self) -> str:
        s = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            s += f"-{self.pre}"
        if self.build:
            s += f"+{self.build}"
        return s


def parse_version(tag: str) -> Version | None:
    """Flux's ``version.ParseVersion``: strict semver, a leading ``v`` allowed; None if it does not parse."""
    m = _STRICT.match(tag[1:] if tag.startswith("v") else tag)
    if not m:
        return None
    return Version(int(m[1]), int(m[2]), int(m[3]), m[4] or "", m[5] or "", tag)


def _loose(text: str) -> Version:
    m = _LOOSE.match(text)
    if not m:
        raise ValueError(text)
    return Version(int(m[1]), int(m[2] or 0), int(m[3] or 0), m[4] or "", m[5] or "", text)


_X = ("x", "X", "*")
_PART = r"[0-9xX*]+"
_CV = (rf"v?(?:{_PART})(?:\.{_PART})?(?:\.{_PART})?"
       r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?")
_OPS = r"!=|>=|=>|<=|=<|~>|>|<|=|~|\^"
_ONE = re.compile(rf"({_OPS})?\s*({_CV})")
_RANGE = re.compile(rf"\s*({_CV})\s+-\s+({_CV})\s*")
_CV_PARTS = re.compile(
    rf"^v?({_PART})(\.{_PART})?(\.{_PART})?((?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)((?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)$")


@dataclass(frozen=True)
class _Comparator:
    op: str
    con: Version
    dirty: bool
    minor_dirty: bool
    patch_dirty: bool

    def check(self, v: Version) -> bool:
        if v.pre and not self.con.pre:
            return False
        op = self.op
        c = self.con
        if op in ("", "="):
            return self._tilde(v) if self.dirty else v == c
        if op == "!=":
            if self.dirty:
                if c.major != v.major:
                    return True
                if c.minor != v.minor and not self.minor_dirty:
                    return True
                if self.minor_dirty:
                    return False
                if c.patch != v.patch and not self.patch_dirty:
                    return True
                if self.patch_dirty:
                    return (v.pre or c.pre) != "" and v._pre_key() != c._pre_key()
            return v != c
        if op == ">":
            if not self.dirty:
                return v > c
            if v.major != c.major:
                return v.major > c.major
            if self.minor_dirty:
                return False
            if self.patch_dirty:
                return v.minor > c.minor
            return v > c
        if op == "<":
            return v < c
        if op in (">=", "=>"):
            return v >= c
        if op in ("<=", "=<"):
            if not self.dirty:
                return v <= c
            if v.major > c.major:
                return False
            if v.major == c.major and v.minor > c.minor and not self.minor_dirty:
                return False
            return True
        if op in ("~", "~>"):
            return self._tilde(v)
        if op == "^":
            return self._caret(v)
        raise AssertionError(op)

    def _tilde(self, v: Version) -> bool:
        c = self.con
        if v < c:
            return False
        if c.major == 0 and c.minor == 0 and c.patch == 0 and not self.minor_dirty and not self.patch_dirty:
            return True
        if v.major != c.major:
            return False
        if v.minor != c.minor and not self.minor_dirty:
            return False
        return True

    def _caret(self, v: Version) -> bool:
        c = self.con
        if v < c:
            return False
        if c.major > 0 or self.minor_dirty:
            return v.major == c.major
        if c.major == 0 and v.major > 0:
            return False
        if c.minor > 0 or self.patch_dirty:
            return v.minor == c.minor
        if c.minor == 0 and v.minor > 0:
            return False
        return c.patch == v.patch


def _comparator(op: str, text: str) -> _Comparator:
    m = _CV_PARTS.match(text)
    if not m:
        raise ValueError(text)
    major, minor, patch, pre, _build = m[1], m[2], m[3], m[4], m[5]
    dirty = minor_dirty = patch_dirty = False
    if major in _X:
        ver, dirty = f"0.0.0{pre}", True
    elif minor is None or minor[1:] in _X:
        ver, dirty, minor_dirty = f"{major}.0.0{pre}", True, True
    elif patch is None or patch[1:] in _X:
        ver, dirty, patch_dirty = f"{major}{minor}.0{pre}", True, True
    else:
        ver = f"{major}{minor}{patch}{pre}"
    return _Comparator(op or "", _loose(ver), dirty, minor_dirty, patch_dirty)


@dataclass(frozen=True)
class Constraint:
    """A parsed range: OR of AND-groups of comparators."""

    text: str
    groups: tuple[tuple[_Comparator, ...], ...]

    def check(self, v: Version) -> bool:
        return any(all(c.check(v) for c in g) for g in self.groups)


def parse_constraint(text: str, *, field: str = "spec.policy.semver.range") -> Constraint:
    """Masterminds ``NewConstraint``; ``LabkitError`` naming ``field`` for an improper constraint."""
    rewritten = _RANGE.sub(lambda m: f">= {m[1]}, <= {m[2]}", text)
    groups = []
    sep_re = re.compile(r"\s*,\s*|\s+")
    for raw in rewritten.split("||"):
        seg = raw.strip()
        if not seg:
            groups.append((_comparator(">=", "0.0.0"),))
            continue
        comps = []
        pos = 0
        while pos < len(seg):
            if comps:
                sep = sep_re.match(seg, pos)
                if not sep:
                    raise LabkitError(f"improper constraint: {text}", field=field)
                pos = sep.end()
            m = _ONE.match(seg, pos)
            if not m:
                raise LabkitError(f"improper constraint: {text}", field=field)
            try:
                comps.append(_comparator(m[1] or "", m[2]))
            except ValueError:
                raise LabkitError(f"improper constraint: {text}", field=field) from None
            pos = m.end()
        groups.append(tuple(comps))
    return Constraint(text, tuple(groups))


def latest(tags: Iterable[str], range_: str) -> str | None:
    """The tag Flux's semver policy picks: the greatest parseable version in range, as written."""
    constraint = parse_constraint(range_)
    best: Version | None = None
    for tag in tags:
        v = parse_version(tag)
        if v is not None and constraint.check(v) and (best is None or v > best):
            best = v
    return None if best is None else best.original
