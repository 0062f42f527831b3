"""Twilio settings from the environment; absent settings mean "use the console transport"."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.egress import service_url_problem
from bot.settings import SettingsError

DEFAULT_API_URL = "https://api.twilio.com"


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str
    auth_token: str
    from_number: str | None
    messaging_service_sid: str | None
    public_url: str  # the URL Twilio reaches this server at: callbacks and signatures
    api_url: str

    def url(self, path: str) -> str:
        """The absolute URL Twilio is given for one of our ``/twilio/...`` paths (with its
        query string, if any): the public URL, path prefix included, then ``path``. Every URL
        handed to Twilio (call and SMS creation, TwiML) is made here, because Twilio resolves
        a relative one against the host alone, dropping a prefix such as ``/safehaven``, and
        signs its request for the URL it used."""
        if not path.startswith("/twilio/"):
            raise ValueError(f"not a Twilio webhook path: {path!r}")
        return self.public_url + path

    def __repr__(self) -> str:
        return f"TwilioSettings(account_sid={self.account_sid!r}, auth_token=<hidden>)"


def load_twilio_settings(env: Mapping[str, str] | None = None) -> TwilioSettings | None:
    env = os.environ if env is None else env
    sid, token = env.get("TWILIO_ACCOUNT_SID", ""), env.get("TWILIO_AUTH_TOKEN", "")
    if not sid and not token:
        return None
    if not sid or not token:
        raise SettingsError("Set both TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or neither.")
    from_number = env.get("TWILIO_FROM_NUMBER") or None
    service = env.get("TWILIO_MESSAGING_SERVICE_SID") or None
    if not from_number and not service:
        raise SettingsError(
            "Twilio is configured but has no sender: set TWILIO_FROM_NUMBER (needed for "
            "voice calls) or TWILIO_MESSAGING_SERVICE_SID.")
    public = env.get("SAFEHAVEN_PUBLIC_URL", "").strip().rstrip("/")
    if not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", public):
        raise SettingsError(
            "SAFEHAVEN_PUBLIC_URL must be set to the https:// address Twilio reaches this "
            "server at, including any path prefix your proxy serves it under "
            "(https://host/safehaven) and no query string; status callbacks and call steps "
            "are sent there and signed for it.")
    api_url = (env.get("TWILIO_API_URL") or DEFAULT_API_URL).strip().rstrip("/")
    problem = service_url_problem("TWILIO_API_URL", api_url, production=(
        env.get("SAFEHAVEN_ENV") or "").strip().lower() == "production")
    if problem:  # the auth token goes there
        raise SettingsError(problem)
    return TwilioSettings(account_sid=sid, auth_token=token, from_number=from_number,
                          messaging_service_sid=service, public_url=public, api_url=api_url)
