"""A small, documented subset of jq path expressions, for ``ignoreDifferences.jqPathExpressions``.

Argo CD evaluates each ``jqPathExpressions`` entry with gojq as ``del(<expr>)``
on the normalised object: whatever the expression *points at* is removed before
the diff.  The expressions people write are paths, optionally filtered with
``select``; labkit implements exactly that subset, by hand, with no dependency:

* ``.`` — the input itself;
* ``.key``, ``."key with/odd chars"``, ``.["key"]`` — a map key;
* ``.[N]`` / ``.key[N]`` — a list element (negative ``N`` counts from the end);
* ``.[]`` / ``.key[]`` — every element of a list (or every value of a map);
* ``|`` — feed every result of the left side to the right side;
* ``select(COND)`` — keep the inputs for which ``COND`` holds, where ``COND``
  is ``OPERAND == OPERAND`` or ``OPERAND != OPERAND``, combined with ``and`` /
  ``or`` / ``not`` and parentheses; an operand is a relative path (``.name``,
  ``.metadata.labels.app``), a string (``"x"``), a number, ``true``,
  ``false`` or ``null``; also ``has("key")`` and
  ``(.path | startswith("prefix"))`` / ``endswith`` / ``contains`` / ``test("re")``.

Typical Argo examples all fall in it::

    .spec.template.spec.initContainers[] | select(.name == "istio-init")
    .spec.template.spec.containers[] | select(.name == "web") | .image
    .metadata.annotations."deployment.kubernetes.io/revision"
    .webhooks[]?.clientConfig.caBundle

(``?`` after a step is accepted and means "no error if it does not apply",
which is what every step here does anyway.)  Anything else — arithmetic,
functions other than the ones listed, object construction — is refused when the
Application is validated, with a message that names the unsupported part.

``compile_path(expr)`` parses once; ``JqPath.paths(obj)`` yields every concrete
path (a list of map keys and list indices) the expression points at, and
``delete_paths`` removes them from an object the way ``del(...)`` does (list
elements from the highest index down so the others keep their positions).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator

from labkit.core.errors import LabkitError

__all__ = ["JqPath", "compile_path", "delete_paths", "get_path", "set_path"]

Token = str | int
_MISSING = object()

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?[0-9]+(?:\.[0-9]+)?)
      | (?P<op>==|!=|\|)
      | (?P<punct>[.\[\]()?,])
      | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
    )""",
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise LabkitError(f"unsupported jq syntax at position {pos + 1}: {text[pos:pos + 12]!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "string":
            value = bytes(value[1:-1], "utf-8").decode("unicode_escape")
        out.append((kind, value))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


# ------------------------------------------------------------------ AST

@dataclass(frozen=True)
class _Step:
    kind: str  # key | index | iter
    value: Any = None


@dataclass(frozen=True)
class _Path:
    steps: tuple[_Step, ...]


@dataclass(frozen=True)
class _Select:
    cond: Any


@dataclass(frozen=True)
class _Pipe:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class _Cmp:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class _Bool:
    op: str  # and | or | not
    args: tuple[Any, ...]


@dataclass(frozen=True)
class _Literal:
    value: Any


@dataclass(frozen=True)
class _Func:
    name: str
    subject: Any  # a path (relative) or None for has()
    arg: Any


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str]:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("eof", "")

    def take(self, kind: str | None = None, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if (kind and tok[0] != kind) or (value is not None and tok[1] != value):
            want = value or kind
            got = tok[1] or "end of expression"
            raise LabkitError(f"invalid jq path expression {self.text!r}: expected {want!r}, got {got!r}")
        self.i += 1
        return tok

    def parse(self) -> Any:
        node = self.pipe()
        if self.peek()[0] != "eof":
            raise LabkitError(f"unsupported jq syntax in {self.text!r} near {self.peek()[1]!r}")
        return node

    def pipe(self) -> Any:
        parts = [self.term()]
        while self.peek() == ("op", "|"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else _Pipe(tuple(parts))

    def term(self) -> Any:
        kind, value = self.peek()
        if kind == "ident" and value == "select":
            self.take()
            self.take("punct", "(")
            cond = self.cond()
            self.take("punct", ")")
            return _Select(cond)
        if (kind, value) == ("punct", "."):
            return self.path()
        raise LabkitError(f"unsupported jq syntax in {self.text!r}: only paths, '|' and select(...) are supported, "
                          f"got {value!r}")

    def path(self) -> _Path:
        steps: list[_Step] = []
        self.take("punct", ".")
        first = True
        while True:
            kind, value = self.peek()
            if kind == "ident" and (first or self.toks[self.i - 1] == ("punct", ".")):
                self.take()
                steps.append(_Step("key", value))
            elif kind == "string" and (first or self.toks[self.i - 1] == ("punct", ".")):
                self.take()
                steps.append(_Step("key", value))
            elif (kind, value) == ("punct", "["):
                self.take()
                k2, v2 = self.peek()
                if (k2, v2) == ("punct", "]"):
                    self.take()
                    steps.append(_Step("iter"))
                elif k2 == "number":
                    self.take()
                    if "." in v2:
                        raise LabkitError(f"invalid jq path expression {self.text!r}: index {v2} is not an integer")
                    self.take("punct", "]")
                    steps.append(_Step("index", int(v2)))
                elif k2 == "string":
                    self.take()
                    self.take("punct", "]")
                    steps.append(_Step("key", v2))
                else:
                    raise LabkitError(f"unsupported jq syntax in {self.text!r}: slices and expressions inside [] "
                                      "are not supported")
            elif (kind, value) == ("punct", "?"):
                self.take()
            elif (kind, value) == ("punct", "."):
                nk = self.peek(1)
                if nk[0] in ("ident", "string") or nk == ("punct", "["):
                    self.take()
                    if nk == ("punct", "["):
                        continue
                else:
                    break
            else:
                break
            first = False
        return _Path(tuple(steps))

    # conditions
    def cond(self) -> Any:
        left = self.cond_and()
        while self.peek() == ("ident", "or"):
            self.take()
            left = _Bool("or", (left, self.cond_and()))
        return left

    def cond_and(self) -> Any:
        left = self.cond_unary()
        while self.peek() == ("ident", "and"):
            self.take()
            left = _Bool("and", (left, self.cond_unary()))
        return left

    def cond_unary(self) -> Any:
        if self.peek() == ("punct", "("):
            self.take()
            inner = self.cond_or_pipe()
            self.take("punct", ")")
            node = inner
        else:
            node = self.cond_atom()
        while self.peek() == ("op", "|") and self.peek(1) == ("ident", "not"):
            self.take()
            self.take()
            node = _Bool("not", (node,))
        return node

    def cond_or_pipe(self) -> Any:
        # ( .path | startswith("x") ) or ( cond )
        if self.peek() == ("punct", "."):
            save = self.i
            subject = self.path()
            if self.peek() == ("op", "|") and self.peek(1)[0] == "ident" and self.peek(1)[1] in _FUNCS:
                self.take()
                return self.func(subject)
            self.i = save
        return self.cond()

    def func(self, subject: Any) -> _Func:
        name = self.take("ident")[1]
        self.take("punct", "(")
        arg = self.take("string")[1]
        self.take("punct", ")")
        if name == "test":
            return _Func(name, subject, _compile_test_regex(arg, self.text))
        return _Func(name, subject, arg)

    def cond_atom(self) -> Any:
        kind, value = self.peek()
        if kind == "ident" and value == "has":
            self.take()
            self.take("punct", "(")
            key = self.take("string")[1]
            self.take("punct", ")")
            return _Func("has", None, key)
        left = self.operand()
        if self.peek()[0] == "op" and self.peek()[1] in ("==", "!="):
            op = self.take()[1]
            right = self.operand()
            return _Cmp(op, left, right)
        if isinstance(left, _Path) and self.peek() == ("op", "|") and self.peek(1)[0] == "ident" \
                and self.peek(1)[1] in _FUNCS:
            self.take()
            return self.func(left)
        if isinstance(left, _Path):
            return _Cmp("truthy", left, None)
        raise LabkitError(f"unsupported condition in {self.text!r}")

    def operand(self) -> Any:
        kind, value = self.peek()
        if (kind, value) == ("punct", "."):
            return self.path()
        if kind == "string":
            self.take()
            return _Literal(value)
        if kind == "number":
            self.take()
            return _Literal(float(value) if "." in value else int(value))
        if kind == "ident" and value in ("true", "false", "null"):
            self.take()
            return _Literal({"true": True, "false": False, "null": None}[value])
        raise LabkitError(f"unsupported operand {value!r} in {self.text!r}")


_FUNCS = {"startswith", "endswith", "contains", "test"}

#: ``test("re")`` runs Python's backtracking ``re`` on a pattern from the repository, so it is bounded:
#: a pattern longer than this is refused when the Application is validated ...
MAX_TEST_PATTERN = 200
#: ... a value longer than this (characters) never matches ...
MAX_TEST_INPUT = 4096
#: ... and neither does a value on which the pattern's worst case (len(value) times, for every
#: quantifier allowing more than one repeat, min(its maximum, len(value) + 1)) exceeds this many steps
#: (about 0.1 s; ``.*.*x`` on 4 KiB would be 10^11).  Argo CD likewise gives up on a jq expression after
#: 1 s (``controller.ignore.normalizer.jq.timeout``).
MAX_TEST_STEPS = 20_000_000


@dataclass(frozen=True)
class _TestRegex:
    """A ``test()`` pattern, compiled and checked; ``search`` is bounded (see ``MAX_TEST_STEPS``)."""
    source: str
    rx: "re.Pattern[str]"
    repeats: tuple[int, ...]    # the maximum of every quantifier allowing more than one repeat

    def search(self, s: str) -> bool:
        n = len(s)
        if n > MAX_TEST_INPUT:
            return False
        steps = n + 1
        for m in self.repeats:
            steps *= min(m, n + 1)
            if steps > MAX_TEST_STEPS:
                return False
        return self.rx.search(s) is not None


def _compile_test_regex(arg: str, text: str) -> _TestRegex:
    """Compile a ``test()`` pattern; refuse one that can backtrack exponentially.

    Refused: more than ``MAX_TEST_PATTERN`` characters; backreferences; a
    quantifier allowing more than one repeat around another such quantifier or
    around an alternation (``(a+)+``, ``(a*)*``, ``(a|a)*``, ``(\\d+\\.){3}``).
    """
    import re._parser as sre_parse  # Python 3.11+: the parser behind re.compile
    from re._constants import MAXREPEAT

    def refuse(why: str) -> LabkitError:
        return LabkitError(f"regular expression {arg!r} in {text!r} is refused: {why}")

    if len(arg) > MAX_TEST_PATTERN:
        raise refuse(f"longer than labkit's limit of {MAX_TEST_PATTERN} characters")
    try:
        rx = re.compile(arg)
        tree = sre_parse.parse(arg)
    except re.error as err:
        raise LabkitError(f"invalid regular expression {arg!r} in {text!r}: {err}") from None
    repeats: list[int] = []

    def walk(seq: Any, inside_repeat: bool) -> None:
        for op, av in seq:
            name = str(op)
            if name in ("GROUPREF", "GROUPREF_EXISTS", "GROUPREF_IGNORE", "GROUPREF_LOC_IGNORE",
                        "GROUPREF_UNI_IGNORE"):
                raise refuse("backreferences are not supported")
            if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                lo, hi, body = av
                if hi > 1:
                    if inside_repeat:
                        raise refuse("nested quantifiers (such as (a+)+) can take exponential time")
                    repeats.append(hi if hi != MAXREPEAT else 1 << 62)
                walk(body, inside_repeat or hi > 1)
            elif name == "BRANCH":
                if inside_repeat:
                    raise refuse("a quantified alternation (such as (a|b)*) can take exponential time")
                for alt in av[1]:
                    walk(alt, inside_repeat)
            elif name == "SUBPATTERN":
                walk(av[-1], inside_repeat)
            elif name in ("ASSERT", "ASSERT_NOT"):
                walk(av[1], inside_repeat)
            elif name == "ATOMIC_GROUP":
                walk(av, inside_repeat)

    walk(tree, False)
    return _TestRegex(arg, rx, tuple(repeats))


# ------------------------------------------------------------------ evaluation

def _walk_path(path: _Path, value: Any, prefix: tuple[Token, ...]) -> Iterator[tuple[tuple[Token, ...], Any]]:
    items: list[tuple[tuple[Token, ...], Any]] = [(prefix, value)]
    for step in path.steps:
        nxt: list[tuple[tuple[Token, ...], Any]] = []
        for p, v in items:
            if step.kind == "key":
                if isinstance(v, dict) and step.value in v:
                    nxt.append((p + (step.value,), v[step.value]))
                elif isinstance(v, dict) or v is None:
                    nxt.append((p + (step.value,), _MISSING))
            elif step.kind == "index":
                if isinstance(v, list):
                    idx = step.value if step.value >= 0 else len(v) + step.value
                    if 0 <= idx < len(v):
                        nxt.append((p + (idx,), v[idx]))
            else:  # iter
                if isinstance(v, list):
                    nxt.extend((p + (i,), x) for i, x in enumerate(v))
                elif isinstance(v, dict):
                    nxt.extend((p + (k,), x) for k, x in v.items())
        items = nxt
    yield from items


def _value(node: Any, v: Any) -> list[Any]:
    if isinstance(node, _Literal):
        return [node.value]
    if isinstance(node, _Path):
        return [None if x is _MISSING else x for _, x in _walk_path(node, v, ())]
    raise LabkitError("unsupported operand")


def _truth(cond: Any, v: Any) -> bool:
    if isinstance(cond, _Bool):
        if cond.op == "and":
            return all(_truth(a, v) for a in cond.args)
        if cond.op == "or":
            return any(_truth(a, v) for a in cond.args)
        return not _truth(cond.args[0], v)
    if isinstance(cond, _Cmp):
        if cond.op == "truthy":
            return any(x not in (None, False) for x in _value(cond.left, v))
        lefts, rights = _value(cond.left, v), _value(cond.right, v)
        eq = any(a == b and type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                                   and not isinstance(a, bool) and a == b)
                 for a in lefts for b in rights)
        return eq if cond.op == "==" else not eq
    if isinstance(cond, _Func):
        if cond.name == "has":
            return isinstance(v, dict) and cond.arg in v
        for s in _value(cond.subject, v):
            if not isinstance(s, str):
                continue
            if cond.name == "startswith" and s.startswith(cond.arg):
                return True
            if cond.name == "endswith" and s.endswith(cond.arg):
                return True
            if cond.name == "contains" and cond.arg in s:
                return True
            if cond.name == "test" and cond.arg.search(s):
                return True
        return False
    raise LabkitError("unsupported condition")


def _eval(node: Any, items: list[tuple[tuple[Token, ...], Any]]) -> list[tuple[tuple[Token, ...], Any]]:
    if isinstance(node, _Pipe):
        for part in node.parts:
            items = _eval(part, items)
        return items
    if isinstance(node, _Select):
        return [(p, v) for p, v in items if v is not _MISSING and _truth(node.cond, v)]
    if isinstance(node, _Path):
        out: list[tuple[tuple[Token, ...], Any]] = []
        for p, v in items:
            if v is _MISSING:
                continue
            out.extend(_walk_path(node, v, p))
        return out
    raise LabkitError("unsupported jq node")


@dataclass(frozen=True)
class JqPath:
    """A compiled jq path expression (see module docstring)."""

    text: str
    node: Any

    def paths(self, obj: Any) -> list[tuple[Token, ...]]:
        """Every concrete path the expression points at in ``obj`` (existing values only)."""
        return [p for p, v in _eval(self.node, [((), obj)]) if v is not _MISSING and p]


@lru_cache(maxsize=1024)
def compile_path(expr: str) -> JqPath:
    """Parse ``expr``; ``LabkitError`` with the reason when it is outside the supported subset."""
    if not isinstance(expr, str) or not expr.strip():
        raise LabkitError("empty jq path expression")
    return JqPath(expr, _Parser(expr).parse())


def get_path(obj: Any, path: tuple[Token, ...], default: Any = None) -> Any:
    cur = obj
    for t in path:
        if isinstance(cur, dict) and isinstance(t, str) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list) and isinstance(t, int) and 0 <= t < len(cur):
            cur = cur[t]
        else:
            return default
    return cur


def set_path(obj: Any, path: tuple[Token, ...], value: Any) -> bool:
    """Set an existing parent's child at ``path`` (maps create the key; lists only replace)."""
    parent = get_path(obj, path[:-1], _MISSING)
    last = path[-1]
    if isinstance(parent, dict) and isinstance(last, str):
        parent[last] = value
        return True
    if isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        parent[last] = value
        return True
    return False


def delete_paths(obj: Any, paths: list[tuple[Token, ...]]) -> None:
    """Remove ``paths`` in place like jq's ``del``: deepest first, list indices from the highest down."""
    def key(p: tuple[Token, ...]) -> tuple:
        return tuple((1, t) if isinstance(t, int) else (0, str(t)) for t in p)

    for p in sorted(set(paths), key=key, reverse=True):
        parent = get_path(obj, p[:-1], _MISSING)
        last = p[-1]
        if isinstance(parent, dict) and last in parent:
            del parent[last]
        elif isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
            del parent[last]
