"""What a file is said to be: a label and the category a policy may block
(:class:`FileKind`), and what a file name's extension claims (:data:`EXTENSIONS`,
:func:`extension`). Used by :mod:`bot.filecheck` to compare a file's name with its content.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class FileKind:
    """A label for messages and its category (None for an ordinary document)."""

    label: str
    category: str | None  # one of BLOCKABLE_KINDS, or None for ordinary documents



# What a file name's extension claims. Ordinary documents (category None) are the names a
# disguised file hides behind; the others are blocked by name even when content is harmless,
# because the recipient's computer decides what to do by the name.
EXTENSIONS: dict[str, FileKind] = {}


def _register(category: str | None, label: str, *exts: str) -> None:
    for ext in exts:
        EXTENSIONS[ext] = FileKind(label, category)


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

TEXT_EXTENSIONS = frozenset({"csv", "txt", "log", "md"})


def extension(display_name: str) -> str:
    """Lower-case extension; trailing dots and spaces are ignored, as Windows does."""
    base = display_name.replace("\\", "/").rsplit("/", 1)[-1][-1000:]
    base = "".join(ch for ch in base if unicodedata.category(ch) not in ("Cf", "Cc"))
    base = base.rstrip(". ")
    if "." not in base:
        return ""
    return base.rsplit(".", 1)[1].strip().lower()
