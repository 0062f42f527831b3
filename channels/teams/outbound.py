"""What a Teams turn needs of the channel: the services, where files may be fetched from
and the session that fetches them, replies rendered for a person, activities sent in the
turn or first (proactively), and an upload run after the HTTP response.

:class:`channels.teams.channel.TeamsChannel` provides it and hands itself to
:class:`channels.teams.turns.TeamsTurns`, which knows it only as this protocol: the channel
imports the turns, the turns import only this, so the two modules do not import each other.
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import Any, Protocol

import aiohttp
from botbuilder.core import TurnContext

from bot.egress import EgressPolicy
from bot.replies import Reply
from channels.teams.leases import UploadLeases
from handlers.services import Services


class TeamsOutbound(Protocol):
    svc: Services
    egress: EgressPolicy
    upload_chunk_bytes: int
    uploads: UploadLeases  # the leases of the uploads this replica runs

    def http(self) -> aiohttp.ClientSession:
        """The client for file downloads and uploads (not for the Bot Connector)."""
        ...

    def spawn(self, job: Coroutine[Any, Any, None]) -> None:
        """Run ``job`` after the HTTP response."""
        ...

    async def prepare(self, replies: Sequence[Reply], *, user_id: str
                      ) -> list[dict[str, Any]]:
        """Replies rendered as activities for ``user_id``."""
        ...

    async def send(self, turn: TurnContext, activities: Sequence[dict[str, Any]]) -> None:
        ...

    async def send_to(self, reference: dict[str, Any],
                      activities: Sequence[dict[str, Any]]) -> None:
        """Message a conversation first (a proactive message)."""
        ...
