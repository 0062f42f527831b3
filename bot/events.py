"""Neutral events: what a channel hands the core, whatever platform it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot.cleantext import file_name
from bot.messages.validation import UNNAMED_FILE


@dataclass(frozen=True)
class IncomingFile:
    """A file the channel has already streamed to disk under the uploads folder.

    ``name`` is as the sender named it, made visible, one line and at most 255 characters
    here, whatever channel hands it over (:func:`bot.cleantext.file_name`); it may identify
    a person and is never used as a path. ``path`` is the staged copy on this host; ``key``
    is the object key once the file passed its check and was sealed into the shared store
    (the staged copy is then gone)."""

    name: str
    path: Path
    size: int
    key: str | None = None

    @property
    def location(self) -> str:
        """Where the file is kept: its object key once sealed, else the staged path."""
        return self.key if self.key is not None else str(self.path)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", file_name(self.name) or UNNAMED_FILE)


@dataclass(frozen=True)
class FilesReceived:
    files: tuple[IncomingFile, ...]


@dataclass(frozen=True)
class Answer:
    """A reply to a question. ``question`` names the step it answers, so a late or repeated
    answer (a double click, a retried request) to a question already answered is ignored."""

    value: str | dict[str, str]
    question: str | None = None
    # The person already confirmed this answer on the platform (Slack's confirm dialog on a
    # Cancel button), or a program acting for them sends it (the ``share`` command cleaning
    # up): a cancel takes effect without asking again.
    confirmed: bool = False


@dataclass(frozen=True)
class Command:
    """A command typed by the user: help, status, list, cancel, received."""

    name: str
    args: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class CancelRequest:
    """The sender asked to cancel ``reference`` (``cancel REF``), a transfer they may cancel:
    asked to confirm first unless ``confirmed``."""

    reference: str
    confirmed: bool = False


@dataclass(frozen=True)
class ApprovalDecision:
    reference: str
    approve: bool
    reason: str = ""


Event = FilesReceived | Answer | Command | CancelRequest | ApprovalDecision
