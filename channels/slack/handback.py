"""Handing an archive back in Slack, streamed from the shared object store.

Slack's external upload: ``files.getUploadURLExternal`` (the file name and its length),
the bytes POSTed to the URL it gives, chunk by chunk with a Content-Length (never the whole
archive in memory), then ``files.completeUploadExternal`` shares it in the conversation.
Whichever replica renders the :class:`bot.replies.FileReply` reads the archive from the
store (:func:`handlers.archive_reads.open_archive`), so it need not be the one that
packaged it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from handlers.archive_reads import OpenArchive

ArchiveSource = Callable[[str], Awaitable[OpenArchive | None]]
UPLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)


class ArchiveGone(Exception):
    """The archive is no longer kept (retention, a cancel): there is nothing to upload."""


class UploadRefused(Exception):
    """Slack's upload URL did not take the bytes; the message is a short reason (the HTTP
    status or the error's type), never a body Slack echoed."""


async def _post(url: str, archive: OpenArchive) -> None:
    headers = {"Content-Type": "application/octet-stream",
               "Content-Length": str(archive.size)}
    try:
        async with aiohttp.ClientSession(timeout=UPLOAD_TIMEOUT) as http, \
                http.post(url, data=archive.chunks, headers=headers) as response:
            if response.status != 200:
                raise UploadRefused(f"HTTP {response.status}")
    except aiohttp.ClientError as exc:
        raise UploadRefused(type(exc).__name__) from None


async def upload_archive(client: AsyncWebClient, archives: ArchiveSource, *,
                         reference: str, filename: str) -> str:
    """Upload the transfer's archive to Slack (not yet shared anywhere); its Slack file id.
    :class:`ArchiveGone` when it is not kept; :class:`UploadRefused` or
    ``slack_sdk.errors.SlackApiError`` when Slack refuses it."""
    archive = await archives(reference)
    if archive is None:
        raise ArchiveGone(reference)
    try:
        got = await client.files_getUploadURLExternal(filename=filename, length=archive.size)
        await _post(str(got["upload_url"]), archive)
    finally:
        await archive.chunks.aclose()
    return str(got["file_id"])
