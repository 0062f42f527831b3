"""The Slack Web API calls Safe Haven makes, with the failures that matter handled.

Rate limits (HTTP 429) are retried after the ``Retry-After`` Slack gives; a DM channel that
has gone (``not_in_channel``, ``channel_not_found``) is reopened once; every other error is
raised as :class:`SlackApiError` and logged by its error code only, because Slack echoes
request fields (message text) in error bodies and those may hold personal data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.messages import slack as msg
from channels.slack.blocks import Block, Outgoing, Post, Upload, context, escape, sections
from channels.slack.handback import ArchiveGone, ArchiveSource, UploadRefused, upload_archive

log = logging.getLogger(__name__)
GONE = ("not_in_channel", "channel_not_found", "is_archived")
MAX_RETRY_AFTER = 60.0


def error_code(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    return str(data.get("error", "unknown")) if isinstance(data, Mapping) else "unknown"


def retry_after(headers: Mapping[str, Any]) -> float:
    """Seconds Slack asks us to wait, from a ``Retry-After`` header (default 1, capped)."""
    raw: Any = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if isinstance(raw, list | tuple):
        raw = raw[0] if raw else None
    try:
        seconds = float(raw) if raw is not None else 1.0
    except (TypeError, ValueError):
        seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class RetryAfterHandler(AsyncRetryHandler):
    """Retry a rate-limited call after exactly the wait Slack asked for.

    slack_sdk's own handler adds up to a second of random jitter to every wait; we honour
    the header as given (capped), which is what Slack documents and keeps tests fast. Up to
    ten times a call (the SDK's default is three): the work after an acknowledgement has no
    deadline, and a burst of conversations can meet several limits in a row, where giving up
    would leave a person without their next question."""

    def __init__(self, max_retry_count: int = 10) -> None:
        super().__init__(max_retry_count=max_retry_count)

    async def _can_retry_async(self, *, state: RetryState, request: HttpRequest,
                               response: HttpResponse | None = None,
                               error: Exception | None = None) -> bool:
        return response is not None and response.status_code == 429

    async def prepare_for_next_attempt_async(self, *, state: RetryState, request: HttpRequest,
                                             response: HttpResponse | None = None,
                                             error: Exception | None = None) -> None:
        state.next_attempt_requested = True
        wait = retry_after(response.headers if response is not None else {})
        log.warning("Slack rate limit on %s: retrying in %.1f s", request.url.rsplit("/", 1)[-1],
                    wait)
        await asyncio.sleep(wait)
        state.increment_current_attempt()


def retry_handlers() -> list[AsyncRetryHandler]:
    return [AsyncConnectionErrorRetryHandler(), RetryAfterHandler()]


def _upload_failed(upload: Upload, exc: Exception) -> str:
    """What the sender is told when their archive could not be put in the chat."""
    if isinstance(exc, ArchiveGone):
        log.error("archive of %s no longer kept: nothing to upload", upload.reference)
        return msg.ARCHIVE_GONE.format(reference=upload.reference)
    error = error_code(exc) if isinstance(exc, SlackApiError) else str(exc)
    log.error("archive upload refused by Slack: %s", error)
    return msg.UPLOAD_FAILED.format(filename=upload.filename, error=error,
                                    reference=upload.reference)


class SlackApi:
    """The calls the channel makes, on one shared :class:`AsyncWebClient`."""

    def __init__(self, client: AsyncWebClient, archives: ArchiveSource | None = None) -> None:
        self.client = client
        self.archives = archives  # where a hand-back reads its archive
        self._dm: dict[str, str] = {}

    async def open_dm(self, user: str, *, fresh: bool = False) -> str:
        """The id of the direct message between the bot and ``user`` (a Slack user id)."""
        if not fresh and user in self._dm:
            return self._dm[user]
        response = await self.client.conversations_open(users=user)
        channel = str((response.get("channel") or {}).get("id", ""))
        self._dm[user] = channel
        return channel

    async def _to_dm(self, channel: str, user: str | None, call: Any) -> Any:
        """Run ``call(channel)``; if the DM is gone, reopen it once and try again."""
        try:
            return await call(channel)
        except SlackApiError as exc:
            if user is None or error_code(exc) not in GONE:
                raise
            log.warning("Slack said %s for a direct message; reopening it", error_code(exc))
            return await call(await self.open_dm(user, fresh=True))

    async def post(self, channel: str, post: Post, *, user: str | None = None,
                   thread_ts: str | None = None, broadcast: bool = False) -> str:
        async def call(target: str) -> Any:
            extra: dict[str, Any] = {}
            if thread_ts:
                extra["thread_ts"] = thread_ts
                if broadcast:
                    extra["reply_broadcast"] = True
            return await self.client.chat_postMessage(channel=target, text=post.text,
                                                      blocks=post.blocks, unfurl_links=False,
                                                      unfurl_media=False, **extra)

        response = await self._to_dm(channel, user, call)
        return str(response.get("ts", ""))

    async def update(self, channel: str, ts: str, blocks: Sequence[Block], text: str) -> None:
        await self.client.chat_update(channel=channel, ts=ts, blocks=list(blocks), text=text)

    async def ephemeral(self, channel: str, user: str, text: str) -> None:
        await self.client.chat_postEphemeral(channel=channel, user=user, text=text,
                                             blocks=[context(text)])

    async def upload(self, channel: str, upload: Upload, *, user: str | None = None,
                     thread_ts: str | None = None) -> None:
        """Stream the archive from the object store to Slack, then share it here."""
        if self.archives is None:
            raise ArchiveGone(upload.reference)
        file_id = await upload_archive(self.client, self.archives, reference=upload.reference,
                                       filename=upload.filename)

        async def call(target: str) -> Any:
            extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
            return await self.client.files_completeUploadExternal(
                files=[{"id": file_id, "title": upload.filename}], channel_id=target,
                initial_comment=upload.caption, **extra)

        await self._to_dm(channel, user, call)

    async def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        await self.client.views_open(trigger_id=trigger_id, view=dict(view))

    async def message_blocks(self, channel: str, ts: str) -> list[Block] | None:
        """The blocks of one message we posted (to amend it in place), or None."""
        try:
            response = await self.client.conversations_history(channel=channel, latest=ts,
                                                               inclusive=True, limit=1)
        except SlackApiError as exc:
            log.warning("could not read back a message: %s", error_code(exc))
            return None
        for message in response.get("messages") or []:
            if isinstance(message, Mapping) and message.get("ts") == ts:
                blocks = message.get("blocks")
                return list(blocks) if isinstance(blocks, list) else None
        return None

    async def deliver(self, channel: str, items: Sequence[Outgoing], *,
                      user: str | None = None, thread_ts: str | None = None,
                      broadcast_first: bool = False) -> list[tuple[Outgoing, str | None]]:
        """Post a turn's messages in order; returns each with its ts (None for uploads)."""
        posted: list[tuple[Outgoing, str | None]] = []
        for i, item in enumerate(items):
            if isinstance(item, Upload):
                try:
                    await self.upload(channel, item, user=user, thread_ts=thread_ts)
                except (SlackApiError, UploadRefused, ArchiveGone) as exc:
                    # Say so and carry on: the email text and the password plan still matter.
                    text = _upload_failed(item, exc)
                    item = Post(sections(text), escape(text))
                    await self.post(channel, item, user=user, thread_ts=thread_ts)
                posted.append((item, None))
            else:
                ts = await self.post(channel, item, user=user, thread_ts=thread_ts,
                                     broadcast=broadcast_first and i == 0)
                posted.append((item, ts))
        return posted
