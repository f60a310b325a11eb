"""Flux ``postBuild`` variable substitution, reproduced from kustomize-controller.

What Flux does
==============

A Flux ``Kustomization`` may carry a ``spec.postBuild`` block::

    postBuild:
      substitute:                 # inline variables
        cluster_env: prod
      substituteFrom:             # ConfigMaps / Secrets in the Kustomization's namespace
        - kind: ConfigMap
          name: cluster-vars
          optional: true          # tolerate its absence
        - kind: Secret
          name: cluster-secret-vars

After ``kustomize build`` the controller walks every rendered object and runs a
bash-like expansion over *the YAML text of that object* (``res.AsYAML()``), then
parses the result back (``YAMLToJSON``).  The code we mirror is
``fluxcd/pkg/kustomize/kustomize_varsub.go`` (``SubstituteVariables``,
``LoadVariables``, ``varSubstitution``) and the expansion engine
``fluxcd/pkg/envsubst`` (a fork of ``drone/envsubst``); the call site is
``kustomize-controller/internal/controller/kustomization_controller.go``
(``build``).  The rules, in the order the controller applies them:

1. **Variables are collected** (``collect_variables``): every ``substituteFrom``
   entry in list order, later entries overwriting earlier ones; ConfigMap
   ``data`` values as they are, Secret ``data`` values base64-decoded; then the
   inline ``substitute`` map, which wins over everything.  Every value has its
   newlines removed (``strings.ReplaceAll(v, "\\n", "")``).  A missing source
   fails the build with ``substitute from 'ConfigMap/<name>' error: <api
   error>`` unless the reference is ``optional: true``, in which case it counts
   as present-but-empty.

2. **No variables, no substitution.**  ``if len(vars) > 0`` guards the whole
   step: when neither the inline map nor any source yields a variable, the
   objects are returned untouched, defaults are *not* evaluated and strict mode
   cannot fail (the Flux docs tell users to add a dummy variable to force it).

3. **Opt-out per object.**  An object labelled *or* annotated
   ``kustomize.toolkit.fluxcd.io/substitute: disabled`` is skipped.

4. **Variable names** must match ``^[_[:alpha:]][_[:alpha:][:digit:]]*$``;
   otherwise ``'<name>' var name is invalid, must match '<regex>'``.

5. **Expansion** (``envsubst``) only recognises the braced form ``${...}``.
   ``$var`` without braces is plain text and left alone; ``$$`` is an escape that
   prints one ``$`` (so ``$${var}`` yields the literal ``${var}``).  Supported
   operators, exactly as the fork's parser accepts them:

   ==========================  ==============================================
   ``${var}``                  value
   ``${var:=default}``         default if unset *or empty*
   ``${var:-default}``         default if unset *or empty*
   ``${var=default}``          default if unset (the implementation also uses
                               it when the value is empty: ``toDefault``)
   ``${#var}``                 length (bytes, as Go's ``len``)
   ``${var^}`` ``${var^^}``    upper-case first / all
   ``${var,}`` ``${var,,}``    lower-case first / all
   ``${var:pos}``              substring; ``${var:pos:len}``
   ``${var#pat}`` ``##``       strip shortest / longest prefix glob match
   ``${var%pat}`` ``%%``       strip shortest / longest suffix glob match
   ``${var/pat/rep}``          replace first; ``//`` all; ``/#`` prefix; ``/%`` suffix
   ==========================  ==============================================

   The fork's README also lists ``${var-default}``, but its parser has no branch
   for a bare ``-`` after the name, so ``${var-default}`` is a parse error
   (``missing closing brace``).  We port the parser, not the README, so the
   same input fails here too.  Defaults may nest: ``${a:=${b}-suffix}``.
   Inside an expression ``\\/`` and ``\\\\`` escape the slash/backslash.

6. **Strict mode.**  Since kustomize-controller v1.9 (Flux 2.9) the
   ``StrictPostBuildSubstitutions`` feature gate is on by default: a variable
   referenced without a default-providing operator (``-``, ``=``, ``:-``,
   ``:=``, ...) that is not among the collected variables fails the build.
   Transformations that read the value (``${#v}``, ``${v^^}``, ``${v/a/b}``)
   count as references.  The error text comes from the fork
   (``errVarNotSet = fmt.Errorf("variable not set (strict mode)")``, then
   ``fmt.Errorf("%w: %q", errVarNotSet, node.Param)``) and is wrapped by
   ``varSubstitution`` (``variable substitution failed: %w``), by
   ``SubstituteVariables`` (``envsubst error: %w``) and by the controller
   (``post build failed for '%s/%s': %w`` with the kustomize GVK string and the
   object name).  The full message therefore reads, for example::

       post build failed for 'Deployment.v1.apps/podinfo': envsubst error:
       variable substitution failed: variable not set (strict mode): "tag"

   which is what users see in ``kubectl get kustomization`` (the same text shows
   up verbatim in public issue threads and runbooks).  With ``strict=False``
   an unknown variable expands to the empty string (the pre-1.9 default).

7. **Re-parse.**  The substituted text is parsed again; a result that is no
   longer valid YAML fails with ``envsubst error: YAMLToJSON: ...``.  Because
   the substitution is textual, ``replicas: ${replicas}`` with ``replicas: "3"``
   becomes the integer ``3`` (unquoted in the text), while ``"${replicas}"``
   stays a string; the Flux docs warn about exactly this.

Why text and not dicts
======================

Flux substitutes over kustomize's YAML rendering of each object, which keeps
the quoting style of the source file.  ``labkit.gitops.render.render_documents``
returns the per-object YAML text that ``kubectl kustomize`` printed, and
``substitute`` accepts those strings directly, so quoting behaves as in Flux.
Plain dicts are accepted too; they are dumped with PyYAML (block style,
unlimited width so no expression is folded across lines) before substitution.

Bounds
======

The text substituted comes from a repository, which may be hostile, so the
port is bounded where Go's fork is not (or relies on Go's growable stacks):
the parser reads text runs and expressions in a loop, not one recursive call
each (Go's shape overflows Python's stack after a few hundred ``${var}`` in
one object), and its scanner drops ``$$`` escapes in constant time (Go
rebuilds the buffer per escape); ``${a:=${b:=...}}`` may nest
``MAX_NESTING`` (64) deep; the substituted text of one object may not exceed
``MAX_OUTPUT`` (8 Mi characters) — a ``${v//x/...}`` replacement is sized
before it runs; and a ``#`` / ``%`` pattern removal, quadratic in the value's
length, refuses values over ``MAX_PATTERN_INPUT`` (16 Ki characters).  Each is
an ``EnvsubstError`` with a clear message, so a ``SubstitutionError`` below:
the Kustomization fails its build, the run goes on.

Errors
======

Every failure is a ``SubstitutionError`` (a ``LabkitError``) whose
``flux_message`` is the exact string kustomize-controller would put in the
Kustomization's ``Ready`` condition (reason ``BuildFailed``).
"""
from __future__ import annotations

import base64
import binascii
import copy
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from labkit.core.errors import LabkitError
from labkit.gitops.globmatch import Glob, compile_go_glob
from labkit.gitops.yamlload import JsonLoader

__all__ = [
    "SUBSTITUTE_KEY",
    "VARSUB_REGEX",
    "SubstitutionError",
    "EnvsubstError",
    "collect_variables",
    "envsubst",
    "gvk_string",
    "is_substitution_disabled",
    "substitute",
]

SUBSTITUTE_KEY = "kustomize.toolkit.fluxcd.io/substitute"
DISABLED = "disabled"
#: The regex Flux validates variable names with (POSIX classes as in the Go source).
VARSUB_REGEX = "^[_[:alpha:]][_[:alpha:][:digit:]]*$"
# Go's RE2 [:alpha:] / [:digit:] are ASCII-only classes.
_VAR_NAME = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")


class SubstitutionError(LabkitError):
    """A post-build substitution failure; ``flux_message`` is Flux's condition text."""

    def __init__(self, flux_message: str, *, file: str | None = None, object: str = ""):
        self.flux_message = flux_message
        self.object = object
        super().__init__(flux_message, file=file, field="spec.postBuild")


class EnvsubstError(Exception):
    """An error of the envsubst engine itself (parse error or strict-mode miss)."""


# =========================================================================== envsubst
# A line-by-line port of github.com/fluxcd/pkg/envsubst (parse/scan.go, parse/parse.go,
# template.go, funcs.go).  Variable and method names follow the Go source so the
# two can be compared side by side.

_EOF = ""  # Go's eof rune (0); we never read a real NUL as eof because we track width.

# tokens
_T_ILLEGAL, _T_EOF, _T_IDENT, _T_LBRACK, _T_RBRACK = range(5)
# scanner mode bits
_SCAN_IDENT, _SCAN_LBRACK, _SCAN_RBRACK, _SCAN_ESCAPE = 1, 2, 4, 8
# escape bits
_DOLLAR, _BACKSLASH = 1, 2
_ESCAPE_ALL = _DOLLAR | _BACKSLASH

ERR_BAD_SUBSTITUTION = "bad substitution"
ERR_MISSING_CLOSING_BRACE = "missing closing brace"
ERR_PARSE_VARIABLE_NAME = "unable to parse variable name"
ERR_PARSE_FUNC_SUBSTITUTION = "unable to parse substitution within function"
ERR_PARSE_DEFAULT_FUNCTION = "unable to parse default function"
ERR_VAR_NOT_SET = "variable not set (strict mode)"

#: Bounds of labkit's port (the repository is untrusted input; Go's fork has none of these): how deep
#: ``${a:=${b:=...}}`` may nest, how long the substituted text of one object may grow, and how long a value a
#: ``#`` / ``%`` pattern removal (quadratic in the value's length) may work on.
MAX_NESTING = 64
MAX_OUTPUT = 8 * 1024 * 1024
MAX_PATTERN_INPUT = 16 * 1024


def _accept_rune(r: str, i: int) -> bool:
    return True


def _accept_ident(r: str, i: int) -> bool:
    return r.isalpha() or r.isdigit() or r == "_"


def _accept_colon(r: str, i: int) -> bool:
    return r == ":"


def _accept_one_hash(r: str, i: int) -> bool:
    return r == "#" and i == 1


def _accept_not_closing(r: str, i: int) -> bool:
    return r != "}"


def _accept_hash_func(r: str, i: int) -> bool:
    return r == "#" and i < 3


def _accept_percent_func(r: str, i: int) -> bool:
    return r == "%" and i < 3


def _accept_default_func(r: str, i: int) -> bool:
    return (i == 1 and r == ":") or (i == 2 and r in ("=", "-", "?", "+"))


def _accept_replace_func(r: str, i: int) -> bool:
    return (i == 1 and r == "/") or (i == 2 and r in ("/", "#", "%"))


def _accept_one_equal(r: str, i: int) -> bool:
    return i == 1 and r == "="


def _accept_one_colon(r: str, i: int) -> bool:
    return i == 1 and r == ":"


def _reject_colon_close(r: str, i: int) -> bool:
    return r != ":" and r != "}"


def _accept_slash(r: str, i: int) -> bool:
    return r == "/"


def _accept_not_slash(r: str, i: int) -> bool:
    return r != "/"


def _accept_casing_func(r: str, i: int) -> bool:
    return r in (",", "^") and i < 3


class _Scanner:
    """The fork's scanner over a gap buffer: ``left`` holds what was read (escape characters already removed),
    the rest of ``src`` (and ``back``, characters unread) what was not.  Go's ``skip`` rebuilds the whole buffer
    to drop one escape character, which is quadratic in the number of ``$$``; removing it from the end of
    ``left`` is constant time, with the same result."""

    __slots__ = ("src", "next", "back", "left", "start", "width", "mode", "escape_chars", "accept")

    def __init__(self, buf: str):
        self.src = buf
        self.next = 0  # index in src of the first character neither read nor pushed back
        self.back: list[str] = []  # characters unread, last one first
        self.left: list[str] = []  # characters read (Go's buf[:pos])
        self.start = 0
        self.width = 0
        self.mode = 0
        self.escape_chars = 0
        self.accept: Callable[[str, int], bool] = _accept_rune

    @property
    def pos(self) -> int:
        return len(self.left)

    def _take(self) -> str:
        if self.back:
            return self.back.pop()
        if self.next < len(self.src):
            r = self.src[self.next]
            self.next += 1
            return r
        return _EOF

    def read(self) -> str:
        r = self._take()
        if r == _EOF:
            self.width = 0
            return _EOF
        self.left.append(r)
        self.width = 1
        return r

    def unread(self) -> None:
        if self.width:
            self.back.append(self.left.pop())

    def skip(self) -> None:
        # remove the character just read (the escape character); the one after it takes its place, read
        self.left.pop()
        r = self._take()
        if r != _EOF:
            self.left.append(r)

    def peek(self) -> str:
        r = self.read()
        self.unread()
        return r

    def string(self) -> str:
        return "".join(self.left[self.start:])

    def forget(self) -> None:
        """Drop what was read before the next token (nothing ever goes back past a token's start)."""
        self.left.clear()
        self.start = 0

    def should_escape(self, ch: int) -> bool:
        return bool(self.escape_chars & ch)

    def scan(self) -> int:
        self.start = self.pos
        r = self.read()
        if r == _EOF:
            return _T_EOF
        if self.scan_lbrack(r):
            return _T_LBRACK
        if self.scan_rbrack(r):
            return _T_RBRACK
        if self.scan_ident(r):
            return _T_IDENT
        return _T_ILLEGAL

    def scan_ident(self, r: str) -> bool:
        if not self.mode & _SCAN_IDENT:
            return False
        if self.scan_escaped(r):
            self.skip()
        elif not self.accept(r, self.pos - self.start):
            return False
        while True:
            r = self.read()
            if r == _EOF:
                self.unread()
                break
            if self.scan_lbrack(r):
                self.unread()
                self.unread()
                break
            if self.scan_escaped(r):
                self.skip()
                continue
            if not self.accept(r, self.pos - self.start):
                self.unread()
                break
        return True

    def scan_lbrack(self, r: str) -> bool:
        if not self.mode & _SCAN_LBRACK:
            return False
        if r == "$":
            if self.read() == "{":
                return True
            self.unread()
        return False

    def scan_rbrack(self, r: str) -> bool:
        if not self.mode & _SCAN_RBRACK:
            return False
        return r == "}"

    def scan_escaped(self, r: str) -> bool:
        if not self.mode & _SCAN_ESCAPE:
            return False
        if r == "$" and self.should_escape(_DOLLAR):
            if self.peek() == "$":
                return True
        if r == "\\" and self.should_escape(_BACKSLASH):
            return self.peek() in ("/", "\\")
        return False


@dataclass
class _Text:
    value: str


@dataclass
class _Func:
    param: str = ""
    name: str = ""
    args: list[Any] = field(default_factory=list)


@dataclass
class _List:
    nodes: list[Any]


_EMPTY = _Text("")


class _Parser:
    def __init__(self, buf: str):
        self.s = _Scanner(buf)
        self.depth = 0

    def parse_any(self) -> Any:
        # Go recurses once per text run and expression (``left`` then ``parse_any`` for the rest), which overflows
        # Python's stack after a few hundred ``${var}`` in one object; a loop builds the same, flat, list.
        s = self.s
        nodes: list[Any] = []
        while True:
            s.forget()
            s.accept = _accept_rune
            s.mode = _SCAN_IDENT | _SCAN_LBRACK | _SCAN_ESCAPE
            s.escape_chars = _DOLLAR
            tok = s.scan()
            if tok == _T_IDENT:
                nodes.append(_Text(s.string()))
            elif tok == _T_EOF:
                break
            elif tok == _T_LBRACK:
                nodes.append(self.parse_func())
            else:
                raise EnvsubstError(ERR_BAD_SUBSTITUTION)
        if not nodes:
            return _EMPTY
        return nodes[0] if len(nodes) == 1 else _List(nodes)

    def parse_func(self) -> Any:
        """One ``${...}`` expression; defaults nest (``${a:=${b}}``), at most ``MAX_NESTING`` deep."""
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise EnvsubstError(f"expressions nested more than {MAX_NESTING} deep")
            return self._parse_func()
        finally:
            self.depth -= 1

    def _parse_func(self) -> Any:
        s = self.s
        s.escape_chars = _ESCAPE_ALL
        if s.peek() == "#":
            return self.parse_len_func()
        s.accept = _accept_ident
        s.mode = _SCAN_IDENT
        if s.scan() != _T_IDENT:
            raise EnvsubstError(ERR_PARSE_VARIABLE_NAME)
        name = s.string()
        nxt = s.peek()
        if nxt == ":":
            return self.parse_default_or_substr(name)
        if nxt == "=":
            return self.parse_default_func(name)
        if nxt in (",", "^"):
            return self.parse_casing_func(name)
        if nxt == "/":
            return self.parse_replace_func(name)
        if nxt == "#":
            return self.parse_remove_func(name, _accept_hash_func)
        if nxt == "%":
            return self.parse_remove_func(name, _accept_percent_func)
        s.accept = _accept_ident
        s.mode = _SCAN_RBRACK
        if s.scan() == _T_RBRACK:
            return _Func(param=name)
        raise EnvsubstError(ERR_MISSING_CLOSING_BRACE)

    def parse_param(self, accept: Callable[[str, int], bool], mode: int) -> Any:
        s = self.s
        s.accept = accept
        s.mode = mode | _SCAN_LBRACK
        tok = s.scan()
        if tok == _T_LBRACK:
            return self.parse_func()
        if tok in (_T_IDENT, _T_RBRACK):
            return _Text(s.string())
        raise EnvsubstError(ERR_PARSE_FUNC_SUBSTITUTION)

    def parse_default_or_substr(self, name: str) -> Any:
        s = self.s
        s.read()
        r = s.peek()
        s.unread()
        if r in ("=", "-", "?", "+"):
            return self.parse_default_func(name)
        return self.parse_substr_func(name)

    def parse_substr_func(self, name: str) -> Any:
        s = self.s
        node = _Func(param=name)
        s.accept = _accept_one_colon
        s.mode = _SCAN_IDENT
        if s.scan() != _T_IDENT:
            raise EnvsubstError(ERR_BAD_SUBSTITUTION)
        node.name = s.string()
        node.args.append(self.parse_param(_reject_colon_close, _SCAN_IDENT))
        s.accept = _accept_colon
        s.mode = _SCAN_IDENT | _SCAN_RBRACK
        tok = s.scan()
        if tok == _T_RBRACK:
            return node
        if tok != _T_IDENT:
            raise EnvsubstError(ERR_BAD_SUBSTITUTION)
        node.args.append(self.parse_param(_accept_not_closing, _SCAN_IDENT))
        self.consume_rbrack()
        return node

    def parse_remove_func(self, name: str, accept: Callable[[str, int], bool]) -> Any:
        s = self.s
        node = _Func(param=name)
        s.accept = accept
        s.mode = _SCAN_IDENT
        if s.scan() != _T_IDENT:
            raise EnvsubstError(ERR_BAD_SUBSTITUTION)
        node.name = s.string()
        node.args.append(self.parse_param(_accept_not_closing, _SCAN_IDENT))
        self.consume_rbrack()
        return node

    def parse_replace_func(self, name: str) -> Any:
        s = self.s
        node = _Func(param=name)
        s.accept = _accept_replace_func
        s.mode = _SCAN_IDENT
        if s.scan() != _T_IDENT:
            raise EnvsubstError(ERR_BAD_SUBSTITUTION)
        node.name = s.string()
        if s.peek() == "/":
            node.args.append(_Text(""))
        else:
            node.args.append(self.parse_param(_accept_not_slash, _SCAN_IDENT | _SCAN_ESCAPE))
        s.accept = _accept_slash
        s.mode = _SCAN_IDENT
        if s.scan() != _T_IDENT:
            raise EnvsubstError(ERR_BAD_SUBSTITUTION)
        if s.peek() == "}":
            self.consume_rbrack()
            return node
        node.args.append(self.parse_param(_accept_not_closing, _SCAN_IDENT | _SCAN_ESCAPE))
        self.consume_rbrack()
        return node

    def parse_default_func(self, name: str) -> Any:
        s = self.s
        node = _Func(param=name)
        s.accept = _accept_default_func
        if s.peek() == "=":
            s.accept = _accept_one_equal
        s.mode = _SCAN_IDENT
        if s.scan() != _T_IDENT:
            raise EnvsubstError(ERR_PARSE_DEFAULT_FUNCTION)
        node.name = s.string()
        while True:
            if s.peek() == "}":
                self.consume_rbrack()
                return node
            node.args.append(self.parse_param(_accept_not_closing, _SCAN_IDENT))

    def parse_casing_func(self, name: str) -> Any:
        s = self.s
        node = _Func(param=name)
        s.accept = _accept_casing_func
        s.mode = _SCAN_IDENT
        if s.scan() != _T_IDENT:
            raise EnvsubstError(ERR_BAD_SUBSTITUTION)
        node.name = s.string()
        self.consume_rbrack()
        return node

    def parse_len_func(self) -> Any:
        s = self.s
        node = _Func()
        s.accept = _accept_one_hash
        s.mode = _SCAN_IDENT
        if s.scan() != _T_IDENT:
            raise EnvsubstError(ERR_BAD_SUBSTITUTION)
        node.name = s.string()
        s.accept = _accept_ident
        s.mode = _SCAN_IDENT
        if s.scan() != _T_IDENT:
            raise EnvsubstError(ERR_BAD_SUBSTITUTION)
        node.param = s.string()
        self.consume_rbrack()
        return node

    def consume_rbrack(self) -> None:
        self.s.mode = _SCAN_RBRACK
        if self.s.scan() != _T_RBRACK:
            raise EnvsubstError(ERR_BAD_SUBSTITUTION)


# ------------------------------------------------------------------ functions (funcs.go)

def _go_glob(pattern: str) -> Glob:
    """The envsubst fork's ``path.Match`` pattern, compiled (cached).

    Unlike Go's standard ``path.Match``, the fork's ``*`` and ``?`` also match
    ``/`` (upstream's own test expects ``${filename##*/}`` of ``path/to/file``
    to give ``file``).  ``[...]`` / ``[^...]`` classes and ``\\`` escapes as in
    Go.  Raises ``ValueError`` for a malformed pattern (``ErrBadPattern``).
    Matching is linear (``labkit.gitops.globmatch``): a regex translation
    backtracked exponentially on ``*a*a*a…b``.
    """
    glob = _GLOB_CACHE.get(pattern)
    if glob is None:
        glob = compile_go_glob(pattern)
        if len(_GLOB_CACHE) < 4096:
            _GLOB_CACHE[pattern] = glob
    return glob


def _go_match(pattern: str, name: str) -> bool:
    """Whole-string match of ``name`` against the fork's ``path.Match`` pattern (see ``_go_glob``)."""
    return _go_glob(pattern).match(name)


_GLOB_CACHE: dict[str, Glob] = {}


def _to_len(s: str, *args: str) -> str:
    return str(len(s.encode("utf-8")))


def _to_lower(s: str, *args: str) -> str:
    return s.lower()


def _to_upper(s: str, *args: str) -> str:
    return s.upper()


def _to_lower_first(s: str, *args: str) -> str:
    return s[:1].lower() + s[1:] if s else s


def _to_upper_first(s: str, *args: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def _to_default(s: str, *args: str) -> str:
    if len(s) == 0 and len(args) > 0:
        s = "".join(args)
    return s


_ATOI = re.compile(r"^[+-]?[0-9]+$")


def _to_substr(s: str, *args: str) -> str:
    if not args:
        return s
    if not _ATOI.match(args[0]):
        return s
    pos = int(args[0])
    if pos < 0:
        pos = max(len(s) + pos, 0)
    if len(args) == 1:
        return s[pos:] if pos < len(s) else ""
    if not _ATOI.match(args[1]):
        return s
    length = int(args[1])
    if length < 0:
        end = len(s) + length
        return "" if end < pos else s[pos:end]
    if pos + length >= len(s):
        return s[pos:] if pos < len(s) else ""
    return s[pos: pos + length]


def _replace_all(s: str, *args: str) -> str:
    if not args:
        return s
    return s.replace(args[0], args[1] if len(args) > 1 else "")


def _replace_first(s: str, *args: str) -> str:
    if not args:
        return s
    return s.replace(args[0], args[1] if len(args) > 1 else "", 1)


def _replace_prefix(s: str, *args: str) -> str:
    if len(args) != 2:
        return s
    return args[1] + s[len(args[0]):] if s.startswith(args[0]) else s


def _replace_suffix(s: str, *args: str) -> str:
    if len(args) != 2:
        return s
    if s.endswith(args[0]):
        s = (s[: len(s) - len(args[0])] if args[0] else s) + args[1]
    return s


def _trim_shortest(s: str, arg: str) -> str:
    # The shortest non-empty prefix s[:k] matching ``arg``; every prefix is tested in one pass.
    if not s:
        return s
    try:
        hits = _go_glob(arg).prefix_matches(s)
    except ValueError:
        return s
    k = next((k for k in range(1, len(s) + 1) if hits[k]), 0)
    return s[k:] if k else s


def _trim_longest(s: str, arg: str) -> str:
    # The longest non-empty prefix s[:k] matching ``arg``.
    if not s:
        return s
    try:
        hits = _go_glob(arg).prefix_matches(s)
    except ValueError:
        return s
    k = next((k for k in range(len(s), 0, -1) if hits[k]), 0)
    return s[k:] if k else s


def _trim_shortest_prefix(s: str, *args: str) -> str:
    return _trim_shortest(s, args[0]) if args else s


def _trim_longest_prefix(s: str, *args: str) -> str:
    return _trim_longest(s, args[0]) if args else s


def _trim_shortest_suffix(s: str, *args: str) -> str:
    return _trim_shortest(s[::-1], args[0][::-1])[::-1] if args else s


def _trim_longest_suffix(s: str, *args: str) -> str:
    return _trim_longest(s[::-1], args[0][::-1])[::-1] if args else s


def _lookup_func(name: str, nargs: int) -> Callable[..., str]:
    if name == ",":
        return _to_lower_first
    if name == ",,":
        return _to_lower
    if name == "^":
        return _to_upper_first
    if name == "^^":
        return _to_upper
    if name == "#":
        return _to_len if nargs == 0 else _trim_shortest_prefix
    if name == "##":
        return _trim_longest_prefix
    if name == "%":
        return _trim_shortest_suffix
    if name == "%%":
        return _trim_longest_suffix
    if name == ":":
        return _to_substr
    if name == "/#":
        return _replace_prefix
    if name == "/%":
        return _replace_suffix
    if name == "/":
        return _replace_first
    if name == "//":
        return _replace_all
    return _to_default


_DEFAULT_OPS = frozenset({"-", "+", "=", "?", ":-", ":+", ":=", ":?"})


class _Budget:
    """Characters the expansion may still produce (``MAX_OUTPUT`` in all, arguments of functions included)."""

    __slots__ = ("left",)

    def __init__(self, limit: int):
        self.left = limit

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise EnvsubstError(f"the substituted text would exceed {MAX_OUTPUT:,} characters")


def _eval(node: Any, mapper: Callable[[str], tuple[str, bool]], out: list[str], budget: _Budget) -> None:
    if isinstance(node, _Text):
        budget.spend(len(node.value))
        out.append(node.value)
    elif isinstance(node, _List):
        for n in node.nodes:
            _eval(n, mapper, out, budget)
    elif isinstance(node, _Func):
        args = []
        for a in node.args:
            buf: list[str] = []
            _eval(a, mapper, buf, budget)
            args.append("".join(buf))
        v, exists = mapper(node.param)
        if not exists and node.name not in _DEFAULT_OPS:
            raise EnvsubstError(f'{ERR_VAR_NOT_SET}: "{node.param}"')
        if node.name in ("/", "//", "/#", "/%") and args:
            new = args[1] if len(args) > 1 else ""
            times = 1 if node.name != "//" else (len(v) + 1 if args[0] == "" else v.count(args[0]))
            budget.spend(len(v) + max(times * (len(new) - len(args[0])), 0))
        elif node.name in ("#", "##", "%", "%%") and args and len(v) > MAX_PATTERN_INPUT:
            raise EnvsubstError(f'the value of "{node.param}" is {len(v):,} characters, over the limit of '
                                f"{MAX_PATTERN_INPUT:,} for a ${{{node.param}{node.name}...}} pattern removal")
        else:
            budget.spend(len(v) + sum(len(a) for a in args))
        out.append(_lookup_func(node.name, len(args))(v, *args))


def envsubst(text: str, mapping: Callable[[str], tuple[str, bool]]) -> str:
    """Expand ``${...}`` expressions in ``text`` exactly as ``fluxcd/pkg/envsubst.Eval``.

    ``mapping(name)`` returns ``(value, exists)``; ``exists=False`` for an
    expression without a default operator raises ``EnvsubstError`` with
    ``variable not set (strict mode): "<name>"``.  Parse errors raise
    ``EnvsubstError`` with the fork's messages (``bad substitution``,
    ``missing closing brace``, ...).
    """
    if "$" not in text:  # fast path: nothing to expand, nothing to unescape
        return text
    if len(text) > MAX_OUTPUT:
        raise EnvsubstError(f"the text to substitute exceeds {MAX_OUTPUT:,} characters")
    tree = _Parser(text).parse_any()
    out: list[str] = []
    _eval(tree, mapping, out, _Budget(MAX_OUTPUT))
    return "".join(out)


# =========================================================================== Flux layer

def gvk_string(obj: Mapping[str, Any]) -> str:
    """kustomize's ``resid.Gvk.String()``: ``Kind.version.group`` (``[noGrp]`` for core)."""
    api_version = str(obj.get("apiVersion") or "")
    if "/" in api_version:
        group, version = api_version.split("/", 1)
    else:
        group, version = "", api_version
    kind = str(obj.get("kind") or "")
    return ".".join([kind or "[noKind]", version or "[noVer]", group or "[noGrp]"])


def is_substitution_disabled(obj: Mapping[str, Any]) -> bool:
    md = obj.get("metadata") or {}
    labels = md.get("labels") or {}
    annotations = md.get("annotations") or {}
    return labels.get(SUBSTITUTE_KEY) == DISABLED or annotations.get(SUBSTITUTE_KEY) == DISABLED


def _strip_newlines(variables: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v).replace("\n", "") for k, v in variables.items()}


def collect_variables(
    inline: Mapping[str, Any] | None,
    sources: Iterable[Mapping[str, Any] | tuple[Mapping[str, Any], Mapping[str, Any] | None]] = (),
) -> dict[str, str]:
    """Merge ``substituteFrom`` sources and the inline ``substitute`` map, as Flux does.

    Each entry of ``sources`` is either a ConfigMap/Secret object (present), or a
    ``(reference, object_or_None)`` pair where ``reference`` is the
    ``substituteFrom`` entry (``kind``, ``name``, ``optional``).  Sources are
    applied in order (later overwrite earlier), then ``inline`` overwrites all.
    A ``None`` object with a non-optional reference raises ``SubstitutionError``
    with Flux's ``substitute from 'Kind/name' error: ...`` text.
    """
    out: dict[str, str] = {}
    for entry in sources:
        if isinstance(entry, tuple):
            ref, obj = entry
        else:
            ref, obj = None, entry
        if obj is None:
            ref = ref or {}
            kind = str(ref.get("kind", ""))
            name = str(ref.get("name", ""))
            if ref.get("optional"):
                continue
            plural = {"ConfigMap": "configmaps", "Secret": "secrets"}.get(kind, kind.lower() + "s")
            raise SubstitutionError(f"substitute from '{kind}/{name}' error: {plural} \"{name}\" not found")
        kind = str(obj.get("kind") or (ref or {}).get("kind") or "")
        name = (obj.get("metadata") or {}).get("name", "")
        data = obj.get("data") or {}
        if kind == "Secret":
            for k, v in data.items():
                try:
                    raw = base64.b64decode(str(v), validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise SubstitutionError(
                        f"substitute from 'Secret/{name}' error: illegal base64 data in key '{k}': {exc}"
                    ) from None
                out[str(k)] = raw.decode("utf-8", errors="replace").replace("\n", "")
        elif kind == "ConfigMap":
            for k, v in data.items():
                out[str(k)] = str(v).replace("\n", "")
        else:
            raise SubstitutionError(f"substitute from '{kind}/{name}' error: unsupported kind '{kind}'")
    if inline:
        out.update(_strip_newlines(inline))
    return out


def _dump(obj: Mapping[str, Any]) -> str:
    return yaml.dump(
        dict(obj),
        Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=2**31 - 1,
    )


def _load(text: str) -> Any:
    return yaml.load(text, Loader=JsonLoader)  # noqa: S506 - safe loader subclass


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"yaml: line {mark.line + 1}: {problem}"
    return f"yaml: {problem}"


def substitute(
    objects: Sequence[Mapping[str, Any] | str],
    variables: Mapping[str, Any],
    *,
    strict: bool = True,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """Apply Flux ``postBuild`` substitution to rendered objects; returns new dicts.

    ``objects`` are dicts or per-object YAML documents (``render_documents``).
    ``variables`` is the merged map from ``collect_variables``.  ``strict``
    mirrors the ``StrictPostBuildSubstitutions`` gate (on by default since
    kustomize-controller 1.9).  ``source`` (e.g. the Kustomization's path) is
    used as the ``file`` of raised errors.  Raises ``SubstitutionError``.
    """
    parsed: list[tuple[dict[str, Any], str | None]] = []
    for item in objects:
        if isinstance(item, str):
            try:
                obj = _load(item)
            except yaml.YAMLError as exc:
                raise SubstitutionError(f"YAMLToJSON: {_yaml_problem(exc)}", file=source) from None
            if not isinstance(obj, dict):
                raise SubstitutionError("failed to decode Kubernetes apiVersion, kind and name", file=source)
            parsed.append((obj, item))
        else:
            parsed.append((dict(item), None))

    vars_ = _strip_newlines(variables)
    if not vars_:  # Flux: `if len(vars) > 0` guards the whole step
        return [obj if text is not None else _deep(obj) for obj, text in parsed]

    for name in vars_:
        if not _VAR_NAME.match(name):
            obj, _ = parsed[0] if parsed else ({}, None)
            where = f"{gvk_string(obj)}/{(obj.get('metadata') or {}).get('name', '')}"
            raise SubstitutionError(
                f"post build failed for '{where}': envsubst error: "
                f"'{name}' var name is invalid, must match '{VARSUB_REGEX}'",
                file=source,
                object=where,
            )

    if strict:
        def mapping(name: str) -> tuple[str, bool]:
            return (vars_[name], True) if name in vars_ else ("", False)
    else:
        def mapping(name: str) -> tuple[str, bool]:
            return vars_.get(name, ""), True

    out: list[dict[str, Any]] = []
    for obj, text in parsed:
        if is_substitution_disabled(obj):
            out.append(obj if text is not None else _deep(obj))
            continue
        where = f"{gvk_string(obj)}/{(obj.get('metadata') or {}).get('name', '')}"
        if text is None:
            text = _dump(obj)
        try:
            result = envsubst(text, mapping)
        except EnvsubstError as exc:
            raise SubstitutionError(
                f"post build failed for '{where}': envsubst error: variable substitution failed: {exc}",
                file=source,
                object=where,
            ) from None
        try:
            new = _load(result)
        except yaml.YAMLError as exc:
            raise SubstitutionError(
                f"post build failed for '{where}': envsubst error: YAMLToJSON: {_yaml_problem(exc)}",
                file=source,
                object=where,
            ) from None
        if not isinstance(new, dict):
            raise SubstitutionError(
                f"post build failed for '{where}': UnmarshalJSON: the substituted document is not an object",
                file=source,
                object=where,
            )
        out.append(new)
    return out


def _deep(obj: Mapping[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(dict(obj))
