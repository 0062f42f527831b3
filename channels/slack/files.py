"""Files sent to the bot, fetched from Slack and streamed to the uploads area.

The size Slack reports is checked against the policy before anything is fetched, and the
bytes are counted again while streaming (a file may be larger than announced). A file is
fetched only from Slack's file host, the host of ``SLACK_API_URL`` or one named in
``SAFEHAVEN_ALLOWED_FETCH_HOSTS`` (:mod:`bot.egress`), checked again at every redirect and
at connection time (:mod:`channels.egress`); the bot token goes only to the origin of the URL
Slack gave, never to where a redirect points. Files are written by chunks in a worker
thread, so a large upload never blocks the event loop, and under a random folder with a
fixed name: the sender's file name is never part of a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.egress import Destination, EgressPolicy
from bot.events import IncomingFile
from bot.messages import conversation as cmsg
from bot.messages import slack as msg
from bot.settings import Settings
from bot.sizes import human_size
from channels.egress import EgressRefused, check_url, checked_get
from channels.slack.api import error_code, retry_after
from channels.slack.settings import SlackSettings
from handlers.intake import new_upload_path

log = logging.getLogger(__name__)
WRITE_CHUNK = 1024 * 1024
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Refused:
    """A file not fetched, with the sentence to tell the sender; ``too_large``: for being
    over the size limit (a near miss on the record)."""

    text: str
    too_large: bool = False


class DownloadError(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def file_name(info: Mapping[str, Any]) -> str:
    return str(info.get("name") or info.get("title") or msg.UNNAMED_FILE)


def too_large(name: str, size: int | None, limit: int) -> Refused:
    """The core's own refusal, so Slack says it in the same words as every channel; the
    size is "more than the limit" when it only showed while streaming."""
    shown = (human_size(size) if size is not None
             else msg.MORE_THAN.format(limit=human_size(limit)))
    return Refused(cmsg.FILE_REFUSED.format(reason=cmsg.FILE_TOO_LARGE.format(
        name=name, size=shown, limit=human_size(limit))), too_large=True)


def egress_policy(settings: Settings, slack: SlackSettings) -> EgressPolicy:
    """Where Slack files may come from: Slack's own file host (in :mod:`bot.egress`), the
    host of ``SLACK_API_URL`` and ``SAFEHAVEN_ALLOWED_FETCH_HOSTS``."""
    return EgressPolicy.of(settings.allowed_fetch_hosts, slack.api_hosts)


def _open_target(settings: Settings) -> tuple[Path, BinaryIO]:
    path = new_upload_path(settings)
    return path, path.open("wb")


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        shutil.rmtree(path.parent)


async def _stream(session: aiohttp.ClientSession, egress: EgressPolicy, url: str, token: str,
                  target: BinaryIO, limit: int) -> int | None:
    """Write the body to ``target``; the byte count, or None when it passed ``limit``."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        async with checked_get(session, egress, Destination.SLACK_FILES, url,
                               headers={"Authorization": f"Bearer {token}"}) as response:
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
                   egress: EgressPolicy, settings: Settings, limit: int
                   ) -> IncomingFile | Refused:
    """Fetch one file of a message event to disk, or say why it was not."""
    name = file_name(info)
    declared = info.get("size")
    if isinstance(declared, int) and declared > limit:
        return too_large(name, declared, limit)
    url = str(info.get("url_private_download") or info.get("url_private") or "")
    try:
        check_url(egress, Destination.SLACK_FILES, url)
    except EgressRefused as exc:
        if url:
            log.warning("not fetching a Slack file: %s", exc)
        return Refused(msg.DOWNLOAD_FAILED.format(name=name, why=msg.WHY_NOT_A_FILE))
    path, target = await asyncio.to_thread(_open_target, settings)
    try:
        written = await _stream(session, egress, url, token, target, limit)
    except EgressRefused as exc:
        await asyncio.to_thread(target.close)
        await asyncio.to_thread(_discard, path)
        log.warning("not fetching a Slack file: %s", exc)
        return Refused(msg.DOWNLOAD_FAILED.format(name=name, why=msg.WHY_NOT_ALLOWED))
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


async def details(client: AsyncWebClient, shared: Mapping[str, Any]) -> Mapping[str, Any]:
    """Slack sends only the id of some files (``file_access: check_file_info``, e.g.
    from a Slack Connect DM); their size and download URL come from ``files.info``."""
    if shared.get("url_private_download") or shared.get("url_private") \
            or not isinstance(shared.get("id"), str):
        return shared
    try:
        response = await client.files_info(file=shared["id"])
    except SlackApiError as exc:
        log.warning("files.info refused: %s", error_code(exc))
        return shared
    found = response.get("file")
    return {**shared, **found} if isinstance(found, Mapping) else shared


async def receive(session: aiohttp.ClientSession, client: AsyncWebClient,
                  shared: Sequence[Mapping[str, Any]], *, token: str, egress: EgressPolicy,
                  settings: Settings, limit: int) -> tuple[list[IncomingFile], list[Refused]]:
    """The files of one message, fetched in turn: those on disk, and why the others were
    not (each with a sentence for the sender)."""
    incoming: list[IncomingFile] = []
    refused: list[Refused] = []
    for one in shared:
        result = await download(session, await details(client, one), token=token,
                                egress=egress, settings=settings, limit=limit)
        if isinstance(result, Refused):
            refused.append(result)
        else:
            incoming.append(result)
    return incoming, refused
