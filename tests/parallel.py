"""How the suite splits over pytest-xdist workers: which tests must share one worker, and which go first.

``make test`` runs ``pytest -n N --dist loadgroup``: every test may go to any worker,
except tests carrying the same ``xdist_group`` mark, which go to one worker together.
Most tests are independent and are spread one by one.  What ties tests together is a
fixture wider than one test: each xdist worker is its own pytest session, so a
``scope="session"`` or ``scope="module"`` fixture is built once *per worker that
needs it*.  Spread blindly, the tests of one module would rebuild their shared
simulation on both workers, and two workers would each start a real control plane,
each run every hostile-repository case (``tests/safety`` submits the whole selection
to its thread pool on first use), and each start JupyterLab and Chromium.

So :func:`assign_groups` derives the groups from the fixtures themselves instead of
keeping a list by hand.  A test's *resources* are the session- and module-wide
fixtures it uses that this suite defines (pytest's own ``tmp_path_factory`` and
plugin fixtures do not count: they are cheap and made per worker anyway).  Tests
that share a resource, directly or through another test, form one group (a
union-find over resources), named after the session fixture it holds, or else the
module.  The results:

- every test on the real control plane (``real_cluster``) in one worker, which starts
  the one cluster they share, as on a single-process run;
- ``tests/safety`` in one worker, whose thread pool keeps running its cases in parallel;
- the browser tests in one worker (one ``labkit lab`` server, one Chromium);
- a module with a module-scoped simulation in one worker: it is simulated once.

xdist reads the marks in each worker and appends ``@<group>`` to the test's node id,
which is what its scheduler groups by.  xdist 3.8 writes that id to ``item._nodeid``,
an attribute pytest 9 no longer reads (the id now lives in ``item._id``), so on
pytest 9 every group silently falls apart into single tests.  :func:`suffix_node_ids`
does xdist's step itself where it did not take effect; with a fixed xdist it finds
the suffix already there and does nothing.

A test that already carries an ``xdist_group`` mark keeps it: the executed scenario
notebooks (:mod:`tests.notebook_runs`) are grouped one group per notebook, so the
notebooks spread over the workers while each is executed once.

Work goes to the workers in queue order, so a long group queued last would run alone
at the end while the other workers sit idle.  :func:`long_groups_first` moves the
groups known to be long (:data:`LONG_GROUPS`, measured: minutes each) to the front of
the collection, then the notebook runs (tens of seconds each), then everything else
in collection order -- longest first, the short tests filling the gaps -- the same
order on every worker, as xdist requires.  ``make test`` passes
``--no-loadscope-reorder`` so that xdist keeps this order (by default it sorts the
groups by their number of tests, which says little about their length).  Without
``-n`` (a plain ``pytest tests/x``) the marks are inert and the order is a stable
reordering of the same tests.
"""
from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
#: groups that take minutes (real control plane, hostile repositories, browser), started first
LONG_GROUPS = ("real_cluster", "safety_runner", "browser")
#: the xdist groups of the executed notebooks (tests/notebook_runs.py), queued right after the long groups
NOTEBOOK_GROUP_PREFIX = "notebook-"
_WIDE_SCOPES = {"session", "package", "module", "class"}


def _defined_here(fixturedef) -> bool:
    """Whether a fixture comes from this test suite (not pytest or a plugin)."""
    func = getattr(fixturedef, "func", None)
    code = getattr(func, "__code__", None)
    return code is not None and TESTS in Path(code.co_filename).resolve().parents


def resources(item: pytest.Item) -> list[str]:
    """The suite's session- and module-wide fixtures this test uses, as group keys.

    A session fixture is one resource for the whole run (its name); a module- or
    class-scoped one is a resource of its module (the module's path), since every
    module builds its own.
    """
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    keys = []
    for name in item.fixturenames:
        defs = info.name2fixturedefs.get(name)
        if not defs:
            continue
        fixturedef = defs[-1]  # the one that applies here (the closest override)
        if fixturedef.scope not in _WIDE_SCOPES or not _defined_here(fixturedef):
            continue
        if fixturedef.scope == "session":
            keys.append(name)
        else:
            keys.append(str(Path(str(item.path)).relative_to(TESTS.parent)))
    return keys


def _group_name(members: set[str]) -> str:
    sessions = sorted(m for m in members if not m.endswith(".py"))
    return "+".join(sessions) if sessions else sorted(members)[0]


def assign_groups(items: list[pytest.Item]) -> None:
    """Mark every test that shares a wide fixture with others with one ``xdist_group`` per connected set."""
    parent: dict[str, str] = {}

    def find(k: str) -> str:
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    keyed = []
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        keys = resources(item)
        if item.path.is_relative_to(TESTS / "browser"):
            keys.append("browser")
        if keys:
            keyed.append((item, keys))
            for k in keys:
                parent[find(k)] = find(keys[0])
    members: dict[str, set[str]] = {}
    for k in list(parent):
        members.setdefault(find(k), set()).add(k)
    for item, keys in keyed:
        item.add_marker(pytest.mark.xdist_group(_group_name(members[find(keys[0])])))


def _mark_name(mark: pytest.Mark) -> str:
    """The group an ``xdist_group`` mark names (``xdist_group("x")`` or ``xdist_group(name="x")``)."""
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


def group_of(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    return None if mark is None else _mark_name(mark)


def long_groups_first(items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place: the tests of :data:`LONG_GROUPS` first, the rest in collection order."""
    def rank(item: pytest.Item) -> int:
        group = group_of(item) or ""
        for i, name in enumerate(LONG_GROUPS):
            if name in group.split("+"):
                return i
        return len(LONG_GROUPS) + (0 if group.startswith(NOTEBOOK_GROUP_PREFIX) else 1)

    items.sort(key=rank)  # stable: within a rank, collection order


def suffix_node_ids(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In an xdist worker under ``--dist loadgroup``: make sure each grouped test's node id ends in ``@<group>``.

    What xdist's own ``pytest_collection_modifyitems`` means to do; it runs before this
    (this hook is ``trylast``) and, on pytest 9, its change does not reach ``item.nodeid``.
    """
    if not hasattr(config, "workerinput") or not config.getvalue("loadgroup"):
        return
    for item in items:
        names = sorted({_mark_name(m) for m in item.iter_markers("xdist_group")})
        if not names or item.nodeid.endswith("@" + "_".join(names)):
            continue
        nodeid = f"{item.nodeid}@{'_'.join(names)}"
        if hasattr(item, "_id"):  # pytest >= 9: a structured NodeId, parsed from the string
            from _pytest.nodeid import NodeId

            item._id = NodeId.parse(nodeid)
        else:  # pragma: no cover - pytest 8, where xdist's own assignment works
            item._nodeid = nodeid
