"""What a file's bytes say it is: programs, scripts, shortcuts, disk images, archives and
documents by their magic numbers, old Office files and installers by their OLE directory,
and ZIPs by their entry names (:mod:`bot.zip_directory`).

Only the head (a few KiB) and a few small reads at fixed offsets are looked at: the OLE
directory, ISO and DMG markers, a ZIP's end records and directory.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import puremagic

from bot.file_kinds import FileKind
from bot.zip_directory import read_at, zip_kind, zip_names

_MAX_OLE_DIR_SECTORS = 64
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


def _shebang_kind(head: bytes) -> FileKind:
    line = head.split(b"\n", 1)[0].lower()
    for needle, label in (
        (b"python", "Python script"), (b"pwsh", "PowerShell script"),
        (b"powershell", "PowerShell script"), (b"perl", "Perl script"), (b"ruby", "Ruby script"),
        (b"node", "JavaScript program"), (b"php", "PHP script"), (b"osascript", "AppleScript"),
        (b"sh", "shell script"),
    ):
        if needle in line:
            return FileKind(label, "script")
    return FileKind("script", "script")


def looks_like_text(head: bytes) -> bool:
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


def _ole_kind(f: BinaryIO, header: bytes, display_ext: str) -> FileKind:
    """Classify an OLE compound file (old Office formats, MSI) from its directory entries."""
    fallback = FileKind("Microsoft Office file (older format)", None)
    if display_ext in ("msi", "msp", "mst"):
        return FileKind("Windows installer", "executable")
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
        data = read_at(f, (current + 1) * sector, sector)
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
        raw = read_at(f, (difat[fat_index] + 1) * sector + (current % per_fat) * 4, 4)
        if len(raw) < 4:
            break
        current = struct.unpack("<I", raw)[0]

    if len(root_clsid) == 16:
        data1 = struct.unpack_from("<I", root_clsid, 0)[0]
        if data1 in _MSI_CLSID_DATA1 and root_clsid[4:] == _MSI_CLSID_REST:
            return FileKind("Windows installer", "executable")
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
        return FileKind(label, "macro-document")
    return FileKind(label, None)


def _disk_image_kind(f: BinaryIO, size: int) -> FileKind | None:
    """ISO/UDF markers sit at 32 KiB; DMG and fixed VHD keep a 512-byte trailer at the end."""
    for offset in (0x8001, 0x8801, 0x9001):
        if size >= offset + 5:
            marker = read_at(f, offset, 5)
            if marker == b"CD001":
                return FileKind("ISO disc image", "disk-image")
            if marker in (b"BEA01", b"NSR02", b"NSR03", b"TEA01"):
                return FileKind("UDF disc image", "disk-image")
    if size >= 1024:
        trailer = read_at(f, size - 512, 512)
        if trailer.startswith(b"koly"):
            return FileKind("Apple disk image", "disk-image")
        if trailer.startswith(b"conectix") or trailer[1:9] == b"conectix":
            return FileKind("virtual hard disk (VHD)", "disk-image")
    return None


def content_kind(f: BinaryIO, head: bytes, size: int, ext: str, max_entries: int
                  ) -> FileKind | None:
    """What the bytes say the file is; None when they do not say (left to name and labels)."""
    if head.startswith(b"MZ") and (_has_pe_signature(head) or not looks_like_text(head)):
        # Real programs have NUL bytes in their header; a text file may start "MZ".
        return FileKind("Windows executable", "executable")
    if head.startswith(b"\x7fELF"):
        return FileKind("Linux program (ELF)", "executable")
    if head.startswith(b"\xca\xfe\xba\xbe") and len(head) >= 8:
        # Same magic for Java classes and macOS "fat" binaries: Java puts its version
        # (45 or more) where a fat binary puts its (small) number of architectures.
        if struct.unpack_from(">I", head, 4)[0] < 45:
            return FileKind("macOS program", "executable")
        return FileKind("Java program", "executable")
    if head.startswith(_MACHO_MAGICS):
        return FileKind("macOS program", "executable")
    if head.startswith(b"\x00asm"):
        return FileKind("WebAssembly program", "executable")
    if head.startswith(b"dex\n"):
        return FileKind("Android program", "executable")
    if head.startswith(b"#!"):
        return _shebang_kind(head)
    if head.startswith(b"\xef\xbb\xbf#!"):
        return _shebang_kind(head[3:])
    if head.startswith(_LNK_MAGIC):
        return FileKind("Windows shortcut", "shortcut")
    if head.startswith(_OLE_MAGIC):
        return _ole_kind(f, head, ext)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return zip_kind(zip_names(f, size, max_entries))
    for magic, label in _ARCHIVE_MAGICS:
        if head.startswith(magic):
            return FileKind(label, "archive")
    if head.startswith(b"BZh") and head[3:4].isdigit():
        return FileKind("bzip2 archive", "archive")
    if head[257:262] == b"ustar":
        return FileKind("tar archive", "archive")
    for magic, label in _DISK_MAGICS:
        if head.startswith(magic):
            return FileKind(label, "disk-image")
    disk = _disk_image_kind(f, size)
    if disk is not None:
        return disk
    text_start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text_start.startswith((b"[internetshortcut]", b"[{000214a0-0000-0000-c000-000000000046}]")):
        return FileKind("internet shortcut", "shortcut")
    if text_start.startswith(b"[shell]"):
        return FileKind("Windows Explorer command", "shortcut")
    if text_start.startswith(b"[desktop entry]"):
        return FileKind("desktop launcher", "shortcut")
    if b"%PDF-" in head[:1024]:
        return FileKind("PDF document", None)
    for magic, label in _DOCUMENT_MAGICS:
        if head.startswith(magic):
            return FileKind(label, None)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return FileKind("WebP image", None)
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"avif"):
            return FileKind("HEIC photo", None)
        return FileKind("video file", None)
    return None


def label_from_puremagic(head: bytes) -> str | None:
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
