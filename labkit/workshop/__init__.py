"""Hands-on workshop: exercises with automatic checks, judged from the simulation.

``labkit.workshop.model`` says what an exercise is; ``workspace`` is a
participant's own fleet repository; ``registry`` lists the exercises and
checks them; ``catalog/`` holds one module per scenario; ``notebook`` is the
``check("ID")`` a notebook calls.  See ``docs/workshop/`` for facilitators.
"""
from __future__ import annotations

from labkit.workshop.model import Change, Commit, Exercise, History, Verdict
from labkit.workshop.notebook import exercises_table  # notebooks: labkit.workshop.notebook.check / hint (HTML)
from labkit.workshop.registry import check, exercises, get, hint, judge_history, solve, start_workspace
from labkit.workshop.workspace import Workspace, find_workspace

__all__ = ["Change", "Commit", "Exercise", "History", "Verdict", "Workspace", "check", "exercises", "exercises_table",
           "find_workspace", "get", "hint", "judge_history", "solve", "start_workspace"]
