"""Files sent to the bot, fetched from Slack and streamed to the uploads area.

The size Slack reports is checked against the policy before anything is fetched, and the
bytes are counted again while streaming (a file may be larger than announced). The bot
token is sent only to Slack's file hosts (or the configured API host), never to whatever
URL an event names. Files are written by chunks in a worker thread, so a large upload never
blocks the event loop, and under a random folder with a fixed name: the sender's file name
is never part of a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import aiohttp

from bot import engine
from bot.events import IncomingFile
from bot.messages import conversation as cmsg
from bot.messages import slack as msg
from bot.settings import Settings
from channels.slack.api import retry_after
from handlers.intake import new_upload_path

log = logging.getLogger(__name__)
WRITE_CHUNK = 1024 * 1024
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Refused:
    """A file not fetched, with the sentence to tell the sender."""

    text: str


class DownloadError(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def file_name(info: Mapping[str, Any]) -> str:
    return str(info.get("name") or info.get("title") or msg.UNNAMED_FILE)


def too_large(name: str, size: int | None, limit: int) -> Refused:
    """The core's own refusal, so Slack says it in the same words as every channel; the
    size is "more than the limit" when it only showed while streaming."""
    shown = (engine.human_size(size) if size is not None
             else msg.MORE_THAN.format(limit=engine.human_size(limit)))
    return Refused(cmsg.FILE_REFUSED.format(reason=cmsg.FILE_TOO_LARGE.format(
        name=name, size=shown, limit=engine.human_size(limit))))


def _open_target(settings: Settings) -> tuple[Path, BinaryIO]:
    path = new_upload_path(settings)
    return path, path.open("wb")


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        shutil.rmtree(path.parent)


async def _stream(session: aiohttp.ClientSession, url: str, token: str, target: BinaryIO,
                  limit: int) -> int | None:
    """Write the body to ``target``; the byte count, or None when it passed ``limit``."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            if response.status == 429 and attempt < MAX_ATTEMPTS:
                await asyncio.sleep(retry_after(response.headers))
                continue
            if response.status == 429:
                raise DownloadError(msg.WHY_BUSY)
            if response.status in (404, 410):
                raise DownloadError(msg.WHY_EXPIRED)
            if response.status != 200:
                raise DownloadError(msg.WHY_REFUSED)
            # Without the files:read scope, or for a file the bot cannot see, Slack answers
            # 200 with its sign-in page instead of the file.
            if response.content_type == "text/html":
                raise DownloadError(msg.WHY_REFUSED)
            written = 0
            buffer = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                written += len(chunk)
                if written > limit:
                    return None
                buffer += chunk
                if len(buffer) >= WRITE_CHUNK:
                    await asyncio.to_thread(target.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await asyncio.to_thread(target.write, bytes(buffer))
            return written
    raise DownloadError(msg.WHY_BUSY)


async def download(session: aiohttp.ClientSession, info: Mapping[str, Any], *, token: str,
                   allowed_hosts: frozenset[str], settings: Settings, limit: int
                   ) -> IncomingFile | Refused:
    """Fetch one file of a message event to disk, or say why it was not."""
    name = file_name(info)
    declared = info.get("size")
    if isinstance(declared, int) and declared > limit:
        return too_large(name, declared, limit)
    url = str(info.get("url_private_download") or info.get("url_private") or "")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or parts.hostname not in allowed_hosts:
        if url:
            log.warning("not sending the bot token to file host %s", parts.hostname)
        return Refused(msg.DOWNLOAD_FAILED.format(name=name, why=msg.WHY_NOT_A_FILE))
    path, target = await asyncio.to_thread(_open_target, settings)
    try:
        written = await _stream(session, url, token, target, limit)
    except DownloadError as exc:
        await asyncio.to_thread(target.close)
        await asyncio.to_thread(_discard, path)
        return Refused(msg.DOWNLOAD_FAILED.format(name=name, why=exc.why))
    except (aiohttp.ClientError, TimeoutError) as exc:
        await asyncio.to_thread(target.close)
        await asyncio.to_thread(_discard, path)
        log.warning("downloading a file from Slack failed: %s", type(exc).__name__)
        return Refused(msg.DOWNLOAD_FAILED.format(name=name, why=msg.WHY_NETWORK))
    except BaseException:
        await asyncio.to_thread(target.close)
        await asyncio.to_thread(_discard, path)
        raise
    await asyncio.to_thread(target.close)
    if written is None:
        await asyncio.to_thread(_discard, path)
        return too_large(name, None, limit)
    return IncomingFile(name=name, path=path, size=written)
