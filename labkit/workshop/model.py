"""What an exercise is: a goal, a starting repository, a judge that runs the simulation, and proofs.

An exercise asks a participant to change something real — a file in their
workspace's git repository, then a commit (a revert, a setting of the Flux
Kustomization or the Argo CD Application that lives in that repository) — to
reach a stated goal.  It is never judged from the text typed: ``judge``
receives the participant's *history* (the exercise folder as it was at the
start, and after each of their commits) and replays it into a fresh lab — the
start state deployed, then each commit pushed at its own virtual time — runs
the scenario's mechanism (load, a 2 a.m. hotfix, a bad release ...) and reads
the outcome from the event log and the live state.  A ``Verdict`` says whether
the goal was met, what was observed against it (numbers, in the goal's own
terms), and one hint.

Every exercise carries its own proofs, run by CI for each exercise
(``tests/workshop``): the start state fails, the reference ``solution``
passes, and each of the ``wrong`` answers — plausible mistakes — fails with
feedback that names what is still wrong (``Change.expect``, a fragment the
verdict's text must contain).

Exercises are plain data plus functions; ``labkit.workshop.catalog`` holds
them, one module per scenario, and ``labkit.workshop.registry`` collects them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

__all__ = ["Commit", "History", "Change", "Verdict", "Exercise"]

Files = dict[str, str]


@dataclass(frozen=True)
class Commit:
    """One of the participant's commits to the exercise folder: its message and the folder after it."""

    sha: str
    message: str
    files: Mapping[str, str]


@dataclass(frozen=True)
class History:
    """The exercise folder at the start and after each of the participant's commits (oldest first)."""

    start: Mapping[str, str]
    commits: tuple[Commit, ...] = ()
    uncommitted: tuple[str, ...] = ()  # paths changed in the working tree but not committed

    @property
    def final(self) -> Mapping[str, str]:
        return self.commits[-1].files if self.commits else self.start

    def changed(self, path: str) -> bool:
        return self.final.get(path) != self.start.get(path)


@dataclass(frozen=True)
class Change:
    """A change a participant might make (the reference solution, or a plausible wrong answer).

    ``edit(files)`` returns the changes (path → new text, or None to delete) from the
    folder's current files; it is committed with ``message``.  A wrong answer's ``expect``
    is a fragment its verdict must contain — the feedback that names what is still wrong.
    """

    name: str
    message: str
    edit: Callable[[Files], Mapping[str, str | None]]
    expect: str = ""
    then: "Change | None" = None  # a second commit (a revert after a release, say)


@dataclass
class Verdict:
    """The outcome of one check."""

    exercise: str
    solved: bool
    observed: str  # what the simulation showed, in the goal's terms
    hint: str = ""
    notes: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # numbers behind `observed`, for --json

    def text(self) -> str:
        head = "SOLVED" if self.solved else "NOT YET"
        lines = [f"{self.exercise}: {head}", f"  observed: {self.observed}"]
        lines += [f"  note: {n}" for n in self.notes]
        if not self.solved and self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.exercise, "solved": self.solved, "observed": self.observed, "hint": self.hint,
                "notes": list(self.notes), "figures": dict(self.figures)}


@dataclass(frozen=True)
class Exercise:
    """One exercise (see the module docstring)."""

    id: str
    scenario: str
    title: str
    goal: str
    task: str  # what to do, in the participant's words: which file, which command
    start: Callable[[], Files]
    judge: Callable[[History], Verdict]
    solution: Change
    wrong: tuple[Change, ...]
    hints: tuple[str, ...]
    minutes: int = 10  # an estimate of the time a participant needs

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "scenario": self.scenario, "title": self.title, "goal": self.goal,
                "task": self.task, "minutes": self.minutes}
