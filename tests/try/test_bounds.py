"""``labkit try`` on hostile repositories: bounded work, no internal errors, text escaped.

Every repository here is built at test time (the alias bomb is a dozen lines),
and ``labkit try`` runs as a subprocess (the CLI's ``main``) with a timeout and,
where memory matters, ``RLIMIT_AS`` of 1 GiB.  Whatever the input, the run
must end with exit 0, 1 or 2, never print a traceback or ``internal error``,
and an exit 2 is one ``labkit: error:`` line naming the file or option.

Organised by concept:

* bounded YAML — alias bombs, nesting, encodings, tags (``labkit.gitops.yamlbounds``
  behind the index, the plaintext-secret scan and the history walk);
* bounded ``${var}`` substitution (``labkit.gitops.substitute``);
* bounded ApplicationSet fan-out, and 1,000 directories in bounded time and memory;
* inputs that used to crash (exit 70): a homoglyph kind, a Latin-1 file name,
  ``--out`` naming a file, a path longer than ``PATH_MAX``;
* escaping: terminal, HTML, and exact JSON.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .repos import dedent, git, git_repo, kustomization, namespace, write

GiB = 1 << 30
MiB = 1 << 20

# The CLI's main() in a child process that reports its own peak RSS (ru_maxrss, KiB) on the last stderr line.
_MAIN = """
import resource, sys
from labkit.app.cli import main
try:
    rc = main(sys.argv[1:])
finally:
    sys.stdout.flush()
    print(f"@@maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
sys.exit(rc)
"""


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, seconds: float):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        lines = proc.stderr.splitlines()
        self.maxrss = int(lines.pop().split()[1]) * 1024 if lines and lines[-1].startswith("@@maxrss ") else None
        self.stderr = "\n".join(lines)
        self.seconds = seconds

    def json(self) -> dict:
        return json.loads(self.stdout)


def labkit_try(*args: str, cwd: Path, timeout: float = 90, memory: int | None = None) -> Run:
    """``labkit try ARGS`` in a child process (cwd outside the checkout), optionally under ``RLIMIT_AS``."""

    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _MAIN, "try", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, preexec_fn=limit)
    return Run(proc, time.monotonic() - t0)


def assert_clean(run: Run, *, codes: tuple[int, ...] = (0, 1, 2)) -> None:
    """Exit 0/1/2, no traceback, no internal error; an exit 2 is exactly one ``labkit: error:`` line."""
    assert run.returncode in codes, (run.returncode, run.stderr[-2000:])
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr[-2000:]
    if run.returncode == 2:
        errors = [ln for ln in run.stderr.splitlines() if ln.startswith("labkit: error: ")]
        assert len(errors) == 1, run.stderr


def error_line(run: Run) -> str:
    return next(ln for ln in run.stderr.splitlines() if ln.startswith("labkit: error: "))


def alias_bomb(levels: int = 9) -> str:
    """A billion-laughs bomb: 10 ** ``levels`` nodes once expanded, a few hundred bytes on disk."""
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n"
    return text


def app_dir(ns: str = "web") -> dict[str, str]:
    """A small kustomize overlay with one ConfigMap: something for labkit try to reconcile."""
    return {
        "app/kustomization.yaml": kustomization(ns, "namespace.yaml", "config.yaml"),
        "app/namespace.yaml": namespace(ns),
        "app/config.yaml": f"""
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: settings
            data:
              mode: {ns}
            """,
    }


def write_bytes(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


# ================================================================== bounded YAML

def test_alias_bomb_nothing_builds_is_refused_not_expanded(tmp_path):
    repo = write(tmp_path / "repo", {**app_dir(), "docs/bomb.yaml": alias_bomb()})
    assert (repo / "docs/bomb.yaml").stat().st_size < 1024
    run = labkit_try(str(repo), "--json", "--history", "0", cwd=tmp_path, timeout=60, memory=GiB)
    assert_clean(run, codes=(0,))
    doc = run.json()
    note = next(n for n in doc["notes"] if "docs/bomb.yaml" in n)
    assert "alias" in note and "1,000,000" in note
    assert doc["summary"]["units_ready"] == 1


def test_alias_bomb_in_an_argo_plain_directory_is_an_error_naming_the_file(tmp_path):
    repo = write(tmp_path / "repo", {
        "argo/app.yaml": """
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata: {name: app, namespace: argocd}
            spec:
              project: default
              source: {repoURL: https://example.com/fleet.git, targetRevision: HEAD, path: app}
              destination: {server: https://kubernetes.default.svc, namespace: default}
              syncPolicy: {automated: {}}
            """,
        "app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: default}\ndata:\n"
                       + "".join("  " + line + "\n" for line in alias_bomb().splitlines()),
    })
    run = labkit_try(str(repo), "--history", "0", cwd=tmp_path, timeout=60, memory=GiB)
    assert_clean(run, codes=(2,))
    assert "app/cm.yaml" in error_line(run) and "alias" in error_line(run)


def test_nesting_depth_is_bounded(tmp_path):
    deep = "[" * 600 + "]" * 600 + "\n"
    repo = write(tmp_path / "repo", {**app_dir(), "docs/deep.yaml": deep})
    run = labkit_try(str(repo), "--json", "--history", "0", cwd=tmp_path, timeout=60, memory=GiB)
    assert_clean(run, codes=(0,))
    assert any("docs/deep.yaml" in n and "nested more than 100 levels" in n for n in run.json()["notes"])


def test_latin1_utf16_and_binary_yaml_in_tree_and_history(tmp_path):
    """Not-UTF-8 files anywhere: the tree's are named in a note; history's are read (UTF-16) or skipped."""
    repo = tmp_path / "repo"
    utf16_secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: old-db\nstringData:\n  password: hunter2\n"
    git_repo(repo, [("app", app_dir())])
    write_bytes(repo, {"docs/latin1.yaml": "name: caf\xe9\n".encode("latin-1"),
                       "docs/utf16.yaml": utf16_secret.encode("utf-16"),
                       "docs/binary.yaml": bytes(range(256))})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "odd encodings")
    for name in ("latin1", "utf16", "binary"):
        (repo / f"docs/{name}.yaml").unlink()
    write_bytes(repo, {"docs/latin1-now.yaml": "name: na\xefve\n".encode("latin-1")})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "gone again, another one")
    run = labkit_try(str(repo), "--json", "--history", "5", cwd=tmp_path, timeout=90, memory=GiB)
    assert_clean(run, codes=(0,))
    doc = run.json()
    assert any("docs/latin1-now.yaml" in n and "not UTF-8" in n for n in doc["notes"])
    hist = [p for p in doc["pitfalls"] if p["id"] == "plaintext-secret" and "@" in (p["file"] or "")]
    assert [p["file"].split("@")[0] for p in hist] == ["docs/utf16.yaml"]  # UTF-16 with a BOM is YAML


def test_value_and_unknown_tags_do_not_hide_a_secret(tmp_path):
    """A plain ``=`` (PyYAML's ``tag:yaml.org,2002:value``) or an unknown tag made the whole file unreadable."""
    repo = write(tmp_path / "repo", {
        **app_dir(),
        "docs/eq.yaml": """
            apiVersion: v1
            kind: Secret
            metadata: {name: eq}
            stringData:
              separator: =
              password: hunter2
            """,
        "docs/tagged.yaml": """
            apiVersion: v1
            kind: Secret
            metadata: {name: tagged}
            stringData: !vault
              token: s3cr3t
            """,
    })
    run = labkit_try(str(repo), "--json", "--history", "0", cwd=tmp_path, timeout=60)
    assert_clean(run, codes=(0,))
    found = {p["file"] for p in run.json()["pitfalls"] if p["id"] == "plaintext-secret"}
    assert {"docs/eq.yaml", "docs/tagged.yaml"} <= found


# ================================================================== bounded substitution

def _flux_ks(name: str, path: str, substitute: str) -> str:
    return f"""
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {{name: {name}, namespace: flux-system}}
        spec:
          interval: 10m
          path: {path}
          prune: true
          sourceRef: {{kind: GitRepository, name: flux-system}}
          postBuild:
            substitute: {{{substitute}}}
        """


def _configmap(name: str, data: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n{data}"


def test_hundreds_of_placeholders_and_deep_nesting_in_substitution(tmp_path):
    many = "".join(f"  k{i}: ${{v{i}:=x{i}}}\n" for i in range(600))
    nested = "  k: " + "${a:=" * 300 + "z" + "}" * 300 + "\n"
    repo = write(tmp_path / "repo", {
        "clusters/many.yaml": _flux_ks("many", "./many", "v0: zero"),
        "clusters/nested.yaml": _flux_ks("nested", "./nested", "b: bee"),
        "clusters/plain.yaml": _flux_ks("plain", "./plain", "b: bee"),
        "many/cm.yaml": _configmap("many", many),
        "nested/cm.yaml": _configmap("nested", nested),
        "plain/cm.yaml": _configmap("plain", "  a: b\n"),
    })
    run = labkit_try(str(repo), "--json", "--history", "0", cwd=tmp_path, timeout=90, memory=GiB)
    assert_clean(run, codes=(0,))
    units = {u["name"]: u for u in run.json()["units"]}
    assert units["many"]["status"] == "Ready" and units["plain"]["status"] == "Ready"
    assert units["nested"]["status"] == "Failed" and "nested more than 64 deep" in units["nested"]["message"]


# ================================================================== ApplicationSet fan-out

APPSET = """
    apiVersion: argoproj.io/v1alpha1
    kind: ApplicationSet
    metadata: {name: apps, namespace: argocd}
    spec:
      generators:
        - git:
            repoURL: https://example.com/fleet.git
            revision: HEAD
            directories:
              - path: apps/*
      template:
        metadata: {name: '{{path.basename}}'}
        spec:
          project: default
          source: {repoURL: https://example.com/fleet.git, targetRevision: HEAD, path: '{{path}}'}
          destination: {server: https://kubernetes.default.svc, namespace: '{{path.basename}}'}
          syncPolicy: {automated: {}, syncOptions: [CreateNamespace=true]}
    """


def _appset_repo(root: Path, n: int) -> Path:
    files = {"argo/appset.yaml": APPSET}
    for i in range(n):
        files[f"apps/a{i:04d}/cm.yaml"] = f"""
            apiVersion: v1
            kind: ConfigMap
            metadata: {{name: c{i}}}
            data: {{index: "{i}"}}
            """
    return write(root, files)


def test_appset_over_the_fanout_limit_fails_naming_the_file(tmp_path):
    repo = _appset_repo(tmp_path / "repo", 2_001)
    run = labkit_try(str(repo), "--json", "--history", "0", cwd=tmp_path, timeout=60, memory=GiB)
    assert_clean(run, codes=(0,))
    [appset] = [u for u in run.json()["units"] if u["kind"] == "ApplicationSet"]
    assert appset["status"] == "Failed" and appset["file"] == "argo/appset.yaml"
    assert "2,001" in appset["message"] and "limit of 2,000" in appset["message"]
    assert not [u for u in run.json()["units"] if u["kind"] == "Application"]


def test_appset_over_a_thousand_directories_is_fast_and_small(tmp_path):
    """1,000 generated Applications, terminal report and --out: was 37 s CPU and 1.1 GB; target < 10 s, < 400 MiB."""
    repo = _appset_repo(tmp_path / "repo", 1_000)
    git_repo(repo, [("fleet", {})])
    run = labkit_try(str(repo), "--out", str(tmp_path / "out"), cwd=tmp_path, timeout=120, memory=GiB)
    assert_clean(run, codes=(0,))
    assert "1000 unit(s)" in run.stdout.replace("1,000", "1000") or "1001 unit(s)" in run.stdout
    assert run.maxrss is not None and run.maxrss < 400 * MiB, run.maxrss
    for name in ("apply-order.png", "time-to-ready.png"):
        assert (tmp_path / "out" / name).stat().st_size < 4 * MiB
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert report["summary"]["units_ready"] == 1_001 and report["summary"]["objects"] == 1_000


# ================================================================== inputs that used to crash

def test_unknown_kind_with_a_homoglyph_fails_its_unit_not_the_run(tmp_path):
    repo = write(tmp_path / "repo", {
        "app/kustomization.yaml": kustomization("web", "namespace.yaml", "widget.yaml", "config.yaml"),
        "app/namespace.yaml": namespace("web"),
        "app/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n",
        "app/widget.yaml": "apiVersion: example.com/v1\nkind: W\u0435bApp\nmetadata:\n  name: w\nspec: {}\n",
    })
    run = labkit_try(str(repo), "--json", "--history", "0", cwd=tmp_path, timeout=60)
    assert_clean(run, codes=(0,))
    doc = run.json()
    assert any("W\u0435bApp" in n and "cannot be assumed" in n for t in doc["targets"] for n in t["notes"])
    widget = next(o for o in doc["objects"] if o["kind"] == "W\u0435bApp")
    assert widget["outcome"] in ("failed", "not-applied")


def test_latin1_file_name_is_named_escaped(tmp_path):
    repo = write(tmp_path / "repo", app_dir())
    write_bytes(repo, {})
    bad = os.fsencode(repo / "app") + b"/caf\xe9.yaml"
    with open(bad, "wb") as fh:
        fh.write(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cafe}\n")
    run = labkit_try(str(repo), "--history", "0", cwd=tmp_path, timeout=60)
    assert_clean(run, codes=(0,))
    assert "caf\\xe9.yaml" in run.stdout + run.stderr
    json_run = labkit_try(str(repo), "--json", "--history", "0", cwd=tmp_path, timeout=60)
    assert_clean(json_run, codes=(0,))
    json_run.json()


def test_out_naming_an_existing_file_is_a_clear_error(tmp_path):
    repo = write(tmp_path / "repo", app_dir())
    (tmp_path / "report").write_text("not a directory\n")
    run = labkit_try(str(repo), "--history", "0", "--out", str(tmp_path / "report"), cwd=tmp_path, timeout=60)
    assert_clean(run, codes=(2,))
    assert error_line(run) == (f"labkit: error: {tmp_path / 'report'}: --out: exists and is not a directory; give a "
                               "directory for the report")
    assert (tmp_path / "report").read_text() == "not a directory\n"


def test_paths_longer_than_path_max_are_one_line_errors(tmp_path):
    repo = write(tmp_path / "repo", app_dir())
    long_target = str(tmp_path) + ("/" + "d" * 200) * 25
    run = labkit_try(long_target, "--history", "0", cwd=tmp_path, timeout=60)
    assert_clean(run, codes=(2,))
    assert "ddd" in error_line(run) and len(error_line(run)) < 1200
    long_out = str(tmp_path) + ("/" + "o" * 200) * 25
    run = labkit_try(str(repo), "--history", "0", "--out", long_out, cwd=tmp_path, timeout=60)
    assert_clean(run, codes=(2,))
    assert "--out" in error_line(run) and len(error_line(run)) < 1200


# ================================================================== escaping

ESC_NAME = "e\x1b[31mred\x1b[0m-[bold red]x[/]"


def test_control_characters_and_markup_from_the_repository_are_shown_not_obeyed(tmp_path):
    repo = write(tmp_path / "repo", {
        "app/kustomization.yaml": kustomization("web", "namespace.yaml", "config.yaml", "secret.yaml"),
        "app/namespace.yaml": namespace("web"),
        "app/config.yaml": dedent("""
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: "e\\e[31mred\\e[0m-[bold red]x[/]"
            data: {a: "<script>alert(1)</script>"}
            """),
        "app/secret.yaml": dedent("""
            apiVersion: v1
            kind: Secret
            metadata:
              name: "s\\e]0;pwned\\a<b>"
            stringData: {password: hunter2}
            """),
    })
    out = tmp_path / "out"
    run = labkit_try(str(repo), "--history", "0", "--out", str(out), cwd=tmp_path, timeout=90)
    assert_clean(run, codes=(0,))
    for stream in (run.stdout, run.stderr):
        assert "\x1b" not in stream and "\x07" not in stream
    assert "e\\x1b[31mred\\x1b[0m-[bold red]x[/]" in run.stdout  # escaped, and the markup shown as written
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "\x1b" not in page and "\x07" not in page and "<b>" not in page
    assert "s\\x1b]0;pwned\\x07&lt;b&gt;" in page
    names = {o["name"] for o in json.loads((out / "report.json").read_text())["objects"]}
    assert ESC_NAME in names and "s\x1b]0;pwned\x07<b>" in names  # JSON stays exact


# ================================================================== the limits themselves (in process)

def test_yaml_limits_each_name_the_file():
    from labkit.gitops.yamlbounds import YamlBudget, YamlLimitError, decode_yaml_bytes, load_documents

    cases = {
        "alias": alias_bomb(),
        "nested": "[" * 101 + "]" * 101,
        "YAML nodes": "[" + "1," * 250_001 + "]",
        "documents": "---\na: 1\n" * 10_001,
    }
    for needle, text in cases.items():
        with pytest.raises(YamlLimitError, match=needle) as err:
            load_documents(text, "x/f.yaml")
        assert str(err.value).startswith("x/f.yaml: ")
    budget = YamlBudget(max_nodes=10)
    load_documents("[1, 2, 3]", "a.yaml", budget=budget)
    with pytest.raises(YamlLimitError, match="exceeds 10 nodes"):
        load_documents("[1, 2, 3, 4, 5, 6, 7, 8]", "b.yaml", budget=budget)
    assert decode_yaml_bytes("a: b\n".encode("utf-32"), "u.yaml") == "a: b\n"
    for data, needle in ((b"a: caf\xe9", "not UTF-8"), (b"\x00\x01", "binary")):
        with pytest.raises(YamlLimitError, match=needle):
            decode_yaml_bytes(data, "x.yaml")
    [doc] = load_documents("a: =\nb: !x [1]\nc: !!python/name:os.system x\nd: 2024-01-01\n", "t.yaml")
    assert doc.data == {"a": "=", "b": [1], "c": "x", "d": "2024-01-01"}


def test_read_yaml_file_refuses_fifos_devices_and_big_files(tmp_path):
    from labkit.gitops.yamlbounds import YamlLimitError, read_yaml_file

    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "big.yaml").write_bytes(b"a: b\n" * 10)
    with pytest.raises(YamlLimitError, match="not a regular file"):
        read_yaml_file(tmp_path / "pipe.yaml", "pipe.yaml")  # would block forever if opened
    with pytest.raises(YamlLimitError, match="not a regular file"):
        read_yaml_file("/dev/zero", "zero.yaml")
    with pytest.raises(YamlLimitError, match="over the limit of 20 bytes"):
        read_yaml_file(tmp_path / "big.yaml", "big.yaml", max_bytes=20)


def test_envsubst_is_iterative_and_bounded():
    from labkit.gitops.substitute import MAX_OUTPUT, EnvsubstError, envsubst

    values = {"v": "y"}
    text = " ".join(f"${{v}}-${{u{i}:=d}}" for i in range(5_000))
    assert envsubst(text, lambda n: (values.get(n, ""), n in values)) == " ".join(["y-d"] * 5_000)
    assert envsubst("$$" * 200_000, lambda n: ("", False)) == "$" * 200_000
    big = "x" * 100_000
    with pytest.raises(EnvsubstError, match=f"exceed {MAX_OUTPUT:,}"):
        envsubst("${v//x/" + "y" * 100 + "}", lambda n: (big, True))


def test_escape_text_for_terminal_and_one_line():
    from labkit.core.textsafe import escape_text, one_line

    assert escape_text("a\x1b[2Jb\u202ec\rd\udce9") == "a\\x1b[2Jb\\u202ec\\rd\\xe9"
    assert escape_text("два\nlines", keep_newlines=True) == "два\nlines"
    assert one_line("x\ny") == "x\\ny"
    assert len(one_line("z" * 10_000, 100)) <= 101
