"""Moving files between Teams and the server without blocking the event loop.

Incoming files are streamed from their ``downloadUrl`` (a short-lived, pre-authorised
OneDrive link Teams puts in the activity) into the uploads area, stopping as soon as they
pass the policy's size limit. The archive goes back to the sender's OneDrive by the upload
session Teams opens when they accept the file consent card: streamed from the shared object
store and ``PUT`` in chunks, each with its ``Content-Range``. Disk writes run in worker
threads.

Both URLs come from the activity, so both must be on the Teams file hosts of
:mod:`bot.egress` (or ``SAFEHAVEN_ALLOWED_FETCH_HOSTS``): a download follows redirects only
to such hosts, an upload follows none.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from io import BufferedWriter

import aiohttp

from bot.egress import Destination, EgressPolicy
from bot.events import IncomingFile
from bot.settings import Settings
from channels.egress import EgressRefused, check_url, checked_get, refusal_in
from handlers.intake import new_upload_path
from handlers.transfers import delete_plaintext

DOWNLOAD_CHUNK = 1024 * 1024
# OneDrive upload sessions want chunks in multiples of 320 KiB, under 60 MiB each.
UPLOAD_CHUNK = 320 * 1024 * 16
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)


class TransferFailed(RuntimeError):
    """A download or upload did not complete; the message is safe to log."""


class NotAllowed(TransferFailed):
    """The URL, a redirect or the address it resolves to is not on the allow-list."""


@dataclass(frozen=True)
class TooLarge:
    name: str


def check_file_url(egress: EgressPolicy, url: str) -> None:
    """:class:`NotAllowed` unless ``url`` is on a Teams file host."""
    try:
        check_url(egress, Destination.TEAMS_FILES, url)
    except EgressRefused as exc:
        raise NotAllowed(f"not fetched or sent: {exc}") from None


async def download(session: aiohttp.ClientSession, egress: EgressPolicy, *, url: str,
                   name: str, settings: Settings, max_bytes: int) -> IncomingFile | TooLarge:
    """Stream one file into a new upload folder; nothing is left behind on failure."""
    check_file_url(egress, url)
    target = await asyncio.to_thread(new_upload_path, settings)
    handle: BufferedWriter | None = None
    complete = False
    try:
        async with checked_get(session, egress, Destination.TEAMS_FILES, url,
                               timeout=TIMEOUT) as response:
            if response.status != 200:
                raise TransferFailed(f"download answered HTTP {response.status}")
            if response.content_length is not None and response.content_length > max_bytes:
                return TooLarge(name)
            handle = await asyncio.to_thread(target.open, "wb")
            size = 0
            async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    return TooLarge(name)
                await asyncio.to_thread(handle.write, chunk)
        await asyncio.to_thread(handle.close)
        complete = True
        return IncomingFile(name=name, path=target, size=size)
    except EgressRefused as exc:
        raise NotAllowed(f"not fetched: {exc}") from None
    except aiohttp.ClientError as exc:
        raise TransferFailed(f"download failed ({type(exc).__name__})") from None
    finally:
        if handle is not None and not handle.closed:
            await asyncio.to_thread(handle.close)
        if not complete:
            await asyncio.to_thread(delete_plaintext, [str(target)])


async def _ranges(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """``chunks`` cut into pieces of exactly ``size`` bytes (the last may be shorter)."""
    pending = bytearray()
    async for piece in chunks:
        pending += piece
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


async def upload(session: aiohttp.ClientSession, egress: EgressPolicy, *, url: str,
                 chunks: AsyncIterator[bytes], size: int, chunk_bytes: int = UPLOAD_CHUNK
                 ) -> None:
    """Upload ``size`` bytes streamed from ``chunks`` (the archive, read from the object
    store) to an upload session in ranges ``bytes start-end/size`` of ``chunk_bytes``."""
    check_file_url(egress, url)
    start = 0
    async for data in _ranges(chunks, chunk_bytes):
        end = start + len(data) - 1
        if end >= size:
            raise TransferFailed("the archive is longer than its recorded size")
        headers = {"Content-Range": f"bytes {start}-{end}/{size}",
                   "Content-Type": "application/octet-stream"}
        try:
            async with session.put(url, data=data, headers=headers, timeout=TIMEOUT,
                                   allow_redirects=False) as response:
                await response.read()
                if response.status not in (200, 201, 202):
                    raise TransferFailed(f"upload answered HTTP {response.status}")
        except aiohttp.ClientError as exc:
            refused = refusal_in(exc)
            if refused is not None:
                raise NotAllowed(f"not sent: {refused}") from None
            raise TransferFailed(f"upload failed ({type(exc).__name__})") from None
        start = end + 1
    if start < size:
        raise TransferFailed("the archive is shorter than its recorded size")
