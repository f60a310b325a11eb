"""Run ``labkit try`` on one hostile repository as a subprocess and check what it did.

For every case (``tests/safety/hostile.py``) the run must satisfy:

(a) no marker file created by anything in the repository (``world/markers`` stays empty);
(b) no canary token (every outside file's own secret, the environment's, ``/etc/passwd``'s
    ``root:x:0:0:``; raw or base64, or any 12 characters of a token in terminal output) in stdout, stderr, ``report.html``, ``report.json``
    or any other text file under ``--out``;
(c) no write outside ``--out`` and the private TMPDIR: the whole world (names, modes,
    sizes, mtimes, SHA-256 of contents, symlink targets) is identical before and after,
    the user's ``.git/index`` and working tree included;
(d) no network: the run is in a fresh network namespace (``unshare -n``, or ``unshare -r
    -n`` when not root) whose loopback listeners log any connection, and a
    ``sitecustomize`` guard (``guard/``) logs and refuses any non-``AF_UNIX`` connect from
    Python; both logs must be empty.  Without namespaces the isolation itself is skipped
    (``netns()`` says why) while the guard and listeners still apply;
(e) exit code 0, 1 or 2 (never 70), no ``Traceback`` / ``internal error`` in stderr;
(f) done within ``TIMEOUT`` seconds of wall time and ``MEM_LIMIT`` of memory (the summed
    RSS of every process of the run's session, sampled every 50 ms; and the ``wait4``
    ``ru_maxrss`` of the run), no process left behind;
(g) exit 2 prints exactly one line ``labkit: error: <file or field>: …``;
(h) TMPDIR is empty afterwards (the snapshot is gone);
(x) checks a case adds (escaping of names, files written above the snapshot).

``LABKIT_SAFETY_PYTHONPATH`` puts another labkit source tree first on the run's
PYTHONPATH (say, an export of an older commit, to see the suite catch its bugs).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .hostile import CASES, PASSWD_CANARY, Case, Ctx, Spec

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TIMEOUT = 30.0
MEM_LIMIT = 1 << 30
EXIT_OK = (0, 1, 2)
WINDOW = 12  # characters of a canary token that count as a leak in terminal output (wrapped tables)
_PAGE = os.sysconf("SC_PAGE_SIZE")
#: every Result, for the summary table printed by conftest.py
RESULTS: dict[str, "Result"] = {}
_RESULTS_LOCK = threading.Lock()


def labkit_argv() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "labkit"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "labkit"]


_NETNS: tuple[list[str] | None, str] | None = None


def netns() -> tuple[list[str] | None, str]:
    """The command prefix that runs a command in a fresh network namespace, or (None, why not)."""
    global _NETNS
    if _NETNS is None:
        unshare = shutil.which("unshare")
        if unshare is None:
            _NETNS = (None, "no unshare(1) on this machine")
        else:
            prefix = [unshare, "-n"] if os.geteuid() == 0 else [unshare, "-r", "-n"]
            try:
                p = subprocess.run([*prefix, "true"], capture_output=True, text=True, timeout=10)
                _NETNS = (prefix, "") if p.returncode == 0 else (
                    None, f"`{' '.join(prefix)} true` failed: {p.stderr.strip() or p.returncode}")
            except (OSError, subprocess.TimeoutExpired) as exc:
                _NETNS = (None, f"`{' '.join(prefix)}` unusable: {exc}")
    return _NETNS


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ the world snapshot (assertion c)

def snapshot(root: Path, exclude: list[Path]) -> dict[str, tuple]:
    """Every entry under ``root`` (not following symlinks, never opening FIFOs or devices), PATH_MAX-safe."""
    excluded = {os.fspath(p) for p in exclude}
    out: dict[str, tuple] = {}
    root_s = os.fspath(root)
    st = os.lstat(root_s)
    out["."] = ("d", stat.S_IMODE(st.st_mode), st.st_mtime_ns)
    for dirpath, dirnames, filenames, dirfd in os.fwalk(root_s, follow_symlinks=False):
        rel_dir = dirpath[len(root_s):].lstrip("/")
        keep = []
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if full in excluded:
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            mode = st.st_mode
            if stat.S_ISLNK(mode):
                out[rel] = ("l", os.readlink(name, dir_fd=dirfd))
            elif stat.S_ISDIR(mode):
                out[rel] = ("d", stat.S_IMODE(mode), st.st_mtime_ns)
                if name in dirnames:
                    keep.append(name)
            elif stat.S_ISREG(mode):
                h = hashlib.sha256()
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
                try:
                    while chunk := os.read(fd, 1 << 20):
                        h.update(chunk)
                finally:
                    os.close(fd)
                out[rel] = ("f", stat.S_IMODE(mode), st.st_size, st.st_mtime_ns, h.hexdigest())
            else:  # FIFO, socket, device: metadata only
                out[rel] = ("o", stat.S_IFMT(mode), stat.S_IMODE(mode), st.st_mtime_ns)
        dirnames[:] = [d for d in dirnames if d in keep]
    return out


def diff_snapshots(before: dict[str, tuple], after: dict[str, tuple]) -> tuple[list[str], list[str], list[str]]:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return added, removed, changed


# ------------------------------------------------------------------ memory of a session

def session_rss(sid: int) -> tuple[int, list[int]]:
    """Summed RSS (bytes) and pids of every process whose session id is ``sid``."""
    total, pids = 0, []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        rest = data[data.rfind(b")") + 2:].split()
        try:
            if int(rest[3]) == sid:
                pids.append(int(entry.name))
                total += int(rest[21]) * _PAGE
        except (IndexError, ValueError):
            continue
    return total, pids


# ------------------------------------------------------------------ one run

@dataclass
class Result:
    name: str
    world: Path
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    report_html: str | None = None
    report_json: str | None = None
    wall: float = 0.0
    peak_rss: int = 0  # sampled sum over the session
    maxrss: int = 0  # wait4 ru_maxrss of the run (largest single process)
    timed_out: bool = False
    mem_killed: bool = False
    leftover: list[int] = field(default_factory=list)
    isolated: bool = False
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        head = (f"{self.name}: exit {self.returncode}, {self.wall:.1f} s, peak {self.peak_rss >> 20} MiB "
                f"(maxrss {self.maxrss >> 20} MiB), world {self.world}")
        err = self.stderr.strip().splitlines()
        tail = f"\n  stderr: {err[-1][:300]!r}" if err else ""
        return head + "".join(f"\n  {f}" for f in self.failures) + tail


def _needles(ctx: Ctx) -> dict[str, str]:
    """Canary text -> what it is; raw tokens and their base64 at every alignment."""
    needles = {PASSWD_CANARY: "/etc/passwd"}
    for label, tok in ctx.tokens.items():
        what = "the run's environment" if label == "environment" else f"outside/{label}"
        needles[tok] = what
        for shift in range(3):
            enc = base64.b64encode(b"\0" * shift + tok.encode()).decode()
            needles[enc[4 if shift else 0:-4]] = f"{what} (base64)"
    return needles


def _read(p: Path) -> str | None:
    try:
        return p.read_bytes().decode("utf-8", "replace")
    except (OSError, IsADirectoryError):
        return None


_ERROR_LINE = re.compile(r"^labkit: error: [^\s:][^:]*: \S")


def run(case: Case, base: Path, *, on_tick: Callable[[subprocess.Popen, Ctx, float], None] | None = None,
        timeout: float = TIMEOUT, spec_override: Callable[[Ctx], Spec] | None = None,
        mpl_dir: Path | None = None) -> Result:
    """Build ``case`` under ``base`` and run ``labkit try`` on it; returns the Result with its failures."""
    world = base / "world"
    harness = base / "harness"
    world.mkdir(parents=True)
    harness.mkdir(parents=True)
    res = Result(case.name, world)
    try:
        ctx = Ctx(world, free_port())
        spec = (spec_override or case.build)(ctx) or Spec()
    except Exception:  # noqa: BLE001 - a broken builder is a failing case, with its traceback
        res.failures.append("(build) the case could not be built: " + traceback.format_exc().strip().splitlines()[-1])
        res.stderr = traceback.format_exc()
        return res
    if os.listdir(ctx.markers):  # the builder itself ran a hostile command: the case proves nothing
        res.failures.append(f"(build) markers exist before the run: {', '.join(sorted(os.listdir(ctx.markers)))}")
        return res
    outdir = world / "priv" / "outdir"
    outdir.mkdir()
    out = spec.out or outdir / "out"
    target = spec.target or ctx.repo
    excluded = [outdir, ctx.tmp]
    before = snapshot(world, excluded)
    index = ctx.repo / ".git" / "index"
    index_before = index.read_bytes() if index.exists() else None
    if spec.git and index_before is None:
        res.failures.append("(build) a git case without .git/index: the index check would prove nothing")
        return res

    prefix, _why = netns()
    res.isolated = prefix is not None
    connect_log = harness / "connect.log"
    listen_log = harness / "listen.log"
    argv = [*labkit_argv(), "try", str(target), "--out", str(out), *spec.args]
    jail = [sys.executable, "-I", str(HERE / "netjail.py"), str(listen_log), str(ctx.port), "--"]
    argv = [*(prefix or []), *jail, *argv]
    env = {
        "PATH": os.pathsep.join([str(Path(labkit_argv()[0]).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(ctx.home), "TMPDIR": str(ctx.tmp), "USER": "mallory-victim", "LOGNAME": "mallory-victim",
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "dumb", "COLUMNS": "4000", "LINES": "50",
        "PYTHONPATH": os.pathsep.join([p for p in (os.environ.get("LABKIT_SAFETY_PYTHONPATH"), str(HERE / "guard"))
                                       if p]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LABKIT_TEST_CONNECT_LOG": str(connect_log), "LABKIT_CANARY_ENV": ctx.env_token,
        "NETJAIL_ISOLATED": "1" if prefix else "0",
    }
    if mpl_dir is not None:
        env["MPLCONFIGDIR"] = str(mpl_dir)
    fo = open(harness / "stdout", "wb")
    fe = open(harness / "stderr", "wb")
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, env=env, cwd=ctx.cwd,
                                start_new_session=True)
    finally:
        fo.close()
        fe.close()
    sid = proc.pid
    killed = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        elapsed = time.monotonic() - t0
        rss, _pids = session_rss(sid)
        res.peak_rss = max(res.peak_rss, rss)
        if not killed and rss > MEM_LIMIT:
            res.mem_killed = killed = True
        if not killed and elapsed > timeout:
            res.timed_out = killed = True
        if killed:
            for victim in _pids:  # the session, whatever process groups it made
                try:
                    os.kill(victim, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        if on_tick is not None:
            on_tick(proc, ctx, elapsed)
        time.sleep(0.05)
    res.wall = time.monotonic() - t0
    proc.returncode = res.returncode = os.waitstatus_to_exitcode(status)
    res.maxrss = usage.ru_maxrss * 1024
    time.sleep(0.05)
    _rss, left = session_rss(sid)
    if left and not killed:
        res.leftover = left  # labkit exited and left these running
    deadline = time.monotonic() + 5
    while left and time.monotonic() < deadline:  # nothing of the run may outlive it (or touch the world later)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
        _rss, left = session_rss(sid)

    res.stdout = (harness / "stdout").read_bytes().decode("utf-8", "replace")
    res.stderr = (harness / "stderr").read_bytes().decode("utf-8", "replace")
    if out.is_dir():
        res.report_html = _read(out / "report.html")
        res.report_json = _read(out / "report.json")
    after = snapshot(world, excluded)
    _check(res, ctx, spec, before, after, index_before, out, connect_log, listen_log)
    return res


def _check(res: Result, ctx: Ctx, spec: Spec, before: dict, after: dict, index_before: bytes | None, out: Path,
           connect_log: Path, listen_log: Path) -> None:
    f = res.failures
    # (a) markers
    markers = sorted(os.listdir(ctx.markers))
    if markers:
        f.append(f"(a) a command from the repository ran: marker(s) {', '.join(markers)}")
    # (b) canaries
    texts = {"stdout": res.stdout, "stderr": res.stderr}
    if out.is_dir():
        for p in sorted(out.rglob("*")):
            if p.is_file() and p.suffix.lower() in (".html", ".json", ".txt", ".csv", ".md", ".log", ".yaml"):
                texts[p.name] = _read(p) or ""
    leaks: dict[str, set[str]] = {}
    for needle, what in _needles(ctx).items():
        for where, text in texts.items():
            if needle in text:
                leaks.setdefault(what, set()).add(where)
    # a terminal table may wrap or truncate a token: any 12 characters of one, in stdout / stderr
    for label, tok in ctx.tokens.items():
        what = "the run's environment" if label == "environment" else f"outside/{label}"
        for where in ("stdout", "stderr"):
            text = texts[where]
            if any(tok[i:i + WINDOW] in text for i in range(len(tok) - WINDOW + 1)):
                leaks.setdefault(what, set()).add(where)
    if leaks:
        f.append("(b) outside bytes shown: " + "; ".join(f"{what} in {', '.join(sorted(w))}"
                                                         for what, w in sorted(leaks.items())))
    # (c) writes outside --out and TMPDIR
    added, removed, changed = diff_snapshots(before, after)
    marker_dir = os.path.relpath(ctx.markers, ctx.world)
    touched = [p for p in added + removed + changed if not (p == marker_dir or p.startswith(marker_dir + "/"))]
    if touched:
        repo_git = os.path.relpath(ctx.repo / ".git", ctx.world)
        parts = []
        if index_before is not None and f"{repo_git}/index" in changed:
            now = (ctx.repo / ".git" / "index").read_bytes() if (ctx.repo / ".git" / "index").exists() else None
            parts.append("the user's .git/index was rewritten" if now != index_before else
                         "the user's .git/index was touched (same bytes, new mtime)")
        for label, items in (("new", added), ("removed", removed), ("changed", changed)):
            items = [p for p in items if p in touched and p != f"{repo_git}/index"]
            if items:
                parts.append(f"{label}: {', '.join(_short(p) for p in items[:4])}"
                             + (f" (+{len(items) - 4} more)" if len(items) > 4 else ""))
        f.append("(c) wrote outside --out/TMPDIR: " + "; ".join(parts))
    # (d) network
    for log, what in ((connect_log, "Python connected"), (listen_log, "a connection reached a listener")):
        text = _read(log)
        if text and text.strip():
            f.append(f"(d) {what}: {text.strip().splitlines()[0][:200]}")
    if not Path(str(connect_log) + ".loaded").exists():
        f.append("(d) the Python network guard (tests/safety/guard/sitecustomize.py) was not loaded")
    # (e) exit code, tracebacks
    rc = res.returncode
    if not (res.timed_out or res.mem_killed):
        if rc not in EXIT_OK:
            last = res.stderr.strip().splitlines()[-1][:200] if res.stderr.strip() else ""
            f.append(f"(e) exit code {rc}: {last}")
        if "Traceback" in res.stderr or "internal error" in res.stderr:
            line = next((ln for ln in res.stderr.splitlines() if "internal error" in ln or "Error" in ln), "")
            f.append(f"(e) traceback / internal error in stderr: {line.strip()[:200]}")
    # (f) bounds
    if res.timed_out:
        f.append(f"(f) still running after {TIMEOUT:.0f} s (killed)")
    if res.mem_killed or res.peak_rss > MEM_LIMIT:
        f.append(f"(f) memory over {MEM_LIMIT >> 20} MiB (peak {res.peak_rss >> 20} MiB; killed)")
    elif res.maxrss > MEM_LIMIT:
        f.append(f"(f) maxrss {res.maxrss >> 20} MiB over {MEM_LIMIT >> 20} MiB")
    if res.leftover:
        f.append(f"(f) {len(res.leftover)} process(es) still running after labkit exited")
    # (g) one clear line on exit 2
    if rc == 2:
        lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
        if len(lines) != 1:
            f.append(f"(g) exit 2 with {len(lines)} stderr lines (want 1): {lines[0][:150] if lines else ''!r}")
        elif not _ERROR_LINE.match(lines[0]):
            f.append(f"(g) exit-2 line does not name a file or field: {lines[0][:200]!r}")
    # (h) the private temp folder is empty
    left = sorted(os.listdir(ctx.tmp))
    if left and not (res.timed_out or res.mem_killed):
        f.append(f"(h) left in TMPDIR after the run: {', '.join(left[:5])}")
    shutil.rmtree(ctx.tmp, ignore_errors=True)
    # (x) case checks
    for check in spec.checks:
        try:
            f.extend(check(res))
        except Exception as exc:  # noqa: BLE001
            f.append(f"(x) check {getattr(check, '__name__', check)} raised {exc!r}")


def _short(p: str) -> str:
    p = p.encode("utf-8", "backslashreplace").decode()
    return p if len(p) < 90 else p[:40] + "…" + p[-40:]


def run_case(name: str, base: Path, mpl_dir: Path | None = None) -> Result:
    res = run(CASES[name], base, mpl_dir=mpl_dir)
    with _RESULTS_LOCK:
        RESULTS[name] = res
    return res


def result_rows() -> list[tuple[str, str, str, str]]:
    """(case, concept, pass/FAIL, first failing assertion) for the summary table."""
    rows = []
    for name, case in CASES.items():
        r = RESULTS.get(name)
        if r is None:
            continue
        first = r.failures[0] if r.failures else ""
        more = f" (+{len(r.failures) - 1})" if len(r.failures) > 1 else ""
        rows.append((name, case.concept, "pass" if r.ok else "FAIL", first + more))
    return rows


def dump_results(path: Path) -> None:
    data = {n: {"ok": r.ok, "exit": r.returncode, "wall": round(r.wall, 2), "peak_mib": r.peak_rss >> 20,
                "maxrss_mib": r.maxrss >> 20, "failures": r.failures, "stderr": r.stderr[-3000:],
                "stdout": r.stdout[-3000:]} for n, r in RESULTS.items()}
    path.write_text(json.dumps(data, indent=1))
