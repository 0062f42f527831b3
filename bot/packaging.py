"""Package confidential files into an AES-256 encrypted zip (WinZip AE-2).

Blocking functions: async callers run them with ``asyncio.to_thread``.

Design notes:

* Zip encrypts member *contents*, never member *names*, and a file name such as
  "Julia Smith referral.pdf" identifies a person. By default members are stored under
  neutral names ("document-1.pdf") and the original names go into an encrypted index member
  (``index.txt``), written first so the recipient sees it at the top of the listing.
* Memory stays flat whatever the file size: every member is streamed in ``CHUNK_SIZE``
  pieces into ``ZipFile.open(..., "w")``, from a plaintext file or from a seekable reader
  an :data:`Opener` gives (an upload decrypted chunk by chunk, never written out).
* Speed: content that is already compressed (JPEG, PNG, Office files, most PDFs, scans of
  noise) is stored, not deflated; deflating it costs ~50 MB/s for no gain. Everything else
  is deflated at level 1. The decision uses the file extension, then a zlib level-1 trial
  on a 256 KiB sample taken at four offsets.
* pyzipper's own AES path is slow, so members are encrypted by
  :class:`bot.winzip_aes.WinZipAesEncrypter` (the same AE-2 output, with OpenSSL), plugged
  in through an ``AESZipFile`` subclass; pyzipper itself is not patched.
* The archive is written to a temporary file in ``out_dir``, fsynced, then renamed into
  place: nobody ever sees a partial ``<reference>.zip``. On failure the temporary file is
  removed and the exception re-raised. While it is written, a thread flushes it to disk
  every ``SYNC_STEP`` bytes (:class:`_DurableFile`), so the final fsync, which still
  happens before the rename, only waits for the tail.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import tempfile
import threading
import time
import unicodedata
import zlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pyzipper
from pyzipper.zipfile_aes import AESZipInfo

from bot.messages import packaging as text
from bot.private import private_dir
from bot.winzip_aes import ArchiveWriter

__all__ = [
    "CHUNK_SIZE",
    "ArchiveMember",
    "Opener",
    "PackagedArchive",
    "build_archive",
    "neutral_name",
    "read_index",
    "sanitise_name",
]

logger = logging.getLogger(__name__)

#: Bytes read from a source (and encrypted) per step. 1 MiB amortises the per-call Python
#: overhead while keeping memory use a few MiB per archive.
CHUNK_SIZE: Final = 1 << 20
#: zlib level for members worth compressing: on text, level 1 runs ~4x faster than the
#: default 6 (about 85 vs 22 MB/s here) for output ~20 % larger.
DEFLATE_LEVEL: Final = 1
#: Store the member if a level-1 trial on the sample shrinks it by less than 10 %.
STORE_RATIO: Final = 0.9
SAMPLE_SIZE: Final = 256 * 1024
_SAMPLE_WINDOWS: Final = 4

#: Formats that are compressed internally; deflating them again wastes CPU.
COMPRESSED_EXTENSIONS: Final = frozenset(
    """
    jpg jpeg jfif png gif webp heic heif avif jp2 jxl
    zip 7z gz tgz bz2 xz zst rar cab
    docx docm xlsx xlsm pptx odt ods odp epub
    mp3 m4a aac ogg oga opus flac wma mp4 m4v mov avi mkv webm wmv
    """.split()
)

_REFERENCE_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_EXTENSION_RE: Final = re.compile(r"[a-z0-9]{1,10}")
_UNSAFE_NAME_CHARS: Final = re.compile(r'[<>:"|?*]')
_WINDOWS_RESERVED: Final = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(1, 10)}
    | {f"lpt{i}" for i in range(1, 10)}
)
_MAX_NAME_BYTES: Final = 200  # file systems allow 255 bytes; leaves room for " (2)"
_INDEX_MAX_BYTES: Final = 16 * 1024 * 1024
#: Bytes written between two background flushes of the archive to disk.
SYNC_STEP: Final = 32 << 20


#: Opens a member's plaintext as a readable, seekable binary file (closed on leaving it).
Opener = Callable[[], AbstractContextManager[Any]]


@dataclass(frozen=True)
class ArchiveMember:
    """A file to package."""

    source: Path | Opener  # a plaintext file on disk, or what opens the plaintext
    original_name: str  # the name the sender gave it (may identify a person)


@dataclass(frozen=True)
class PackagedArchive:
    """The finished archive."""

    path: Path  # <out_dir>/<reference>.zip
    size: int
    member_names: tuple[str, ...]  # names as stored in the zip, index file included (first)
    index_name: str  # name of the encrypted index member


# --- Names --------------------------------------------------------------------------------


def _basename(name: str) -> str:
    """Last path component, whichever separator the sender's system used."""
    parts = [p for p in re.split(r"[/\\]", name) if p not in ("", ".", "..")]
    return parts[-1] if parts else ""


def neutral_name(position: int, original_name: str) -> str:
    """``document-<position>.<ext>``: reveals the file type, nothing about the person.

    The extension is kept only if, lower-cased, it is 1-10 characters of ``[a-z0-9]``;
    otherwise the name has no extension.
    """
    if position < 1:
        raise ValueError("position starts at 1")
    stem = f"{text.NEUTRAL_NAME_STEM}-{position}"
    base = _basename(original_name).strip()
    dot = base.rfind(".")
    if dot > 0:
        extension = base[dot + 1 :].strip().lower()
        if _EXTENSION_RE.fullmatch(extension):
            return f"{stem}.{extension}"
    return stem


def _without_controls(name: str) -> str:
    """Drop control, format (e.g. right-to-left override) and line/paragraph separators."""
    return "".join(
        ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp")
    )


def sanitise_name(original_name: str, position: int) -> str:
    """A safe member name that keeps the sender's wording (``neutral_names=False``).

    Basename only (no directories, no ``..``), NFC, no control or bidi-override characters,
    no characters Windows refuses, no leading dots or trailing dots/spaces, no reserved
    device names, at most 200 bytes of UTF-8 (a short extension is kept when shortening).
    Falls back to ``neutral_name`` if nothing is left.
    """
    name = unicodedata.normalize("NFC", _without_controls(original_name))
    name = _basename(name)
    name = _UNSAFE_NAME_CHARS.sub("_", name)
    name = " ".join(name.split())  # tabs, odd spaces, runs of spaces -> one space
    name = name.lstrip(". ").rstrip(". ")
    if name.split(".", 1)[0].lower() in _WINDOWS_RESERVED:
        name = f"_{name}"
    return _truncate(name) or neutral_name(position, original_name)


def _truncate(name: str) -> str:
    """Shorten to ``_MAX_NAME_BYTES`` of UTF-8 without splitting a character."""
    if len(name.encode()) <= _MAX_NAME_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    suffix = f".{extension}" if dot and stem and 0 < len(extension) <= 10 else ""
    if not suffix:
        stem = name
    budget = _MAX_NAME_BYTES - len(suffix.encode())
    return stem.encode()[:budget].decode("utf-8", "ignore").rstrip(". ") + suffix


def _deduplicate(name: str, taken: set[str]) -> str:
    """``report.pdf`` -> ``report (2).pdf`` if the name (case-insensitively) is taken."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        stem, dot, extension = name, "", ""
    candidate, counter = name, 1
    while candidate.casefold() in taken:
        counter += 1
        candidate = f"{stem} ({counter}){dot}{extension}"
    taken.add(candidate.casefold())
    return candidate


def _stored_names(members: Sequence[ArchiveMember], neutral: bool, index_name: str) -> list[str]:
    taken = {index_name.casefold()}
    names = []
    for position, member in enumerate(members, start=1):
        if neutral:
            name = neutral_name(position, member.original_name)
        else:
            name = sanitise_name(member.original_name, position)
        names.append(_deduplicate(name, taken))
    return names


def _index_text(reference: str, names: Sequence[str], members: Sequence[ArchiveMember]) -> str:
    """Header line plus "<stored name><TAB><original name>" per member.

    Control characters in the original name (tabs and newlines would break the format)
    become U+FFFD.
    """
    lines = [text.INDEX_HEADER.format(reference=reference)]
    for name, member in zip(names, members, strict=True):
        original = "".join(
            "\ufffd" if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
            for ch in member.original_name
        )
        lines.append(f"{name}\t{original}")
    return "\n".join(lines) + "\n"


# --- Compress or store --------------------------------------------------------------------


def _extension(name: str) -> str:
    base = _basename(name)
    dot = base.rfind(".")
    return base[dot + 1 :].strip().lower() if dot > 0 else ""


def _read_sample(src: Any, size: int) -> bytes:
    """Up to ``SAMPLE_SIZE`` bytes from the start, middle thirds and end of the file."""
    if size <= SAMPLE_SIZE:
        data: bytes = src.read(SAMPLE_SIZE)
    else:
        window = SAMPLE_SIZE // _SAMPLE_WINDOWS
        offsets = [size * i // (_SAMPLE_WINDOWS - 1) for i in range(_SAMPLE_WINDOWS - 1)]
        offsets.append(size - window)
        pieces = []
        for offset in offsets:
            src.seek(offset)
            pieces.append(src.read(window))
        data = b"".join(pieces)
    src.seek(0)
    return data


def _should_store(src: Any, size: int, original_name: str) -> bool:
    if size == 0 or _extension(original_name) in COMPRESSED_EXTENSIONS:
        return True
    sample = _read_sample(src, size)
    if not sample:
        return True
    return len(zlib.compress(sample, DEFLATE_LEVEL)) > STORE_RATIO * len(sample)


# --- Building -----------------------------------------------------------------------------


class _DurableFile(io.FileIO):
    """The archive's temporary file: every write goes through whole, and a thread of its
    own calls ``fdatasync`` each time ``SYNC_STEP`` more bytes were written, so the disk
    works while the next members are encrypted. :meth:`finish` still fsyncs the whole file
    (and re-raises an error the thread saw, which that fsync might no longer report)."""

    def __init__(self, fd: int) -> None:
        super().__init__(fd, "wb")
        self._unsynced = 0
        self._wake = threading.Event()
        self._stopping = False
        self._error: OSError | None = None
        self._syncer = threading.Thread(target=self._sync_loop, name="archive-sync")
        self._syncer.start()

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < view.nbytes:
            done += super().write(view[done:]) or 0
        self._unsynced += done
        if self._unsynced >= SYNC_STEP:
            self._unsynced = 0
            self._wake.set()
        return done

    def finish(self) -> None:
        """Make everything written durable (fsync), or raise."""
        self._stop()
        if self._error is not None:
            raise self._error
        os.fsync(self.fileno())

    def close(self) -> None:
        self._stop()  # never close the descriptor under a running fdatasync
        super().close()

    def _stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._syncer.is_alive():
            self._syncer.join()

    def _sync_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                os.fdatasync(self.fileno())
            except OSError as error:
                self._error = error
                return


def _new_info(name: str, date_time: tuple[int, ...], *, store: bool, size: int) -> Any:
    info = AESZipInfo(name, date_time=date_time)
    info.compress_type = pyzipper.ZIP_STORED if store else pyzipper.ZIP_DEFLATED
    # pyzipper has no public per-member level when given a ZipInfo; its own write() sets
    # this same attribute.
    info._compresslevel = None if store else DEFLATE_LEVEL
    info.file_size = size  # lets pyzipper pick zip64 up front for huge members
    return info


def _write_member(zf: Any, member: ArchiveMember, name: str, date_time: tuple[int, ...]) -> None:
    source = member.source
    opened = open(source, "rb", buffering=0) if isinstance(source, Path) else source()
    with opened as src:
        size = src.seek(0, os.SEEK_END)
        src.seek(0)
        store = _should_store(src, size, member.original_name)
        info = _new_info(name, date_time, store=store, size=size)
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        with zf.open(info, "w") as dst:
            while count := src.readinto(buffer):
                dst.write(view[:count])


def _write_index(zf: Any, name: str, content: str, date_time: tuple[int, ...]) -> None:
    data = content.encode("utf-8")
    with zf.open(_new_info(name, date_time, store=False, size=len(data)), "w") as dst:
        dst.write(data)


def _check_reference(reference: str) -> None:
    if not _REFERENCE_RE.fullmatch(reference):
        raise ValueError(
            "reference must be 1-64 characters of letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )


def build_archive(
    *,
    reference: str,
    members: Sequence[ArchiveMember],
    password: str,
    out_dir: Path,
    neutral_names: bool = True,
) -> PackagedArchive:
    """Write ``<out_dir>/<reference>.zip``: every member AES-256 encrypted (WinZip AE-2).

    Member names are neutral unless ``neutral_names`` is False (then sanitised originals);
    the encrypted index maps stored names to the sender's names. ``out_dir`` is created
    (mode 0700, with any missing parents) if missing, and made 0700 if it is not.
    An existing archive with the same reference is replaced only once the new one is
    complete. Raises whatever reading a source raises (the partial file is removed).
    """
    _check_reference(reference)
    if not members:
        raise ValueError("an archive needs at least one member")
    if not password:
        raise ValueError("an archive needs a password")

    started = time.perf_counter()
    index_name = text.INDEX_FILE_NAME
    names = _stored_names(members, neutral_names, index_name)
    index = _index_text(reference, names, members)
    date_time = time.localtime()[:6]
    final_path = out_dir / f"{reference}.zip"
    private_dir(out_dir)  # 0700 whatever the umask of the process Safe Haven runs in

    fd, temp_name = tempfile.mkstemp(prefix=f".{reference}.", suffix=".partial", dir=out_dir)
    temp_path = Path(temp_name)
    try:
        with _DurableFile(fd) as raw:
            zf = ArchiveWriter(raw, "w", encryption=pyzipper.WZ_AES)
            try:
                zf.setpassword(password.encode("utf-8"))
                _write_index(zf, index_name, index, date_time)
                for member, name in zip(members, names, strict=True):
                    _write_member(zf, member, name, date_time)
            except BaseException:
                with contextlib.suppress(Exception):
                    zf.close()  # only so pyzipper does not retry from __del__
                raise
            zf.close()  # writes the central directory
            raw.finish()
        os.replace(temp_path, final_path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise

    size = final_path.stat().st_size
    logger.info(
        "packaged %s: %d members, %d bytes in %.2f s",
        reference,
        len(members),
        size,
        time.perf_counter() - started,
    )
    return PackagedArchive(
        path=final_path,
        size=size,
        member_names=(index_name, *names),
        index_name=index_name,
    )


def read_index(archive: Path, password: str) -> dict[str, str]:
    """Stored name -> original name, from the archive's encrypted index (its first member)."""
    with pyzipper.AESZipFile(archive) as zf:
        zf.setpassword(password.encode("utf-8"))
        infos = zf.infolist()
        if not infos:
            raise ValueError("archive is empty")
        with zf.open(infos[0]) as member:
            raw: bytes = member.read(_INDEX_MAX_BYTES + 1)
    if len(raw) > _INDEX_MAX_BYTES:
        raise ValueError("first member is too large to be a Safe Haven index")
    content = raw.decode("utf-8")
    lines = content.splitlines()
    if not lines or not lines[0].startswith("#"):
        raise ValueError("archive has no Safe Haven index")
    index: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            stored, _, original = line.partition("\t")
            index[stored] = original
    return index
