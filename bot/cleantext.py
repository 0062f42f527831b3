"""Text a sender typed or named, made visible and one line where it enters the core.

A sender controls file names, the recipient's details, the purpose and the consent limits,
and an approver decides on what those say. So each is cleaned once, on the way in (file
names when a channel hands one over, see :class:`bot.events.IncomingFile`; answers in
:mod:`bot.answer_checks` and :mod:`bot.recipients`), with :func:`one_line`:

- control characters (C0, C1, DEL) go, and so do format characters (Unicode category
  ``Cf``): bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E/F, U+061C), zero-width
  spaces and joiners (U+200B–U+200D; so an emoji sequence joined by U+200D falls apart into
  its emoji), the word joiner, the byte-order mark, the soft hyphen, tags;
- so does every other Default_Ignorable_Code_Point (marks that show as nothing: the
  combining grapheme joiner U+034F, variation selectors U+FE00–U+FE0F and U+E0100–U+E01EF,
  Mongolian free variation selectors, Khmer inherent vowels), and every code point Unicode
  has not assigned (``Cn``: it shows as nothing or as a box, depending on the font);
- characters that show as nothing but are letters or symbols (the Hangul fillers U+3164,
  U+115F, U+1160, U+FFA0, the blank braille pattern U+2800) become spaces, as do line breaks,
  tabs and every other space; runs of spaces become one, and the ends are trimmed.

What is left is text whose every character shows, on one line: nobody can hide a word in it,
forge a line under it, or make two different texts look the same by invisible means.
Channels still escape it for their own markup; this module knows no channel.
"""

from __future__ import annotations

import unicodedata

FILE_NAME_MAX = 255   # characters: what file systems allow; longer names are clipped
EXTENSION_MAX = 16    # an extension this long or shorter survives clipping
ELLIPSIS = "…"

# Letters and symbols that render as blank space (and are used to make text look empty).
_BLANKS = frozenset("\u115f\u1160\u2800\u3164\uffa0")
# Categories that never show: controls, format characters, unpaired surrogates, code points
# not assigned (in this Python's Unicode database).
_DROPPED = frozenset(("Cc", "Cf", "Cs", "Cn"))
# Default_Ignorable_Code_Point, from DerivedCoreProperties.txt of Unicode 15.1 (the list has
# not changed since 14.0, the database of Python 3.11): characters a renderer shows as
# nothing. Most are Cf or Cn (dropped by category anyway); the marks (Mn) among them would
# otherwise survive and split a word invisibly ("J\u034fohn"). The Hangul fillers (Lo) are
# in _BLANKS and become spaces instead.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def _ignorable(ch: str) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in _DEFAULT_IGNORABLE)
_SPACES = frozenset(("Zs", "Zl", "Zp"))
# Controls that separate words or lines: a space, not nothing.
_SEPARATORS = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85")


def _visible(ch: str) -> str:
    if ch in _SEPARATORS or ch in _BLANKS:
        return " "
    category = unicodedata.category(ch)
    if category in _DROPPED or _ignorable(ch):
        return ""
    return " " if category in _SPACES else ch


def one_line(text: str) -> str:
    """``text`` (NFC) with only characters that show, on one line: see the module."""
    normal = unicodedata.normalize("NFC", text)
    if normal.isascii() and normal.isprintable():
        return " ".join(normal.split())
    return " ".join("".join(_visible(ch) for ch in normal).split())


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in "…" when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def file_name(name: str) -> str:
    """A file name as shown and recorded: :func:`one_line`, and at most
    :data:`FILE_NAME_MAX` characters, clipped with "…" before a short extension (which says
    what kind of file it is and so is kept). Empty if nothing visible is left."""
    if len(name) > FILE_NAME_MAX * 8:  # no need to clean megabytes to show 255 characters
        stem, dot, extension = name.rpartition(".")
        if not dot or len(extension) > EXTENSION_MAX:
            stem, dot, extension = name, "", ""
        name = stem[: FILE_NAME_MAX * 8] + dot + extension
    clean = one_line(name)
    if len(clean) <= FILE_NAME_MAX:
        return clean
    stem, dot, extension = clean.rpartition(".")
    if dot and stem and len(extension) <= EXTENSION_MAX:
        return clip(stem, FILE_NAME_MAX - len(extension) - 1) + dot + extension
    return clip(clean, FILE_NAME_MAX)
