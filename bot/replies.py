"""Neutral replies: what the core says, rendered by each channel in its own way.

A reply that asks something carries ``question``, the step id that an :class:`Answer` must
name; channels put it in a button value or card data so that answers find their question.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Text:
    text: str
    question: str | None = None


@dataclass(frozen=True)
class Ask:
    """A free-text question (purpose, call time)."""

    question: str
    prompt: str
    error: str | None = None
    placeholder: str = ""
    multiline: bool = False
    value: str = ""


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    description: str = ""


@dataclass(frozen=True)
class Choice:
    question: str
    prompt: str
    options: tuple[Option, ...]
    error: str | None = None
    default: str | None = None


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str = "text"  # text | textarea | email | tel | select | checkbox
    value: str = ""
    error: str | None = None
    required: bool = True
    help: str = ""
    options: tuple[Option, ...] = field(default=())


@dataclass(frozen=True)
class Form:
    question: str
    title: str
    fields: tuple[FormField, ...]
    error: str | None = None
    intro: str = ""

    @property
    def has_errors(self) -> bool:
        return self.error is not None or any(f.error for f in self.fields)


@dataclass(frozen=True)
class FileReply:
    """An archive handed back to the sender; ``path`` is on the server's disk."""

    path: Path
    filename: str
    caption: str


@dataclass(frozen=True)
class LinkReply:
    url: str
    label: str


Reply = Text | Ask | Choice | Form | FileReply | LinkReply
