"""Flux image automation: ImageRepository scans, ImagePolicy selection, marker commits.

In the pull model a new image tag has to reach git before the controller can
deploy it.  One way is a CI job that commits the tag; the other is Flux's image
automation, three objects run by two controllers:

**ImageRepository** (image-reflector-controller) scans a registry repository
every ``spec.interval`` and keeps its tags, minus ``spec.exclusionList``
(regular expressions; default ``^.*\\.sig$``, the cosign signature tags).  Its
status carries ``lastScanResult`` (``tagCount``, ``scanTime``, ``latestTags``).

**ImagePolicy** (image-reflector-controller) selects the latest tag of an
ImageRepository.  ``spec.filterTags`` first keeps the tags matching ``pattern``
and, with ``extract`` (``$ts``, ``$1`` …), replaces each by the expansion of the
match — the policy then orders the extracted values but reports the original
tag.  The policies (``internal/policy/*.go``):

* ``semver: {range}`` — greatest tag that parses as strict semver (``v`` prefix
  allowed) and satisfies the Masterminds range (``labkit.delivery.semver``);
* ``alphabetical: {order}`` — ``asc`` (default) takes the *last* tag in
  ascending string order, ``desc`` the first (Go's byte-wise sort);
* ``numerical: {order}`` — every tag must parse as a float (one that does not
  is an error, "failed to parse invalid numeric value"); ``asc`` takes the
  largest, ``desc`` the smallest; on ties the later tag in the list wins.

Status: ``latestImage`` is ``<spec.image of the repository>:<tag>`` (and
``latestRef`` {name, tag, digest} in the v1 API).

**ImageUpdateAutomation** (image-automation-controller) checks out
``spec.git.checkout.ref`` of its GitRepository (default: the GitRepository's
ref), walks the YAML files under ``spec.update.path`` and rewrites every field
carrying a *setter marker* — a line comment whose text is the JSON object
``{"$imagepolicy": "<policy-namespace>:<policy-name>"}`` — with what the named
policy selected, then commits as ``spec.git.commit.author`` with
``messageTemplate`` (default ``Update from image update automation``) and
pushes to ``spec.git.push.branch`` (default: the checkout branch).  The marker
suffix chooses what is written:

==========================================  =====================================
marker                                      value written
==========================================  =====================================
``# {"$imagepolicy": "ns:policy"}``         the full image, ``repo:tag``
``# {"$imagepolicy": "ns:policy:tag"}``     the tag only (kustomize ``newTag``)
``# {"$imagepolicy": "ns:policy:name"}``    the image name only (``newName``)
``# {"$imagepolicy": "ns:policy:digest"}``  the digest only (when the policy
                                            reflects digests)
==========================================  =====================================

Only files that change are written; a marker naming an unknown policy, or a
policy without a result yet, leaves the field alone.  ``set_markers`` edits the
text line by line, so comments, order and quoting survive byte for byte (kyaml
does the same for the fields it sets).  The controller also runs when an
ImagePolicy in its namespace changes, so a new tag is committed right after the
scan that found it; after that the push goes the usual way (webhook or poll of
the GitRepository).

``ImageAutomation`` runs the three as SimPy processes against any registry with
``tags(repository)`` (``labkit.sim.registry.ImageRegistry``) and any git writer
with ``files`` / ``read`` / ``commit`` (``labkit.gitops.repo.ManifestRepo``).
Events: component ``image-reflector-controller`` — ``Scanned`` (ImageRepository),
``LatestImageChanged`` (ImagePolicy, revision = the tag); component
``image-automation-controller`` — ``Pushed`` (revision = the commit) or
``NoChange``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import simpy

from labkit.core import clock as clocks
from labkit.delivery.distributions import Dist
from labkit.delivery.semver import parse_constraint, parse_version
from labkit.core.duration import parse_duration
from labkit.core.errors import LabkitError
from labkit.core.events import EventLog

REFLECTOR = "image-reflector-controller"
AUTOMATION = "image-automation-controller"
DEFAULT_EXCLUSION = (r"^.*\.sig$",)
DEFAULT_MESSAGE = "Update from image update automation"
IMAGE_GROUP = "image.toolkit.fluxcd.io"
SUFFIXES = ("tag", "name", "digest")


# ---------------------------------------------------------------------- policies

@dataclass(frozen=True)
class Policy:
    """``spec.policy`` plus ``spec.filterTags`` of an ImagePolicy."""

    kind: str  # semver | alphabetical | numerical
    range: str = ""
    order: str = "asc"
    pattern: str | None = None
    extract: str = ""

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], *, file: str | None = None) -> "Policy":
        pol = spec.get("policy")
        if not isinstance(pol, Mapping) or len(pol) != 1:
            raise LabkitError("exactly one of semver, alphabetical, numerical is required", file=file, field="spec.policy")
        (kind, body), = pol.items()
        body = body or {}
        ft = spec.get("filterTags") or {}
        pattern = ft.get("pattern")
        extract = ft.get("extract", "") or ""
        if pattern is not None:
            try:
                re.compile(_go_regex(pattern))
            except re.error as err:
                raise LabkitError(f"invalid regular expression pattern '{pattern}': {err}", file=file,
                                  field="spec.filterTags.pattern") from None
        if kind == "semver":
            rng = body.get("range")
            if not rng:
                raise LabkitError("semver policy needs a range", file=file, field="spec.policy.semver.range")
            parse_constraint(str(rng))
            return cls("semver", range=str(rng), pattern=pattern, extract=extract)
        if kind in ("alphabetical", "numerical"):
            order = str(body.get("order", "asc")).lower()
            if order not in ("asc", "desc"):
                raise LabkitError(f"invalid order argument provided: '{body.get('order')}', must be one of: asc, desc",
                                  file=file, field=f"spec.policy.{kind}.order")
            return cls(kind, order=order, pattern=pattern, extract=extract)
        raise LabkitError(f"unknown policy '{kind}' (semver, alphabetical, numerical)", file=file, field="spec.policy")


def _go_regex(pattern: str) -> str:
    """Go RE2 named groups ``(?P<name>...)`` work in Python as-is; ``(?<name>...)`` needs the P."""
    return re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern)


def _expand(template: str, m: re.Match[str]) -> str:
    """Go's ``Regexp.ExpandString``: ``$name``, ``${name}``, ``$1``; ``$$`` is a dollar; unknown groups are empty."""
    def repl(mm: re.Match[str]) -> str:
        if mm.group(0) == "$$":
            return "$"
        name = mm.group(1) or mm.group(2)
        try:
            value = m.group(int(name)) if name.isdigit() else m.group(name)
        except IndexError:
            return ""
        return value or ""
    return re.sub(r"\$\$|\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)", repl, template)


def filter_tags(tags: Iterable[str], pattern: str | None, extract: str = "") -> dict[str, str]:
    """Flux's ``RegexFilter``: value to order by -> original tag (later tags win a clash)."""
    if pattern is None:
        return {t: t for t in tags}
    rx = re.compile(_go_regex(pattern))
    out: dict[str, str] = {}
    for t in tags:
        m = rx.search(t)
        if m:
            out[_expand(extract, m) if extract else t] = t
    return out


def latest_tag(policy: Policy, tags: Sequence[str]) -> str:
    """The tag a policy selects; ``LabkitError`` when none qualifies (Flux's error messages)."""
    candidates = filter_tags(tags, policy.pattern, policy.extract)
    values = list(candidates)
    if not values:
        raise LabkitError("version list argument cannot be empty", field="spec.policy")
    if policy.kind == "semver":
        constraint = parse_constraint(policy.range)
        best = None
        for v in values:
            pv = parse_version(v)
            if pv is not None and constraint.check(pv) and (best is None or pv > best):
                best = pv
        if best is None:
            raise LabkitError("unable to determine latest version from provided list", field="spec.policy")
        return candidates[best.original]
    if policy.kind == "alphabetical":
        key = lambda s: s.encode("utf-8")  # noqa: E731 - Go sorts strings byte-wise
        chosen = min(values, key=key) if policy.order == "desc" else max(values, key=key)
        return candidates[chosen]
    # numerical: every value must parse; the scan keeps the later value on ties
    chosen_v, best_f = "", 0.0
    for i, v in enumerate(values):
        try:
            f = float(v)
        except ValueError:
            raise LabkitError(f"failed to parse invalid numeric value '{v}'", field="spec.policy") from None
        if i > 0 and ((policy.order == "asc" and f < best_f) or (policy.order == "desc" and f > best_f)):
            continue
        chosen_v, best_f = v, f
    return candidates[chosen_v]


# ---------------------------------------------------------------------- markers

@dataclass(frozen=True)
class PolicyResult:
    """What an ImagePolicy selected: ``name`` is the image repository as written in the ImageRepository."""

    name: str
    tag: str
    digest: str = ""

    @property
    def image(self) -> str:
        return f"{self.name}:{self.tag}"

    def value(self, suffix: str) -> str | None:
        if suffix == "":
            return self.image
        if suffix == "tag":
            return self.tag
        if suffix == "name":
            return self.name
        if suffix == "digest":
            return self.digest or None
        return None


@dataclass(frozen=True)
class MarkerChange:
    file: str
    line: int
    setter: str  # "ns:policy" or "ns:policy:tag" ...
    old: str
    new: str


_MARKER_LINE = re.compile(
    r"""^(?P<head>\s*(?:-\s+)?(?:(?P<key>[^\s#'"][^#]*?|"[^"]*"|'[^']*')\s*:\s+)?)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s#'"][^#]*?)"""
    r"""(?P<gap>\s+)#(?P<comment>.*)$"""
)


def parse_marker(comment: str) -> str | None:
    """The setter name of a ``{"$imagepolicy": "..."}`` line comment, or None."""
    text = comment.strip()
    if not text.startswith("{") or "$imagepolicy" not in text:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or set(data) != {"$imagepolicy"} or not isinstance(data["$imagepolicy"], str):
        return None
    return data["$imagepolicy"]


def split_setter(setter: str) -> tuple[str, str, str] | None:
    """``"ns:name[:suffix]"`` -> (namespace, name, suffix); None for a malformed setter."""
    parts = setter.split(":")
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1], ""
    if len(parts) == 3 and parts[0] and parts[1] and parts[2] in SUFFIXES:
        return parts[0], parts[1], parts[2]
    return None


def set_markers(text: str, results: Mapping[str, PolicyResult], *, file: str = "") -> tuple[str, list[MarkerChange]]:
    """Rewrite every marked field of ``text`` from ``results`` (keyed ``"ns:name"``); returns (text, changes)."""
    if "$imagepolicy" not in text:
        return text, []
    lines = text.split("\n")
    changes: list[MarkerChange] = []
    for i, line in enumerate(lines):
        if "$imagepolicy" not in line:
            continue
        m = _MARKER_LINE.match(line)
        if not m:
            continue
        setter = parse_marker(m["comment"])
        if setter is None:
            continue
        parts = split_setter(setter)
        if parts is None:
            continue
        ns, name, suffix = parts
        result = results.get(f"{ns}:{name}")
        if result is None:
            continue
        new = result.value(suffix)
        if new is None:
            continue
        raw = m["value"]
        quote = raw[0] if raw[:1] in ("'", '"') else ""
        old = raw[1:-1] if quote else raw
        if old == new:
            continue
        lines[i] = f"{m['head']}{quote}{new}{quote}{m['gap']}#{m['comment']}"
        changes.append(MarkerChange(file, i + 1, setter, old, new))
    return "\n".join(lines), changes


def _yaml_file(path: str) -> bool:
    p = PurePosixPath(path)
    return p.suffix in (".yaml", ".yml") or p.name == "Kustomization"


def update_files(files: Mapping[str, str], results: Mapping[str, PolicyResult], *,
                 path: str = "./") -> tuple[dict[str, str], list[MarkerChange]]:
    """Apply the setters to every YAML file under ``path``; returns the changed files and the changes."""
    base = PurePosixPath(path.strip("/") or ".")
    out: dict[str, str] = {}
    changes: list[MarkerChange] = []
    for f, text in sorted(files.items()):
        fp = PurePosixPath(f)
        if str(base) not in (".", "") and base not in fp.parents:
            continue
        if not _yaml_file(f):
            continue
        new, ch = set_markers(text, results, file=f)
        if ch:
            out[f] = new
            changes.extend(ch)
    return out, changes


# ---------------------------------------------------------------------- objects

@dataclass(frozen=True)
class ImageRepositorySpec:
    namespace: str
    name: str
    image: str
    interval: float
    exclusion: tuple[str, ...] = DEFAULT_EXCLUSION
    suspend: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}:{self.name}"


@dataclass(frozen=True)
class ImagePolicySpec:
    namespace: str
    name: str
    repository: str  # "ns:name" of the ImageRepository
    policy: Policy
    digest_reflection: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}:{self.name}"


@dataclass(frozen=True)
class ImageUpdateAutomationSpec:
    namespace: str
    name: str
    interval: float
    source: str  # "ns:name" of the GitRepository
    checkout_branch: str | None
    push_branch: str | None
    author_name: str
    author_email: str
    message_template: str
    path: str
    suspend: bool = False


def _meta(obj: Mapping[str, Any], file: str | None) -> tuple[str, str, Mapping[str, Any]]:
    if not isinstance(obj, Mapping):
        raise LabkitError("expected an object", file=file)
    if not str(obj.get("apiVersion", "")).startswith(IMAGE_GROUP + "/"):
        raise LabkitError(f"apiVersion must be {IMAGE_GROUP}/v1 or v1beta2, got {obj.get('apiVersion')!r}",
                          file=file, field="apiVersion")
    md = obj.get("metadata") or {}
    if not md.get("name"):
        raise LabkitError("metadata.name is required", file=file, field="metadata.name")
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise LabkitError("spec is required", file=file, field="spec")
    return md.get("namespace") or "flux-system", md["name"], spec


def _interval(spec: Mapping[str, Any], file: str | None, *, required: bool = True) -> float:
    raw = spec.get("interval")
    if raw is None:
        if required:
            raise LabkitError("spec.interval is required", file=file, field="spec.interval")
        return 0.0
    try:
        return float(parse_duration(str(raw)))
    except (LabkitError, ValueError) as err:
        raise LabkitError(f"invalid duration {raw!r}: {err}", file=file, field="spec.interval") from None


def parse_image_object(obj: Mapping[str, Any], file: str | None = None) -> Any:
    """Parse an ImageRepository / ImagePolicy / ImageUpdateAutomation as written in Flux's docs."""
    kind = obj.get("kind") if isinstance(obj, Mapping) else None
    ns, name, spec = _meta(obj, file)
    if kind == "ImageRepository":
        image = spec.get("image")
        if not image:
            raise LabkitError("spec.image is required", file=file, field="spec.image")
        excl = spec.get("exclusionList")
        return ImageRepositorySpec(ns, name, str(image), _interval(spec, file),
                                   tuple(excl) if excl is not None else DEFAULT_EXCLUSION, bool(spec.get("suspend", False)))
    if kind == "ImagePolicy":
        ref = spec.get("imageRepositoryRef") or {}
        if not ref.get("name"):
            raise LabkitError("spec.imageRepositoryRef.name is required", file=file, field="spec.imageRepositoryRef.name")
        return ImagePolicySpec(ns, name, f"{ref.get('namespace') or ns}:{ref['name']}", Policy.from_spec(spec, file=file),
                               spec.get("digestReflectionPolicy") in ("Always", "IfNotPresent"))
    if kind == "ImageUpdateAutomation":
        src = spec.get("sourceRef") or {}
        if not src.get("name"):
            raise LabkitError("spec.sourceRef.name is required", file=file, field="spec.sourceRef.name")
        git = spec.get("git") or {}
        commit = git.get("commit") or {}
        author = commit.get("author") or {}
        if not author.get("email"):
            raise LabkitError("spec.git.commit.author.email is required", file=file, field="spec.git.commit.author.email")
        checkout = ((git.get("checkout") or {}).get("ref") or {}).get("branch")
        push = (git.get("push") or {}).get("branch")
        update = spec.get("update") or {}
        strategy = update.get("strategy", "Setters")
        if strategy != "Setters":
            raise LabkitError(f"unsupported update strategy '{strategy}' (only Setters)", file=file, field="spec.update.strategy")
        return ImageUpdateAutomationSpec(
            ns, name, _interval(spec, file), f"{src.get('namespace') or ns}:{src['name']}", checkout, push,
            str(author.get("name") or author["email"].split("@")[0]), str(author["email"]),
            str(commit.get("messageTemplate") or DEFAULT_MESSAGE), str(update.get("path") or "./"),
            bool(spec.get("suspend", False)))
    raise LabkitError(f"not an image automation kind: {kind!r}", file=file, field="kind")


def render_message(template: str, changes: Sequence[MarkerChange], automation: ImageUpdateAutomationSpec) -> str:
    """The commit message.  A template without ``{{`` is used as is; otherwise the text before the
    first action is kept and the changes are listed one per line (``old -> new``), which is what the
    common ``{{range .Changed.Changes}}`` templates produce.  (Full Go templates are not evaluated.)"""
    if "{{" not in template:
        return template
    head = template.split("{{", 1)[0].rstrip()
    body = "\n".join(f"- {c.old} -> {c.new}" for c in changes)
    return f"{head}\n\n{body}".strip() if head else body or DEFAULT_MESSAGE


# ---------------------------------------------------------------------- the controllers

class TagSource(Protocol):
    def tags(self, repository: str) -> list[str]: ...


class GitWriter(Protocol):
    def files(self, ref: str | None = None) -> list[str]: ...
    def read(self, path: str, ref: str | None = None) -> str: ...
    def commit(self, changes: Mapping[str, str | bytes | None], *, message: str, author: Any,
               when: float | None = None, branch: str | None = None) -> str: ...


@dataclass
class ImageTimings:
    """How long the image controllers' own work takes (seconds)."""

    scan: Dist = Dist.uniform(0.5, 2.0)  # registry tag listing
    automation_run: Dist = Dist.uniform(2.0, 5.0)  # clone, edit, commit, push

    @classmethod
    def fixed(cls, scan: float = 1.0, automation_run: float = 3.0) -> "ImageTimings":
        return cls(Dist.fixed(scan), Dist.fixed(automation_run))


@dataclass
class _RepoState:
    spec: ImageRepositorySpec
    tags: list[str] = field(default_factory=list)
    scans: int = 0
    last_scan: float | None = None


class ImageAutomation:
    """image-reflector- and image-automation-controller on a SimPy clock (see the module docstring)."""

    def __init__(
        self,
        env: simpy.Environment,
        registry: TagSource,
        *,
        log: EventLog | None = None,
        seed: int = 0,
        timings: ImageTimings | None = None,
        digests: Callable[[str], str] | None = None,
    ):
        self.env = env
        self.registry = registry
        self.log = log if log is not None else EventLog(lambda: env.now)
        self.timings = timings or ImageTimings()
        self.digests = digests
        self.repositories: dict[str, _RepoState] = {}
        self.policies: dict[str, ImagePolicySpec] = {}
        self.latest: dict[str, PolicyResult] = {}
        self.errors: dict[str, str] = {}
        self.automations: list[tuple[ImageUpdateAutomationSpec, GitWriter]] = []
        self._wakes: list[simpy.Event] = []
        self._rng = clocks.rng_for(seed, "image-automation")
        self.pushes: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ objects

    def apply(self, obj: Mapping[str, Any] | ImageRepositorySpec | ImagePolicySpec, *, file: str | None = None) -> Any:
        spec = obj if isinstance(obj, (ImageRepositorySpec, ImagePolicySpec)) else parse_image_object(obj, file)
        if isinstance(spec, ImageRepositorySpec):
            self.repositories[spec.key] = _RepoState(spec)
            self.env.process(self._scan_loop(spec.key))
        elif isinstance(spec, ImagePolicySpec):
            self.policies[spec.key] = spec
            self._evaluate(spec)
        else:
            raise LabkitError("use add_automation() for ImageUpdateAutomation objects", file=file)
        return spec

    def add_automation(self, obj: Mapping[str, Any] | ImageUpdateAutomationSpec, git: GitWriter, *,
                       file: str | None = None) -> ImageUpdateAutomationSpec:
        """Run an ImageUpdateAutomation against ``git`` (the checked-out source's remote)."""
        spec = obj if isinstance(obj, ImageUpdateAutomationSpec) else parse_image_object(obj, file)
        self.automations.append((spec, git))
        wake = self.env.event()
        self._wakes.append(wake)
        self.env.process(self._automation_loop(len(self.automations) - 1))
        return spec

    # ------------------------------------------------------------------ reflector

    def scan(self, key: str) -> list[str]:
        """List the repository's tags now (what one scan does), apply the exclusions, re-evaluate policies."""
        st = self.repositories[key]
        tags = list(self.registry.tags(st.spec.image))
        rx = [re.compile(_go_regex(p)) for p in st.spec.exclusion]
        tags = [t for t in tags if not any(r.search(t) for r in rx)]
        changed = tags != st.tags
        st.tags, st.scans, st.last_scan = tags, st.scans + 1, self.env.now
        self.log.record(REFLECTOR, "Scanned", f"ImageRepository/{st.spec.namespace}/{st.spec.name}",
                        detail={"tagCount": len(tags), "latestTags": sorted(tags, reverse=True)[:10], "changed": changed})
        if changed:
            for pol in self.policies.values():
                if pol.repository == key:
                    self._evaluate(pol)
        return tags

    def _scan_loop(self, key: str):
        while key in self.repositories:
            st = self.repositories[key]
            if not st.spec.suspend:
                yield self.env.timeout(self.timings.scan.draw(self._rng))
                self.scan(key)
            yield self.env.timeout(st.spec.interval)

    def _evaluate(self, pol: ImagePolicySpec) -> None:
        st = self.repositories.get(pol.repository)
        if st is None or not st.tags:
            return
        obj = f"ImagePolicy/{pol.namespace}/{pol.name}"
        try:
            tag = latest_tag(pol.policy, st.tags)
        except LabkitError as err:
            self.errors[pol.key] = err.detail
            self.log.record(REFLECTOR, "ReconciliationFailed", obj, detail={"message": err.detail})
            return
        self.errors.pop(pol.key, None)
        digest = self.digests(f"{st.spec.image}:{tag}") if (self.digests and pol.digest_reflection) else ""
        result = PolicyResult(st.spec.image, tag, digest)
        previous = self.latest.get(pol.key)
        if previous != result:
            self.latest[pol.key] = result
            self.log.record(REFLECTOR, "LatestImageChanged", obj, tag,
                            {"latestImage": result.image, "previous": previous.image if previous else None})
            for w in self._wakes:
                if not w.triggered:
                    w.succeed()

    # ------------------------------------------------------------------ automation

    def run_automation(self, index: int) -> str | None:
        """One ImageUpdateAutomation run now: rewrite markers and commit; returns the commit or None."""
        spec, git = self.automations[index]
        obj = f"ImageUpdateAutomation/{spec.namespace}/{spec.name}"
        results = {k: v for k, v in self.latest.items() if k.split(":", 1)[0] == spec.namespace}
        branch = spec.checkout_branch
        files = {f: git.read(f, branch) for f in git.files(branch) if _yaml_file(f)}
        changed, changes = update_files(files, results, path=spec.path)
        if not changed:
            self.log.record(AUTOMATION, "NoChange", obj, detail={"message": "no updates made"})
            return None
        message = render_message(spec.message_template, changes, spec)
        author = f"{spec.author_name} <{spec.author_email}>"
        sha = git.commit(changed, message=message, author=author, when=self.env.now,
                         branch=spec.push_branch or branch)
        self.pushes.append({"time": self.env.now, "sha": sha, "changes": changes})
        self.log.record(AUTOMATION, "Pushed", obj, sha,
                        {"message": f"pushed commit '{sha[:7]}' to branch '{spec.push_branch or branch or 'main'}'",
                         "files": sorted(changed), "changes": [f"{c.old} -> {c.new}" for c in changes]})
        return sha

    def _automation_loop(self, index: int):
        spec, _ = self.automations[index]
        while True:
            if not spec.suspend:
                yield self.env.timeout(self.timings.automation_run.draw(self._rng))
                self.run_automation(index)
            wake = self.env.event()
            self._wakes[index] = wake
            yield self.env.timeout(spec.interval) | wake
