"""Quoting user input in messages."""

from __future__ import annotations

QUOTE_LIMIT = 60


def quoted(value: object) -> str:
    """`repr(value)`, cut short: a message must not echo a huge input back at the user."""
    text = repr(value)
    if len(text) <= QUOTE_LIMIT:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{text[: QUOTE_LIMIT - 3]}...{size}"


def path_part(key: str) -> str:
    """A key as one word of a key path: escaped, and cut short like any quoted input."""
    text = key.encode("unicode_escape").decode("ascii").replace(" ", "\\x20")
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 3] + "..."
