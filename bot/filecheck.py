"""Decide whether an uploaded file may be sent, judging it by its content, not only its name.

Senders sometimes pick the wrong file, and attackers rename programs ("invoice.pdf" that is
really an .exe), so the first bytes decide what a file is. Only a few KiB from the start
(plus a few small reads at fixed offsets: the OLE directory, ISO and DMG markers, and a
ZIP's end records) are ever read, because files may be gigabytes. A ZIP's central directory
(the names that tell a .docx from a .jar) is read only when its end records claim at most
:data:`MAX_ARCHIVE_ENTRIES` entries in at most :data:`MAX_ARCHIVE_DIRECTORY` bytes; a ZIP
claiming more is refused unread, so no file makes the check take long. The policy chooses which of
:data:`BLOCKABLE_KINDS` are refused; empty files, files over the size limit and files whose
content contradicts their name are always refused. Refusals carry a sentence from
:mod:`bot.messages.validation` telling the sender what to do instead.

Known limits: PowerPoint 97-2003 files keep macros inside a stream this module does not
decode, so a macro-enabled .ppt is labelled but not detected as "macro-document"; content
inside archives is never inspected (policies may block "archive" for that reason).
"""

from __future__ import annotations

import struct
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import puremagic

from bot.messages import validation as msg

BLOCKABLE_KINDS = ("executable", "script", "shortcut", "macro-document", "disk-image", "archive")

HEAD_BYTES = 8192
_MB = 1024 * 1024
# A ZIP (also .docx, .xlsx, .odt, .jar …) listing more entries, or a bigger central
# directory, is refused unread: judging it would take seconds and memory per entry.
MAX_ARCHIVE_ENTRIES = 100_000
MAX_ARCHIVE_DIRECTORY = 16 * _MB
_MAX_OLE_DIR_SECTORS = 64
_MAX_NAME_CHARS = 80
_EOCD = struct.Struct("<4s4H2IH")  # end of central directory
_ZIP64_LOCATOR = struct.Struct("<4sIQI")
_ZIP64_END = struct.Struct("<4sQ2H2I4Q")
_CD_ENTRY = struct.Struct("<4s6H3I5HII")  # central directory file header, before the name


@dataclass(frozen=True)
class FileVerdict:
    """Whether a file may be sent, what it is, and (when refused) what to tell the sender."""

    accepted: bool
    kind: str
    reason: str | None


@dataclass(frozen=True)
class _Kind:
    label: str
    category: str | None  # one of BLOCKABLE_KINDS, or None for ordinary documents


# What a file name's extension claims. Ordinary documents (category None) are the names a
# disguised file hides behind; the others are blocked by name even when content is harmless,
# because the recipient's computer decides what to do by the name.
_EXTENSIONS: dict[str, _Kind] = {}


def _register(category: str | None, label: str, *exts: str) -> None:
    for ext in exts:
        _EXTENSIONS[ext] = _Kind(label, category)


_register(None, "PDF document", "pdf")
_register(None, "Word document", "doc", "docx", "dot", "dotx")
_register(None, "Rich Text document", "rtf")
_register(None, "Excel workbook", "xls", "xlsx", "xlsb", "xlt", "xltx")
_register(None, "PowerPoint presentation", "ppt", "pptx", "pps", "ppsx", "pot", "potx")
_register(None, "OpenDocument file", "odt", "ods", "odp", "odg")
_register(None, "CSV spreadsheet", "csv")
_register(None, "text file", "txt", "log", "md")
_register(None, "JPEG image", "jpg", "jpeg", "jpe", "jfif")
_register(None, "PNG image", "png")
_register(None, "GIF image", "gif")
_register(None, "TIFF image", "tif", "tiff")
_register(None, "bitmap image", "bmp")
_register(None, "WebP image", "webp")
_register(None, "HEIC photo", "heic", "heif")
_register(None, "Outlook message", "msg")
_register(None, "email message", "eml")
_register(None, "audio file", "mp3", "wav", "m4a", "wma")
_register(None, "video file", "mp4", "mov", "avi", "wmv")
_register("executable", "Windows executable", "exe", "dll", "scr", "com", "pif", "cpl", "sys",
          "ocx", "drv", "efi", "xll", "msc", "gadget", "application", "appref-ms", "xbap")
_register("executable", "Windows installer", "msi", "msp", "mst", "appx", "msix",
          "appxbundle", "msixbundle")
_register("executable", "Java program", "jar", "class")
_register("executable", "Android app", "apk")
_register("executable", "software package", "deb", "rpm", "pkg", "mpkg", "run")
_register("script", "Windows batch script", "bat", "cmd")
_register("script", "PowerShell script", "ps1", "psm1", "psd1", "ps1xml", "psc1")
_register("script", "Windows Script file", "vb", "vbs", "vbe", "js", "jse", "wsf", "wsh", "wsc",
          "sct")
_register("script", "HTML application", "hta")
_register("script", "shell script", "sh", "bash", "zsh", "csh", "ksh", "command")
_register("script", "Python script", "py", "pyw", "pyc")
_register("script", "Perl script", "pl")
_register("script", "Ruby script", "rb")
_register("script", "PHP script", "php")
_register("script", "AppleScript", "scpt", "applescript")
_register("script", "Windows registry file", "reg")
_register("script", "Windows setup information file", "inf")
_register("shortcut", "Windows shortcut", "lnk")
_register("shortcut", "internet shortcut", "url", "website", "webloc")
_register("shortcut", "Windows Explorer command", "scf", "settingcontent-ms")
_register("shortcut", "desktop launcher", "desktop")
_register("macro-document", "Word document", "docm", "dotm")
_register("macro-document", "Excel workbook", "xlsm", "xltm", "xlam", "xla", "xlm")
_register("macro-document", "PowerPoint presentation", "pptm", "potm", "ppsm", "ppam", "ppa",
          "sldm")
_register("disk-image", "disc image", "iso", "img", "udf", "nrg", "toast")
_register("disk-image", "Apple disk image", "dmg")
_register("disk-image", "virtual hard disk", "vhd", "vhdx", "vmdk", "qcow", "qcow2", "wim")
_register("archive", "compressed archive", "zip", "zipx", "7z", "rar", "gz", "tgz", "tar", "bz2",
          "tbz2", "xz", "txz", "zst", "cab", "arj", "lzh", "lha", "z", "ace", "lz", "lzma", "cpio")

_TEXT_EXTENSIONS = frozenset({"csv", "txt", "log", "md"})

_REFUSALS = {
    "executable": msg.FILE_BLOCKED_EXECUTABLE,
    "script": msg.FILE_BLOCKED_SCRIPT,
    "shortcut": msg.FILE_BLOCKED_SHORTCUT,
    "macro-document": msg.FILE_BLOCKED_MACRO_DOCUMENT,
    "disk-image": msg.FILE_BLOCKED_DISK_IMAGE,
    "archive": msg.FILE_BLOCKED_ARCHIVE,
}

_LNK_MAGIC = b"L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00F"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MSI_CLSID_DATA1 = (0x000C1084, 0x000C1086, 0x000C1082)  # installer, patch, transform
_MSI_CLSID_REST = b"\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00F"
_MACHO_MAGICS = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe",
                 b"\xca\xfe\xba\xbf", b"\xbe\xba\xfe\xca", b"\xbf\xba\xfe\xca")
_ARCHIVE_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"\x1f\x8b", "gzip archive"),
    (b"\xfd7zXZ\x00", "xz archive"),
    (b"\x28\xb5\x2f\xfd", "Zstandard archive"),
    (b"MSCF\x00\x00\x00\x00", "Windows cabinet archive"),
    (b"\x60\xea", "ARJ archive"),
    (b"\x1f\x9d", "compressed archive"),
)
_DISK_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"conectix", "virtual hard disk (VHD)"),
    (b"vhdxfile", "virtual hard disk (VHDX)"),
    (b"KDMV", "VMware disk image"),
    (b"# Disk DescriptorFile", "VMware disk image"),
    (b"QFI\xfb", "QEMU disk image"),
    (b"MSWIM\x00\x00\x00", "Windows imaging (WIM) file"),
    (b"encrcdsa", "Apple disk image"),
)
_DOCUMENT_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
    (b"II+\x00", "TIFF image"),
    (b"MM\x00+", "TIFF image"),
    (b"{\\rtf", "Rich Text document"),
    (b"ID3", "audio file (MP3)"),
)


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


def _extension(display_name: str) -> str:
    """Lower-case extension; trailing dots and spaces are ignored, as Windows does."""
    base = display_name.replace("\\", "/").rsplit("/", 1)[-1][-1000:]
    base = "".join(ch for ch in base if unicodedata.category(ch) not in ("Cf", "Cc"))
    base = base.rstrip(". ")
    if "." not in base:
        return ""
    return base.rsplit(".", 1)[1].strip().lower()


def _read_at(f: BinaryIO, offset: int, length: int) -> bytes:
    if offset < 0 or length <= 0:
        return b""
    f.seek(offset)
    return f.read(length)


def _shebang_kind(head: bytes) -> _Kind:
    line = head.split(b"\n", 1)[0].lower()
    for needle, label in (
        (b"python", "Python script"), (b"pwsh", "PowerShell script"),
        (b"powershell", "PowerShell script"), (b"perl", "Perl script"), (b"ruby", "Ruby script"),
        (b"node", "JavaScript program"), (b"php", "PHP script"), (b"osascript", "AppleScript"),
        (b"sh", "shell script"),
    ):
        if needle in line:
            return _Kind(label, "script")
    return _Kind("script", "script")


def _looks_like_text(head: bytes) -> bool:
    """Text has no NUL bytes (unless UTF-16 with a byte-order mark) and few control bytes."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    if b"\x00" in head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls * 100 <= len(head)


def _has_pe_signature(head: bytes) -> bool:
    if len(head) < 0x40:
        return False
    offset = struct.unpack_from("<I", head, 0x3C)[0]
    return head[offset : offset + 4] == b"PE\x00\x00"


def _ole_kind(f: BinaryIO, header: bytes, display_ext: str) -> _Kind:
    """Classify an OLE compound file (old Office formats, MSI) from its directory entries."""
    fallback = _Kind("Microsoft Office file (older format)", None)
    if display_ext in ("msi", "msp", "mst"):
        return _Kind("Windows installer", "executable")
    if len(header) < 512:
        return fallback
    shift = struct.unpack_from("<H", header, 0x1E)[0]
    if shift not in (9, 12):
        return fallback
    sector = 1 << shift
    per_fat = sector // 4
    difat = struct.unpack_from("<109I", header, 0x4C)
    names: list[str] = []
    root_clsid = b""
    current = struct.unpack_from("<I", header, 0x30)[0]
    seen: set[int] = set()
    while current < 0xFFFFFFFA and current not in seen and len(seen) < _MAX_OLE_DIR_SECTORS:
        seen.add(current)
        data = _read_at(f, (current + 1) * sector, sector)
        for pos in range(0, len(data) - 127, 128):
            entry = data[pos : pos + 128]
            name_len = min(struct.unpack_from("<H", entry, 0x40)[0], 64)
            name = entry[: max(name_len - 2, 0)].decode("utf-16-le", "replace")
            if entry[0x42] == 5:
                root_clsid = entry[0x50:0x60]
            if name:
                names.append(name.lower())
        fat_index = current // per_fat
        if fat_index >= len(difat) or difat[fat_index] >= 0xFFFFFFFA:
            break
        raw = _read_at(f, (difat[fat_index] + 1) * sector + (current % per_fat) * 4, 4)
        if len(raw) < 4:
            break
        current = struct.unpack("<I", raw)[0]

    if len(root_clsid) == 16:
        data1 = struct.unpack_from("<I", root_clsid, 0)[0]
        if data1 in _MSI_CLSID_DATA1 and root_clsid[4:] == _MSI_CLSID_REST:
            return _Kind("Windows installer", "executable")
    if "worddocument" in names:
        label = "Word document"
    elif "workbook" in names or "book" in names:
        label = "Excel workbook"
    elif "powerpoint document" in names:
        label = "PowerPoint presentation"
    elif "encryptedpackage" in names:
        label = "password-protected Office document"
    elif any(n.startswith("__substg1.0_") for n in names):
        label = "Outlook message"
    elif "visiodocument" in names:
        label = "Visio drawing"
    else:
        return fallback
    if any(n in ("macros", "_vba_project_cur", "vba", "_vba_project") for n in names):
        return _Kind(label, "macro-document")
    return _Kind(label, None)


class _Unchecked(Exception):
    """The file cannot be judged within this module's bounds: refused with ``template``
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
    tail = _read_at(f, tail_start, tail_len)
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or tail_len - end < _EOCD.size:
        return None
    _, disk, directory_disk, on_disk, total, directory_size, stated_start, _ = \
        _EOCD.unpack_from(tail, end)
    entries = max(on_disk, total)
    consistent = disk == directory_disk == 0 and on_disk == total
    directory_end = tail_start + end
    locator = _read_at(f, directory_end - _ZIP64_LOCATOR.size, _ZIP64_LOCATOR.size)
    if len(locator) == _ZIP64_LOCATOR.size and locator.startswith(b"PK\x06\x07"):
        _, _, located_at, _ = _ZIP64_LOCATOR.unpack(locator)
        before_locator = directory_end - _ZIP64_LOCATOR.size - _ZIP64_END.size
        consistent = consistent and located_at == before_locator
        records = []  # the record that sits before the locator is the one zipfile uses
        for offset in dict.fromkeys((before_locator, located_at)):
            if not 0 <= offset <= size - _ZIP64_END.size:
                continue
            raw = _read_at(f, offset, _ZIP64_END.size)
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


def _zip_names(f: BinaryIO, size: int, max_entries: int) -> list[str] | None:
    """Names in a ZIP's central directory; None when it is damaged. Judged from the end
    records first: a directory claiming more than ``max_entries`` entries or more than
    :data:`MAX_ARCHIVE_DIRECTORY` bytes raises :class:`_Unchecked` before any of it is read,
    as does one that turns out to hold more entries than that while it is read. So does a
    directory that other ZIP readers could find elsewhere or read differently: end records
    that disagree (:func:`_zip_directory`), or a count that is not the number of entries
    read."""
    directory = _zip_directory(f, size)
    if directory is None:
        return None
    if directory.entries > max_entries:
        raise _Unchecked(msg.KIND_ARCHIVE_TOO_BIG, msg.FILE_TOO_MANY_ENTRIES,
                         count=f"{directory.entries:,}", limit=f"{max_entries:,}")
    if directory.size > MAX_ARCHIVE_DIRECTORY:
        raise _Unchecked(msg.KIND_ARCHIVE_TOO_BIG, msg.FILE_ARCHIVE_INDEX_TOO_LARGE,
                         size_mb=_size_mb(directory.size),
                         limit_mb=_size_mb(MAX_ARCHIVE_DIRECTORY))
    ambiguous = _Unchecked(msg.KIND_DAMAGED_ZIP, msg.FILE_ZIP_AMBIGUOUS)
    if not directory.consistent:
        raise ambiguous
    if directory.start < 0:
        return None
    data = _read_at(f, directory.start, directory.size)
    if len(data) != directory.size:
        return None
    names: list[str] = []
    pos = 0
    while pos < len(data):  # as zipfile reads it: by size; the count is compared after
        if len(names) >= max_entries:
            raise _Unchecked(msg.KIND_ARCHIVE_TOO_BIG, msg.FILE_TOO_MANY_ENTRIES,
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


def _zip_kind(names: list[str] | None) -> _Kind:
    """Office documents, Java/Android/Windows apps and plain archives all start with PK."""
    if names is None:
        return _Kind(msg.KIND_DAMAGED_ZIP, "archive")
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
            return _Kind(label, "macro-document")
        return _Kind(label, None)
    if "mimetype" in members and "meta-inf/manifest.xml" in members:
        if any(_is_odf_macro(n) for n in lower):
            return _Kind("OpenDocument file", "macro-document")
        return _Kind("OpenDocument file", None)
    if "mimetype" in members and "meta-inf/container.xml" in members:
        return _Kind("EPUB e-book", None)
    if "androidmanifest.xml" in members or "classes.dex" in members:
        return _Kind("Android app", "executable")
    if "meta-inf/manifest.mf" in members or any(n.endswith(".class") for n in lower):
        return _Kind("Java program (JAR)", "executable")
    if "appxmanifest.xml" in members or "appxmetadata/appxbundlemanifest.xml" in members:
        return _Kind("Windows app package", "executable")
    return _Kind("ZIP archive", "archive")


def _disk_image_kind(f: BinaryIO, size: int) -> _Kind | None:
    """ISO/UDF markers sit at 32 KiB; DMG and fixed VHD keep a 512-byte trailer at the end."""
    for offset in (0x8001, 0x8801, 0x9001):
        if size >= offset + 5:
            marker = _read_at(f, offset, 5)
            if marker == b"CD001":
                return _Kind("ISO disc image", "disk-image")
            if marker in (b"BEA01", b"NSR02", b"NSR03", b"TEA01"):
                return _Kind("UDF disc image", "disk-image")
    if size >= 1024:
        trailer = _read_at(f, size - 512, 512)
        if trailer.startswith(b"koly"):
            return _Kind("Apple disk image", "disk-image")
        if trailer.startswith(b"conectix") or trailer[1:9] == b"conectix":
            return _Kind("virtual hard disk (VHD)", "disk-image")
    return None


def _content_kind(f: BinaryIO, head: bytes, size: int, ext: str, max_entries: int
                  ) -> _Kind | None:
    """What the bytes say the file is; None when they do not say (left to name and labels)."""
    if head.startswith(b"MZ") and (_has_pe_signature(head) or not _looks_like_text(head)):
        # Real programs have NUL bytes in their header; a text file may start "MZ".
        return _Kind("Windows executable", "executable")
    if head.startswith(b"\x7fELF"):
        return _Kind("Linux program (ELF)", "executable")
    if head.startswith(b"\xca\xfe\xba\xbe") and len(head) >= 8:
        # Same magic for Java classes and macOS "fat" binaries: Java puts its version
        # (45 or more) where a fat binary puts its (small) number of architectures.
        if struct.unpack_from(">I", head, 4)[0] < 45:
            return _Kind("macOS program", "executable")
        return _Kind("Java program", "executable")
    if head.startswith(_MACHO_MAGICS):
        return _Kind("macOS program", "executable")
    if head.startswith(b"\x00asm"):
        return _Kind("WebAssembly program", "executable")
    if head.startswith(b"dex\n"):
        return _Kind("Android program", "executable")
    if head.startswith(b"#!"):
        return _shebang_kind(head)
    if head.startswith(b"\xef\xbb\xbf#!"):
        return _shebang_kind(head[3:])
    if head.startswith(_LNK_MAGIC):
        return _Kind("Windows shortcut", "shortcut")
    if head.startswith(_OLE_MAGIC):
        return _ole_kind(f, head, ext)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _zip_kind(_zip_names(f, size, max_entries))
    for magic, label in _ARCHIVE_MAGICS:
        if head.startswith(magic):
            return _Kind(label, "archive")
    if head.startswith(b"BZh") and head[3:4].isdigit():
        return _Kind("bzip2 archive", "archive")
    if head[257:262] == b"ustar":
        return _Kind("tar archive", "archive")
    for magic, label in _DISK_MAGICS:
        if head.startswith(magic):
            return _Kind(label, "disk-image")
    disk = _disk_image_kind(f, size)
    if disk is not None:
        return disk
    text_start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text_start.startswith((b"[internetshortcut]", b"[{000214a0-0000-0000-c000-000000000046}]")):
        return _Kind("internet shortcut", "shortcut")
    if text_start.startswith(b"[shell]"):
        return _Kind("Windows Explorer command", "shortcut")
    if text_start.startswith(b"[desktop entry]"):
        return _Kind("desktop launcher", "shortcut")
    if b"%PDF-" in head[:1024]:
        return _Kind("PDF document", None)
    for magic, label in _DOCUMENT_MAGICS:
        if head.startswith(magic):
            return _Kind(label, None)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return _Kind("WebP image", None)
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"avif"):
            return _Kind("HEIC photo", None)
        return _Kind("video file", None)
    return None


def _label_from_puremagic(head: bytes) -> str | None:
    """A best-effort label for types this module has no rule for; never used to block."""
    try:
        matches = puremagic.magic_string(head)
    except Exception:  # puremagic raises PureError (and may trip on junk): no label then
        return None
    if not matches:
        return None
    name = str(getattr(matches[0], "name", "") or "").strip()
    if name.lower().endswith(" file"):
        name = name[:-5]
    return name[:60] or None


def _size_mb(size: int) -> str:
    value = size / _MB
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")


def unchecked(display_name: str, *, timed_out: bool) -> FileVerdict:
    """The refusal for a file whose check did not finish: it ran out of time, or failed."""
    template = msg.FILE_NOT_CHECKED_IN_TIME if timed_out else msg.FILE_NOT_CHECKED
    return FileVerdict(False, msg.KIND_UNCHECKED, template.format(name=_clean_name(display_name)))


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
    ext = _extension(display_name if isinstance(display_name, str) else path.name)
    blocked_set = {b.strip().lower() for b in blocked if isinstance(b, str)}
    unreadable = FileVerdict(False, msg.KIND_UNKNOWN, msg.FILE_UNREADABLE.format(name=shown))
    if not path.is_file():  # also keeps FIFOs and devices from blocking the read
        return unreadable
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            if size == 0:
                return FileVerdict(False, msg.KIND_EMPTY, msg.FILE_EMPTY.format(name=shown))
            head = _read_at(f, 0, HEAD_BYTES)
            content = _content_kind(f, head, size, ext, max_entries)
    except _Unchecked as unchecked:
        return FileVerdict(False, unchecked.kind,
                           unchecked.template.format(name=shown, **unchecked.fields))
    except (OSError, ValueError):
        return unreadable

    by_name = _EXTENSIONS.get(ext)
    if content is not None:
        kind = content.label
    elif by_name is not None and by_name.category is not None:
        kind = by_name.label
    elif _looks_like_text(head):
        kind = by_name.label if ext in _TEXT_EXTENSIONS and by_name else msg.KIND_PLAIN_TEXT
    else:
        kind = _label_from_puremagic(head) or msg.KIND_UNKNOWN

    if max_bytes is not None and size > max_bytes:
        reason = msg.FILE_TOO_LARGE.format(
            name=shown, size_mb=_size_mb(size), limit_mb=_size_mb(max(max_bytes, 0))
        )
        return FileVerdict(False, kind, reason)

    if (
        content is not None
        and content.category not in (None, "macro-document")
        and by_name is not None
        and by_name.category is None
    ):
        reason = msg.FILE_DISGUISED.format(
            name=shown, claimed=f"{_article(by_name.label)} (.{ext})", kind=_article(content.label)
        )
        return FileVerdict(False, kind, reason)

    for candidate in (content, by_name):
        if candidate is not None and candidate.category in blocked_set:
            template = _REFUSALS.get(candidate.category or "", msg.FILE_BLOCKED_OTHER)
            label = candidate.label
            shown_kind = _article(label) if candidate.category == "macro-document" else label
            return FileVerdict(False, label, template.format(name=shown, kind=shown_kind))
    return FileVerdict(True, kind, None)
