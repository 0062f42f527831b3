"""Decide whether an uploaded file may be sent, judging it by its content, not only its name.

Senders sometimes pick the wrong file, and attackers rename programs ("invoice.pdf" that is
really an .exe), so the first bytes decide what a file is. Only a few KiB from the start
(plus a few small reads at fixed offsets: the OLE directory, ISO and DMG markers, and a
ZIP's end records) are ever read, because files may be gigabytes. A ZIP's central directory
(the names that tell a .docx from a .jar) is read only when its end records claim at most
:data:`MAX_ARCHIVE_ENTRIES` entries in at most :data:`MAX_ARCHIVE_DIRECTORY` bytes (both in
:mod:`bot.zip_directory`); a ZIP claiming more is refused unread, so no file makes the check
take long. The policy chooses which of :data:`BLOCKABLE_KINDS` are refused; empty files,
files over the size limit and files whose content contradicts their name are always
refused. Refusals carry a sentence from :mod:`bot.messages.validation` telling the sender
what to do instead.

Known limits: PowerPoint 97-2003 files keep macros inside a stream the check does not
decode, so a macro-enabled .ppt is labelled but not detected as "macro-document"; content
inside archives is never inspected (policies may block "archive" for that reason).

What a name claims is :mod:`bot.file_kinds`'s, what the bytes say :mod:`bot.file_content`'s;
this module compares the two with the policy and words the verdict (:class:`FileVerdict`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from bot.file_content import content_kind, label_from_puremagic, looks_like_text
from bot.file_kinds import EXTENSIONS, TEXT_EXTENSIONS, extension
from bot.messages import validation as msg
from bot.sizes import size_mb
from bot.zip_directory import MAX_ARCHIVE_ENTRIES, Unchecked, read_at

BLOCKABLE_KINDS = ("executable", "script", "shortcut", "macro-document", "disk-image", "archive")

HEAD_BYTES = 8192
_MAX_NAME_CHARS = 80


class FileRefusal(StrEnum):
    """Why a file was refused, without its name (for the near-miss record)."""

    EMPTY = "empty"
    UNREADABLE = "unreadable"
    NOT_CHECKED = "not checked"  # the check ran out of time or failed
    TOO_LARGE = "too large"
    TOTAL_TOO_LARGE = "transfer too large"
    TOO_MANY_FILES = "too many files"
    DISGUISED = "disguised"  # content contradicts the name
    BLOCKED_KIND = "blocked kind"
    ARCHIVE_TOO_BIG = "archive too big to inspect"  # a possible ZIP bomb
    DAMAGED_ARCHIVE = "damaged archive"


@dataclass(frozen=True)
class FileVerdict:
    """Whether a file may be sent, what it is, and (when refused) what to tell the sender
    and, without the file's name, why."""

    accepted: bool
    kind: str
    reason: str | None
    # The reason's kind; left out of equality, as the sentence already says it.
    refusal: FileRefusal | None = field(default=None, compare=False)


_REFUSALS = {
    "executable": msg.FILE_BLOCKED_EXECUTABLE,
    "script": msg.FILE_BLOCKED_SCRIPT,
    "shortcut": msg.FILE_BLOCKED_SHORTCUT,
    "macro-document": msg.FILE_BLOCKED_MACRO_DOCUMENT,
    "disk-image": msg.FILE_BLOCKED_DISK_IMAGE,
    "archive": msg.FILE_BLOCKED_ARCHIVE,
}


def _article(label: str) -> str:
    """'a PDF document', 'an Excel workbook': the sentences read naturally either way."""
    return ("an " if label[:1].lower() in "aeiou" else "a ") + label


def _clean_name(display_name: str) -> str:
    """The name as shown in messages: basename only, no hidden characters, not too long."""
    base = display_name.replace("\\", "/").rsplit("/", 1)[-1]
    if len(base) > 1100:  # only the start and the end are ever shown
        base = base[:1000] + base[-100:]
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in base
        if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") or ch.isspace()
    )
    name = " ".join(kept.split()) or "the file"
    if len(name) > _MAX_NAME_CHARS:
        name = name[: _MAX_NAME_CHARS - 16] + "…" + name[-15:]
    return name


def unchecked(display_name: str, *, timed_out: bool) -> FileVerdict:
    """The refusal for a file whose check did not finish: it ran out of time, or failed."""
    template = msg.FILE_NOT_CHECKED_IN_TIME if timed_out else msg.FILE_NOT_CHECKED
    return FileVerdict(False, msg.KIND_UNCHECKED, template.format(name=_clean_name(display_name)),
                       FileRefusal.NOT_CHECKED)


def inspect_file(
    path: Path,
    *,
    display_name: str,
    blocked: Collection[str],
    max_bytes: int | None = None,
    max_entries: int = MAX_ARCHIVE_ENTRIES,
) -> FileVerdict:
    """Judge the file at ``path`` (uploaded as ``display_name``) against the intake policy.

    ``blocked`` holds categories from :data:`BLOCKABLE_KINDS`. A file is refused when it is
    empty, larger than ``max_bytes``, disguised (its content is a program, script, shortcut,
    disk image or archive while its name claims an ordinary document), when it is a ZIP
    whose end records claim more than ``max_entries`` entries (or a central directory over
    :data:`MAX_ARCHIVE_DIRECTORY`), or when either its content or its name falls in a
    blocked category. Never raises for bad input. Reads a bounded part of the file, but a
    ZIP's directory may still take a while: async callers run it off the event loop
    (:class:`handlers.intake.FileInspector`).
    """
    shown = _clean_name(display_name if isinstance(display_name, str) else "")
    if shown == "the file":
        shown = _clean_name(path.name)
    ext = extension(display_name if isinstance(display_name, str) else path.name)
    blocked_set = {b.strip().lower() for b in blocked if isinstance(b, str)}
    unreadable = FileVerdict(False, msg.KIND_UNKNOWN, msg.FILE_UNREADABLE.format(name=shown),
                             FileRefusal.UNREADABLE)
    if not path.is_file():  # also keeps FIFOs and devices from blocking the read
        return unreadable
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            if size == 0:
                return FileVerdict(False, msg.KIND_EMPTY, msg.FILE_EMPTY.format(name=shown),
                                   FileRefusal.EMPTY)
            head = read_at(f, 0, HEAD_BYTES)
            content = content_kind(f, head, size, ext, max_entries)
    except Unchecked as unchecked:
        return FileVerdict(False, unchecked.kind,
                           unchecked.template.format(name=shown, **unchecked.fields),
                           FileRefusal.ARCHIVE_TOO_BIG
                           if unchecked.kind == msg.KIND_ARCHIVE_TOO_BIG
                           else FileRefusal.DAMAGED_ARCHIVE)
    except (OSError, ValueError):
        return unreadable

    by_name = EXTENSIONS.get(ext)
    if content is not None:
        kind = content.label
    elif by_name is not None and by_name.category is not None:
        kind = by_name.label
    elif looks_like_text(head):
        kind = by_name.label if ext in TEXT_EXTENSIONS and by_name else msg.KIND_PLAIN_TEXT
    else:
        kind = label_from_puremagic(head) or msg.KIND_UNKNOWN

    if max_bytes is not None and size > max_bytes:
        reason = msg.FILE_TOO_LARGE.format(
            name=shown, size_mb=size_mb(size), limit_mb=size_mb(max(max_bytes, 0))
        )
        return FileVerdict(False, kind, reason, FileRefusal.TOO_LARGE)

    if (
        content is not None
        and content.category not in (None, "macro-document")
        and by_name is not None
        and by_name.category is None
    ):
        reason = msg.FILE_DISGUISED.format(
            name=shown, claimed=f"{_article(by_name.label)} (.{ext})", kind=_article(content.label)
        )
        return FileVerdict(False, kind, reason, FileRefusal.DISGUISED)

    for candidate in (content, by_name):
        if candidate is not None and candidate.category in blocked_set:
            template = _REFUSALS.get(candidate.category or "", msg.FILE_BLOCKED_OTHER)
            label = candidate.label
            shown_kind = _article(label) if candidate.category == "macro-document" else label
            return FileVerdict(False, label, template.format(name=shown, kind=shown_kind),
                               FileRefusal.BLOCKED_KIND)
    return FileVerdict(True, kind, None)
