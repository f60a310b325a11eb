"""The suite itself: enough cases, every class of the issue covered, and the harness's own instruments work."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from . import harness
from .hostile import CASES, CONCEPTS, Ctx, names

pytestmark = pytest.mark.safety


def test_at_least_45_cases_each_saying_its_attack():
    assert len(CASES) >= 45
    for concept in CONCEPTS:
        assert len(names(concept)) >= 5, concept
    for c in CASES.values():
        assert c.attack and not c.attack.startswith(" "), c.name


def test_runs_are_in_a_network_namespace():
    prefix, why = harness.netns()
    if prefix is None:
        pytest.skip(f"no network namespace for the runs ({why}): assertion (d) relies on the Python guard and "
                    "the loopback listeners only")
    out = subprocess.run([*prefix, "cat", "/proc/net/dev"], capture_output=True, text=True, timeout=10).stdout
    interfaces = {ln.split(":")[0].strip() for ln in out.splitlines()[2:]}
    assert interfaces == {"lo"}


def test_the_instruments_catch_what_they_are_for(tmp_path):
    """A fake `labkit` that does every forbidden thing is caught by every assertion."""
    from .hostile import Case, Spec

    fake = tmp_path / "bin" / "labkit"
    fake.parent.mkdir()
    fake.write_text(
        f"#!{sys.executable}\n"
        "import os, socket, sys, time\n"
        "args = sys.argv[2:]\n"
        "repo, out = args[0], args[args.index('--out') + 1]\n"
        "world = os.path.dirname(repo)\n"
        "open(os.path.join(world, 'markers', 'pwned'), 'w').close()\n"
        "print(open(os.path.join(world, 'outside', 'canary.txt')).read())\n"
        "open(os.path.join(repo, 'written.yaml'), 'w').write('x')\n"
        "os.makedirs(os.path.join(os.environ['TMPDIR'], 'labkit-try-left'))\n"
        "try:\n"
        "    socket.create_connection(('192.0.2.1', 443), timeout=0.2)\n"
        "except OSError:\n"
        "    pass\n"
        "sys.stderr.write('Traceback (most recent call last):\\nboom\\n')\n"
        "sys.exit(70)\n")
    fake.chmod(0o755)
    case = Case("instrument-check", "crashes", "a fake labkit doing every forbidden thing",
                lambda ctx: (ctx.write({"app/cm.yaml": "a: 1\n"}), Spec())[1])
    real = harness.labkit_argv
    harness.labkit_argv = lambda: [str(fake)]
    try:
        res = harness.run(case, tmp_path / "run")
    finally:
        harness.labkit_argv = real
    got = {f[:3] for f in res.failures}
    assert {"(a)", "(b)", "(c)", "(d)", "(e)", "(h)"} <= got, res.summary()


def test_the_world_snapshot_sees_content_mode_and_fifo_changes(tmp_path):
    ctx = Ctx(tmp_path / "w", 1)
    (ctx.repo / "f").write_text("1")
    os.mkfifo(ctx.outside / "fifo2")
    before = harness.snapshot(ctx.world, [ctx.tmp])
    (ctx.repo / "f").write_text("2")
    os.utime(ctx.repo / "f", ns=(0, before["repo/f"][3]))  # same mtime, other content
    (ctx.tmp / "ignored").write_text("x")
    after = harness.snapshot(ctx.world, [ctx.tmp])
    assert harness.diff_snapshots(before, after) == ([], [], ["repo/f"])
