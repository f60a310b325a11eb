"""YAML text for exercise folders: every module that writes YAML a participant reads dumps it here.

PyYAML's dumpers write a Python object met twice in one document (the same
``labels`` dict as a selector and a template label, say) as an anchor and an
alias (``&id001`` / ``*id001``): valid YAML, but not what anyone writes by
hand, and an edit under the anchor silently changes the alias too.
``NoAliasDumper`` writes every occurrence out in full.
"""
from __future__ import annotations

from typing import Any, Iterable

import yaml

__all__ = ["NoAliasDumper", "yaml_dump", "yaml_dump_all"]


class NoAliasDumper(yaml.SafeDumper):
    """``yaml.SafeDumper`` that never writes anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def yaml_dump(data: Any, *, sort_keys: bool = False, **kwargs: Any) -> str:
    """``yaml.safe_dump`` without anchors/aliases (keys in insertion order unless asked)."""
    return yaml.dump(data, Dumper=NoAliasDumper, sort_keys=sort_keys, **kwargs)


def yaml_dump_all(docs: Iterable[Any], *, sort_keys: bool = False, **kwargs: Any) -> str:
    """``yaml.safe_dump_all`` without anchors/aliases."""
    return yaml.dump_all(docs, Dumper=NoAliasDumper, sort_keys=sort_keys, **kwargs)
