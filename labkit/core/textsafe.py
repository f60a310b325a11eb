"""Text from a repository, made safe to show: on a terminal, in one error line, in HTML.

Object names, file names and messages in a ``labkit try`` report come from
the repository being tried, which may have been written to attack the person
reading the report: an ``ESC [ 2 J`` in a ConfigMap's name clears their
terminal, ``ESC ] 0 ;`` retitles it, a right-to-left override (U+202E)
reverses what follows, a carriage return overwrites the line, a lone
surrogate (a file name that was not UTF-8) cannot even be encoded.

``escape_text`` replaces every character that is not printable — C0 and C1
controls (ESC included), DEL, format characters such as the bidi overrides and
zero-width joiners, line and paragraph separators, private-use, unassigned and
surrogate code points — by a visible backslash escape (``\\x1b``, ``\\u202e``;
a byte of an undecodable file name as ``\\xe9``).  Newlines are kept only when
asked (multi-line messages in a report table).  Printable text, Cyrillic
look-alikes included, is unchanged: it is shown, not obeyed.

``one_line`` is what ``labkit: error:`` lines use: escaped, newlines included,
and shortened in the middle past ``limit`` characters so a path longer than
``PATH_MAX`` still gives a readable line.

rich markup (``[bold red]``) is a separate concern: ``labkit.tryrepo.report``
builds ``rich.text.Text`` objects, which never interpret markup, and HTML goes
through ``html.escape`` after ``escape_text``.  JSON output is left exact
(``json.dumps`` escapes what JSON must).
"""
from __future__ import annotations

from typing import Any

__all__ = ["escape_text", "one_line"]


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(c: str) -> str:
    named = _NAMED.get(c)
    if named is not None:
        return named
    o = ord(c)
    if 0xDC80 <= o <= 0xDCFF:  # a byte of an undecodable name (surrogateescape)
        return f"\\x{o - 0xDC00:02x}"
    if o < 0x100:
        return f"\\x{o:02x}"
    if o < 0x10000:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


def escape_text(text: Any, *, keep_newlines: bool = False) -> str:
    """``text`` (``str()`` of it; ``None`` is empty) with every non-printable character backslash-escaped."""
    s = "" if text is None else str(text)
    if s.isprintable():
        return s
    out = []
    for c in s:
        if c.isprintable() or (keep_newlines and c == "\n"):
            out.append(c)
        else:
            out.append(_escape_char(c))
    return "".join(out)


def one_line(text: Any, limit: int = 2000) -> str:
    """``text`` escaped onto one line, at most about ``limit`` characters (the middle elided)."""
    s = escape_text(text)
    if len(s) > limit:
        half = max(limit // 2 - 2, 1)
        s = f"{s[:half]} … {s[-half:]}"
    return s
