"""The workshop's documents and zero-install paths stay in step with the code.

The facilitator guide's generated sections (``python -m labkit.workshop.guide --write``)
name every exercise and every wrong answer CI proves, and every notebook's duration; the
dev container and Binder set up with the README's own commands.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from labkit.scenarios import spec as scenario
from labkit.workshop.registry import exercises

REPO = Path(__file__).resolve().parents[2]
GUIDE = (REPO / "docs" / "workshop" / "README.md").read_text()
README = (REPO / "README.md").read_text()
REGEN = "regenerate with `python -m labkit.workshop.guide --write`"


def _section(name: str) -> str:
    m = re.search(rf"<!-- generated:{name}:start -->\n(.*?)\n<!-- generated:{name}:end -->", GUIDE, re.S)
    assert m, f"docs/workshop/README.md lost its generated:{name} markers"
    return m.group(1)


def test_common_mistakes_cover_every_exercise_and_wrong_answer():
    text = _section("mistakes")
    for ex in exercises():
        assert f"`{ex.id}`" in text, f"the guide has no common mistakes for {ex.id}: {REGEN}"
        for w in ex.wrong:
            assert " ".join(w.name.split()).replace("|", "\\|") in text, f"{ex.id}: {w.name!r} missing: {REGEN}"
    assert "(passes!)" not in text, "a wrong answer passed its check when the guide was generated"


def test_durations_cover_every_notebook_and_say_what_is_estimated():
    text = _section("durations")
    for name in scenario.names():
        assert f"`{name}.ipynb`" in text, f"no duration for {name}: {REGEN}"
    assert "not measured" not in text, f"a notebook has no measured run time: make durations, then {REGEN}"
    assert "(estimate)" in text and "(measured)" in text


def test_readme_workshop_section_near_the_top():
    heads = re.findall(r"(?m)^## (.+)$", README)
    assert heads.index("Workshop") <= 1
    for needle in ("make setup", "labkit workshop start", "labkit lab --workspace", "00-start-here.ipynb",
                   "labkit check", "docs/workshop/README.md"):
        assert needle in README


def test_devcontainer_and_binder_use_the_readme_commands():
    raw = (REPO / ".devcontainer" / "devcontainer.json").read_text()
    dc = json.loads(re.sub(r"(?m)^\s*//.*$", "", raw))
    assert dc["postCreateCommand"] == "make setup" and "3.11" in dc["image"]
    post = (REPO / "binder" / "postBuild").read_text()
    assert "pip install --no-cache-dir -e '.[test]'" in post and "pip install -e .[test]" in README
    assert "labkit workshop start workshop" in post
    assert (REPO / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    start = (REPO / "binder" / "start").read_text()
    assert "LABKIT_WORKSPACE" in start and start.rstrip().endswith('exec "$@"')
