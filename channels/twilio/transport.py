"""The production password transport: SMS and voice calls through Twilio's REST API.

Uses the twilio SDK with its aiohttp-based async client. ``TWILIO_API_URL`` points every
request at another base URL (a proxy, or the fake Twilio server in tests). Errors are turned
into outcomes the scheduler understands: 5xx, 429 and timeouts are retryable; other 4xx
(an invalid or unreachable number) are not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from channels.twilio.settings import DEFAULT_API_URL, TwilioSettings
from handlers.ports import SendOutcome

TIMEOUT_SECONDS = 15


class _RebasedHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Sends requests for any ``*.twilio.com`` host to ``api_url`` instead, with a total
    timeout per request (the SDK's async client would otherwise wait up to aiohttp's
    default five minutes), on one pooled session created inside the running loop."""

    def __init__(self, api_url: str, timeout: float) -> None:
        super().__init__(pool_connections=False)
        self.api_url = api_url
        self.request_timeout = timeout
        self.session: aiohttp.ClientSession | None = None

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.request_timeout
        if self.api_url != DEFAULT_API_URL and url.startswith("https://"):
            host_end = url.find("/", len("https://"))
            url = self.api_url + (url[host_end:] if host_end > 0 else "")
        return await super().request(method, url, *args, **kwargs)


def _outcome(exc: Exception) -> SendOutcome:
    if isinstance(exc, TwilioRestException):
        status = int(exc.status or 0)
        detail = f"Twilio error {exc.code or status}: {exc.msg}"
        return SendOutcome("failed", detail, retryable=status >= 500 or status == 429)
    return SendOutcome("failed", f"Twilio unreachable ({type(exc).__name__})", retryable=True)


class TwilioTransport:
    name = "twilio"
    interactive_calls = True

    def __init__(self, settings: TwilioSettings, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.settings = settings
        self._http = _RebasedHttpClient(settings.api_url, timeout)
        self.client = Client(settings.account_sid, settings.auth_token, http_client=self._http)

    def _url(self, path: str) -> str:
        return f"{self.settings.public_url}{path}"

    async def send_sms(self, *, to: str, text: str, reference: str,
                       delivery_id: int) -> SendOutcome:
        sender: dict[str, str] = (
            {"messaging_service_sid": self.settings.messaging_service_sid}
            if self.settings.messaging_service_sid else {"from_": self.settings.from_number or ""})
        try:
            message = await self.client.messages.create_async(
                to=to, body=text, status_callback=self._url("/twilio/sms/status"), **sender)
        except (TimeoutError, TwilioRestException, aiohttp.ClientError) as exc:
            return _outcome(exc)
        return SendOutcome("sent", provider_sid=str(message.sid))

    async def place_call(self, *, to: str, extension: str | None,
                         script: Sequence[str] | None, reference: str,
                         delivery_id: int) -> SendOutcome:
        if not self.settings.from_number:
            return SendOutcome("failed", "voice calls need TWILIO_FROM_NUMBER to be set")
        extra: dict[str, Any] = {}
        if extension:
            # Wait for the switchboard to answer, then dial the extension.
            extra["send_digits"] = "wwww" + extension
        try:
            call = await self.client.calls.create_async(
                to=to, from_=self.settings.from_number,
                url=self._url(f"/twilio/voice/{delivery_id}/answer"), method="POST",
                status_callback=self._url(f"/twilio/voice/{delivery_id}/status"),
                status_callback_method="POST", machine_detection="Enable", timeout=30,
                **extra)
        except (TimeoutError, TwilioRestException, aiohttp.ClientError) as exc:
            return _outcome(exc)
        return SendOutcome("sent", provider_sid=str(call.sid))

    async def close(self) -> None:
        if self._http.session is not None:
            await self._http.session.close()
