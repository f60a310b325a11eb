"""The simulated container image registry: which images exist, and what they do when run.

A real cluster learns whether ``web:v2`` exists only when a kubelet tries to pull
it: the registry answers ``not found``, the container sits in ``ErrImagePull`` and
then ``ImagePullBackOff``, and the Deployment stalls until its progress deadline.
That is how a bad tag reaches a GitOps user, so the simulator needs a registry
that can say no.  ``ImageRegistry`` is that model, and it is also where a
scenario says what an image *does* when it runs:

``add(image, tags, pull_seconds=None, crashing=False, run_seconds=None, exit_code=0, program=None)``
    declares tags of a repository.  ``pull_seconds`` fixes the first-pull time on
    the node (a number or a ``labkit.sim.timings.Dist``; otherwise
    ``Timings.pull`` is drawn once per image).  ``crashing=True`` makes every
    container of that image exit with code 1 after ``run_seconds`` (default
    ``Timings.crash_after``): under ``restartPolicy: Always`` that is a
    ``CrashLoopBackOff``.  ``run_seconds`` makes the container run to
    completion after that long with ``exit_code`` — what a Job's pod does.
    ``program`` is a Python callable executed when the container finishes; it
    receives a ``RunContext`` (the pod, the container, its env, the attempt
    number, the cluster) and its result decides the exit code: ``None``/``True``/
    ``0`` succeed, ``False`` or a non-zero int fail, ``(code, message)`` sets the
    termination message, and an exception fails with its text as the message.
    The migrations scenario runs real SQL against a real database this way.

``has(image_ref)``
    whether a pull would succeed.  The registry is **permissive** by default:
    a repository it was never told about has every tag (a lab need not list the
    images of every manifest), while a repository it *was* told about has only
    the declared tags — ``add("web", ["v1", "v2"])`` makes ``web:v3`` a bad tag.
    ``ImageRegistry(strict=True)`` turns unknown repositories into missing
    images too.  ``remove(image_ref)`` deletes a tag (a registry clean-up job).

Image references are normalised the way a container runtime resolves them:
``nginx``, ``nginx:latest``, ``docker.io/nginx`` and
``docker.io/library/nginx:latest`` are the same image; a digest reference
(``web@sha256:...``) names the digest as its "tag".  Error messages use the
fully-qualified name as containerd prints it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable

from labkit.core.errors import LabkitError


@dataclass
class RunContext:
    """What a ``program`` sees when its container finishes."""

    pod: dict[str, Any]  # a copy of the Pod
    container: dict[str, Any]  # the container's spec
    image: str
    attempt: int  # 0 for the first run, the restart count afterwards
    now: float
    env: dict[str, str]  # literal env values of the container
    cluster: Any = None  # the SimCluster (read the store, reach scenario objects)

    @property
    def args(self) -> list[str]:
        return list(self.container.get("command") or []) + list(self.container.get("args") or [])


Program = Callable[[RunContext], Any]


@dataclass
class ImageSpec:
    """What the registry knows about one tag of one repository."""

    repository: str
    tag: str
    pull_seconds: Any = None  # float | Dist | None (None: Timings.pull)
    crashing: bool = False
    run_seconds: Any = None  # float | Dist | None
    exit_code: int = 0
    program: Program | None = None
    size_bytes: int = 0

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(f"{self.repository}:{self.tag}".encode()).hexdigest()


@dataclass
class ImageRef:
    repository: str  # normalised: "web", "ghcr.io/org/app"
    tag: str  # "v1", "latest", or "sha256:..." for digest references

    @property
    def canonical(self) -> str:
        """``docker.io/library/web:v1`` as containerd names it in pull errors."""
        repo = self.repository
        first = repo.split("/", 1)[0]
        if not ("." in first or ":" in first or first == "localhost"):
            repo = ("docker.io/library/" if "/" not in repo else "docker.io/") + repo
        sep = "@" if self.tag.startswith("sha256:") else ":"
        return f"{repo}{sep}{self.tag}"


def parse_image(ref: str) -> ImageRef:
    """Split and normalise an image reference (see the module docstring)."""
    if not isinstance(ref, str) or not ref.strip():
        raise LabkitError(f"invalid image reference {ref!r}")
    ref = ref.strip()
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    last = ref.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        ref, tag = ref.rsplit(":", 1)
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
            break
    if ref.startswith("library/"):
        ref = ref[len("library/"):]
    return ImageRef(ref, digest or tag or "latest")


class ImageRegistry:
    """Known images and their behaviour (see the module docstring)."""

    def __init__(self, *, strict: bool = False):
        self.strict = strict
        self._images: dict[str, dict[str, ImageSpec]] = {}

    def add(
        self,
        image: str,
        tags: list[str] | tuple[str, ...] | str | None = None,
        *,
        pull_seconds: Any = None,
        crashing: bool = False,
        run_seconds: Any = None,
        exit_code: int = 0,
        program: Program | None = None,
        size_bytes: int | None = None,
    ) -> "ImageRegistry":
        """Declare tags of ``image`` (``add("web", ["v1", "v2"])`` or ``add("web:v1")``); returns self."""
        ref = parse_image(image)
        if isinstance(tags, str):
            tags = [tags]
        if tags is None:
            tags = [ref.tag]
        repo = self._images.setdefault(ref.repository, {})
        for tag in tags:
            size = size_bytes if size_bytes is not None else 20_000_000 + int(
                hashlib.sha256(f"{ref.repository}:{tag}".encode()).hexdigest()[:6], 16) % 80_000_000
            repo[str(tag)] = ImageSpec(ref.repository, str(tag), pull_seconds, crashing, run_seconds,
                                       int(exit_code), program, size)
        return self

    def remove(self, image_ref: str) -> None:
        """Delete one tag (the repository stays known, so the tag is now missing)."""
        ref = parse_image(image_ref)
        self._images.setdefault(ref.repository, {}).pop(ref.tag, None)

    def knows(self, image_ref: str) -> bool:
        """Whether the repository was declared (declared repositories only have their declared tags)."""
        return parse_image(image_ref).repository in self._images

    def has(self, image_ref: str) -> bool:
        """Whether pulling ``image_ref`` succeeds."""
        ref = parse_image(image_ref)
        tags = self._images.get(ref.repository)
        if tags is None:
            return not self.strict
        return ref.tag in tags

    def lookup(self, image_ref: str) -> ImageSpec | None:
        """The declared spec of an image, or None (unknown repository, or a missing tag)."""
        ref = parse_image(image_ref)
        return (self._images.get(ref.repository) or {}).get(ref.tag)

    def tags(self, repository: str) -> list[str]:
        return sorted((self._images.get(parse_image(repository).repository) or {}).keys())

    def digest(self, image_ref: str) -> str:
        spec = self.lookup(image_ref)
        if spec is not None:
            return spec.digest
        ref = parse_image(image_ref)
        return "sha256:" + hashlib.sha256(f"{ref.repository}:{ref.tag}".encode()).hexdigest()

    def size(self, image_ref: str) -> int:
        spec = self.lookup(image_ref)
        if spec is not None:
            return spec.size_bytes
        ref = parse_image(image_ref)
        return 20_000_000 + int(hashlib.sha256(f"{ref.repository}:{ref.tag}".encode()).hexdigest()[:6], 16) % 80_000_000

    def not_found_message(self, image_ref: str) -> str:
        """The kubelet's ``Failed to pull image`` text for a missing image (containerd's wording)."""
        c = parse_image(image_ref).canonical
        return (f'rpc error: code = NotFound desc = failed to pull and unpack image "{c}": '
                f'failed to resolve reference "{c}": {c}: not found')
