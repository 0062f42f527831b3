"""Reading a transfer's encrypted archive back, from any process: the portal download, the
sender's ``archive REF`` and the chat hand-backs (Slack upload, Teams file consent).

The archive is the object ``archive_key(reference)`` in the shared store
(``Services.objects``), so a replica that did not package it serves it all the same. An
archive packaged before archives went into the store is still read from the packaging
host's archives folder (``<var>/archives/<reference>.zip``), on that host only. Nothing is
read whole into memory: the bytes come as a stream of chunks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bot.chunks import read_chunks
from bot.objects import ObjectKey, ObjectNotFound, ObjectStore, archive_key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OpenArchive:
    """An archive ready to be streamed: its size (for a Content-Length) and its bytes.
    Consume ``chunks`` once, and close it (``aclose``) when done or stopping early."""

    reference: str
    size: int
    chunks: AsyncGenerator[bytes, None]

    @property
    def filename(self) -> str:
        return f"{self.reference}.zip"


async def _from(first: bytes, rest: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """``first`` then the rest of ``rest``; closing this closes ``rest``."""
    try:
        if first:
            yield first
        async for piece in rest:
            yield piece
    finally:
        await _close(rest)


async def _close(chunks: AsyncIterator[bytes]) -> None:
    """Close a stream of chunks (an async generator holds a file or a connection open)."""
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


async def _open_stored(objects: ObjectStore, key: ObjectKey
                       ) -> tuple[int, AsyncGenerator[bytes, None]] | None:
    """The object at ``key``, its first chunk already read so a missing object is known
    before anything is promised (a Content-Length, a consent card); None when there is none."""
    info = await objects.head(key)
    if info is None:
        return None
    chunks = objects.get(key)
    try:
        first = await anext(chunks, b"")
    except ObjectNotFound:  # deleted between the head and the read
        await _close(chunks)
        return None
    return info.size, _from(first, chunks)


def legacy_path(archives_dir: Path, reference: str) -> Path:
    """Where a host kept an archive it packaged before archives went into the store."""
    return archives_dir / f"{reference}.zip"


async def open_archive(objects: ObjectStore, archives_dir: Path, reference: str
                       ) -> OpenArchive | None:
    """The transfer's archive, streamed from the object store (or, for one packaged before
    that, from this host's archives folder); None when neither has it. Raises
    :class:`bot.objects.ObjectStoreError` when the store itself fails."""
    stored = await _open_stored(objects, archive_key(reference))
    if stored is not None:
        return OpenArchive(reference, stored[0], stored[1])
    path = legacy_path(archives_dir, reference)
    try:
        size = path.stat().st_size if path.is_file() else None
    except OSError:
        size = None
    if size is None:
        return None
    return OpenArchive(reference, size, _from(b"", read_chunks(path)))


async def archive_size(objects: ObjectStore, archives_dir: Path, reference: str) -> int | None:
    """The archive's size if it is still kept (store or legacy folder), without reading it."""
    info = await objects.head(archive_key(reference))
    if info is not None:
        return info.size
    path = legacy_path(archives_dir, reference)
    return path.stat().st_size if path.is_file() else None
