"""A linear-time glob matcher, shared by the ApplicationSet path matcher and envsubst's ``${v#pattern}``.

Both callers used to translate a glob into a Python regular expression.  Python's
``re`` backtracks, so a pattern from a repository such as ``*a*a*a*a*a*a*a*a*b``
against ``aaaa…a`` took exponential time (minutes for 40 characters).  This
module compiles a glob into a list of tokens and runs it as a position-set NFA:
matching a name of length ``n`` against a pattern of ``m`` tokens costs at most
``O(m·n)`` steps, whatever the pattern.

Tokens: a literal character, ``?`` (any one character), ``*`` (any run of
characters) and a character class.  ``slash`` decides whether ``?`` and ``*``
may match ``/`` (Go's ``path.Match``: no; the envsubst fork's copy of it: yes);
a class matches ``/`` when its set says so, as in Go.

Two pattern syntaxes, one for each caller, each kept exactly as it was:

``compile_path_glob`` (Argo CD ApplicationSet, ``path.Match``-like)
    ``*`` and ``?`` stop at ``/``; ``\\x`` is a literal ``x`` (a trailing ``\\``
    is a literal backslash); ``[...]`` is the text up to the next ``]``, negated
    by a leading ``^`` or ``!``, with ``a-z`` ranges, and ``-`` literal first or
    last; a backslash inside a class is a literal backslash.  ``**`` is the same
    as ``*``.  A malformed pattern (no closing ``]``, an empty class, a reversed
    range) gives ``None``: it matches nothing.

``compile_go_glob`` (the Flux / drone envsubst fork's ``path.Match``)
    ``*`` and ``?`` match any character, ``/`` included; ``\\x`` is a literal
    ``x``; ``[...]`` negated by a leading ``^``, a ``]`` right after ``[`` / ``[^``
    is literal, ``\\`` escapes inside a class, ``a-z`` ranges.  A malformed
    pattern (a trailing ``\\``, an unclosed class) raises ``ValueError`` (Go's
    ``ErrBadPattern``); a reversed range such as ``[z-a]`` matches nothing, as in Go.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Glob", "compile_go_glob", "compile_path_glob"]

_ANY = "?"
_STAR = "*"


@dataclass(frozen=True)
class _Class:
    negated: bool
    chars: frozenset[str]
    ranges: tuple[tuple[str, str], ...]

    def has(self, c: str) -> bool:
        inside = c in self.chars or any(lo <= c <= hi for lo, hi in self.ranges)
        return inside != self.negated


# A token: ("lit", c) | (_ANY,) | (_STAR,) | ("cls", _Class)
_Token = tuple


class Glob:
    """A compiled glob.  ``match(name)`` is a whole-string match; ``prefix_matches(s)``
    says, for every length ``k`` in ``0..len(s)``, whether ``s[:k]`` matches, in one pass."""

    __slots__ = ("tokens", "slash")

    def __init__(self, tokens: list[_Token], slash: bool) -> None:
        self.tokens = tuple(tokens)
        self.slash = slash

    def _closure(self, states: set[int]) -> set[int]:
        # A ``*`` may match nothing: from state i (before a star) state i+1 is reachable.
        toks = self.tokens
        out = set()
        for i in sorted(states):
            while True:
                if i in out:
                    break
                out.add(i)
                if i < len(toks) and toks[i][0] == _STAR:
                    i += 1
                    continue
                break
        return out

    def _step(self, states: set[int], c: str) -> set[int]:
        toks = self.tokens
        nxt: set[int] = set()
        for i in states:
            if i >= len(toks):
                continue
            t = toks[i]
            kind = t[0]
            if kind == _STAR:
                if self.slash or c != "/":
                    nxt.add(i)
            elif kind == _ANY:
                if self.slash or c != "/":
                    nxt.add(i + 1)
            elif kind == "lit":
                if c == t[1]:
                    nxt.add(i + 1)
            elif t[1].has(c):
                nxt.add(i + 1)
        return self._closure(nxt)

    def match(self, name: str) -> bool:
        end = len(self.tokens)
        states = self._closure({0})
        for c in name:
            if not states:
                return False
            states = self._step(states, c)
        return end in states

    def prefix_matches(self, s: str) -> list[bool]:
        end = len(self.tokens)
        states = self._closure({0})
        out = [end in states]
        for c in s:
            states = self._step(states, c) if states else states
            out.append(end in states)
        return out


def _compress(tokens: list[_Token]) -> list[_Token]:
    # ``**`` (and longer runs) means the same as ``*`` for both syntaxes; one star keeps the NFA small.
    out: list[_Token] = []
    for t in tokens:
        if t[0] == _STAR and out and out[-1][0] == _STAR:
            continue
        out.append(t)
    return out


def _path_class(body: str) -> _Class | None:
    """A class body in the ApplicationSet syntax (the text between ``[`` and the next ``]``)."""
    negated = body[:1] in ("^", "!")
    if negated:
        body = body[1:]
    if not body:
        return None
    chars: set[str] = set()
    ranges: list[tuple[str, str]] = []
    i, n = 0, len(body)
    while i < n:
        lo = body[i]
        if i + 1 < n and body[i + 1] == "-":
            if i + 2 >= n:          # ``a-`` at the end: both literal
                chars.update((lo, "-"))
                i += 2
                continue
            hi = body[i + 2]
            if hi < lo:
                return None
            ranges.append((lo, hi))
            i += 3
            continue
        chars.add(lo)
        i += 1
    return _Class(negated, frozenset(chars), tuple(ranges))


def compile_path_glob(pattern: str) -> Glob | None:
    """The ApplicationSet (``path.Match``-like) syntax; ``None`` for a malformed pattern."""
    tokens: list[_Token] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            tokens.append((_STAR,))
        elif c == "?":
            tokens.append((_ANY,))
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                return None
            cls = _path_class(pattern[i + 1:j])
            if cls is None:
                return None
            tokens.append(("cls", cls))
            i = j
        elif c == "\\" and i + 1 < n:
            i += 1
            tokens.append(("lit", pattern[i]))
        else:
            tokens.append(("lit", c))
        i += 1
    return Glob(_compress(tokens), slash=False)


def compile_go_glob(p: str) -> Glob:
    """The envsubst fork's syntax; raises ``ValueError`` for a malformed pattern."""
    tokens: list[_Token] = []
    i, n = 0, len(p)
    while i < n:
        c = p[i]
        if c == "*":
            tokens.append((_STAR,))
        elif c == "?":
            tokens.append((_ANY,))
        elif c == "\\":
            i += 1
            if i >= n:
                raise ValueError("syntax error in pattern")
            tokens.append(("lit", p[i]))
        elif c == "[":
            i += 1
            negated = i < n and p[i] == "^"
            if negated:
                i += 1
            chars: set[str] = set()
            ranges: list[tuple[str, str]] = []
            first = True
            while True:
                if i >= n:
                    raise ValueError("syntax error in pattern")
                if p[i] == "]" and not first:
                    break
                first = False
                lo = p[i]
                if lo == "\\":
                    i += 1
                    if i >= n:
                        raise ValueError("syntax error in pattern")
                    lo = p[i]
                i += 1
                if i < n - 1 and p[i] == "-" and p[i + 1] != "]":
                    hi = p[i + 1]
                    if hi == "\\":
                        i += 1
                        if i + 1 >= n:
                            raise ValueError("syntax error in pattern")
                        hi = p[i + 1]
                    i += 2
                    ranges.append((lo, hi))     # reversed: never matches, as in Go
                else:
                    chars.add(lo)
            tokens.append(("cls", _Class(negated, frozenset(chars), tuple(ranges))))
        else:
            tokens.append(("lit", c))
        i += 1
    return Glob(_compress(tokens), slash=True)
