"""Hostile repositories for ``labkit try``, built at test time.

Every case is a function decorated with ``@case(concept)``; the first line of
its docstring says the attack.  ``build(ctx)`` writes the repository under
``ctx.repo`` (and anything "outside" it under ``ctx.outside``) and returns a
``Spec``: the extra command-line arguments, and case-specific checks.  The
harness (``tests/safety/harness.py``) runs ``labkit try`` on it and asserts the
same properties for every case.

The world of one case (``ctx.world``, snapshotted before and after the run)::

    world/repo/       the repository under test
    world/outside/    files outside the repository: canaries holding random
                      secrets, a kustomize base, a FIFO, a write target
    world/markers/    commands in a case ``touch`` files here; it must stay empty
    world/priv/home   HOME of the run (watched like everything else)
    world/priv/tmp    TMPDIR of the run (not watched; must be empty afterwards)
    world/priv/cwd    the working directory of the run
    world/priv/outdir/out   --out, a fresh directory (outdir is not watched)

Canaries: every outside file holds its own random token (``ctx.tokens``), and
the run's environment holds one (read through ``/proc/self/environ``).  None
may appear in stdout, stderr or the reports.  ``/etc/passwd`` is a canary too.

Concepts: ``commands`` (commands from manifests), ``git`` (git running code,
the user's index), ``confinement`` (writes and reads outside the repository),
``bounds`` (unbounded work) and ``crashes`` (exit 70, escaping).
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

__all__ = ["CASES", "CONCEPTS", "Case", "Ctx", "Spec", "case", "names"]

CONCEPTS = ("commands", "git", "confinement", "bounds", "crashes")
PASSWD_CANARY = "root:x:0:0:"


# ------------------------------------------------------------------ the case registry

@dataclass
class Spec:
    """What to run: extra CLI arguments, and checks only this case needs."""

    args: list[str] = field(default_factory=list)
    target: Path | None = None  # default: ctx.repo
    out: Path | None = None  # default: world/priv/outdir/out (a fresh directory)
    git: bool = False  # the repository is a git work tree: its .git/index must not change
    #: checks(result) -> list of failure texts; see harness.Result
    checks: list[Callable[..., list[str]]] = field(default_factory=list)


@dataclass
class Case:
    name: str
    concept: str
    attack: str  # first docstring line
    build: Callable[["Ctx"], Spec | None]
    heavy: bool = False  # scheduled first (large inputs, likely to hit the time limit)


CASES: dict[str, Case] = {}


def case(concept: str, *, heavy: bool = False) -> Callable:
    assert concept in CONCEPTS, concept

    def deco(fn: Callable[["Ctx"], Spec | None]) -> Callable:
        name = fn.__name__.removeprefix("case_").replace("_", "-")
        attack = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        assert attack, f"case {name} needs a docstring saying the attack"
        assert name not in CASES, name
        CASES[name] = Case(name, concept, attack, fn, heavy)
        return fn

    return deco


def names(concept: str | None = None) -> list[str]:
    return [n for n, c in CASES.items() if concept is None or c.concept == concept]


# ------------------------------------------------------------------ the world of one case

GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "mallory",
           "GIT_AUTHOR_EMAIL": "mallory@example.com", "GIT_COMMITTER_NAME": "mallory",
           "GIT_COMMITTER_EMAIL": "mallory@example.com", "GIT_AUTHOR_DATE": "1700000000 +0000",
           "GIT_COMMITTER_DATE": "1700000000 +0000", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": os.devnull, "LC_ALL": "C"}


class Ctx:
    """Paths, canaries and helpers for building one case (see the module docstring)."""

    def __init__(self, world: Path, port: int):
        self.world = world
        self.repo = world / "repo"
        self.outside = world / "outside"
        self.markers = world / "markers"
        self.home = world / "priv" / "home"
        self.tmp = world / "priv" / "tmp"
        self.cwd = world / "priv" / "cwd"
        self.port = port
        for d in (self.repo, self.outside, self.markers, self.home, self.tmp, self.cwd):
            d.mkdir(parents=True, exist_ok=True)
        self.tokens: dict[str, str] = {}
        tok = self.token
        # canary files outside the repository, each with its own secret
        self.canary_yaml = self._out("canary.yaml", _cm(f"lkc-{tok('canary.yaml')}", secret=tok("canary.yaml")))
        self.canary_txt = self._out("canary.txt", tok("canary.txt") + "\n")
        self.canary_env = self._out("canary.env", f"LEAK={tok('canary.env')}\n")
        self.canary_json = self._out("canary-schema.json",
                                     '{"definitions": {"%s": {"type": "%s"}}, "%s"' % (
                                         tok("canary-schema.json"), tok("canary-schema.json"),
                                         tok("canary-schema.json")))
        self.kdir = self.outside / "kdir"  # an outside kustomize base / plain directory
        self._out("kdir/kustomization.yaml", "resources:\n- cm.yaml\n")
        self._out("kdir/cm.yaml", _cm(f"lkc-{tok('kdir/cm.yaml')}", secret=tok("kdir/cm.yaml")))
        self.wdir = self.outside / "wdir"  # a write target
        self.wdir.mkdir()
        self.env_token = tok("environment")  # in the run's environment (LABKIT_CANARY_ENV)

    def token(self, label: str) -> str:
        if label not in self.tokens:
            self.tokens[label] = "lkc" + secrets.token_hex(10)
        return self.tokens[label]

    def _out(self, rel: str, text: str) -> Path:
        p = self.outside / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    def marker(self, name: str) -> Path:
        """A marker path: anything in the repository that runs a command touches it."""
        return self.markers / name

    def touch(self, name: str) -> str:
        return f"touch {self.marker(name)}"

    # -- writing the repository

    def write(self, files: dict[str, str | bytes]) -> Path:
        for rel, text in files.items():
            p = self.repo / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(text, bytes):
                p.write_bytes(text)
            else:
                p.write_text(dedent(text))
        return self.repo

    def link(self, rel: str, target: str | Path) -> None:
        p = self.repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(str(target), p)

    def script(self, rel: str, body: str, base: Path | None = None) -> Path:
        p = (base or self.repo) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("#!/bin/sh\n" + dedent(body))
        p.chmod(0o755)
        return p

    # -- git

    def git(self, *args: str, input: bytes | None = None, cwd: Path | None = None) -> str:
        proc = subprocess.run(["git", *args], cwd=cwd or self.repo, env=GIT_ENV, input=input,
                              capture_output=True, check=True)
        return proc.stdout.decode("utf-8", "surrogateescape").strip()

    def git_init(self, message: str = "initial", repo: Path | None = None) -> str:
        """``git init`` + commit everything (with an isolated config); returns HEAD."""
        r = repo or self.repo
        self.git("init", "-q", "-b", "main", cwd=r)
        self.git("add", "-A", cwd=r)
        self.git("commit", "-q", "-m", message, cwd=r)
        return self.git("rev-parse", "HEAD", cwd=r)

    def commit_all(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def blob(self, data: bytes | str) -> str:
        data = data.encode() if isinstance(data, str) else data
        return self.git("hash-object", "-w", "--stdin", input=data)

    def raw_tree(self, entries: list[tuple[str, bytes | str, str]]) -> str:
        """A tree object written as given (``git hash-object --literally``): no sorting, no checks."""
        body = b""
        for mode, name, sha in entries:
            name = name.encode() if isinstance(name, str) else name
            body += mode.encode() + b" " + name + b"\0" + bytes.fromhex(sha)
        return self.git("hash-object", "-w", "-t", "tree", "--literally", "--stdin", input=body)

    def tree_of(self, files: dict[str, tuple[str, bytes | str]]) -> str:
        """A (well-formed) tree from ``{path: (mode, content)}`` via raw_tree, sorted as git sorts."""
        top: dict[str, dict | tuple[str, bytes | str]] = {}
        for path, val in files.items():
            parts = path.split("/")
            node = top
            for part in parts[:-1]:
                node = node.setdefault(part, {})  # type: ignore[assignment]
            node[parts[-1]] = val

        def build(node: dict) -> str:
            entries = []
            for name, val in node.items():
                if isinstance(val, dict):
                    entries.append(("40000", name, build(val), name + "/"))
                else:
                    mode, content = val
                    entries.append((mode, name, self.blob(content), name))
            entries.sort(key=lambda e: e[3].encode())
            return self.raw_tree([(m, n, s) for m, n, s, _ in entries])

        return build(top)

    def commit_tree(self, tree: str, message: str, parents: list[str] | None = None) -> str:
        args = ["commit-tree", tree, "-m", message]
        for p in parents or []:
            args += ["-p", p]
        return self.git(*args)


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# ------------------------------------------------------------------ YAML helpers

def _cm(name: str, ns: str | None = None, **data: str) -> str:
    meta = f"  name: {name}\n" + (f"  namespace: {ns}\n" if ns else "")
    body = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in data.items()) or "  x: \"1\"\n"
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n{meta}data:\n{body}"


def cm(name: str, ns: str = "app", **data: str) -> str:
    return _cm(name, ns, **data)


def kustomization(*resources: str, extra: str = "") -> str:
    res = "".join(f"- {r}\n" for r in resources)
    return ("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: app\n"
            + (f"resources:\n{res}" if resources else "") + dedent(extra))


def flux_ks(name: str, path: str, extra: str = "") -> str:
    text = f"""
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: {name}
          namespace: flux-system
        spec:
          interval: 10m0s
          path: {path}
          prune: true
          wait: true
          timeout: 5m0s
          sourceRef:
            kind: GitRepository
            name: flux-system
        """
    return dedent(text) + textwrap.indent(dedent(extra), "  ")


def argo_app(name: str, path: str, extra_source: str = "") -> str:
    text = f"""
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata:
          name: {name}
          namespace: argocd
        spec:
          project: default
          source:
            repoURL: https://github.com/acme/apps.git
            targetRevision: main
            path: {path}
        """
    src = textwrap.indent(dedent(extra_source), "    ") if extra_source else ""
    tail = """
        destination:
          server: https://kubernetes.default.svc
          namespace: app
        syncPolicy:
          automated: {prune: true}
          syncOptions: [CreateNamespace=true]
        """
    return dedent(text) + src + textwrap.indent(dedent(tail), "  ")


def appset(name: str, pattern: str) -> str:
    return dedent(f"""
        apiVersion: argoproj.io/v1alpha1
        kind: ApplicationSet
        metadata:
          name: {name}
          namespace: argocd
        spec:
          generators:
            - git:
                repoURL: https://github.com/acme/apps.git
                revision: HEAD
                directories:
                  - path: '{pattern}'
          template:
            metadata:
              name: '{{{{path.basename}}}}'
            spec:
              project: default
              source:
                repoURL: https://github.com/acme/apps.git
                targetRevision: HEAD
                path: '{{{{path}}}}'
              destination:
                server: https://kubernetes.default.svc
                namespace: '{{{{path.basename}}}}'
              syncPolicy:
                automated: {{}}
                syncOptions: [CreateNamespace=true]
        """)


def flux_app(ctx: Ctx, path: str, extra: str = "", name: str = "apps") -> None:
    """A Flux bootstrap file reconciling ``path`` (GitRepository synthesised by labkit)."""
    ctx.write({"clusters/prod/apps.yaml": flux_ks(name, path, extra)})


def plain_app(ctx: Ctx, *extra_resources: str, files: dict[str, str | bytes] | None = None) -> None:
    """A good kustomize app at app/ (a namespace and a ConfigMap) plus ``extra_resources``, and a Flux
    Kustomization (clusters/prod/apps.yaml) reconciling ./app — so labkit builds app/ even when its
    kustomization.yaml is something PyYAML cannot read."""
    ctx.write({"app/kustomization.yaml": kustomization("ns.yaml", "cm.yaml", *extra_resources),
               "app/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n",
               "app/cm.yaml": cm("settings", LOG="info"), **(files or {})})
    flux_app(ctx, "./app")


def bomb(levels: int = 9, width: int = 9, indent: str = "") -> str:
    """A YAML alias ("billion laughs") bomb: ``width ** levels`` nodes once expanded."""
    lols = ", ".join(['"lol"'] * width)
    lines = [f"{indent}l0: &l0 [{lols}]"]
    for i in range(1, levels):
        refs = ", ".join([f"*l{i - 1}"] * width)
        lines.append(f"{indent}l{i}: &l{i} [{refs}]")
    return "\n".join(lines) + "\n"


def _exe(ctx: Ctx, rel: str, marker: str, output: str = "") -> Path:
    """An executable in the repository that touches a marker and prints ``output``."""
    body = f"{ctx.touch(marker)}\n"
    if output:
        body += "cat <<'EOF'\n" + dedent(output) + "EOF\n"
    return ctx.script(rel, body)


def _resource_list(name: str) -> str:
    return f"""
        apiVersion: config.kubernetes.io/v1
        kind: ResourceList
        items:
        - apiVersion: v1
          kind: ConfigMap
          metadata:
            name: {name}
        """


def _no_file_named(name: str, tmp: Path) -> Callable[..., list[str]]:
    """A check: no file ``name`` in TMPDIR or any of its ancestors (a ``..`` escape); removes what it finds."""

    def check(result) -> list[str]:
        found = []
        for d in [tmp, *tmp.parents]:
            p = d / name
            if os.path.lexists(p):
                found.append(str(p))
                if not str(p).startswith(str(result.world)):
                    try:
                        os.unlink(p)  # do not leave litter on the machine
                    except OSError:
                        pass
        return [f"(c) a tree entry escaped the snapshot and was written to {f}" for f in found]

    return check


# ================================================================== commands from manifests

def _upload_pack(ctx: Ctx, marker: str) -> str:
    return f"--upload-pack=touch${{IFS}}{ctx.marker(marker)}|true"


@case("commands")
def case_kustomize_ref_upload_pack(ctx: Ctx) -> Spec:
    """A remote base whose ?ref= is `--upload-pack=touch${IFS}MARKER|true`: git fetch would run it."""
    plain_app(ctx, f"file:///nonexistent/x?ref={_upload_pack(ctx, 'upload-pack-ref')}")
    return Spec()


@case("commands")
def case_kustomize_ref_abbreviated_option(ctx: Ctx) -> Spec:
    """A remote base whose ?ref= is `--upl=<command>` (git takes a unique abbreviation of --upload-pack)."""
    plain_app(ctx, f"file:///nonexistent/y?ref=--upl=touch${{IFS}}{ctx.marker('upload-pack-abbrev')}|true")
    return Spec()


@case("commands")
def case_kustomize_version_upload_pack(ctx: Ctx) -> Spec:
    """A go-getter style `git::file://…//app?version=--upload-pack=…` base (version is ref's alias)."""
    plain_app(ctx, f"git::file:///nonexistent/z//app?version={_upload_pack(ctx, 'upload-pack-version')}")
    return Spec()


@case("commands")
def case_kustomize_remote_http(ctx: Ctx) -> Spec:
    """http(s) resources (a listener on 127.0.0.1 records any connection) are fetched without being asked."""
    plain_app(ctx, f"https://127.0.0.1:{ctx.port}/acme/base/cm.yaml", f"http://127.0.0.1:{ctx.port}/cm.yaml")
    return Spec()


@case("commands")
def case_kustomize_remote_git_http(ctx: Ctx) -> Spec:
    """A `git::http://…` remote base is cloned without being asked."""
    plain_app(ctx, f"git::http://127.0.0.1:{ctx.port}/acme/base.git//app?ref=main")
    return Spec()


@case("commands")
def case_kustomize_remote_git_ssh(ctx: Ctx) -> Spec:
    """An `ssh://` remote base (ssh would connect, and ?ref=-o… could become an option)."""
    plain_app(ctx, f"ssh://git@127.0.0.1:{ctx.port}/acme/base.git//app?ref=-oProxyCommand=touch${{IFS}}"
                   f"{ctx.marker('ssh-proxycommand')}")
    return Spec()


@case("commands")
def case_kustomize_remote_github(ctx: Ctx) -> Spec:
    """A github.com remote base (the README promises offline work on local input)."""
    plain_app(ctx, "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.0.0")
    return Spec()


@case("commands")
def case_kustomize_file_clone_other_repo(ctx: Ctx) -> Spec:
    """A `file://` base naming another local git repository (its content is outside the repository)."""
    other = ctx.world / "other-repo"
    (other / "app").mkdir(parents=True)
    tok = ctx.token("other-repo")
    (other / "app" / "kustomization.yaml").write_text("resources:\n- cm.yaml\n")
    (other / "app" / "cm.yaml").write_text(cm(f"lkc-{tok}", secret=tok))
    ctx.git_init(repo=other)
    plain_app(ctx, f"file://{other}//app?ref=main")
    return Spec()


@case("commands")
def case_kustomize_helm_charts(ctx: Ctx) -> Spec:
    """helmCharts with a remote repo and `helmGlobals: !x {chartHome: /outside/charts}` (runs helm, reads outside)."""
    tok = ctx.token("charts/leak")
    charts = ctx.outside / "charts" / "leak"
    (charts / "templates").mkdir(parents=True)
    (charts / "Chart.yaml").write_text("apiVersion: v2\nname: leak\nversion: 1.0.0\n")
    (charts / "templates" / "cm.yaml").write_text(cm(f"lkc-{tok}", secret=tok))
    plain_app(ctx)
    ctx.write({"app/kustomization.yaml": kustomization("ns.yaml", "cm.yaml", extra=f"""
        helmGlobals: !x
          chartHome: {ctx.outside / 'charts'}
        helmCharts:
        - name: leak
          releaseName: leak
          version: 1.0.0
        - name: remote
          repo: http://127.0.0.1:{ctx.port}/charts
          releaseName: remote
          version: 1.0.0
        """)})
    return Spec()


@case("commands")
def case_kustomize_exec_generator(ctx: Ctx) -> Spec:
    """A generator config annotated `config.kubernetes.io/function: exec: ./gen.sh` (an exec KRM function)."""
    plain_app(ctx)
    _exe(ctx, "app/gen.sh", "exec-generator", _resource_list("generated"))
    ctx.write({"app/kustomization.yaml": kustomization("ns.yaml", "cm.yaml", extra="generators:\n- gen.yaml\n"),
               "app/gen.yaml": """
                   apiVersion: example.com/v1
                   kind: Gen
                   metadata:
                     name: gen
                     annotations:
                       config.kubernetes.io/function: |
                         exec:
                           path: ./gen.sh
                   """})
    return Spec()


@case("commands")
def case_kustomize_exec_transformer(ctx: Ctx) -> Spec:
    """A transformer config whose exec function path is an absolute script."""
    plain_app(ctx)
    script = _exe(ctx, "app/tr.sh", "exec-transformer", _resource_list("transformed"))
    ctx.write({"app/kustomization.yaml": kustomization("ns.yaml", "cm.yaml", extra="transformers:\n- tr.yaml\n"),
               "app/tr.yaml": f"""
                   apiVersion: example.com/v1
                   kind: Tr
                   metadata:
                     name: tr
                     annotations:
                       config.kubernetes.io/function: |
                         exec:
                           path: {script}
                   """})
    return Spec()


@case("commands")
def case_kustomize_exec_validator(ctx: Ctx) -> Spec:
    """A validator config with an exec function (validators run after the build)."""
    plain_app(ctx)
    _exe(ctx, "app/val.sh", "exec-validator", _resource_list("validated"))
    ctx.write({"app/kustomization.yaml": kustomization("ns.yaml", "cm.yaml", extra="validators:\n- val.yaml\n"),
               "app/val.yaml": """
                   apiVersion: example.com/v1
                   kind: Val
                   metadata:
                     name: val
                     annotations:
                       config.kubernetes.io/function: |
                         exec:
                           path: ./val.sh
                   """})
    return Spec()


@case("commands")
def case_kustomize_plugin_outside_path(ctx: Ctx) -> Spec:
    """`generators: !x [/outside/plugin.yaml]`: a plugin config (with an exec function) outside the repository."""
    script = _exe(ctx, "gen.sh", "exec-outside-plugin", _resource_list("outside-generated"))
    os.replace(script, ctx.outside / "gen.sh")
    (ctx.outside / "plugin.yaml").write_text(dedent(f"""
        apiVersion: example.com/v1
        kind: Gen
        metadata:
          name: lkc-{ctx.token('plugin.yaml')}
          annotations:
            config.kubernetes.io/function: |
              exec:
                path: {ctx.outside / 'gen.sh'}
        """))
    plain_app(ctx)
    ctx.write({"app/kustomization.yaml": kustomization(
        "ns.yaml", "cm.yaml", extra=f"generators: !x\n- {ctx.outside / 'plugin.yaml'}\n")})
    return Spec()


@case("commands")
def case_kustomize_openapi_path(ctx: Ctx) -> Spec:
    """`openapi: !x {path: /outside/schema.json}` (an unknown tag hides it from a PyYAML pre-check)."""
    plain_app(ctx)
    ctx.write({"app/kustomization.yaml": kustomization("ns.yaml", "cm.yaml",
                                                       extra=f"openapi: !x\n  path: {ctx.canary_json}\n")})
    return Spec()


# ================================================================== git running code

def _git_repo(ctx: Ctx) -> str:
    plain_app(ctx)
    return ctx.git_init()


def _dirty(ctx: Ctx) -> None:
    """Touch every tracked file (same content, new mtime: `git status` refreshes and rewrites the index, which
    runs post-index-change), change one and add an untracked one, so status and diff have work to do."""
    later = time.time() + 5
    safe = ("-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-c", "diff.external=")
    for rel in ctx.git(*safe, "ls-files", "-z").split("\0"):
        p = ctx.repo / rel
        if rel and p.is_file() and not p.is_symlink():
            os.utime(p, (later, later))
    ctx.write({"app/cm.yaml": cm("settings", LOG="debug"), "app/new.yaml": cm("fresh")})


def _git_config(ctx: Ctx, *pairs: tuple[str, str]) -> None:
    for k, v in pairs:
        ctx.git("config", "--local", k, v)


HOOKS = ["applypatch-msg", "pre-applypatch", "post-applypatch", "pre-commit", "pre-merge-commit",
         "prepare-commit-msg", "commit-msg", "post-commit", "pre-rebase", "post-checkout", "post-merge",
         "pre-push", "pre-receive", "update", "proc-receive", "post-receive", "post-update",
         "reference-transaction", "push-to-checkout", "pre-auto-gc", "post-rewrite", "sendemail-validate",
         "fsmonitor-watchman", "p4-changelist", "p4-prepare-changelist", "p4-post-changelist", "p4-pre-submit",
         "post-index-change"]


def _hooks(ctx: Ctx, directory: Path, names_: list[str]) -> None:
    for h in names_:
        ctx.script(h, f"{ctx.touch('hook-' + h)}\nexit 0\n", base=directory)


@case("git")
def case_git_fsmonitor(ctx: Ctx) -> Spec:
    """`core.fsmonitor = "touch MARKER; false"` in the target repository's .git/config."""
    _git_repo(ctx)
    _git_config(ctx, ("core.fsmonitor", f"{ctx.touch('fsmonitor')}; false"))
    _dirty(ctx)
    return Spec(git=True)


@case("git")
def case_git_fsmonitor_with_ref(ctx: Ctx) -> Spec:
    """core.fsmonitor with `--ref main`: reading a commit must not run it either."""
    _git_repo(ctx)
    _git_config(ctx, ("core.fsmonitor", f"{ctx.touch('fsmonitor-ref')}; false"))
    return Spec(args=["--ref", "main"], git=True)


@case("git")
def case_git_hook_post_index_change(ctx: Ctx) -> Spec:
    """An executable .git/hooks/post-index-change (runs whenever git rewrites the index)."""
    _git_repo(ctx)
    _hooks(ctx, ctx.repo / ".git" / "hooks", ["post-index-change"])
    _dirty(ctx)
    return Spec(git=True)


@case("git")
def case_git_hook_post_checkout(ctx: Ctx) -> Spec:
    """An executable .git/hooks/post-checkout, with `--ref main` (a checkout would run it)."""
    _git_repo(ctx)
    _hooks(ctx, ctx.repo / ".git" / "hooks", ["post-checkout", "reference-transaction"])
    return Spec(args=["--ref", "main"], git=True)


@case("git")
def case_git_hooks_every_name(ctx: Ctx) -> Spec:
    """Every hook git knows (pre-commit, pre-auto-gc, post-rewrite, …) made executable, history on."""
    _git_repo(ctx)
    ctx.write({"app/cm.yaml": cm("settings", LOG="warn")})
    ctx.commit_all("second")
    _hooks(ctx, ctx.repo / ".git" / "hooks", HOOKS)
    _dirty(ctx)
    return Spec(args=["--history", "5"], git=True)


@case("git")
def case_git_hooks_path_in_tree(ctx: Ctx) -> Spec:
    """`core.hooksPath = hooks` pointing at executable hooks committed in the working tree."""
    plain_app(ctx)
    _hooks(ctx, ctx.repo / "hooks", HOOKS)
    ctx.git_init()
    _git_config(ctx, ("core.hooksPath", "hooks"))
    _dirty(ctx)
    return Spec(git=True)


@case("git")
def case_git_textconv(ctx: Ctx) -> Spec:
    """`.gitattributes: *.yaml diff=evil` with `diff.evil.textconv` a command, on a dirty tree with history."""
    plain_app(ctx)
    ctx.write({".gitattributes": "*.yaml diff=evil\n"})
    ctx.git_init()
    ctx.write({"app/cm.yaml": cm("settings", LOG="warn")})
    ctx.commit_all("second")
    _git_config(ctx, ("diff.evil.textconv", f"{ctx.touch('textconv')}; cat"), ("diff.evil.cachetextconv", "false"))
    _dirty(ctx)
    return Spec(args=["--history", "5"], git=True)


@case("git")
def case_git_diff_external_and_pager(ctx: Ctx) -> Spec:
    """diff.external, core.pager, pager.log/diff/show and core.editor set to commands."""
    _git_repo(ctx)
    ctx.write({"app/cm.yaml": cm("settings", LOG="warn")})
    ctx.commit_all("second")
    _git_config(ctx, ("core.pager", f"{ctx.touch('core-pager')}; cat"), ("pager.log", f"{ctx.touch('pager-log')}; cat"),
                ("pager.diff", f"{ctx.touch('pager-diff')}; cat"), ("pager.show", f"{ctx.touch('pager-show')}; cat"),
                ("core.editor", f"{ctx.touch('core-editor')}; true"), ("color.ui", "always"))
    ctx.script("diff-ext.sh", f"{ctx.touch('diff-external')}\n", base=ctx.repo / ".git")
    _git_config(ctx, ("diff.external", str(ctx.repo / ".git" / "diff-ext.sh")))
    _dirty(ctx)
    return Spec(args=["--history", "5"], git=True)


@case("git")
def case_git_gpg_program(ctx: Ctx) -> Spec:
    """A signed-looking commit with `log.showSignature = true` and `gpg.program` a command."""
    _git_repo(ctx)
    head = ctx.git("rev-parse", "HEAD")
    tree = ctx.git("rev-parse", "HEAD^{tree}")
    raw = (f"tree {tree}\nparent {head}\nauthor m <m@e> 1700000000 +0000\ncommitter m <m@e> 1700000000 +0000\n"
           "gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----\n\nsigned\n")
    signed = ctx.git("hash-object", "-w", "-t", "commit", "--stdin", input=raw.encode())
    ctx.git("update-ref", "refs/heads/main", signed)
    _git_config(ctx, ("log.showSignature", "true"), ("gpg.program", str(ctx.repo / ".git" / "gpg.sh")),
                ("gpg.ssh.program", str(ctx.repo / ".git" / "gpg.sh")))
    ctx.script("gpg.sh", f"{ctx.touch('gpg-program')}\nexit 1\n", base=ctx.repo / ".git")
    return Spec(args=["--history", "5"], git=True)


@case("git")
def case_git_filter_clean_smudge(ctx: Ctx) -> Spec:
    """A filter driver (`* filter=evil`, filter.evil.clean/smudge/process) on a dirty tree."""
    plain_app(ctx)
    ctx.write({".gitattributes": "* filter=evil\n"})
    ctx.git_init()
    _git_config(ctx, ("filter.evil.clean", f"{ctx.touch('filter-clean')}; cat"),
                ("filter.evil.smudge", f"{ctx.touch('filter-smudge')}; cat"),
                ("filter.evil.process", f"{ctx.touch('filter-process')}; false"))
    _dirty(ctx)
    return Spec(git=True)


@case("git")
def case_git_filter_smudge_with_ref(ctx: Ctx) -> Spec:
    """A smudge filter with `--ref main`: writing a commit's files must not run it."""
    plain_app(ctx)
    ctx.write({".gitattributes": "*.yaml filter=evil\n"})
    ctx.git_init()
    _git_config(ctx, ("filter.evil.smudge", f"{ctx.touch('filter-smudge-ref')}; cat"),
                ("filter.evil.clean", "cat"), ("filter.evil.required", "true"))
    return Spec(args=["--ref", "main"], git=True)


@case("git")
def case_git_remote_commands(ctx: Ctx) -> Spec:
    """core.sshCommand, credential.helper, core.askPass and an `ext::` remote set to commands."""
    _git_repo(ctx)
    ask = ctx.script("askpass.sh", f"{ctx.touch('askpass')}\n", base=ctx.repo / ".git")
    _git_config(ctx, ("core.sshCommand", f"{ctx.touch('ssh-command')}; false"),
                ("credential.helper", f"!{ctx.touch('credential-helper')}; true"), ("core.askPass", str(ask)),
                ("remote.origin.url", f"ssh://git@127.0.0.1:{ctx.port}/acme/fleet.git"),
                ("remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"),
                ("remote.evil.url", f"ext::sh -c {ctx.touch('ext-remote').replace(' ', '% ')}"),
                ("protocol.ext.allow", "always"), ("protocol.file.allow", "always"))
    return Spec(git=True)


def _evil_config(ctx: Ctx, tag: str) -> str:
    return dedent(f"""
        [core]
        \tfsmonitor = "{ctx.touch('fsmonitor-' + tag)}; false"
        \thooksPath = {ctx.repo / '.git' / 'evilhooks'}
        [diff "evil"]
        \ttextconv = "{ctx.touch('textconv-' + tag)}; cat"
        [filter "evil"]
        \tclean = "{ctx.touch('clean-' + tag)}; cat"
        """)


@case("git")
def case_git_include_path(ctx: Ctx) -> Spec:
    """`[include] path = ../evil.gitconfig`: a committed file in the tree sets fsmonitor, hooksPath, filters."""
    plain_app(ctx)
    ctx.write({".gitattributes": "* filter=evil diff=evil\n", "evil.gitconfig": _evil_config(ctx, "include")})
    ctx.git_init()
    _hooks(ctx, ctx.repo / ".git" / "evilhooks", ["post-index-change", "post-checkout", "reference-transaction"])
    _git_config(ctx, ("include.path", "../evil.gitconfig"))
    _dirty(ctx)
    return Spec(git=True)


@case("git")
def case_git_include_if(ctx: Ctx) -> Spec:
    """`[includeIf "onbranch:main"]` and `[includeIf "gitdir:/"]` including a config with those settings."""
    plain_app(ctx)
    ctx.write({".gitattributes": "* filter=evil diff=evil\n"})
    ctx.git_init()
    (ctx.repo / ".git" / "evil.cfg").write_text(_evil_config(ctx, "includeif"))
    _hooks(ctx, ctx.repo / ".git" / "evilhooks", ["post-index-change", "post-checkout", "reference-transaction"])
    _git_config(ctx, ("includeIf.onbranch:main.path", "evil.cfg"), ("includeIf.gitdir:/.path", "evil.cfg"))
    _dirty(ctx)
    return Spec(args=["--history", "3"], git=True)


# ================================================================== writes outside the repository

def _evil_ref(ctx: Ctx, root_entries: list[tuple[str, str, str]], name: str = "evil") -> str:
    """Commit a hand-made root tree (plus the good app/) on branch ``name``; returns the commit."""
    head = ctx.git("rev-parse", "HEAD")
    app = ctx.git("rev-parse", "HEAD:app")
    entries = sorted([*root_entries, ("40000", "app", app)],
                     key=lambda e: (e[1] + ("/" if e[0] == "40000" else "")).encode())
    tree = ctx.raw_tree(entries)
    commit = ctx.commit_tree(tree, "evil tree", [head])
    ctx.git("update-ref", f"refs/heads/{name}", commit)
    return commit


@case("confinement")
def case_tree_symlink_and_dir_same_name(ctx: Ctx) -> Spec:
    """A commit whose tree holds `a` (symlink to an outside folder) and `a/x.yaml` (duplicate entries), --ref evil."""
    _git_repo(ctx)
    link = ctx.blob(str(ctx.wdir))
    inner = ctx.raw_tree([("100644", "x.yaml", ctx.blob(cm("written-through-the-link")))])
    head = ctx.git("rev-parse", "HEAD")
    app = ctx.git("rev-parse", "HEAD:app")
    # both entries are named "a"; the symlink sorts first, as git fsck would see them
    tree = ctx.raw_tree([("120000", "a", link), ("40000", "a", inner), ("40000", "app", app)])
    ctx.git("update-ref", "refs/heads/evil", ctx.commit_tree(tree, "duplicate entries", [head]))
    return Spec(args=["--ref", "evil"], git=True)


@case("confinement")
def case_tree_dotdot_entry(ctx: Ctx) -> Spec:
    """A tree entry named `..` (four levels deep) holding a file: the export would write above the snapshot."""
    _git_repo(ctx)
    name = f"escaped-{ctx.token('dotdot')}.yaml"
    t = ctx.raw_tree([("100644", name, ctx.blob(cm("escaped")))])
    for _ in range(3):
        t = ctx.raw_tree([("40000", "..", t)])
    _evil_ref(ctx, [("40000", "..", t)])  # ../../../../escaped-….yaml
    return Spec(args=["--ref", "evil"], git=True, checks=[_no_file_named(name, ctx.tmp)])


def _dotgit_tree(ctx: Ctx, tag: str) -> list[tuple[str, str, str]]:
    files = {
        "HEAD": ("100644", "ref: refs/heads/main\n"),
        "config": ("100644", f"[core]\n\trepositoryformatversion = 0\n\tbare = false\n"
                             f"\tfsmonitor = \"{ctx.touch('fsmonitor-' + tag)}; false\"\n"
                             f"[alias]\n\tstatus = !{ctx.touch('alias-' + tag)}\n"),
        "hooks/post-checkout": ("100755", f"#!/bin/sh\n{ctx.touch('post-checkout-' + tag)}\n"),
        "hooks/post-index-change": ("100755", f"#!/bin/sh\n{ctx.touch('post-index-change-' + tag)}\n"),
        "objects/info/packs": ("100644", ""),
        "refs/heads/.keep": ("100644", ""),
    }
    sub = ctx.tree_of(files)
    return [("40000", tag, sub)]


@case("confinement")
def case_tree_dotgit_entry(ctx: Ctx) -> Spec:
    """A commit whose tree holds a `.git` directory (config with fsmonitor, executable hooks), --ref evil."""
    _git_repo(ctx)
    _evil_ref(ctx, _dotgit_tree(ctx, ".git"))
    return Spec(args=["--ref", "evil"], git=True)


@case("confinement")
def case_tree_dotgit_uppercase(ctx: Ctx) -> Spec:
    """The same with `.GIT` (a `.git` on case-insensitive file systems; git fsck refuses it)."""
    _git_repo(ctx)
    _evil_ref(ctx, _dotgit_tree(ctx, ".GIT"))
    return Spec(args=["--ref", "evil"], git=True)


@case("confinement")
def case_history_duplicate_entries(ctx: Ctx) -> Spec:
    """The duplicate-entry tree (`a` symlink out + `a/x.yaml`) in the last commits, read by the history walk."""
    first = _git_repo(ctx)
    link = ctx.blob(str(ctx.wdir))
    inner = ctx.raw_tree([("100644", "x.yaml", ctx.blob(cm("written-by-history")))])
    app = ctx.git("rev-parse", "HEAD:app")
    evil = ctx.commit_tree(ctx.raw_tree([("120000", "a", link), ("40000", "a", inner), ("40000", "app", app)]),
                           "evil", [first])
    good = ctx.commit_tree(ctx.git("rev-parse", "HEAD^{tree}"), "clean again", [evil])
    ctx.git("update-ref", "refs/heads/main", good)  # the tree of main equals the index: a clean work tree
    return Spec(args=["--history", "5"], git=True)


# ================================================================== reads outside the repository

def _replacement_to_name(source_name: str, key: str) -> str:
    return f"""
        replacements:
        - source:
            kind: ConfigMap
            name: {source_name}
            fieldPath: data.{key}
          targets:
          - select:
              kind: ConfigMap
              name: settings
            fieldPaths:
            - metadata.name
        """


@case("confinement")
def case_unknown_tag_generator_file(ctx: Ctx) -> Spec:
    """`configMapGenerator: files: !x [leak=/outside/canary.txt]` + `replacements:` copying it into a name."""
    plain_app(ctx)
    ctx.write({"app/kustomization.yaml": kustomization("ns.yaml", "cm.yaml", extra=f"""
        configMapGenerator:
        - name: pw
          files: !x
          - leak={ctx.canary_txt}
        """ + _replacement_to_name("pw", "leak"))})
    return Spec()


@case("confinement")
def case_unknown_tag_etc_passwd(ctx: Ctx) -> Spec:
    """The same with `files: !x [passwd=/etc/passwd]` (all of /etc/passwd into a ConfigMap name)."""
    plain_app(ctx)
    ctx.write({"app/kustomization.yaml": kustomization("ns.yaml", "cm.yaml", extra="""
        configMapGenerator:
        - name: pw
          files: !x
          - passwd=/etc/passwd
        """ + _replacement_to_name("pw", "passwd"))})
    return Spec()


@case("confinement")
def case_utf16_kustomization(ctx: Ctx) -> Spec:
    """A UTF-16 kustomization.yaml (PyYAML skips it, kustomize reads it) generating from an outside file."""
    plain_app(ctx)
    text = kustomization("ns.yaml", "cm.yaml", extra=f"""
        configMapGenerator:
        - name: pw
          files:
          - leak={ctx.canary_txt}
        """ + _replacement_to_name("pw", "leak"))
    ctx.write({"app/kustomization.yaml": text.encode("utf-16")})
    return Spec()


@case("confinement")
def case_absolute_resource(ctx: Ctx) -> Spec:
    """`resources: [/outside/canary.yaml]` (an absolute path)."""
    plain_app(ctx, str(ctx.canary_yaml))
    return Spec()


@case("confinement")
def case_absolute_patch(ctx: Ctx) -> Spec:
    """`patches: [{path: /outside/canary.yaml}]` (kustomize names the patch target in its error)."""
    plain_app(ctx)
    ctx.write({"app/kustomization.yaml": kustomization("ns.yaml", "cm.yaml",
                                                       extra=f"patches:\n- path: {ctx.canary_yaml}\n")})
    return Spec()


@case("confinement")
def case_absolute_paths_behind_unknown_tag(ctx: Ctx) -> Spec:
    """`resources: !x [/outside/canary.yaml]` and `patches: !x [{path: /outside/canary.yaml}]` (unknown tags)."""
    plain_app(ctx)
    ctx.write({"app/kustomization.yaml": dedent(f"""
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        namespace: app
        resources: !x
        - ns.yaml
        - cm.yaml
        - {ctx.canary_yaml}
        patches: !x
        - path: {ctx.canary_yaml}
        """)})
    return Spec()


@case("confinement")
def case_dotdot_behind_unknown_tag_and_utf16(ctx: Ctx) -> Spec:
    """A UTF-16 kustomization whose `resources:` climbs out with `../../…` (no pre-check can parse it)."""
    plain_app(ctx)
    text = kustomization("ns.yaml", "cm.yaml", _climb(ctx.canary_yaml), _climb(ctx.kdir))
    ctx.write({"app/kustomization.yaml": text.encode("utf-16")})
    return Spec()


@case("confinement")
def case_absolute_generator_files_and_envs(ctx: Ctx) -> Spec:
    """configMapGenerator `files: [/outside/canary.txt]` and `envs: [/outside/canary.env]` (absolute paths)."""
    plain_app(ctx)
    ctx.write({"app/kustomization.yaml": kustomization("ns.yaml", "cm.yaml", extra=f"""
        configMapGenerator:
        - name: files
          files:
          - {ctx.canary_txt}
        - name: envs
          envs:
          - {ctx.canary_env}
        """)})
    return Spec()


def _climb(path: Path) -> str:
    """``../`` enough times to reach / from anywhere in the world, then ``path`` (relative form)."""
    return "../" * 40 + str(path).lstrip("/")


@case("confinement")
def case_dotdot_resource(ctx: Ctx) -> Spec:
    """`resources: [../../…/outside/canary.yaml]` (a relative escape)."""
    plain_app(ctx, _climb(ctx.canary_yaml))
    return Spec()


@case("confinement")
def case_flux_path_dotdot(ctx: Ctx) -> Spec:
    """A Flux Kustomization with `spec.path: ../../…/outside/kdir`."""
    plain_app(ctx)
    flux_app(ctx, "./" + _climb(ctx.kdir))
    return Spec()


@case("confinement")
def case_argo_path_dotdot(ctx: Ctx) -> Spec:
    """An Argo CD Application with `source.path: ../../…/outside/kdir`."""
    plain_app(ctx)
    ctx.write({"argocd/app.yaml": argo_app("leak", _climb(ctx.kdir))})
    return Spec()


@case("confinement")
def case_argo_symlinked_file(ctx: Ctx) -> Spec:
    """An Argo plain directory holding `leak.yaml -> /outside/canary.yaml` (an absolute symlink)."""
    ctx.write({"apps/web/cm.yaml": cm("web"), "argocd/app.yaml": argo_app("web", "apps/web")})
    ctx.link("apps/web/leak.yaml", ctx.canary_yaml)
    return Spec()


@case("confinement")
def case_argo_symlinked_directory(ctx: Ctx) -> Spec:
    """An Argo Application whose path is a relative symlink to a directory outside (`apps/web -> ../../…/kdir`)."""
    ctx.write({"argocd/app.yaml": argo_app("web", "apps/web")})
    ctx.link("apps/web", _climb(ctx.kdir))
    return Spec()


@case("confinement")
def case_kustomize_symlinked_file(ctx: Ctx) -> Spec:
    """A kustomize base listing `leak.yaml`, a relative symlink to a file outside."""
    plain_app(ctx, "leak.yaml")
    ctx.link("app/leak.yaml", _climb(ctx.canary_yaml))
    return Spec()


@case("confinement")
def case_kustomize_symlinked_directory(ctx: Ctx) -> Spec:
    """A kustomize overlay whose base `base` is a symlink to a directory outside."""
    plain_app(ctx, "base")
    ctx.link("app/base", ctx.kdir)
    return Spec()


@case("confinement")
def case_flux_path_symlinked_directory(ctx: Ctx) -> Spec:
    """A Flux Kustomization whose `spec.path` is a relative symlink (`../../…`) to a directory outside."""
    plain_app(ctx)
    ctx.link("apps/leak", _climb(ctx.kdir))
    flux_app(ctx, "./apps/leak")
    return Spec()


@case("confinement")
def case_flux_path_symlinked_file(ctx: Ctx) -> Spec:
    """A Flux Kustomization over a plain directory holding a symlinked file pointing outside."""
    ctx.write({"apps/web/cm.yaml": cm("web")})
    ctx.link("apps/web/leak.yaml", ctx.canary_yaml)
    flux_app(ctx, "./apps/web")
    return Spec()


@case("confinement")
def case_symlink_chain(ctx: Ctx) -> Spec:
    """A chain of in-repository symlinks whose last hop leaves the repository (Argo plain directory)."""
    ctx.write({"apps/web/cm.yaml": cm("web"), "argocd/app.yaml": argo_app("web", "apps/web")})
    ctx.link("apps/web/leak.yaml", "../../links/one.yaml")
    ctx.link("links/one.yaml", "two.yaml")
    ctx.link("links/two.yaml", "deeper/three.yaml")
    ctx.link("links/deeper/three.yaml", _climb(ctx.canary_yaml))
    return Spec()


@case("confinement", heavy=True)
def case_symlink_to_fifo(ctx: Ctx) -> Spec:
    """An Argo plain directory holding `fifo.yaml -> /outside/fifo` (nobody ever writes: a read hangs)."""
    fifo = ctx.outside / "fifo"
    os.mkfifo(fifo)
    ctx.write({"apps/web/cm.yaml": cm("web"), "argocd/app.yaml": argo_app("web", "apps/web")})
    ctx.link("apps/web/fifo.yaml", fifo)
    return Spec()


@case("confinement", heavy=True)
def case_symlink_to_dev_zero(ctx: Ctx) -> Spec:
    """An Argo plain directory holding `zero.yaml -> /dev/zero` (a read never ends)."""
    ctx.write({"apps/web/cm.yaml": cm("web"), "argocd/app.yaml": argo_app("web", "apps/web")})
    ctx.link("apps/web/zero.yaml", "/dev/zero")
    return Spec()


@case("confinement")
def case_symlink_to_proc_environ_kustomize(ctx: Ctx) -> Spec:
    """A kustomize base listing `env.yaml -> /proc/self/environ` (the run's environment holds a canary)."""
    plain_app(ctx, "env.yaml")
    ctx.link("app/env.yaml", "/proc/self/environ")
    return Spec()


@case("confinement")
def case_symlink_to_proc_environ_argo(ctx: Ctx) -> Spec:
    """An Argo plain directory holding `env.yaml -> /proc/self/environ` (read by labkit itself)."""
    ctx.write({"apps/web/cm.yaml": cm("web"), "argocd/app.yaml": argo_app("web", "apps/web")})
    ctx.link("apps/web/env.yaml", "/proc/self/environ")
    return Spec()


@case("confinement")
def case_sops_file_symlinked_out(ctx: Ctx) -> Spec:
    """A SOPS-encrypted Secret (Flux `decryption: sops`) that is a symlink to a file outside."""
    tok = ctx.token("secret.sops.yaml")
    (ctx.outside / "secret.sops.yaml").write_text(dedent(f"""
        apiVersion: v1
        kind: Secret
        metadata:
          name: lkc-{tok}
          namespace: app
        stringData:
          token: ENC[AES256_GCM,data:{tok},iv:aXY=,tag:dGFn,type:str]
        sops:
          age:
            - recipient: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
              enc: |
                -----BEGIN AGE ENCRYPTED FILE-----
                {tok}
                -----END AGE ENCRYPTED FILE-----
          lastmodified: "2024-01-01T00:00:00Z"
          mac: ENC[AES256_GCM,data:{tok},iv:aXY=,tag:dGFn,type:str]
          version: 3.9.0
        """))
    ctx.write({"apps/secrets/kustomization.yaml": "resources:\n- secret.sops.yaml\n",
               "apps/secrets/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n"})
    ctx.link("apps/secrets/secret.sops.yaml", ctx.outside / "secret.sops.yaml")
    flux_app(ctx, "./apps/secrets", extra="""
        decryption:
          provider: sops
          secretRef:
            name: sops-age
        """)
    return Spec()


@case("confinement")
def case_appset_directory_symlinked_out(ctx: Ctx) -> Spec:
    """An ApplicationSet git directory generator `services/*` where one directory is a symlink out."""
    ctx.write({"argocd/services.yaml": appset("services", "services/*"), "services/billing/cm.yaml": cm("billing")})
    ctx.link("services/evil", ctx.kdir)
    return Spec()


# ================================================================== unbounded work

@case("bounds", heavy=True)
def case_alias_bomb_in_docs(ctx: Ctx) -> Spec:
    """A YAML alias bomb (9**9 nodes) in docs/, a file nothing builds (the secret scan reads every file)."""
    plain_app(ctx)
    ctx.write({"docs/bomb.yaml": bomb()})
    return Spec()


@case("bounds", heavy=True)
def case_alias_bomb_in_kustomization(ctx: Ctx) -> Spec:
    """A YAML alias bomb inside kustomization.yaml (under metadata.annotations)."""
    plain_app(ctx)
    k = kustomization("ns.yaml", "cm.yaml") + "metadata:\n  name: k\n  annotations:\n" + bomb(indent="    ")
    ctx.write({"app/kustomization.yaml": k})
    return Spec()


@case("bounds", heavy=True)
def case_alias_bomb_in_manifest(ctx: Ctx) -> Spec:
    """A YAML alias bomb in a ConfigMap that the kustomization lists."""
    plain_app(ctx, "bomb.yaml")
    ctx.write({"app/bomb.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n" + bomb(indent="  ")})
    return Spec()


@case("bounds", heavy=True)
def case_deep_nesting(ctx: Ctx) -> Spec:
    """A manifest nested 50,000 levels deep (flow sequences), listed by the kustomization, and one in docs/."""
    deep = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  x: " + "[" * 50_000 + "]" * 50_000 + "\n"
    plain_app(ctx, "deep.yaml", files={"app/deep.yaml": deep})
    ctx.write({"docs/deep.yaml": "a: " + "{a: " * 30_000 + "1" + "}" * 30_000 + "\n"})
    return Spec()


@case("bounds", heavy=True)
def case_appset_3000_directories(ctx: Ctx) -> Spec:
    """An ApplicationSet git directory generator over 3,000 directories."""
    ctx.write({"argocd/services.yaml": appset("services", "services/*")})
    base = ctx.repo / "services"
    for i in range(3000):
        d = base / f"s{i:04d}"
        d.mkdir(parents=True)
        (d / "cm.yaml").write_text(_cm(f"s{i:04d}", x=str(i)))
    return Spec()


@case("bounds", heavy=True)
def case_substitute_500_placeholders(ctx: Ctx) -> Spec:
    """~500 `${var}` placeholders in one object with Flux postBuild substitution."""
    n = 500
    values = "".join(f"    v{i}: \"{i}\"\n" for i in range(n))
    data = "".join(f"  k{i}: \"${{v{i}}}\"\n" for i in range(n))
    data += "  all: \"" + "".join(f"${{v{i}}}" for i in range(n)) + "\"\n"
    ctx.write({"apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: subst\n  namespace: app\n"
                                   "data:\n" + data,
               "apps/web/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n"})
    ctx.write({"clusters/prod/apps.yaml": flux_ks("apps", "./apps/web") + "  postBuild:\n    substitute:\n"
                                          + values.replace("    v", "      v")})
    return Spec()


@case("bounds", heavy=True)
def case_substitute_nested_defaults(ctx: Ctx) -> Spec:
    """A placeholder whose default holds a placeholder, 500 deep (`${a:=${a:=…}}`)."""
    n = 500
    value = "${a:=" * n + "x" + "}" * n
    ctx.write({"apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: subst\n  namespace: app\n"
                                   f"data:\n  nested: \"{value}\"\n",
               "apps/web/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n"})
    ctx.write({"clusters/prod/apps.yaml": flux_ks("apps", "./apps/web") + "  postBuild:\n    substitute:\n"
                                          "      b: \"1\"\n"})
    return Spec()


@case("bounds", heavy=True)
def case_huge_file(ctx: Ctx) -> Spec:
    """A 19 MB ConfigMap (just under the snapshot's 20 MB cut) in the built path, and a 30 MB file in docs/."""
    line = "  k{:06d}: \"" + "x" * 110 + "\"\n"
    body = "".join(line.format(i) for i in range(150_000))
    plain_app(ctx, "huge.yaml", files={"app/huge.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: huge\n"
                                                        "data:\n" + body})
    with open(ctx.repo / "docs-huge.yaml", "wb") as fh:
        fh.write(b"a: " + b"y" * (30 * 1024 * 1024) + b"\n")
    return Spec()


@case("bounds", heavy=True)
def case_many_objects(ctx: Ctx) -> Spec:
    """50,000 small ConfigMaps in one manifest of the built path."""
    docs = "".join(f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n" for i in range(50_000))
    plain_app(ctx, "many.yaml", files={"app/many.yaml": docs})
    return Spec()


@case("bounds", heavy=True)
def case_many_small_files(ctx: Ctx) -> Spec:
    """20,000 small YAML files in docs/ (nothing builds them) next to a good app."""
    plain_app(ctx)
    d = ctx.repo / "docs" / "notes"
    d.mkdir(parents=True)
    for i in range(20_000):
        (d / f"n{i:05d}.yaml").write_text(f"note: {i}\n")
    return Spec()


@case("bounds", heavy=True)
def case_long_history(ctx: Ctx) -> Spec:
    """3,000 commits touching the built path, with `--history 100000`."""
    plain_app(ctx)
    ctx.git_init()
    stream = []
    for i in range(3000):
        content = cm("settings", REV=str(i)).encode()
        stream.append(b"commit refs/heads/main\n")
        stream.append(f"committer m <m@e> {1700000001 + i} +0000\ndata 3\nc{i % 10}\n".encode())
        if i == 0:
            stream.append(b"from refs/heads/main^0\n")
        stream.append(b"M 100644 inline app/cm.yaml\n" + f"data {len(content)}\n".encode() + content + b"\n")
    ctx.git("fast-import", "--quiet", input=b"".join(stream))
    ctx.git("read-tree", "-u", "--reset", "HEAD")
    return Spec(args=["--history", "100000"], git=True)


@case("bounds", heavy=True)
def case_long_history_every_commit_checked(ctx: Ctx) -> Spec:
    """3,000 commits touching the built path, with `--history 100` (each checked revision is rendered)."""
    spec = case_long_history(ctx)
    spec.args = ["--history", "100"]
    return spec


# ================================================================== crashes and escaping

SECRET_DOC = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: hunter2hunter2\n"
LATIN1 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cafe\ndata:\n  note: \"caf\u00e9 cr\u00e8me\"\n"


@case("crashes")
def case_latin1_yaml_anywhere(ctx: Ctx) -> Spec:
    """A Latin-1 YAML Secret in docs/ (nothing builds it; the secret scan reads it) next to a good app."""
    plain_app(ctx)
    ctx.write({"docs/notes.yaml": LATIN1.encode("latin-1"),
               "docs/secret.yaml": (SECRET_DOC + "  note: caf\u00e9\n").encode("latin-1")})
    return Spec()


@case("crashes")
def case_latin1_yaml_built(ctx: Ctx) -> Spec:
    """A Latin-1 YAML file listed by the kustomization (and in an Argo plain directory)."""
    plain_app(ctx, "latin1.yaml", files={"app/latin1.yaml": LATIN1.encode("latin-1")})
    ctx.write({"argocd/app.yaml": argo_app("web", "apps/web"), "apps/web/cm.yaml": LATIN1.encode("latin-1")})
    return Spec()


@case("crashes")
def case_utf16_yaml_anywhere(ctx: Ctx) -> Spec:
    """A UTF-16 YAML Secret in docs/ (nothing builds it; the secret scan reads it) next to a good app."""
    plain_app(ctx)
    ctx.write({"docs/notes.yaml": LATIN1.encode("utf-16"), "docs/secret.yaml": SECRET_DOC.encode("utf-16")})
    return Spec()


@case("crashes")
def case_utf16_yaml_built(ctx: Ctx) -> Spec:
    """A UTF-16 YAML file listed by the kustomization (and in an Argo plain directory)."""
    plain_app(ctx, "utf16.yaml", files={"app/utf16.yaml": LATIN1.replace("cafe", "utf16").encode("utf-16")})
    ctx.write({"argocd/app.yaml": argo_app("web", "apps/web"),
               "apps/web/cm.yaml": LATIN1.replace("cafe", "web").encode("utf-16")})
    return Spec()


@case("crashes")
def case_encodings_in_history(ctx: Ctx) -> Spec:
    """Latin-1 and UTF-16 YAML files in the last N commits (gone from HEAD), read by the history walk."""
    plain_app(ctx, "latin1.yaml", "utf16.yaml", files={"app/latin1.yaml": LATIN1.encode("latin-1"),
                                                       "app/utf16.yaml": LATIN1.replace("cafe", "u").encode("utf-16"),
                                                       "docs/old.yaml": LATIN1.encode("latin-1")})
    ctx.git_init("encodings")
    for rel in ("app/latin1.yaml", "app/utf16.yaml", "docs/old.yaml"):
        (ctx.repo / rel).unlink()
    ctx.write({"app/kustomization.yaml": kustomization("ns.yaml", "cm.yaml")})
    ctx.commit_all("utf-8 only")
    return Spec(args=["--history", "5"], git=True)


@case("crashes")
def case_latin1_file_name(ctx: Ctx) -> Spec:
    """A file whose name is Latin-1 bytes (`caf\\xe9.yaml`), in the built path of a git repository."""
    plain_app(ctx)
    name = os.path.join(os.fsencode(ctx.repo / "app"), b"caf\xe9.yaml")
    with open(name, "wb") as fh:
        fh.write(cm("cafe").encode())
    (ctx.repo / "docs").mkdir()
    with open(os.path.join(os.fsencode(ctx.repo / "docs"), b"\xff\xfe.yaml"), "wb") as fh:
        fh.write(b"a: 1\n")
    ctx.git_init()
    with open(os.path.join(os.fsencode(ctx.repo / "app"), b"new-\xe9.yaml"), "wb") as fh:
        fh.write(cm("cafe2").encode())
    return Spec(args=["--history", "5"], git=True)


@case("crashes")
def case_homoglyph_kind(ctx: Ctx) -> Spec:
    """An unknown kind whose name holds a homoglyph (`Dеployment`, Cyrillic е) and a homoglyph object name."""
    obj = "apiVersion: apps/v1\nkind: D\u0435ployment\nmetadata:\n  name: w\u0435b\nspec:\n  replicas: 1\n"
    plain_app(ctx, "homoglyph.yaml", files={"app/homoglyph.yaml": obj})
    return Spec()


@case("crashes")
def case_out_is_an_existing_file(ctx: Ctx) -> Spec:
    """`--out` naming an existing file (it must be left alone)."""
    plain_app(ctx)
    existing = ctx.world / "existing-report.txt"
    existing.write_text("the user's file\n")
    return Spec(out=existing)


@case("crashes")
def case_path_longer_than_path_max(ctx: Ctx) -> Spec:
    """A directory chain deeper than PATH_MAX (4096 bytes) inside a plain directory a Flux Kustomization builds."""
    ctx.write({"plain/cm.yaml": cm("plain")})
    flux_app(ctx, "./plain")
    fd = os.open(ctx.repo / "plain", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(22):  # 22 * 201 bytes > 4096
            os.mkdir("d" * 200, dir_fd=fd)
            nfd = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        wfd = os.open("deep.yaml", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(wfd, cm("deep").encode())
        os.close(wfd)
    finally:
        os.close(fd)
    return Spec()


@case("crashes")
def case_path_argument_longer_than_path_max(ctx: Ctx) -> Spec:
    """`--path` longer than PATH_MAX (5,000 bytes)."""
    plain_app(ctx)
    return Spec(args=["--path", "x/" * 2500])


def _no_raw_bytes(*needles: str) -> Callable[..., list[str]]:
    def check(result) -> list[str]:
        bad = []
        for where, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            for n in needles:
                if n in text:
                    bad.append(f"(x) raw {n!r} from the repository printed to {where}")
        return bad

    return check


def _hostile_names(ctx: Ctx, name: str, file_name: str) -> None:
    """A good app whose ConfigMap is named ``name`` (the simulated API server refuses it: the unit fails and the
    message quotes the name) and a plaintext Secret in docs/``file_name`` (a pitfall names the file)."""
    plain_app(ctx, "named.yaml", files={"app/named.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                                          f"  name: \"{name}\"\ndata:\n  x: \"1\"\n"})
    ctx.write({f"docs/{file_name}": SECRET_DOC})


@case("crashes")
def case_escape_sequences_in_names(ctx: Ctx) -> Spec:
    """An object name and a file name holding ESC sequences (clear screen, OSC title, OSC 8 hyperlink)."""
    _hostile_names(ctx, "esc\\e[2J\\e]0;pwned\\a\\e]8;;http://evil.example/\\aname",
                   "\x1b[2Jsecret\x1b]0;title\x07.yaml")
    return Spec(checks=[_no_raw_bytes("\x1b", "\x07", "\x9b")])


@case("crashes")
def case_escape_sequences_in_error(ctx: Ctx) -> Spec:
    """A Flux Kustomization whose name holds ESC sequences (the run stops: the one error line quotes it)."""
    plain_app(ctx)
    ctx.write({"clusters/prod/apps.yaml": flux_ks('"apps\\e[2J\\e]0;pwned\\a"', "./app")})
    return Spec(checks=[_no_raw_bytes("\x1b", "\x07", "\x9b")])


def _markup_check(result) -> list[str]:
    bad = []
    for where, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if "mkupx" in text or "lnkx" in text:
            bad.append(f"(x) rich markup from the repository was interpreted in {where}")
    return bad


@case("crashes")
def case_rich_markup_in_names(ctx: Ctx) -> Spec:
    """An object name and a file name holding rich markup (`[bold]`, `[link=…]`) printed to the terminal."""
    _hostile_names(ctx, "mk[bold]up[/bold]x", "mk[bold]up[/bold]x-[link=http://evil.example]lnk[/link]x.yaml")
    return Spec(checks=[_markup_check])


def _html_check(result) -> list[str]:
    html = result.report_html or ""
    bad = [f"(x) {p!r} from the repository is unescaped in report.html" for p in
           ("<script>alert(", "<img src=x onerror=", "<b onmouseover=") if p in html]
    return bad


@case("crashes")
def case_html_in_names(ctx: Ctx) -> Spec:
    """An object name and a file name holding HTML (`<script>alert(1)</script>`, `<img onerror>`) in report.html."""
    _hostile_names(ctx, "<script>alert(1)</script><b onmouseover=alert(2)>x</b>", "<img src=x onerror=alert(3)>.yaml")
    return Spec(checks=[_html_check])
