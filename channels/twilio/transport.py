"""The production password transport: SMS and voice calls through Twilio's REST API.

Uses the twilio SDK with its aiohttp-based async client. ``TWILIO_API_URL`` points every
request at another base URL (a proxy, or the fake Twilio server in tests).

Errors are turned into outcomes the scheduler understands, by whether the request can have
reached Twilio. Certainly not (connection refused, DNS, TLS, connect timeout) or not
accepted (Twilio answered 4xx/5xx): ``failed``, retryable for connection errors, 5xx and 429
but not other 4xx (an invalid or unreachable number). Anything else once the request may
have been sent (no answer within the timeout, the connection dropped mid-answer, a garbled
answer): ``unconfirmed``. Twilio has no idempotency key, so such a send is never retried
blindly: the scheduler waits for its status callback (the delivery id is in the callback
URL), then asks Twilio with :meth:`TwilioTransport.list_messages` / ``list_calls``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bot.statuses import SendStatus
from channels.twilio.settings import DEFAULT_API_URL, TwilioSettings
from handlers.ports import ProviderRecord, SendOutcome

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 15  # a whole request, answer included
CONNECT_TIMEOUT_SECONDS = 5  # getting a connection: a timeout here means nothing was sent
LIST_LIMIT = 200  # records read when reconciling (messages or calls to one number, a day)

# Failures before anything reached Twilio: safe to try again.
NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.InvalidURL)


class _RebasedHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Sends requests for any ``*.twilio.com`` host to ``api_url`` instead, with a timeout
    per request (the SDK's async client would otherwise wait up to aiohttp's default five
    minutes) whose connect phase is bounded separately, so that a timeout before the request
    left (:class:`aiohttp.ConnectionTimeoutError`) can be told from one after it was sent.
    One pooled session, created inside the running loop. Requests and answers are not
    logged: message bodies hold passwords."""

    def __init__(self, api_url: str, timeout: float) -> None:
        super().__init__(pool_connections=False)
        self.api_url = api_url
        self.client_timeout = aiohttp.ClientTimeout(
            total=timeout, connect=min(CONNECT_TIMEOUT_SECONDS, timeout))
        self.session: aiohttp.ClientSession | None = None

    def rebase(self, url: str) -> str:
        if self.api_url != DEFAULT_API_URL and url.startswith("https://"):
            host_end = url.find("/", len("https://"))
            return self.api_url + (url[host_end:] if host_end > 0 else "")
        return url

    async def request(self, method: str, url: str, params: dict[str, Any] | None = None,
                      data: dict[str, object] | None = None,
                      headers: dict[str, str] | None = None,
                      auth: tuple[str, str] | None = None, **_: Any) -> Response:
        """The SDK's request, with our timeouts (its ``timeout`` is ignored) and no
        redirects followed."""
        if self.session is None:
            self.session = aiohttp.ClientSession()
        async with self.session.request(
                method.upper(), self.rebase(url), params=params, data=data, headers=headers,
                auth=aiohttp.BasicAuth(*auth) if auth else None,
                timeout=self.client_timeout, allow_redirects=False) as response:
            text = await response.text()
            return Response(response.status, text, response.headers)


def _outcome(exc: BaseException) -> SendOutcome:
    """What a failed create means: not accepted (retry or give up), or unknown."""
    if isinstance(exc, TwilioRestException):  # Twilio answered: it did not take it
        status = int(exc.status or 0)
        detail = f"Twilio error {exc.code or status}: {exc.msg}"
        return SendOutcome(SendStatus.FAILED, detail, retryable=status >= 500 or status == 429)
    if isinstance(exc, NOT_SENT):
        return SendOutcome(SendStatus.FAILED, f"Twilio unreachable ({type(exc).__name__})",
                           retryable=True)
    return SendOutcome(SendStatus.UNCONFIRMED, f"Twilio did not confirm it ({type(exc).__name__})")


def _status(value: Any) -> str:
    return str(getattr(value, "value", value) or "").lower()


class TwilioTransport:
    name = "twilio"
    interactive_calls = True

    def __init__(self, settings: TwilioSettings, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.settings = settings
        self._http = _RebasedHttpClient(settings.api_url, timeout)
        self.client = Client(settings.account_sid, settings.auth_token, http_client=self._http)

    async def send_sms(self, *, to: str, text: str, reference: str,
                       delivery_id: int) -> SendOutcome:
        sender: dict[str, str] = (
            {"messaging_service_sid": self.settings.messaging_service_sid}
            if self.settings.messaging_service_sid else {"from_": self.settings.from_number or ""})
        try:
            message = await self.client.messages.create_async(
                to=to, body=text, status_callback=self.settings.url(
                    f"/twilio/sms/status?d={delivery_id}"), **sender)
            sid = str(message.sid or "")
        except Exception as exc:  # classified: anything after sending may be an accepted SMS
            return _outcome(exc)
        if not sid:  # accepted (2xx) without saying which message it is
            return SendOutcome(SendStatus.UNCONFIRMED, "Twilio did not confirm it (no message id)")
        return SendOutcome(SendStatus.SENT, provider_sid=sid)

    async def place_call(self, *, to: str, extension: str | None,
                         script: Sequence[str] | None, reference: str,
                         delivery_id: int) -> SendOutcome:
        """Place the password call; its steps come back to ``/twilio/voice/<id>/...``.
        Why machine detection is off or asynchronous: docs/voice.md."""
        if not self.settings.from_number:
            return SendOutcome(SendStatus.FAILED, "voice calls need TWILIO_FROM_NUMBER to be set")
        steps = f"/twilio/voice/{delivery_id}"
        extra: dict[str, Any] = {}
        if extension:
            # Wait for the switchboard to answer, then dial the extension. No machine
            # detection: it would judge the switchboard's recorded greeting, not the person.
            extra["send_digits"] = "wwww" + extension
        else:
            # Detection in the background: the call speaks at once and is never ended on a
            # guess; the verdict only explains to the sender why no code came back.
            extra.update(machine_detection="Enable", async_amd="true",
                         async_amd_status_callback=self.settings.url(f"{steps}/amd"),
                         async_amd_status_callback_method="POST")
        try:
            call = await self.client.calls.create_async(
                to=to, from_=self.settings.from_number,
                url=self.settings.url(f"{steps}/answer"), method="POST",
                status_callback=self.settings.url(f"{steps}/status"),
                status_callback_method="POST", timeout=30, **extra)
            sid = str(call.sid or "")
        except Exception as exc:  # classified, as for SMS
            return _outcome(exc)
        if not sid:
            return SendOutcome(SendStatus.UNCONFIRMED, "Twilio did not confirm it (no call id)")
        return SendOutcome(SendStatus.SENT, provider_sid=sid)

    # --- reconciliation: what Twilio holds, for an unconfirmed attempt ----------------------

    async def list_messages(self, *, to: str, since: datetime,
                            reference: str) -> list[ProviderRecord]:
        """The latest messages to ``to``, newest first; the caller keeps those created
        since ``since``. Not filtered by ``DateSent``: a message Twilio has accepted but
        still holds in its queue has no send date yet, and is exactly the one to find.
        Raises when Twilio cannot be asked."""
        found = await self.client.messages.list_async(to=to, limit=LIST_LIMIT)
        records: list[ProviderRecord] = []
        for m in found:
            body = m.body or ""
            records.append(ProviderRecord(
                sid=str(m.sid), status=_status(m.status),
                created_at=m.date_created or m.date_sent,
                mentions_reference=(reference in body) if body else None,
                error=str(m.error_code) if m.error_code else None))
        return records

    async def list_calls(self, *, to: str, since: datetime) -> list[ProviderRecord]:
        """The latest calls to ``to``, newest first (not filtered by start time: a call
        still queued or ringing has none); the caller keeps those created since ``since``."""
        found = await self.client.calls.list_async(to=to, limit=LIST_LIMIT)
        return [ProviderRecord(sid=str(c.sid), status=_status(c.status),
                               created_at=c.date_created or c.start_time) for c in found]

    async def close(self) -> None:
        if self._http.session is not None:
            await self._http.session.close()
