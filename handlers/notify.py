"""Route notifications to the channel a user belongs to, by the prefix of their id; keep
the ones that cannot go anywhere.

User ids are channel-qualified (``console:alice``, ``slack:U123``, ``teams:29:1a…``); each
channel registers its notifier for its prefix, and the fallback takes the rest. In
development the fallback is the console notifier (the terminal and
``var/notifications.log``). In production it is :class:`HeldNotices`: a message for someone
whose channel is not configured here goes to no log; it is kept in the database, sealed with
the server key, and :func:`deliver_held` hands it to them the next time they talk to the bot
on any channel (any id of theirs in the policy's ``[people]``), or open a chat with it.

A channel's notifier that cannot reach someone (a Teams user who never opened a chat with
the bot, a Slack API error) says so (:attr:`NoticeOutcome.UNREACHABLE`) and keeps nothing
itself: the router keeps the message in :class:`HeldNotices` too, the one store of messages
waiting for their person (sealed, pruned, dropped once a request is decided).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from bot import replies as reply_types
from bot.messages import notices as msg
from bot.replies import FileReply, LinkReply, MistakeButton, Reply, Text
from bot.statuses import ApprovalStatus
from bot.vault import Vault, VaultError
from handlers import archive_reads
from handlers.ports import NoticeOutcome, Notifier
from handlers.services import Services, utc_now
from store import repositories as repo
from store.db import Database

log = logging.getLogger(__name__)
# Held messages older than this are dropped by the scheduler, read or not.
HELD_FOR = timedelta(days=30)


class NoticeKind(Enum):
    """``request``: it asks the person something (an approval request), and is dropped
    once that request is no longer pending. ``notice``: everything else."""

    REQUEST = "request"
    NOTICE = "notice"


def channel_of(user_id: str) -> str:
    return user_id.split(":", 1)[0]


def channel_name(user_id: str) -> str:
    """The channel of ``user_id`` as a sentence names it."""
    return msg.CHANNEL_NAMES.get(channel_of(user_id), msg.UNKNOWN_CHANNEL)


class NotifierRouter:
    def __init__(self, fallback: Notifier, *, keep: Notifier | None = None) -> None:
        """``fallback`` takes users of channels not registered; ``keep`` (a
        :class:`HeldNotices`; default: the fallback) what a channel could not deliver."""
        self.fallback = fallback
        self.keep = keep or fallback
        self.routes: dict[str, Notifier] = {}

    def register(self, prefix: str, notifier: Notifier) -> None:
        """Send to ``notifier`` every user id starting with ``prefix + ':'``."""
        self.routes[prefix] = notifier

    def reaches(self, user_id: str) -> bool:
        """Whether a message for ``user_id`` goes to a channel now rather than being held."""
        return channel_of(user_id) in self.routes or not isinstance(self.fallback, HeldNotices)

    async def notify(self, user_id: str, replies: Sequence[Reply], *,
                     reference: str | None = None) -> NoticeOutcome:
        target = self.routes.get(channel_of(user_id), self.fallback)
        outcome = await target.notify(user_id, replies, reference=reference)
        if outcome is NoticeOutcome.UNREACHABLE:
            return await self.keep.notify(user_id, replies, reference=reference)
        return outcome


def unreached_reason(svc: Services, user_id: str) -> str:
    """Why a message for ``user_id`` was kept, as the sender is told: their channel is not
    set up here, or it is and could not take it."""
    channel = channel_name(user_id)
    router = svc.notifier if isinstance(svc.notifier, NotifierRouter) else None
    if router is not None and channel_of(user_id) in router.routes:
        return msg.UNREACHABLE_ON.get(channel_of(user_id),
                                      msg.UNREACHABLE_ON_OTHER.format(channel=channel))
    return msg.NOT_SET_UP.format(channel=channel)


# --- keeping messages ----------------------------------------------------------------------


def _sealing_context(user_id: str) -> str:
    """The sealed message's associated data: it opens only as a message for ``user_id``."""
    return "held:" + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:32]


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"_t": type(value).__name__,
                **{f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, Enum):
        return {"_e": type(value).__name__, "v": value.value}
    if isinstance(value, datetime):
        return {"_dt": value.isoformat()}
    if isinstance(value, Path):
        return {"_p": str(value)}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"_m": [[_encode(k), _encode(v)] for k, v in value.items()]}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if not isinstance(value, dict):
        return value
    if "_t" in value:
        cls = getattr(reply_types, value["_t"])
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise TypeError(value["_t"])
        return cls(**{k: _decode(v) for k, v in value.items() if k != "_t"})
    if "_e" in value:
        return getattr(reply_types, value["_e"])(value["v"])
    if "_dt" in value:
        return datetime.fromisoformat(value["_dt"])
    if "_p" in value:
        return Path(value["_p"])
    return {_decode(k): _decode(v) for k, v in value["_m"]}


def seal_replies(vault: Vault, user_id: str, replies: Sequence[Reply]) -> str:
    return vault.seal(json.dumps([_encode(r) for r in replies]),
                      reference=_sealing_context(user_id))


def open_replies(vault: Vault, user_id: str, sealed: str) -> list[Reply]:
    return list(_decode(json.loads(vault.open(sealed, reference=_sealing_context(user_id)))))


def kind_of(replies: Sequence[Reply]) -> NoticeKind:
    asks = any(not isinstance(r, Text | FileReply | LinkReply | MistakeButton) for r in replies)
    return NoticeKind.REQUEST if asks else NoticeKind.NOTICE


class HeldNotices:
    """Keeps each message in ``held_notices``, sealed, and logs only that one was kept (the
    channel and the transfer reference): the production fallback, and where the router
    keeps what a channel could not deliver."""

    def __init__(self, db: Database, vault: Vault,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.db = db
        self.vault = vault
        self.clock = clock

    async def notify(self, user_id: str, replies: Sequence[Reply], *,
                     reference: str | None = None) -> NoticeOutcome:
        sealed = seal_replies(self.vault, user_id, replies)
        async with self.db.transaction() as session:
            await repo.hold_notice(session, user_id=user_id, reference=reference,
                                   kind=kind_of(replies).value, sealed=sealed,
                                   now=self.clock())
        log.info("kept a message about %s for a %s user the bot could not reach",
                 reference or "-", channel_of(user_id))
        return NoticeOutcome.HELD


async def notify_people(svc: Services, user_ids: Sequence[str], replies: Sequence[Reply], *,
                        reference: str | None = None) -> list[str]:
    """Send ``replies`` to each person among ``user_ids``, on every id of theirs listed
    that a configured channel reaches; a person reached on none has it kept under their
    first id. Returns that first id of each person who was not reached."""
    people: dict[tuple[str, ...], list[str]] = {}
    for user_id in user_ids:
        people.setdefault(svc.policy.person_of(user_id).ids, []).append(user_id)
    router = svc.notifier if isinstance(svc.notifier, NotifierRouter) else None
    unreached: list[str] = []
    for ids in people.values():
        reachable = [i for i in ids if router is None or router.reaches(i)]
        outcomes = [await svc.notifier.notify(i, replies, reference=reference)
                    for i in reachable or ids[:1]]
        if all(o in (NoticeOutcome.HELD, NoticeOutcome.UNREACHABLE) for o in outcomes):
            unreached.append(ids[0])
    return unreached


async def deliver_held(svc: Services, *, user_id: str, header: bool = True) -> list[Reply]:
    """Everything kept for the person using ``user_id`` (under any of their ids), oldest
    first, removed from the store as it is handed over; requests no longer pending are
    dropped. Empty when nothing is held. ``header``: first say they were kept (not when
    shown as they arrive, as a waiting terminal chat does)."""
    ids = svc.policy.person_of(user_id).ids
    async with svc.db.read() as session:
        rows = await repo.held_notices(session, user_ids=ids)
    if not rows:
        return []
    now = svc.clock()
    out: list[Reply] = []
    count = 0
    for row in rows:
        async with svc.db.transaction() as session:
            if not await repo.take_held_notice(session, notice_id=row.id):
                continue  # another turn of theirs got it first
            if row.kind == NoticeKind.REQUEST.value and row.reference is not None:
                approval = await repo.get_approval(session, reference=row.reference)
                if approval is None or approval.status != ApprovalStatus.PENDING \
                        or approval.expires_at <= now:
                    continue
        try:
            kept = open_replies(svc.vault, row.user_id, row.sealed)
        except (VaultError, ValueError, TypeError, KeyError, AttributeError):
            log.warning("a message kept about %s could not be opened", row.reference or "-")
            out.append(Text(msg.HELD_UNREADABLE))
            continue
        count += 1
        for reply in kept:
            if isinstance(reply, FileReply) and await archive_reads.archive_size(
                    svc.objects, svc.settings.archives_dir, reply.reference) is None:
                out.append(Text(msg.HELD_ARCHIVE_GONE.format(reference=row.reference or "-")))
            else:
                out.append(reply)
    if not out:
        return []
    if not header:
        return out
    messages = msg.HELD_ONE if count <= 1 else msg.HELD_MANY.format(count=count)
    return [Text(msg.HELD_HEADER.format(messages=messages)), *out]


async def prune_held(svc: Services) -> None:
    """Drop kept requests that were decided or expired, and anything kept too long."""
    async with svc.db.transaction() as session:
        await repo.prune_held_notices(session, before=svc.clock() - HELD_FOR)
