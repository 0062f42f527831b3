"""File checks: judged by content, so renamed programs and macro documents are caught."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.filecheck import BLOCKABLE_KINDS, FileVerdict, inspect_file
from bot.messages import validation as msg
from bot.zip_directory import MAX_ARCHIVE_DIRECTORY, MAX_ARCHIVE_ENTRIES

MB = 1024 * 1024
POLICY_BLOCKED = ("executable", "script", "shortcut", "macro-document", "disk-image")


# --- builders for small but real files ---------------------------------------------------

def minimal_pdf() -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def minimal_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


def zip_of(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, b"content")
    return buffer.getvalue()


def ole_of(*streams: str, clsid: bytes = b"\x00" * 16) -> bytes:
    """A compound file (old Office / MSI) with one FAT sector and one directory sector."""
    header = bytearray(512)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<III", header, 0x2C, 1, 1, 0)
    struct.pack_into("<IIIII", header, 0x38, 4096, 0xFFFFFFFE, 0, 0xFFFFFFFE, 0)
    struct.pack_into("<109I", header, 0x4C, 0, *([0xFFFFFFFF] * 108))
    fat = struct.pack("<128I", 0xFFFFFFFD, 0xFFFFFFFE, *([0xFFFFFFFF] * 126))
    directory = b""
    for name, kind in [("Root Entry", 5), *((s, 2) for s in streams[:3])]:
        entry = bytearray(128)
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        entry[: len(encoded)] = encoded
        struct.pack_into("<H", entry, 0x40, len(encoded))
        entry[0x42] = kind
        if kind == 5:
            entry[0x50:0x60] = clsid
        directory += bytes(entry)
    return bytes(header) + fat + directory.ljust(512, b"\x00")


MSI_CLSID = b"\x84\x10\x0c\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 50 + b"PE\x00\x00"
LNK = b"L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00F" + b"\x00" * 60
ISO = b"\x00" * 0x8001 + b"CD001" + b"\x00" * 2000
DMG = b"\x00" * 2048 + b"koly" + b"\x00" * 508
DOCX = zip_of("[Content_Types].xml", "_rels/.rels", "word/document.xml")
DOCX_VBA = zip_of("[Content_Types].xml", "word/document.xml", "word/vbaProject.bin")


@pytest.fixture
def check(tmp_path: Path) -> Callable[..., FileVerdict]:
    def run(data: bytes, name: str, blocked: tuple[str, ...] = POLICY_BLOCKED,
            max_bytes: int | None = None) -> FileVerdict:
        path = tmp_path / "upload.bin"
        path.write_bytes(data)
        return inspect_file(path, display_name=name, blocked=blocked, max_bytes=max_bytes)
    return run


@pytest.mark.parametrize(
    ("data", "name", "kind"),
    [
        (minimal_pdf(), "Case 123 referral.pdf", "PDF document"),
        (minimal_png(), "photo.png", "PNG image"),
        (b"II*\x00\x08\x00\x00\x00" + b"\x00" * 40, "JoanMcMillan.TIF", "TIFF image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "scan.jpg", "JPEG image"),
        (DOCX, "report.docx", "Word document"),
        (zip_of("[Content_Types].xml", "xl/workbook.xml"), "budget.xlsx", "Excel workbook"),
        (zip_of("mimetype", "META-INF/manifest.xml", "content.xml"), "notes.odt",
         "OpenDocument file"),
        (ole_of("WordDocument", "1Table"), "old.doc", "Word document"),
        (ole_of("Workbook"), "old.xls", "Excel workbook"),
        (b"Name,Ref\nA,1\n", "list.csv", "CSV spreadsheet"),
        ("Grüße\n".encode(), "note", "plain text"),
        (b"MZ Warehouse stock list\n", "stock.txt", "text file"),  # "MZ" alone is not a program
        (b"Name,Ref\n", "export.pdf", "plain text"),  # kind comes from content, not name
        (zip_of("a.txt", "b.pdf"), "bundle.zip", "ZIP archive"),  # archives not blocked here
    ],
)
def test_ordinary_files_accepted(check: Callable[..., FileVerdict], data: bytes, name: str,
                                 kind: str) -> None:
    assert check(data, name) == FileVerdict(True, kind, None)


@pytest.mark.parametrize(
    ("data", "name", "template"),
    [
        (PE, "setup.exe", msg.FILE_BLOCKED_EXECUTABLE),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 40, "tool", msg.FILE_BLOCKED_EXECUTABLE),
        (b"\xcf\xfa\xed\xfe" + b"\x00" * 40, "app", msg.FILE_BLOCKED_EXECUTABLE),
        (b"\xfe\xed\xfa\xce" + b"\x00" * 40, "app", msg.FILE_BLOCKED_EXECUTABLE),
        (b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + b"\x00" * 40, "universal",
         msg.FILE_BLOCKED_EXECUTABLE),
        (b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + b"\x00" * 40, "Main.class",
         msg.FILE_BLOCKED_EXECUTABLE),
        (zip_of("META-INF/MANIFEST.MF", "app/Main.class"), "tool.jar", msg.FILE_BLOCKED_EXECUTABLE),
        (zip_of("META-INF/MANIFEST.MF", "app/Main.class"), "tool.zip", msg.FILE_BLOCKED_EXECUTABLE),
        (ole_of("x", clsid=MSI_CLSID), "installer.msi", msg.FILE_BLOCKED_EXECUTABLE),
        (ole_of("x", clsid=MSI_CLSID), "installer", msg.FILE_BLOCKED_EXECUTABLE),
        (ole_of("x"), "installer.msi", msg.FILE_BLOCKED_EXECUTABLE),
        (minimal_pdf(), "report.pdf.exe", msg.FILE_BLOCKED_EXECUTABLE),  # blocked by name too
        (b"#!/bin/sh\nrm -rf /\n", "cleanup", msg.FILE_BLOCKED_SCRIPT),
        (b"#!/usr/bin/env python3\n", "run", msg.FILE_BLOCKED_SCRIPT),
        (b"@echo off\r\ndel *.*\r\n", "run.bat", msg.FILE_BLOCKED_SCRIPT),
        (b"Write-Host hi\n", "RUN.PS1", msg.FILE_BLOCKED_SCRIPT),
        (b"MsgBox 1\n", "a.vbs", msg.FILE_BLOCKED_SCRIPT),
        (b"<html><hta:application/>", "a.hta", msg.FILE_BLOCKED_SCRIPT),
        (b"Windows Registry Editor Version 5.00\n", "fix.reg", msg.FILE_BLOCKED_SCRIPT),
        (LNK, "Report.lnk", msg.FILE_BLOCKED_SHORTCUT),
        (LNK, "Report", msg.FILE_BLOCKED_SHORTCUT),
        (b"[InternetShortcut]\r\nURL=https://example.org\r\n", "link.url",
         msg.FILE_BLOCKED_SHORTCUT),
        (DOCX, "letter.docm", msg.FILE_BLOCKED_MACRO_DOCUMENT),
        (DOCX_VBA, "letter.docx", msg.FILE_BLOCKED_MACRO_DOCUMENT),
        (DOCX_VBA, "letter.docm", msg.FILE_BLOCKED_MACRO_DOCUMENT),
        (zip_of("[Content_Types].xml", "xl/workbook.xml", "xl/macrosheets/sheet1.xml"),
         "sums.xlsx", msg.FILE_BLOCKED_MACRO_DOCUMENT),
        (zip_of("mimetype", "META-INF/manifest.xml", "Basic/Standard/Module1.xml"), "a.odt",
         msg.FILE_BLOCKED_MACRO_DOCUMENT),
        (ole_of("WordDocument", "Macros"), "old.doc", msg.FILE_BLOCKED_MACRO_DOCUMENT),
        (ole_of("Workbook", "_VBA_PROJECT_CUR"), "old.xls", msg.FILE_BLOCKED_MACRO_DOCUMENT),
        (ISO, "disc.iso", msg.FILE_BLOCKED_DISK_IMAGE),
        (ISO, "disc", msg.FILE_BLOCKED_DISK_IMAGE),
        (DMG, "app.dmg", msg.FILE_BLOCKED_DISK_IMAGE),
        (b"conectix" + b"\x00" * 100, "disk.vhd", msg.FILE_BLOCKED_DISK_IMAGE),
    ],
)
def test_blockable_kinds_refused(check: Callable[..., FileVerdict], data: bytes, name: str,
                                 template: str) -> None:
    verdict = check(data, name)
    assert not verdict.accepted
    assert verdict.reason is not None
    prefix = template.split("{name}")[0] + name
    assert verdict.reason.startswith(prefix)
    # The sentence is the template's, filled in: everything after the kind is fixed text.
    assert verdict.reason.endswith(template.rsplit("}", 1)[1])


@pytest.mark.parametrize(
    ("data", "name", "blocked", "accepted"),
    [
        (DOCX_VBA, "letter.docm", ("executable",), True),
        (DOCX_VBA, "letter.docm", ("macro-document",), False),
        (zip_of("a.txt"), "bundle.zip", (), True),
        (zip_of("a.txt"), "bundle.zip", ("archive",), False),
        (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 30, "bundle.7z", ("archive",), False),
        (b"Rar!\x1a\x07\x01\x00" + b"\x00" * 30, "bundle.rar", ("archive",), False),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 30, "data.tar.gz", ("archive",), False),
        (zip_of("a.txt"), "bundle.zip", ("ARCHIVE ",), False),  # policy spelling tolerated
        (PE, "setup.exe", (), True),  # a policy may allow programs
        (b"echo hi\n", "run.sh", (), True),
    ],
)
def test_policy_decides_which_kinds_are_blocked(
    check: Callable[..., FileVerdict], data: bytes, name: str, blocked: tuple[str, ...],
    accepted: bool,
) -> None:
    assert check(data, name, blocked).accepted is accepted


@pytest.mark.parametrize(
    ("data", "name", "kind"),
    [
        (PE, "invoice.pdf", "Windows executable"),
        (PE, "Invoice.PDF.", "Windows executable"),  # trailing dot ignored, as Windows does
        (b"\x7fELF" + b"\x00" * 40, "photo.jpg", "Linux program (ELF)"),
        (ole_of("x", clsid=MSI_CLSID), "minutes.docx", "Windows installer"),
        (b"#!/bin/bash\necho\n", "notes.txt", "shell script"),
        (LNK, "scan.png", "Windows shortcut"),
        (ISO, "report.pdf", "ISO disc image"),
        (zip_of("a.exe"), "report.pdf", "ZIP archive"),
    ],
)
def test_disguised_files_refused_whatever_the_policy(
    check: Callable[..., FileVerdict], data: bytes, name: str, kind: str
) -> None:
    verdict = check(data, name, blocked=())
    assert not verdict.accepted
    assert verdict.kind == kind
    assert verdict.reason is not None
    assert "content doesn't match" in verdict.reason
    assert name.rstrip(".") in verdict.reason or name in verdict.reason


def test_exe_renamed_pdf_reason_says_what_it_really_is(check: Callable[..., FileVerdict]) -> None:
    verdict = check(PE, "invoice.pdf", blocked=BLOCKABLE_KINDS)
    assert verdict.reason == msg.FILE_DISGUISED.format(
        name="invoice.pdf", claimed="a PDF document (.pdf)", kind="a Windows executable"
    )


def test_empty_file_always_refused(check: Callable[..., FileVerdict]) -> None:
    verdict = check(b"", "report.pdf", blocked=())
    assert verdict == FileVerdict(False, "empty file", msg.FILE_EMPTY.format(name="report.pdf"))


def test_too_large_names_the_limit_in_mb(check: Callable[..., FileVerdict]) -> None:
    verdict = check(minimal_pdf() + b"\x00" * (3 * MB), "big.pdf", max_bytes=2 * MB)
    assert not verdict.accepted
    assert verdict.kind == "PDF document"
    assert verdict.reason == msg.FILE_TOO_LARGE.format(name="big.pdf", size_mb="3", limit_mb="2")
    assert check(minimal_pdf(), "small.pdf", max_bytes=2 * MB).accepted


def test_huge_files_are_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.pdf"
    with path.open("wb") as handle:
        handle.write(minimal_pdf())
        handle.truncate(4 * 1024 * MB)  # sparse: reading it all would take many seconds
    verdict = inspect_file(path, display_name="huge.pdf", blocked=POLICY_BLOCKED)
    assert verdict == FileVerdict(True, "PDF document", None)
    assert not inspect_file(path, display_name="huge.pdf", blocked=(), max_bytes=2048 * MB).accepted


def test_missing_file_is_a_verdict_not_a_crash(tmp_path: Path) -> None:
    verdict = inspect_file(tmp_path / "gone", display_name="gone.pdf", blocked=())
    assert verdict.reason == msg.FILE_UNREADABLE.format(name="gone.pdf")
    assert not inspect_file(tmp_path, display_name="folder", blocked=()).accepted


def test_display_name_is_cleaned_for_messages(check: Callable[..., FileVerdict]) -> None:
    verdict = check(PE, "C:\\Users\\me\\invoice\u202egpj.exe", blocked=BLOCKABLE_KINDS)
    assert verdict.reason is not None
    assert "“invoicegpj.exe”" in verdict.reason  # no folder, no direction override
    long_name = check(PE, "x" * 10_000 + ".exe", blocked=BLOCKABLE_KINDS).reason
    assert long_name is not None and len(long_name) < 400


def test_random_bytes_and_names_never_raise(tmp_path: Path) -> None:
    rng = random.Random(7)
    prefixes = [b"", b"MZ", b"PK\x03\x04", b"PK\x05\x06", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
                b"\xca\xfe\xba\xbe", b"#!", b"%PDF-", b"\x89PNG", b"[InternetShortcut]"]
    path = tmp_path / "junk"
    for _ in range(400):
        path.write_bytes(rng.choice(prefixes) + rng.randbytes(rng.randint(0, 2000)))
        name = "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 20)))
        verdict = inspect_file(path, display_name=name, blocked=BLOCKABLE_KINDS,
                               max_bytes=rng.choice([None, 500]))
        assert verdict.kind
        assert verdict.accepted == (verdict.reason is None)


# --- ZIP bombs of entries: judged from the end records, before the directory is read -------

LOCAL_HEADER = b"PK\x03\x04" + struct.pack("<5H3I2H", 20, 0, 0, 0, 0, 0, 0, 0, 1, 0) + b"a"


def zip_end(*, entries: int, directory_size: int, directory_at: int, end_at: int,
            eocd_entries: int = 0xFFFF) -> bytes:
    """ZIP64 end record + locator + end-of-central-directory record, written at ``end_at``."""
    zip64 = struct.pack("<4sQ2H2I4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries,
                        directory_size, directory_at)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, end_at, 1)
    eocd = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, eocd_entries, eocd_entries,
                       0xFFFFFFFF, 0xFFFFFFFF, 0)
    return zip64 + locator + eocd


def directory_zip(entries: int, *, claimed: int | None = None, name: bytes = b"a") -> bytes:
    """A ZIP with a real central directory of ``entries`` records (one-letter names, all for
    the one empty member) whose end records claim ``claimed`` entries (default: the truth):
    1,350,000 of them make the 63 MB file of issue 11."""
    record = struct.pack("<4s6H3I5HII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0,
                         len(name), 0, 0, 0, 0, 0, 0) + name
    directory = record * entries
    return LOCAL_HEADER + directory + zip_end(
        entries=entries if claimed is None else claimed, directory_size=len(directory),
        directory_at=len(LOCAL_HEADER), end_at=len(LOCAL_HEADER) + len(directory))


def claiming_zip(entries: int, directory_size: int) -> bytes:
    """A small file whose end records claim ``entries`` entries in ``directory_size`` bytes;
    what sits where the directory would be is not a directory at all."""
    body = LOCAL_HEADER + b"not a central directory" * 4
    return body + zip_end(entries=entries, directory_size=directory_size, directory_at=0,
                          end_at=len(body))


def test_a_zip_claiming_too_many_entries_is_refused_unread(
        check: Callable[..., FileVerdict]) -> None:
    # Were the directory read, the junk would make it a damaged (but allowed) ZIP archive.
    verdict = check(claiming_zip(1_350_000, 63_450_000), "case.zip", blocked=())
    assert verdict == FileVerdict(False, msg.KIND_ARCHIVE_TOO_BIG, msg.FILE_TOO_MANY_ENTRIES.format(
        name="case.zip", count="1,350,000", limit=f"{MAX_ARCHIVE_ENTRIES:,}"))
    # Office documents are ZIPs too, and a .pdf name does not hide one.
    for name in ("minutes.docx", "budget.xlsx", "notes.odt", "report.pdf"):
        refused = check(claiming_zip(MAX_ARCHIVE_ENTRIES + 1, 4096), name, blocked=())
        assert not refused.accepted and refused.kind == msg.KIND_ARCHIVE_TOO_BIG
    assert check(claiming_zip(MAX_ARCHIVE_ENTRIES, 4096), "case.zip", blocked=()).kind \
        == msg.KIND_DAMAGED_ZIP


def test_the_63_mb_zip_of_issue_11_is_refused_from_its_end_records(
        check: Callable[..., FileVerdict]) -> None:
    verdict = check(directory_zip(1_350_000), "case.zip", blocked=())
    assert not verdict.accepted
    assert verdict.reason is not None and "lists 1,350,000 files inside it" in verdict.reason


def test_a_zip_that_understates_its_entries_is_refused_when_they_run_over(
        check: Callable[..., FileVerdict]) -> None:
    verdict = check(directory_zip(MAX_ARCHIVE_ENTRIES + 1, claimed=1), "case.zip", blocked=())
    assert verdict.reason == msg.FILE_TOO_MANY_ENTRIES.format(
        name="case.zip", count=f"more than {MAX_ARCHIVE_ENTRIES:,}",
        limit=f"{MAX_ARCHIVE_ENTRIES:,}")


def test_a_zip_at_the_entry_limit_is_read(check: Callable[..., FileVerdict]) -> None:
    assert check(directory_zip(MAX_ARCHIVE_ENTRIES), "case.zip", blocked=()) \
        == FileVerdict(True, "ZIP archive", None)


def test_a_zip_claiming_a_huge_directory_is_refused_unread(
        check: Callable[..., FileVerdict]) -> None:
    verdict = check(claiming_zip(10, MAX_ARCHIVE_DIRECTORY + 1), "case.zip", blocked=())
    assert verdict.reason == msg.FILE_ARCHIVE_INDEX_TOO_LARGE.format(
        name="case.zip", size_mb="16", limit_mb="16")
    assert check(claiming_zip(10, 2**64 - 1), "case.zip", blocked=()).kind \
        == msg.KIND_ARCHIVE_TOO_BIG


def test_a_zip64_record_elsewhere_still_counts(check: Callable[..., FileVerdict]) -> None:
    """The record before the locator is the one zipfile reads; the locator may point at
    another. Whichever claims too many entries refuses the file."""
    record = struct.pack("<4s6H3I5HII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
                         0, 0, 0, 0) + b"a"
    hidden = struct.pack("<4sQ2H2I4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 1_350_000,
                         1_350_000, 1, 0)

    def build(locator_to_hidden: bool) -> bytes:
        body = LOCAL_HEADER + hidden + record * 3
        end = zip_end(entries=3, directory_size=len(record) * 3,
                      directory_at=len(LOCAL_HEADER) + len(hidden), end_at=len(body))
        if locator_to_hidden:
            end = end[:56] + struct.pack("<4sIQI", b"PK\x06\x07", 0, len(LOCAL_HEADER), 1) \
                + end[76:]
        return body + end

    assert check(build(False), "case.zip", blocked=()) == FileVerdict(True, "ZIP archive", None)
    assert check(build(True), "case.zip", blocked=()).kind == msg.KIND_ARCHIVE_TOO_BIG


# --- one directory for every reader: end records that disagree are refused ----------------

EOCD = struct.Struct("<4s4H2IH")
MACRO_DOCX = ("[Content_Types].xml", "word/document.xml", "word/vbaProject.bin")


def directory_records(data: bytes) -> list[bytes]:
    """The central-directory records of a ZIP written by :mod:`zipfile`, one by one."""
    fields = EOCD.unpack_from(data, data.rfind(b"PK\x05\x06"))
    directory, records, pos = data[fields[6] : fields[6] + fields[5]], [], 0
    while pos < len(directory):
        name, extra, comment = struct.unpack_from("<3H", directory, pos + 28)
        records.append(directory[pos : pos + 46 + name + extra + comment])
        pos += 46 + name + extra + comment
    return records


def two_directories() -> bytes:
    """The second review's file: the real directory (it lists word/vbaProject.bin), junk,
    then a clean copy without the macro; the end record's start offset points at the real
    one, while the clean one ends where the end record starts (where zipfile looks)."""
    data = zip_of(*MACRO_DOCX)
    fields = EOCD.unpack_from(data, data.rfind(b"PK\x05\x06"))
    start, size = fields[6], fields[5]
    clean = b"".join(r for r in directory_records(data) if b"vbaProject" not in r)
    end = EOCD.pack(b"PK\x05\x06", 0, 0, 2, 2, len(clean), start, 0)
    return data[: start + size] + b"JUNK" + clean + end


def test_a_second_directory_the_end_record_does_not_point_at_is_refused(
        check: Callable[..., FileVerdict]) -> None:
    """A reader that follows the stated offset (.NET, minizip, Word) sees the macro; one that
    reads back from the end record sees a clean document. Neither view is taken."""
    assert check(zip_of(*MACRO_DOCX), "report.docx").kind == "Word document"
    for blocked in (POLICY_BLOCKED, ()):
        verdict = check(two_directories(), "report.docx", blocked=blocked)
        assert verdict == FileVerdict(False, msg.KIND_DAMAGED_ZIP, msg.FILE_ZIP_AMBIGUOUS.format(
            name="report.docx"))


def test_a_count_that_is_not_the_number_of_entries_is_refused(
        check: Callable[..., FileVerdict]) -> None:
    """A reader going by the count stops after the clean entries; the macro is the last."""
    data = zip_of(*MACRO_DOCX)
    at = data.rfind(b"PK\x05\x06")
    fields = list(EOCD.unpack_from(data, at))
    fields[3] = fields[4] = 2
    verdict = check(data[:at] + EOCD.pack(*fields), "report.docx")
    assert verdict.kind == msg.KIND_DAMAGED_ZIP and not verdict.accepted
    fields[3] = 3  # entries on this disk and in all differ
    assert check(data[:at] + EOCD.pack(*fields), "report.docx").kind == msg.KIND_DAMAGED_ZIP


def test_a_prefix_before_the_zip_is_refused(check: Callable[..., FileVerdict]) -> None:
    """Prepended bytes (a self-extracting stub, or another ZIP whose local headers a
    streaming reader takes) move every offset; the policy needs no self-extracting archives,
    so the directory must be exactly where the end record says."""
    clean = zip_of("[Content_Types].xml", "word/document.xml")
    assert check(clean, "report.docx") == FileVerdict(True, "Word document", None)
    for prefix in (zip_of(*MACRO_DOCX), b"PK\x03\x04" + b"\x00" * 100):
        verdict = check(prefix + clean, "report.docx", blocked=())
        assert verdict.kind == msg.KIND_DAMAGED_ZIP and not verdict.accepted


def test_zip64_records_that_disagree_are_refused(check: Callable[..., FileVerdict]) -> None:
    record = struct.pack("<4s6H3I5HII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
                         0, 0, 0, 0) + b"a"
    body = LOCAL_HEADER + record * 3
    good = zip_end(entries=3, directory_size=len(record) * 3, directory_at=len(LOCAL_HEADER),
                   end_at=len(body))
    assert check(body + good, "case.zip", blocked=()) == FileVerdict(True, "ZIP archive", None)
    # The locator points at another (harmless-looking) ZIP64 record than the one before it.
    other = struct.pack("<4sQ2H2I4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 1, 1, len(record),
                        len(LOCAL_HEADER) + len(record) * 2)
    elsewhere = good[:56] + struct.pack("<4sIQI", b"PK\x06\x07", 0, len(body), 1) + good[76:]
    verdict = check(body + other + elsewhere, "case.zip", blocked=())
    assert verdict.kind == msg.KIND_DAMAGED_ZIP and not verdict.accepted
    # The end record states a start (not "see ZIP64") other than the ZIP64 record's.
    stated = good[:76] + struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF,
                                     0xFFFFFFFF, len(LOCAL_HEADER) + len(record), 0)
    assert check(body + stated, "case.zip", blocked=()).kind == msg.KIND_DAMAGED_ZIP
    # A locator with no ZIP64 record where it points.
    lost = good[:56] + struct.pack("<4sIQI", b"PK\x06\x07", 0, 7, 1) + good[76:]
    assert check(body + lost, "case.zip", blocked=()).kind == msg.KIND_DAMAGED_ZIP
