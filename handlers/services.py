"""Everything a handler needs, built once per process by the composition root (bot/app/)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.near_misses import ForgedRequests
from bot.objects import ObjectStore
from bot.observations import NoObservations, Observations
from bot.policy_rules import Policy
from bot.reference import new_reference
from bot.settings import Settings
from bot.vault import Vault
from handlers.intake import FileInspector
from handlers.ports import Notifier, PasswordTransport
from store.db import Database


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    policy: Policy
    db: Database
    vault: Vault
    notifier: Notifier
    transport: PasswordTransport
    objects: ObjectStore  # uploads (sealed) and archives, shared by every replica
    clock: Callable[[], datetime] = utc_now
    new_reference: Callable[[], str] = field(default=new_reference)
    inspector: FileInspector = field(default_factory=FileInspector)  # judges uploads, off-loop
    # forged webhook requests counted in this process, recorded by the scheduler
    forged_requests: ForgedRequests = field(default_factory=ForgedRequests)
    # how long turns take, for /metrics (bot/app/metrics.py); records nothing by default
    observations: Observations = field(default_factory=NoObservations)


async def close_transport(svc: Services) -> None:
    """Release the password transport's connections (Twilio's HTTP session), if any."""
    close = getattr(svc.transport, "close", None)
    if close is not None:
        await close()
