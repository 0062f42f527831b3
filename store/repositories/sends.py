"""Password sends (the `password_sends` table) and SMS opt-outs.

Each function takes the caller's session so several can share one transaction. Reads return
frozen :class:`PasswordSendRecord` values, never rows; every change is a function here. A
change that only one caller may make (a claim, a lease, a status move) is a conditional
update: it names the statuses it may move from and says whether this caller won."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.statuses import SendKind, SendStatus
from store.models import (
    PasswordSend,
    SmsOptOut,
    Transfer,
)

Session = AsyncSession
# session.info: the rows of sends this transaction alone may change, by id. Held here, not
# only in the identity map, which keeps unchanged rows weakly: a row dropped from it is
# read again by the next change, whose query first flushes the change before it, so a
# batch would cost a SELECT and an UPDATE per send instead of one flush at commit.
_HELD = "held_sends"


@dataclass(frozen=True, slots=True)
class PasswordSendRecord:
    """One password send (a ``password_sends`` row) as it was read or left by a change."""

    id: int
    reference: str
    kind: str  # bot.statuses.SendKind
    status: str  # bot.statuses.SendStatus
    due_at: datetime | None
    phone: str
    extension: str | None
    attempts: int
    last_error: str | None
    provider_sid: str | None
    lease_until: datetime | None
    code_failures: int
    verified_call_sid: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewPasswordSend:
    """A send to create: what goes, to whom, and when (``None``: waiting for receipt)."""

    reference: str
    kind: str
    status: str
    due_at: datetime | None
    phone: str
    extension: str | None = None


@dataclass(frozen=True, slots=True)
class SendTarget:
    """What a claimed send needs of its transfer: whom to tell, what to say, the secret."""

    reference: str
    sender_id: str
    recipient: dict[str, Any] | None
    call_code: str | None
    call_at: datetime | None
    password_sealed: str | None


class Keep(Enum):
    """A column :func:`move_send` leaves as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


class DatabaseUnreachable(Exception):
    """The database went away (a dropped connection, a server restarting); a retry on a
    fresh connection may cure it. The driver's error is the ``__cause__``."""


@contextmanager
def unreachable_translated() -> Iterator[None]:
    """Raise :class:`DatabaseUnreachable` for errors a retry may cure; errors it cannot
    (constraint, SQL, data) pass through unchanged."""
    try:
        yield
    except (IntegrityError, ProgrammingError, DataError):
        raise
    except (DBAPIError, OSError) as exc:
        raise DatabaseUnreachable(type(exc).__name__) from exc


def _record(d: PasswordSend) -> PasswordSendRecord:
    return PasswordSendRecord(
        id=d.id, reference=d.reference, kind=d.kind, status=d.status, due_at=d.due_at,
        phone=d.phone, extension=d.extension, attempts=d.attempts, last_error=d.last_error,
        provider_sid=d.provider_sid, lease_until=d.lease_until, code_failures=d.code_failures,
        verified_call_sid=d.verified_call_sid, created_at=d.created_at, updated_at=d.updated_at)


async def _updated(session: AsyncSession, statement: Any) -> list[PasswordSendRecord]:
    """Run an UPDATE of ``password_sends`` and return the rows it changed, earliest due first
    (RETURNING; rows already in the session are refreshed with them)."""
    rows = (await session.scalars(
        statement.returning(PasswordSend),
        execution_options={"synchronize_session": False, "populate_existing": True})).all()
    return sorted((_record(d) for d in rows),
                  key=lambda r: (r.due_at is None, r.due_at or r.created_at, r.id))


async def due_sends(session: AsyncSession, *, now: datetime, limit: int = 50
                    ) -> list[PasswordSendRecord]:
    return [_record(s) for s in (await session.scalars(
        select(PasswordSend).where(PasswordSend.status == SendStatus.DUE,
                                   PasswordSend.due_at <= now)
        .order_by(PasswordSend.due_at).limit(limit))).all()]


async def claim_due_sends(session: AsyncSession, *, now: datetime, lease_until: datetime,
                          limit: int, skip_locked: bool, reference: str | None = None,
                          inline_until: datetime | None = None) -> list[PasswordSendRecord]:
    """Claim up to ``limit`` due sends (``reference``'s only, if given, and then also its
    first-attempt SMS due by ``inline_until``): each becomes ``sending``, one attempt more,
    held until ``lease_until``. ``skip_locked`` (PostgreSQL): rows another worker is claiming
    are passed over. Returns the sends this caller won, earliest due first."""
    query = select(PasswordSend.id).where(PasswordSend.status == SendStatus.DUE,
                                          PasswordSend.due_at <= now)
    if reference is not None:
        inline = inline_until if inline_until is not None else now
        query = select(PasswordSend.id).where(
            PasswordSend.status == SendStatus.DUE, PasswordSend.reference == reference,
            (PasswordSend.due_at <= now) | ((PasswordSend.kind == SendKind.SMS)
                                            & (PasswordSend.attempts == 0)
                                            & (PasswordSend.due_at <= inline)))
    query = query.order_by(PasswordSend.due_at).limit(limit)
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    ids = list((await session.scalars(query)).all())
    if not ids:
        return []
    return await _updated(session, update(PasswordSend).where(
        PasswordSend.id.in_(ids), PasswordSend.status == SendStatus.DUE).values(
        status=SendStatus.SENDING, attempts=PasswordSend.attempts + 1, lease_until=lease_until,
        updated_at=now))


async def lease_unconfirmed_sends(session: AsyncSession, *, now: datetime, lease_until: datetime,
                                  limit: int, skip_locked: bool, reference: str | None = None
                                  ) -> list[PasswordSendRecord]:
    """Hold ``unconfirmed`` sends whose wait is over (and no other lease holds) until
    ``lease_until`` while the provider is asked. Returns those this caller holds."""
    free = or_(PasswordSend.lease_until.is_(None), PasswordSend.lease_until <= now)
    query = select(PasswordSend.id).where(
        PasswordSend.status == SendStatus.UNCONFIRMED, PasswordSend.due_at <= now, free)
    if reference is not None:
        query = query.where(PasswordSend.reference == reference)
    query = query.order_by(PasswordSend.due_at).limit(limit)
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    ids = list((await session.scalars(query)).all())
    if not ids:
        return []
    return await _updated(session, update(PasswordSend).where(
        PasswordSend.id.in_(ids), PasswordSend.status == SendStatus.UNCONFIRMED, free).values(
        lease_until=lease_until))


async def hold_for_provider_check(session: AsyncSession, *, now: datetime, due_mark: str,
                                  waiting_mark: str) -> list[PasswordSendRecord]:
    """Every send that may already have gone without this database knowing (``due`` by
    ``now``, or ``waiting`` for receipt) becomes ``unconfirmed``, to be checked with the
    provider before anything is sent: due now, its ``last_error`` the mark saying which it
    was (``due_mark`` / ``waiting_mark``), so the check can put it back. Returns them."""
    held: list[PasswordSendRecord] = []
    for was, mark, only_due in ((SendStatus.DUE, due_mark, True),
                                (SendStatus.WAITING, waiting_mark, False)):
        query = update(PasswordSend).where(PasswordSend.status == was)
        if only_due:
            query = query.where(PasswordSend.due_at <= now)
        held += await _updated(session, query.values(
            status=SendStatus.UNCONFIRMED, due_at=now, last_error=mark, lease_until=None,
            updated_at=now))
    return held


async def interrupt_lapsed_sends(session: AsyncSession, *, now: datetime
                                 ) -> list[PasswordSendRecord]:
    """Sends still ``sending`` after their lease (a worker died mid-send) become
    ``interrupted``. Returns them."""
    ids = list((await session.scalars(select(PasswordSend.id).where(
        PasswordSend.status == SendStatus.SENDING, PasswordSend.lease_until < now))).all())
    if not ids:
        return []
    return await _updated(session, update(PasswordSend).where(
        PasswordSend.id.in_(ids), PasswordSend.status == SendStatus.SENDING,
        PasswordSend.lease_until < now)
        .values(status=SendStatus.INTERRUPTED, updated_at=now))


async def move_send(session: AsyncSession, *, send_id: int, only_from: Collection[str],
                    now: datetime | None, status: str | Keep = KEEP,
                    due_at: datetime | Keep | None = KEEP,
                    last_error: str | Keep | None = KEEP,
                    lease_until: datetime | Keep | None = KEEP,
                    provider_sid: str | Keep | None = KEEP,
                    verified_call_sid: str | Keep | None = KEEP,
                    ) -> PasswordSendRecord | None:
    """Change a send still in one of ``only_from`` (``updated_at`` becomes ``now`` unless
    ``None``; columns given as :data:`KEEP` stay). Returns the changed send, or ``None`` if
    it is gone or was moved meanwhile (another caller won)."""
    values: dict[str, Any] = {
        name: value for name, value in (
            ("status", status), ("due_at", due_at), ("last_error", last_error),
            ("lease_until", lease_until), ("provider_sid", provider_sid),
            ("verified_call_sid", verified_call_sid), ("updated_at", now))
        if value is not KEEP and not (name == "updated_at" and value is None)}
    return await _change(session, send_id, only_from, values)


async def count_wrong_code(session: AsyncSession, *, send_id: int) -> PasswordSendRecord | None:
    """One more wrong code keyed in on a ``sent`` call. ``None`` if the call is no longer
    ``sent``."""
    return await _change(session, send_id, (SendStatus.SENT,),
                         {"code_failures": PasswordSend.code_failures + 1})


async def _change(session: AsyncSession, send_id: int, only_from: Collection[str],
                  values: dict[str, Any]) -> PasswordSendRecord | None:
    held: PasswordSend | None = session.info.get(_HELD, {}).get(send_id)
    if held is not None:  # this transaction's alone: changed in the session, no round trip
        if held.status not in only_from:
            return None
        for name, value in values.items():
            setattr(held, name, value)  # written with the others at the next flush
        return _record(held)
    changed = await _updated(session, update(PasswordSend).where(
        PasswordSend.id == send_id, PasswordSend.status.in_(list(only_from))).values(**values))
    return changed[0] if changed else None


async def get_send(session: AsyncSession, *, send_id: int) -> PasswordSendRecord | None:
    d = await session.get(PasswordSend, send_id)
    return _record(d) if d is not None else None


async def sends_by_id(session: AsyncSession, *, send_ids: Collection[int], hold: bool = False,
                      lock: bool = False) -> dict[int, PasswordSendRecord]:
    """The sends of ``send_ids`` (``lock``: locked ``FOR UPDATE`` on PostgreSQL). ``hold``:
    the caller becomes their only writer until the transaction ends (a worker recording its
    own claimed rows): they are locked, so a concurrent move (a callback adopting a send
    still ``sending``) waits and then finds them moved, and their changes
    (:func:`move_send`) are made in the session and written together at the next flush,
    not one statement each."""
    query = (select(PasswordSend).where(PasswordSend.id.in_(list(send_ids)))
             .order_by(PasswordSend.id))
    if lock or hold:
        query = query.with_for_update()
    rows = (await session.scalars(query)).all()
    if hold:
        session.info.setdefault(_HELD, {}).update((d.id, d) for d in rows)
    return {d.id: _record(d) for d in rows}


async def send_by_provider_sid(session: AsyncSession, *, provider_sid: str
                               ) -> PasswordSendRecord | None:
    d = (await session.scalars(select(PasswordSend).where(
        PasswordSend.provider_sid == provider_sid))).first()
    return _record(d) if d is not None else None


async def owned_provider_sids(session: AsyncSession, *, provider_sids: Collection[str]
                              ) -> set[str]:
    """Which of ``provider_sids`` a send already holds."""
    if not provider_sids:
        return set()
    return {sid for sid in await session.scalars(select(PasswordSend.provider_sid).where(
        PasswordSend.provider_sid.in_(list(provider_sids)))) if sid}


async def sends_for(session: AsyncSession, *, reference: str) -> list[PasswordSendRecord]:
    return [_record(d) for d in (await session.scalars(
        select(PasswordSend).where(PasswordSend.reference == reference))).all()]


async def add_sends(session: AsyncSession, *, sends: Sequence[NewPasswordSend], now: datetime
                    ) -> None:
    for s in sends:
        session.add(PasswordSend(reference=s.reference, kind=s.kind, status=s.status,
                                 due_at=s.due_at, phone=s.phone, extension=s.extension,
                                 created_at=now, updated_at=now))


async def release_waiting_sends(session: AsyncSession, *, reference: str, due_at: datetime,
                                now: datetime, held: tuple[str, str] | None = None) -> int:
    """``reference``'s sends ``waiting`` for receipt become due at ``due_at``. With
    ``held`` (the waiting and the due mark of :func:`hold_for_provider_check`), a waiting
    send held for a check is marked to become due, not waiting again, if the provider has
    no trace of it. Returns how many were released (none: nothing was waiting, or another
    caller released them)."""
    result = await session.execute(
        update(PasswordSend).where(PasswordSend.reference == reference,
                                   PasswordSend.status == SendStatus.WAITING)
        .values(status=SendStatus.DUE, due_at=due_at, updated_at=now)
        .execution_options(synchronize_session="fetch"))
    released = int(getattr(result, "rowcount", 0))
    if held is not None:
        result = await session.execute(
            update(PasswordSend).where(PasswordSend.reference == reference,
                                       PasswordSend.status == SendStatus.UNCONFIRMED,
                                       PasswordSend.last_error == held[0])
            .values(last_error=held[1], updated_at=now)
            .execution_options(synchronize_session="fetch"))
        released += int(getattr(result, "rowcount", 0))
    return released


async def book_voice_send(session: AsyncSession, *, reference: str, phone: str,
                          extension: str | None, due_at: datetime, now: datetime) -> None:
    """Make ``reference``'s voice call due at ``due_at`` from its first attempt (created if
    it has none; the number of an existing one is kept)."""
    voice = (await session.scalars(select(PasswordSend).where(
        PasswordSend.reference == reference, PasswordSend.kind == SendKind.VOICE))).first()
    if voice is None:
        voice = PasswordSend(reference=reference, kind=SendKind.VOICE, phone=phone,
                             extension=extension, created_at=now, attempts=0, code_failures=0)
        session.add(voice)
    voice.status, voice.due_at, voice.updated_at = SendStatus.DUE, due_at, now
    voice.attempts, voice.code_failures, voice.verified_call_sid = 0, 0, None


async def wipe_password(session: AsyncSession, *, reference: str, now: datetime) -> bool:
    """Forget ``reference``'s sealed password (nothing left needs it). False if it was
    already gone. The caller audits the wipe at ``now``; the transfer's times stay."""
    result = await session.execute(
        update(Transfer).where(Transfer.reference == reference,
                               Transfer.password_sealed.is_not(None))
        .values(password_sealed=None).execution_options(synchronize_session="fetch"))
    return bool(getattr(result, "rowcount", 0) == 1)


async def send_targets(session: AsyncSession, *, references: Collection[str]
                       ) -> dict[str, SendTarget]:
    """The transfers of ``references`` (one query for a claimed batch), by reference."""
    if not references:
        return {}
    return {t.reference: SendTarget(reference=t.reference, sender_id=t.sender_id,
                                    recipient=t.recipient, call_code=t.call_code,
                                    call_at=t.call_at, password_sealed=t.password_sealed)
            for t in (await session.scalars(select(Transfer).where(
                Transfer.reference.in_(list(references))))).all()}


async def opted_out_phones(session: AsyncSession, *, phones: Collection[str]) -> set[str]:
    """Which of ``phones`` replied STOP."""
    return set((await session.scalars(select(SmsOptOut.phone).where(
        SmsOptOut.phone.in_(list(phones))))).all())


async def latest_sms_reference(session: AsyncSession, *, phone: str) -> str | None:
    """The reference of the latest SMS sent to ``phone``, if any."""
    return (await session.scalars(
        select(PasswordSend.reference).where(PasswordSend.phone == phone,
                                             PasswordSend.kind == SendKind.SMS)
        .order_by(PasswordSend.created_at.desc(), PasswordSend.id.desc()).limit(1))).first()


async def opt_out_sms(session: AsyncSession, *, phone: str, now: datetime) -> None:
    """``phone`` replied STOP: no further SMS to it (kept from the first STOP)."""
    if await session.get(SmsOptOut, phone) is None:
        session.add(SmsOptOut(phone=phone, opted_out_at=now))


async def opt_in_sms(session: AsyncSession, *, phone: str) -> None:
    """``phone`` replied START: SMS to it may go again."""
    await session.execute(delete(SmsOptOut).where(SmsOptOut.phone == phone))
