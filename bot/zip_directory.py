"""A ZIP's central directory, read within bounds, and what its entry names make it.

ZIP files (also .docx, .xlsx, .odt, .jar, .apk …) are told apart by the names in their
central directory. :func:`zip_names` reads them only when the end records claim at most
``max_entries`` entries in at most :data:`MAX_ARCHIVE_DIRECTORY` bytes and agree with each
other (:func:`_zip_directory`); otherwise it raises :class:`Unchecked` before reading the
directory. :func:`zip_kind` says what the names make the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from bot.file_kinds import FileKind
from bot.messages import validation as msg
from bot.sizes import size_mb

_MB = 1024 * 1024
# A ZIP (also .docx, .xlsx, .odt, .jar …) listing more entries, or a bigger central
# directory, is refused unread: judging it would take seconds and memory per entry.
MAX_ARCHIVE_ENTRIES = 100_000
MAX_ARCHIVE_DIRECTORY = 16 * _MB
_EOCD = struct.Struct("<4s4H2IH")  # end of central directory
_ZIP64_LOCATOR = struct.Struct("<4sIQI")
_ZIP64_END = struct.Struct("<4sQ2H2I4Q")
_CD_ENTRY = struct.Struct("<4s6H3I5HII")  # central directory file header, before the name


def read_at(f: BinaryIO, offset: int, length: int) -> bytes:
    """At most ``length`` bytes from ``offset``; none for a negative offset or length."""
    if offset < 0 or length <= 0:
        return b""
    f.seek(offset)
    return f.read(length)


class Unchecked(Exception):
    """The file cannot be judged within the ZIP reader's bounds: refused with ``template``
    (a sentence from :mod:`bot.messages.validation`, given ``name`` and ``fields``)."""

    def __init__(self, kind: str, template: str, **fields: str) -> None:
        super().__init__(kind)
        self.kind = kind
        self.template = template
        self.fields = fields


@dataclass(frozen=True)
class _ZipDirectory:
    """What a ZIP's end records claim: entry count (the largest claimed, and the one a
    reader goes by), where and how big the directory is (``start`` is where it must be:
    right before the end records), and whether the records agree with each other and with
    that place (see :func:`_zip_directory`)."""

    entries: int
    claimed: int
    start: int
    size: int
    consistent: bool


_ZIP16_ALL = 0xFFFF  # in the end record: "see the ZIP64 record"
_ZIP32_ALL = 0xFFFFFFFF


def _zip_directory(f: BinaryIO, size: int) -> _ZipDirectory | None:
    """Read the end-of-central-directory record (and the ZIP64 record, when a locator says
    there is one) from the file's tail; None when there is none.

    ZIP readers find the directory in different ways: from where the end records sit (as
    :mod:`zipfile` does), from the start offset the end record states (as .NET and minizip
    do), from the ZIP64 record the locator points at, or from the one right before it. A
    file where these disagree shows one program one directory and another program another
    (a clean list to us, a macro to Word), so it is not ``consistent``: the stated start must
    be where the directory ends up before the end records (so nothing may be prepended: the
    policy needs no self-extracting archives), the locator must point at the record right
    before it, the counts must agree, and the end record's fields must equal the ZIP64
    record's or say "see ZIP64"."""
    tail_len = min(size, 65535 + _EOCD.size)
    tail_start = size - tail_len
    tail = read_at(f, tail_start, tail_len)
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or tail_len - end < _EOCD.size:
        return None
    _, disk, directory_disk, on_disk, total, directory_size, stated_start, _ = \
        _EOCD.unpack_from(tail, end)
    entries = max(on_disk, total)
    consistent = disk == directory_disk == 0 and on_disk == total
    directory_end = tail_start + end
    locator = read_at(f, directory_end - _ZIP64_LOCATOR.size, _ZIP64_LOCATOR.size)
    if len(locator) == _ZIP64_LOCATOR.size and locator.startswith(b"PK\x06\x07"):
        _, _, located_at, _ = _ZIP64_LOCATOR.unpack(locator)
        before_locator = directory_end - _ZIP64_LOCATOR.size - _ZIP64_END.size
        consistent = consistent and located_at == before_locator
        records = []  # the record that sits before the locator is the one zipfile uses
        for offset in dict.fromkeys((before_locator, located_at)):
            if not 0 <= offset <= size - _ZIP64_END.size:
                continue
            raw = read_at(f, offset, _ZIP64_END.size)
            if len(raw) == _ZIP64_END.size and raw.startswith(b"PK\x06\x06"):
                records.append((offset, _ZIP64_END.unpack(raw)))
        for _, fields in records:  # any claim counts: the largest decides
            entries = max(entries, fields[6], fields[7])
        if not records or records[0][0] != before_locator:
            return _ZipDirectory(entries, total, -1, directory_size, consistent=False)
        directory_end, fields = records[0]
        zip64_disk, zip64_directory_disk, zip64_on_disk, zip64_total = fields[4:8]
        consistent = (consistent and zip64_disk == zip64_directory_disk == 0
                      and zip64_on_disk == zip64_total
                      and total in (zip64_total, _ZIP16_ALL)
                      and directory_size in (fields[8], _ZIP32_ALL)
                      and stated_start in (fields[9], _ZIP32_ALL))
        directory_size, stated_start = fields[8], fields[9]
        entries = max(entries, zip64_total)
        total = zip64_total
    start = directory_end - directory_size
    consistent = consistent and stated_start == start
    return _ZipDirectory(entries, total, start, directory_size, consistent)


def zip_names(f: BinaryIO, size: int, max_entries: int) -> list[str] | None:
    """Names in a ZIP's central directory; None when it is damaged. Judged from the end
    records first: a directory claiming more than ``max_entries`` entries or more than
    :data:`MAX_ARCHIVE_DIRECTORY` bytes raises :class:`Unchecked` before any of it is read,
    as does one that turns out to hold more entries than that while it is read. So does a
    directory that other ZIP readers could find elsewhere or read differently: end records
    that disagree (:func:`_zip_directory`), or a count that is not the number of entries
    read."""
    directory = _zip_directory(f, size)
    if directory is None:
        return None
    if directory.entries > max_entries:
        raise Unchecked(msg.KIND_ARCHIVE_TOO_BIG, msg.FILE_TOO_MANY_ENTRIES,
                         count=f"{directory.entries:,}", limit=f"{max_entries:,}")
    if directory.size > MAX_ARCHIVE_DIRECTORY:
        raise Unchecked(msg.KIND_ARCHIVE_TOO_BIG, msg.FILE_ARCHIVE_INDEX_TOO_LARGE,
                         size_mb=size_mb(directory.size),
                         limit_mb=size_mb(MAX_ARCHIVE_DIRECTORY))
    ambiguous = Unchecked(msg.KIND_DAMAGED_ZIP, msg.FILE_ZIP_AMBIGUOUS)
    if not directory.consistent:
        raise ambiguous
    if directory.start < 0:
        return None
    data = read_at(f, directory.start, directory.size)
    if len(data) != directory.size:
        return None
    names: list[str] = []
    pos = 0
    while pos < len(data):  # as zipfile reads it: by size; the count is compared after
        if len(names) >= max_entries:
            raise Unchecked(msg.KIND_ARCHIVE_TOO_BIG, msg.FILE_TOO_MANY_ENTRIES,
                             count=f"more than {max_entries:,}", limit=f"{max_entries:,}")
        if pos + _CD_ENTRY.size > len(data) or data[pos : pos + 4] != b"PK\x01\x02":
            return None
        fields = _CD_ENTRY.unpack_from(data, pos)
        flags, name_len, extra_len, comment_len = fields[3], fields[10], fields[11], fields[12]
        start = pos + _CD_ENTRY.size
        if start + name_len > len(data):
            return None
        raw = data[start : start + name_len]
        names.append(raw.decode("utf-8" if flags & 0x800 else "cp437", "replace"))
        pos = start + name_len + extra_len + comment_len
    if len(names) != directory.claimed:  # a reader going by the count stops elsewhere
        raise ambiguous
    return names


def _is_odf_macro(name: str) -> bool:
    parts = name.split("/")
    if parts[0] == "scripts" and len(parts) > 2 and parts[-1]:
        return True
    return (
        len(parts) == 3 and parts[0] == "basic" and parts[2].endswith(".xml")
        and parts[2] not in ("script-lb.xml", "dialog-lb.xml")
    )


def zip_kind(names: list[str] | None) -> FileKind:
    """Office documents, Java/Android/Windows apps and plain archives all start with PK."""
    if names is None:
        return FileKind(msg.KIND_DAMAGED_ZIP, "archive")
    lower = [n.lower() for n in names]
    members = set(lower)
    if "[content_types].xml" in members:
        label = "Office document"
        for prefix, family in (("word/", "Word document"), ("xl/", "Excel workbook"),
                               ("ppt/", "PowerPoint presentation"), ("visio/", "Visio drawing"),
                               ("documents/", "XPS document")):
            if any(n.startswith(prefix) for n in lower):
                label = family
                break
        if any(n.endswith("vbaproject.bin") or n.startswith("xl/macrosheets/") for n in lower):
            return FileKind(label, "macro-document")
        return FileKind(label, None)
    if "mimetype" in members and "meta-inf/manifest.xml" in members:
        if any(_is_odf_macro(n) for n in lower):
            return FileKind("OpenDocument file", "macro-document")
        return FileKind("OpenDocument file", None)
    if "mimetype" in members and "meta-inf/container.xml" in members:
        return FileKind("EPUB e-book", None)
    if "androidmanifest.xml" in members or "classes.dex" in members:
        return FileKind("Android app", "executable")
    if "meta-inf/manifest.mf" in members or any(n.endswith(".class") for n in lower):
        return FileKind("Java program (JAR)", "executable")
    if "appxmanifest.xml" in members or "appxmetadata/appxbundlemanifest.xml" in members:
        return FileKind("Windows app package", "executable")
    return FileKind("ZIP archive", "archive")
