"""The linear-time glob matcher behind ApplicationSet paths and envsubst's ``${v#pattern}``, and the
bounded jq ``test()``: pathological repository input finishes fast, ordinary patterns answer as documented."""
from __future__ import annotations

import time

import pytest

from labkit.argo.appset import _matcher, path_match
from labkit.argo.jqpath import compile_path
from labkit.core.errors import LabkitError
from labkit.gitops import substitute
from labkit.gitops.globmatch import compile_go_glob, compile_path_glob

EVIL = "*a*a*a*a*a*a*a*a*a*a*a*a*b"


def fast(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    assert time.perf_counter() - t < 1.0
    return out


# ------------------------------------------------------------------ pathological cases (were > 60 s)

def test_appset_directory_pattern_is_linear():
    assert fast(path_match, "apps/" + EVIL, "apps/" + "a" * 60) is False
    assert fast(_matcher("apps/" + EVIL), "apps/" + "a" * 60) is False       # directories and files generators
    assert fast(path_match, "apps/" + EVIL, "apps/" + "a" * 2000 + "b") is True
    assert fast(path_match, "*" * 500 + "b", "a" * 5000) is False


def test_postbuild_pattern_removal_is_linear():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"},
           "data": {"k": "${v##" + EVIL + "}", "s": "${v%%" + EVIL + "}", "t": "${v#" + EVIL + "}"}}
    out = fast(lambda: substitute([obj], {"v": "a" * 40})[0])
    assert out["data"] == {"k": "a" * 40, "s": "a" * 40, "t": "a" * 40}
    out = fast(lambda: substitute([obj], {"v": "a" * 3000 + "bc"})[0])
    assert out["data"]["k"] == "c" and out["data"]["t"] == "c"


@pytest.mark.parametrize("rx", [r"^(a+)+$", r"(a*)*b", r"(a|a)*", r"(x+x+)+y", r"(\\d+\\.){3}", r"(a)\\1",
                                "a" * 201])
def test_jq_test_refuses_backtracking_patterns(rx):
    with pytest.raises(LabkitError, match="refused"):
        compile_path('.items[] | select(.name | test("' + rx + '"))')


def test_jq_test_is_bounded_on_long_values():
    p = compile_path('.items[] | select(.name | test(".*.*.*x"))')
    assert fast(p.paths, {"items": [{"name": "a" * 4096}, {"name": "a" * 100_000}]}) == []
    p = compile_path('.items[] | select(.name | test("^web-[0-9]+$"))')
    assert fast(p.paths, {"items": [{"name": "web-12"}, {"name": "web-x"}]}) == [("items", 0)]
    assert compile_path('.items[] | select(.name | test("istio"))').paths({"items": [{"name": "istio-init"}]}) \
        == [("items", 0)]


# ------------------------------------------------------------------ ordinary cases: Go's documented path.Match

# From Go's path.Match documentation and its test table (src/path/match_test.go).
GO_PATH_MATCH = [
    ("abc", "abc", True), ("*", "abc", True), ("*c", "abc", True), ("a*", "a", True), ("a*", "abc", True),
    ("a*", "ab/c", False), ("a*/b", "abc/b", True), ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True), ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False), ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True), ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True), ("ab[b-d]", "abc", True), ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False), ("ab[^b-d]", "abc", False), ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True), ("a\\*b", "ab", False), ("a?b", "a☺b", True), ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False), ("a[^a][^a][^a]b", "a☺b", False), ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False), ("a?b", "a/b", False), ("a*b", "a/b", False),
    ("*x", "xxx", True),
    # Argo CD's documented directory patterns
    ("apps/*", "apps/web", True), ("apps/*", "apps/web/sub", False), ("apps/[a-c]*", "apps/api", True),
    ("apps/[a-c]*", "apps/web", False), ("cluster-addons/*", "cluster-addons/argo-workflows", True),
    ("apps/**", "apps/a/b", False),
]

# labkit's ApplicationSet class syntax, kept as it was: ``!`` negates like ``^``, and a class is the text up
# to the next ``]`` with ``\`` literal inside it (Go would read ``[\]a]`` as the class of ``]`` and ``a``).
LABKIT_EXTRAS = [("apps/!", "apps/!", True), ("apps/[!a]*", "apps/web", True), ("apps/[!w]*", "apps/web", False),
                 ("[\\]a]", "]", False), ("[\\]a]", "\\a]", True)]


@pytest.mark.parametrize("pattern,name,want", GO_PATH_MATCH + LABKIT_EXTRAS)
def test_appset_path_match_table(pattern, name, want):
    assert path_match(pattern, name) is want


def test_appset_malformed_patterns_match_nothing():
    for p in ("[", "a[b", "[]", "[!]", "[z-a]"):
        assert compile_path_glob(p) is None and not path_match(p, "a")


# The envsubst fork: path.Match with '/' not special (upstream's ${filename##*/} of path/to/file is file).
FORK_MATCH = [
    ("*", "path/to/file", True), ("*/", "path/to/", True), ("?", "/", True), ("a*b", "a/x/b", True),
    ("ab[c]", "abc", True), ("ab[^c]", "abd", True), ("ab[^c]", "abc", False), ("[]a]", "]", True),
    ("[\\]]", "]", True), ("a\\*b", "a*b", True), ("[a-c]x", "bx", True), ("[z-a]", "m", False),
]


@pytest.mark.parametrize("pattern,name,want", FORK_MATCH)
def test_fork_match_table(pattern, name, want):
    assert compile_go_glob(pattern).match(name) is want


@pytest.mark.parametrize("pattern", ["a\\", "[a", "[^", "[a-", "[a-\\"])
def test_fork_bad_pattern_raises(pattern):
    with pytest.raises(ValueError):
        compile_go_glob(pattern)


@pytest.mark.parametrize("expr,want", [
    ("${f##*/}", "file"), ("${f#*/}", "to/file"), ("${f%/*}", "path/to"), ("${f%%/*}", "path"),
    ("${f#nomatch}", "path/to/file"), ("${f##p?th}", "/to/file"), ("${f#[a-p]}", "ath/to/file"),
])
def test_bash_pattern_removal(expr, want):
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"}, "data": {"k": expr}}
    assert substitute([obj], {"f": "path/to/file"})[0]["data"]["k"] == want


def test_prefix_matches_agrees_with_match():
    g = compile_go_glob("a*b?")
    s = "aXbYbZ"
    assert g.prefix_matches(s) == [g.match(s[:k]) for k in range(len(s) + 1)]
