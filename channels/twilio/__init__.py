"""Twilio: SMS and voice-call password delivery, and its webhooks.

The composition root builds the transport (:class:`channels.twilio.transport.TwilioTransport`)
from its Twilio section and, in ``serve``, mounts the signed webhooks through :func:`plugin`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from channels.twilio.settings import TwilioSettings

if TYPE_CHECKING:
    from aiohttp import web

    from handlers.services import Services


class TwilioPlugin:
    """The ``/twilio/...`` webhooks; it reaches no chat users (passwords go by the
    transport). Inert without settings."""

    prefix = None
    notifier = None

    def __init__(self, svc: Services, settings: TwilioSettings | None) -> None:
        self.svc = svc
        self.settings = settings

    def mount(self, app: web.Application) -> None:
        if self.settings is not None:
            from channels.twilio.webhooks import mount_twilio

            mount_twilio(app, self.svc, self.settings)

    def describe(self) -> list[str]:
        if self.settings is None:
            return []
        return [f"Password delivery: Twilio; webhooks at {self.settings.public_url}/twilio/..."]


def plugin(svc: Services, settings: TwilioSettings | None) -> TwilioPlugin:
    """Twilio's webhooks for these services: ``settings`` is the root's Twilio section."""
    return TwilioPlugin(svc, settings)
