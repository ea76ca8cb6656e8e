"""Text for the terminal: user input and plug-in text made safe and short to print."""

from __future__ import annotations

import unicodedata

LIMIT = 80
"""Most characters of one user-given or plug-in-given value quoted in a message."""


def printable(text: str) -> str:
    """``text`` with control and other non-printing characters shown as ``\\xNN`` / ``\\uNNNN``
    escapes (an ANSI escape from a plug-in's doc must not reach the terminal raw)."""
    return "".join(
        ch if ch == " " or not unicodedata.category(ch).startswith(("C", "Z")) else ascii(ch)[1:-1]
        for ch in text
    )


def shorten(text: str, limit: int = LIMIT) -> str:
    """``text`` made printable and cut to ``limit`` characters, saying how much was cut."""
    text = printable(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def quoted(text: str, limit: int = LIMIT) -> str:
    """``text`` shortened and in quotes, for quoting user input inside a message."""
    return f"'{shorten(text, limit)}'"


def first_line(text: object, limit: int = LIMIT) -> str:
    """The first line of ``text`` (an error's, say), shortened."""
    return shorten((str(text).strip().splitlines() or [""])[0], limit)
