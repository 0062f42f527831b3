"""Counted nouns: "1 file", "3 files", never "file(s)"."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and ``word``, in the plural (``many``, or ``word`` + "s") unless it is one."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def labelled(label: str) -> str:
    """``label`` as it stands before its value: with a colon, unless it is a question
    ("Purpose:", but "May they share it onward?")."""
    return label if label.rstrip().endswith("?") else f"{label}:"
