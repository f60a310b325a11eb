"""What the reliability suite actually ran: hypothesis examples per dialect and bad-input corpus cases.

Counted as the tests run (not read from their settings, which only bound them) and printed
by ``tests/reliability/conftest.py`` at the end of the session.  One module imported by its
dotted name everywhere, so the conftest plugin and the test modules share one counter.
"""
from __future__ import annotations

from collections import Counter

RUN_COUNTS: Counter[str] = Counter()
