"""The YAML loader every manifest reader shares, and the alias-expansion limit.

Manifests are read as JSON-compatible data: timestamps stay strings (Kubernetes
stores them as strings; PyYAML would make ``datetime`` objects that do not
round-trip) and a plain ``=`` is the string ``"="`` (YAML 1.1's "value" tag is
not what kubectl means).  libyaml's C loader is used when PyYAML was built with
it.  ``MAX_ALIAS_EXPANSION`` caps how many nodes one file may expand to through
``&anchor`` / ``*alias`` — the "billion laughs" guard.

Both the renderer (``labkit.gitops.render``) and the bounded reader of untrusted
files (``labkit.gitops.yamlbounds``) build on these; keeping them here, below
both, is what lets the bounded reader be used by the renderer without either
importing the other back.
"""
from __future__ import annotations

import yaml

__all__ = ["JsonLoader", "MAX_ALIAS_EXPANSION"]

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The most YAML nodes one manifest file may expand to through aliases (&anchor / *alias).
MAX_ALIAS_EXPANSION = 1_000_000


class JsonLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader producing JSON-compatible data (timestamps stay strings)."""


JsonLoader.yaml_implicit_resolvers = {  # timestamps stay strings; a plain `=` (YAML 1.1 "value") is the string "="
    ch: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
