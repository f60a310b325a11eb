"""Bounded YAML: reading files from a repository labkit did not write, in bounded time and memory.

``labkit try`` parses every YAML file of a repository it was pointed at — to
map rendered objects back to lines, to find plaintext secrets in the tree and
in history, to discover Flux and Argo CD objects.  Those files are untrusted
input: a ten-line "billion laughs" alias bomb in ``docs/`` expands to a
thousand million nodes, a file of ``[[[[...`` nests until the parser's stack
gives out, a Latin-1 or binary file named ``*.yaml`` is not text.  Everything
here turns such a file into a ``YamlLimitError`` (a ``LabkitError`` naming
the file, and the line where there is one) *before* anything expands it:

=====================  ==========================================================
``MAX_YAML_BYTES``     8 MiB per file (read no further; checked before opening)
``MAX_DOCUMENTS``      10,000 documents per file
``MAX_DEPTH``          100 levels of nesting
``MAX_FILE_NODES``     250,000 nodes per file as written (what composing costs)
``MAX_ALIAS_EXPANSION`` nodes per file once every alias is expanded (the same
                       limit ``labkit.gitops.render`` applies before kustomize
                       runs: 1,000,000)
``MAX_REPO_NODES``     2,000,000 expanded nodes per repository (``YamlBudget``)
``MAX_REPO_FILES``     20,000 YAML files per repository (``YamlBudget``)
``MAX_REPO_BYTES``     32 MiB of YAML text per repository (``YamlBudget``), taken
                       before a file is scanned
=====================  ==========================================================

How: ``read_yaml_file`` refuses what is not a regular file, a file over the
size limit, binary content (a NUL byte) and text that is neither UTF-8 nor
UTF-16/32 with a byte-order mark (the encodings YAML allows, and kustomize
reads).  ``scan_limits`` then walks the parser's *event stream* — iterative,
nothing composed, nothing expanded — counting documents, depth, nodes, and
the size each anchor would expand to (an alias costs the size of its anchor,
so a bomb is caught after a few hundred events however far it would grow).
Only a file within every limit is composed and constructed
(``load_documents``), with libyaml when available.

``BoundedLoader`` reads data the way Kubernetes' YAML→JSON does: timestamps
stay strings, a plain ``=`` is the string ``"="`` (PyYAML's YAML 1.1
``tag:yaml.org,2002:value`` has no constructor and would fail the file), and
an unknown or language-specific tag (``!x``, ``!!python/...``, ``!!binary``,
``!!set``) is read as the plain mapping, sequence or string it tags — as Go's
YAML decoder does — so a tag cannot hide a document from the checks.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any

import yaml

from labkit.core.errors import LabkitError
from labkit.gitops.yamlload import MAX_ALIAS_EXPANSION, JsonLoader

__all__ = [
    "MAX_ALIAS_EXPANSION",
    "MAX_DEPTH",
    "MAX_DOCUMENTS",
    "MAX_FILE_NODES",
    "MAX_REPO_BYTES",
    "MAX_REPO_FILES",
    "MAX_REPO_NODES",
    "MAX_YAML_BYTES",
    "BoundedLoader",
    "LoadedDocument",
    "YamlBudget",
    "YamlLimitError",
    "compose_documents",
    "decode_yaml_bytes",
    "load_documents",
    "read_yaml_file",
    "scan_limits",
]

MAX_YAML_BYTES = 8 * 1024 * 1024
MAX_DOCUMENTS = 10_000
MAX_DEPTH = 100
MAX_FILE_NODES = 250_000
MAX_REPO_NODES = 2_000_000
MAX_REPO_FILES = 20_000
MAX_REPO_BYTES = 32 * 1024 * 1024


class YamlLimitError(LabkitError):
    """A YAML file labkit will not read: over a limit, not text, or not UTF-8/16/32; names the file."""

    def __init__(self, file: str, message: str, *, line: int | None = None):
        self.line = line
        self.reason = message
        super().__init__(f"line {line}: {message}" if line else message, file=file)


# ------------------------------------------------------------------------------ loader

class BoundedLoader(JsonLoader):  # type: ignore[misc, valid-type]
    """``JsonLoader`` (libyaml when available, timestamps as strings) that never fails on a tag."""


BoundedLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:value"]
    for ch, resolvers in JsonLoader.yaml_implicit_resolvers.items()
}


def _plain(loader: yaml.SafeLoader, *args: Any) -> Any:
    """Construct a node by its kind alone (mapping, sequence or string), whatever its tag says."""
    node = args[-1]
    if isinstance(node, yaml.MappingNode):
        return loader.construct_yaml_map(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_yaml_seq(node)
    return loader.construct_scalar(node)


BoundedLoader.add_constructor(None, _plain)
for _tag in ("value", "binary", "timestamp", "set", "omap", "pairs"):
    BoundedLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _plain)
BoundedLoader.add_multi_constructor("tag:yaml.org,2002:python/", _plain)


# ------------------------------------------------------------------------------ bytes → text

_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def decode_yaml_bytes(data: bytes, display: str) -> str:
    """YAML text from a file's bytes: UTF-8, or UTF-16/32 with a byte-order mark; ``YamlLimitError`` otherwise."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(codec.replace("-sig", ""))
            except UnicodeDecodeError as exc:
                raise YamlLimitError(display, f"not valid {codec.upper().replace('-SIG', '')} text "
                                              f"(byte {exc.start + len(bom)})") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise YamlLimitError(display, f"binary content (a NUL byte at offset {nul}), not YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start:exc.start + 1].hex()
        raise YamlLimitError(display, f"not UTF-8 text (byte 0x{bad} at offset {exc.start}; Latin-1?): YAML files "
                                      "must be UTF-8, or UTF-16/32 with a byte-order mark") from None


def read_yaml_file(path: str | os.PathLike[str], display: str, *, max_bytes: int = MAX_YAML_BYTES) -> str:
    """The text of one YAML file, refusing non-regular files, files over ``max_bytes`` and non-text."""
    full = os.fspath(path)
    try:
        st = os.stat(full)
    except OSError as exc:
        raise YamlLimitError(display, f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise YamlLimitError(display, "not a regular file")
    if st.st_size > max_bytes:
        raise YamlLimitError(display, f"{st.st_size:,} bytes, over the limit of {max_bytes:,} bytes for one YAML file")
    try:
        fd = os.open(full, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise YamlLimitError(display, f"cannot read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise YamlLimitError(display, f"over the limit of {max_bytes:,} bytes for one YAML file")
    return decode_yaml_bytes(data, display)


# ------------------------------------------------------------------------------ limits

@dataclass
class YamlBudget:
    """What one repository (one snapshot or one revision of history) may cost in total."""

    max_nodes: int = MAX_REPO_NODES
    max_files: int = MAX_REPO_FILES
    max_bytes: int = MAX_REPO_BYTES
    nodes: int = 0
    files: int = 0
    bytes: int = 0

    def take_bytes(self, n: int, display: str) -> None:
        if self.bytes + n > self.max_bytes:
            raise YamlLimitError(display, f"the repository's YAML exceeds {self.max_bytes:,} bytes (labkit try's "
                                          "limit); this file and those after it were not read")
        self.bytes += n

    def take_file(self, display: str) -> None:
        if self.files >= self.max_files:
            raise YamlLimitError(display, f"the repository holds more than {self.max_files:,} YAML files "
                                          "(labkit try's limit); this one and those after it were not read")
        self.files += 1

    def take_nodes(self, n: int, display: str) -> None:
        if self.nodes + n > self.max_nodes:
            raise YamlLimitError(display, f"the repository's YAML exceeds {self.max_nodes:,} nodes (labkit try's "
                                          "limit, aliases expanded); this file and those after it were not read")
        self.nodes += n


def _mark_line(event: Any) -> int | None:
    mark = getattr(event, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def scan_limits(text: str, display: str, *, loader: type = BoundedLoader) -> int:
    """Check ``text`` against the per-file limits from its event stream; returns its expanded node count.

    Raises ``YamlLimitError`` (with the line) for too many documents, nesting
    deeper than ``MAX_DEPTH``, more than ``MAX_FILE_NODES`` nodes, or aliases
    expanding past ``MAX_ALIAS_EXPANSION`` nodes; ``yaml.YAMLError`` for a
    syntax error.  Nothing is composed or expanded.
    """
    ld = loader(text)
    stack: list[list[Any]] = []  # open collections: [anchor, expanded size so far]
    sizes: dict[str, int] = {}  # anchor -> expanded size (anchors are per document)
    documents = nodes = total = 0
    limit = MAX_ALIAS_EXPANSION

    def close(size: int, anchor: str | None, event: Any) -> None:
        nonlocal total
        if anchor:
            sizes[anchor] = size
        if stack:
            stack[-1][1] += size
            grown = stack[-1][1]
        else:
            total += size
            grown = total
        if grown > limit:
            raise YamlLimitError(display, f"YAML aliases expand to more than {limit:,} nodes (an alias bomb?)",
                                 line=_mark_line(event))

    try:
        while ld.check_event():
            ev = ld.get_event()
            if isinstance(ev, yaml.DocumentStartEvent):
                documents += 1
                sizes.clear()
                if documents > MAX_DOCUMENTS:
                    raise YamlLimitError(display, f"more than {MAX_DOCUMENTS:,} YAML documents in one file",
                                         line=_mark_line(ev))
            elif isinstance(ev, yaml.ScalarEvent):
                nodes += 1
                close(1, ev.anchor, ev)
            elif isinstance(ev, yaml.AliasEvent):
                close(sizes.get(ev.anchor, 1), None, ev)
            elif isinstance(ev, yaml.CollectionStartEvent):
                nodes += 1
                stack.append([ev.anchor, 1])
                if len(stack) > MAX_DEPTH:
                    raise YamlLimitError(display, f"nested more than {MAX_DEPTH} levels deep", line=_mark_line(ev))
            elif isinstance(ev, yaml.CollectionEndEvent):
                anchor, size = stack.pop()
                close(size, anchor, ev)
            if nodes > MAX_FILE_NODES:
                raise YamlLimitError(display, f"more than {MAX_FILE_NODES:,} YAML nodes in one file",
                                     line=_mark_line(ev))
    finally:
        ld.dispose()
    return total


@dataclass
class LoadedDocument:
    """One document of a file: its position, the line of its first key, and its data (the node is not kept)."""

    index: int  # 0-based position in the file
    line: int  # 1-based line of the first key (of the document start when it is not a mapping)
    data: Any


def _first_line(node: yaml.Node) -> int:
    if isinstance(node, yaml.MappingNode) and node.value:
        return node.value[0][0].start_mark.line + 1
    return node.start_mark.line + 1


def compose_documents(text: str, display: str, *, loader: type = BoundedLoader) -> list[yaml.Node]:
    """The node tree of every document of ``text`` (checked with ``scan_limits`` first), for line lookups."""
    scan_limits(text, display, loader=loader)
    ld = loader(text)
    try:
        out = []
        while ld.check_node():
            out.append(ld.get_node())
        return out
    finally:
        ld.dispose()


def load_documents(text: str, display: str, *, budget: YamlBudget | None = None,
                   loader: type = BoundedLoader) -> list[LoadedDocument]:
    """Every document of ``text`` as data, within the per-file limits and ``budget``.

    Raises ``YamlLimitError`` for a limit, ``yaml.YAMLError`` for a syntax
    error (its ``problem_mark`` gives the line).
    """
    if budget is not None:
        budget.take_bytes(len(text), display)  # before the scan: reading events costs time per byte
    expanded = scan_limits(text, display, loader=loader)
    if budget is not None:
        budget.take_nodes(expanded, display)
    ld = loader(text)
    out: list[LoadedDocument] = []
    try:
        i = 0
        while ld.check_node():
            node = ld.get_node()
            out.append(LoadedDocument(i, _first_line(node), ld.construct_document(node)))
            i += 1
    finally:
        ld.dispose()
    return out
