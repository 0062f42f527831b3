"""Local files as async streams of chunks, and back: the glue between a host's own disk (a
downloaded upload, a finished archive, an envelope copied down for packaging) and the
object store. Blocking reads and writes run in worker threads, one chunk at a time."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import IO

from bot.private import open_private

FILE_CHUNK = 1024 * 1024


async def read_chunks(path: Path, *, chunk_size: int = FILE_CHUNK) -> AsyncIterator[bytes]:
    """The bytes of the file at ``path``, ``chunk_size`` at a time."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while piece := await asyncio.to_thread(handle.read, chunk_size):
            yield piece
    finally:
        handle.close()


async def write_chunks(chunks: AsyncIterable[bytes], path: Path) -> int:
    """Write the bytes of ``chunks`` to ``path`` (created or replaced, 0600, flushed to disk)
    and return how many; on any failure the file is removed."""
    handle = await asyncio.to_thread(open_private, path, "wb")
    size = 0
    try:
        async for piece in chunks:
            await asyncio.to_thread(handle.write, piece)
            size += len(piece)
        await asyncio.to_thread(handle.flush)
        await asyncio.to_thread(os.fsync, handle.fileno())
    except BaseException:
        await asyncio.shield(asyncio.to_thread(_discard, handle, path))
        raise
    handle.close()
    return size


def _discard(handle: IO[bytes], path: Path) -> None:
    handle.close()
    path.unlink(missing_ok=True)
