"""The generated parts of the facilitator guide (``docs/workshop/README.md``): durations and common mistakes.

Two sections of the guide are not written by hand:

* **durations** — per notebook, the measured headless run time
  (``labkit.workshop.durations``) next to the exercises' minutes, which are the
  exercise authors' *estimates* and are labelled so;
* **common mistakes** — for every exercise, each of its plausible wrong
  answers (``Exercise.wrong``, the same ones CI proves fail) is committed into a
  fresh workspace and checked exactly as ``labkit check`` does; the guide quotes
  what the check then says (``observed``) and the first hint, plus what it says
  about the untouched start.  Nothing is paraphrased: rerun this to refresh it.

    python -m labkit.workshop.guide            # print both sections
    python -m labkit.workshop.guide --write    # replace them in docs/workshop/README.md

The sections sit between ``<!-- generated:NAME:start -->`` and
``<!-- generated:NAME:end -->`` markers.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["GUIDE", "durations_markdown", "mistakes", "mistakes_markdown", "write"]

GUIDE = Path(__file__).resolve().parent.parent.parent / "docs" / "workshop" / "README.md"
_ORDER = ("00-start-here", "tour", "promotion", "drift", "hpa-conflict", "rollback", "secrets", "migrations",
          "stateful-edges", "push-vs-pull", "fleet")


def _md(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _scenario_order(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))


def durations_markdown() -> str:
    from labkit.scenarios import spec as sc_mod
    from labkit.workshop import durations
    from labkit.workshop.registry import exercises

    runs = durations.load()
    info = durations.measured_on()
    rows = ["| notebook | headless run (measured) | exercises | exercise time (estimate) |", "|---|---:|---|---:|"]
    for name in _scenario_order(sc_mod.names()):
        ex = [e for e in exercises() if e.scenario == name]
        run = runs.get(name)
        rows.append(f"| `{name}.ipynb` | {'%.0f s' % run if run is not None else 'not measured'} | "
                    f"{', '.join(f'`{e.id}`' for e in ex) or '—'} | "
                    f"{('~%d min' % sum(e.minutes for e in ex)) if ex else '—'} |")
    load = info.get("load_average_1m_max", info.get("load_average_1m", "?"))
    where = (f"Measured {info.get('date', '?')} on {info.get('cores', '?')} cores (1-minute load average up to "
             f"{load}): {info.get('how', 'labkit run NAME')}.") if info else ""
    return "\n".join(rows) + ("\n\n" + where if where else "")


def _one(ex_id: str, which: str, index: int | None) -> dict[str, Any]:
    from labkit.workshop.registry import check, get
    from labkit.workshop.workspace import Workspace

    ex = get(ex_id)
    with tempfile.TemporaryDirectory(prefix="labkit-guide-") as tmp:
        ws = Workspace.create(Path(tmp) / "ws", {ex.id: ex.start()})
        name, expect = "(the start, no commit)", ""
        if which == "wrong":
            change = ex.wrong[index]  # type: ignore[index]
            name, expect = change.name, change.expect
            while change is not None:
                ws.commit(ex.id, change.edit(ws.files(ex.id)), change.message)
                change = change.then
        verdict = check(ex.id, ws)
    return {"exercise": ex.id, "answer": name, "expect": expect, "solved": verdict.solved,
            "observed": verdict.observed, "hint": verdict.hint}


def mistakes(workers: int | None = None) -> list[dict[str, Any]]:
    """Every exercise's start and wrong answers, checked; one dict per check, in catalogue order."""
    from labkit.workshop.registry import exercises

    jobs = []
    for ex in exercises():
        jobs.append((ex.id, "start", None))
        jobs += [(ex.id, "wrong", i) for i in range(len(ex.wrong))]
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_one, *zip(*jobs)))


def mistakes_markdown(results: list[dict[str, Any]] | None = None) -> str:
    from labkit.workshop.registry import exercises

    results = results if results is not None else mistakes()
    by_ex: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_ex.setdefault(r["exercise"], []).append(r)
    out = []
    scenarios = _scenario_order(sorted({e.scenario for e in exercises()}))
    for sc in scenarios:
        out.append(f"### {sc}\n")
        for ex in [e for e in exercises() if e.scenario == sc]:
            rows = by_ex.get(ex.id, [])
            first_hint = next((r["hint"] for r in rows if r["hint"]), "")
            out.append(f"**`{ex.id}`** — {_md(ex.title)} (~{ex.minutes} min, estimate). *Goal:* {_md(ex.goal)}\n")
            out.append("| the participant… | what `labkit check` says (observed) |")
            out.append("|---|---|")
            for r in rows:
                flag = " **(passes!)**" if r["solved"] else ""
                out.append(f"| {_md(r['answer'])}{flag} | {_md(r['observed'])} |")
            if first_hint:
                out.append(f"\nFirst hint (`labkit hint {ex.id}` gives the next): {_md(first_hint)}")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _replace(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- generated:{name}:start -->\n).*?(\n<!-- generated:{name}:end -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"no generated:{name} markers in the guide")
    return pattern.sub(lambda m: m.group(1) + body.rstrip("\n") + m.group(2), text)


def write(path: Path = GUIDE) -> None:
    text = path.read_text(encoding="utf-8")
    text = _replace(text, "durations", durations_markdown())
    text = _replace(text, "mistakes", mistakes_markdown())
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.workshop.guide", description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help=f"replace the generated sections of {GUIDE}")
    args = ap.parse_args(argv)
    if args.write:
        write()
        print(f"updated {GUIDE}")
    else:
        print(durations_markdown())
        print()
        print(mistakes_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
