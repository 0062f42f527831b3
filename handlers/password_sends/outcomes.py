"""What an outcome does to a send row, whoever learnt it.

The same outcome reaches a row three ways: the send's own answer (``dispatch``), a signed
provider callback (``callbacks``, ``calls``) or the provider's list of what it sent
(``reconcile``). Each applies it here, in the caller's transaction, so the row, its audit
record and the sender's receipt agree whichever way it came. Failures where the provider
certainly did not take the message are retried with backoff up to the policy's attempts when
transient, then dead-lettered; permanent ones (an invalid number) are not retried. The sealed
password is wiped once every send of the transfer has reached the recipient.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.messages import delivery as dmsg
from bot.messages import transfers as msg
from bot.messages.words import plural
from bot.replies import Reply, Text
from bot.statuses import FINAL_SEND_STATUSES, SendKind, SendStatus
from handlers.services import Services
from store import audit
from store import repositories as repo
from store.repositories import PasswordSendRecord as Send
from store.repositories import Session

LEASE = timedelta(minutes=5)  # how long a claimed row is held (sending, or being checked)
BATCH = 100
CONCURRENCY = 32
FINAL = FINAL_SEND_STATUSES
MAX_BACKOFF_SECONDS = 86_400
MAX_ID = 2**31 - 1  # password_sends.id is a 32-bit integer column
PROVIDER_ID = re.compile(r"[A-Za-z0-9]{1,64}")  # Twilio SIDs (password_sends.provider_sid)


class TransferView(Protocol):
    """What the password sends read of a transfer (a stored transfer's record)."""

    @property
    def reference(self) -> str: ...
    @property
    def sender_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def recipient(self) -> Mapping[str, Any] | None: ...
    @property
    def password_method(self) -> str | None: ...
    @property
    def password_sealed(self) -> str | None: ...
    @property
    def call_code(self) -> str | None: ...
    @property
    def call_at(self) -> datetime | None: ...


def how(kind: str) -> str:
    how: dict[str, str] = {SendKind.VOICE: dmsg.HOW_VOICE, SendKind.HEADS_UP: dmsg.HOW_HEADS_UP}
    return how.get(kind, dmsg.HOW_SMS)


def _backoff(svc: Services, attempts: int, kind: str) -> timedelta:
    rules = svc.policy.delivery
    if kind == SendKind.VOICE:
        return timedelta(minutes=rules.call_retry_minutes)
    # Doubling stops at a day: a policy allowing dozens of attempts must not overflow dates.
    doubled = rules.retry_backoff_seconds * 2 ** min(max(0, attempts - 1), 32)
    return timedelta(seconds=min(doubled, MAX_BACKOFF_SECONDS))


async def after_failure(session: Session, svc: Services, d: Send, *, detail: str,
                        retryable: bool, now: datetime, provider_sid: str | None = None
                        ) -> Reply | None:
    """Retry later (transient), or give up and say why (the attempt's ``provider_sid``
    kept, if it has one). Returns the sender's receipt (None if the send was settled
    meanwhile by another caller)."""
    sid: str | repo.Keep = provider_sid or repo.KEEP
    kind = how(d.kind)
    transfer = await repo.get_transfer(session, reference=d.reference)
    phone = phone_of(transfer, d)
    if retryable and d.attempts < svc.policy.delivery.max_attempts:
        due_at = now + _backoff(svc, d.attempts, d.kind)
        if await repo.move_send(session, send_id=d.id, only_from=(d.status,), now=now,
                                status=SendStatus.DUE, due_at=due_at, last_error=detail,
                                lease_until=None, provider_sid=sid) is None:
            return None
        await audit.append(session, at=now, actor=svc.transport.name, action="password_retry",
                           reference=d.reference, details={
                               "method": d.kind, "attempt": d.attempts, "detail": detail,
                               "next_attempt_at": due_at.isoformat()})
        local = due_at.astimezone(svc.policy.timezone)
        return Text(dmsg.RECEIPT_RETRYING.format(reference=d.reference, how=kind, phone=phone,
                                                 detail=detail, when=f"{local:%H:%M}"))
    if await repo.move_send(session, send_id=d.id, only_from=(d.status,), now=now,
                            status=SendStatus.DEAD if retryable else SendStatus.FAILED,
                            last_error=detail, lease_until=None, provider_sid=sid) is None:
        return None
    await audit.append(session, at=now, actor=svc.transport.name, action="password_failed",
                       reference=d.reference, details={
                           "method": d.kind, "attempts": d.attempts, "detail": detail,
                           "dead_lettered": retryable})
    return Text(dmsg.RECEIPT_DEAD.format(reference=d.reference, how=kind, phone=phone,
                                         attempts=plural(d.attempts, "attempt"),
                                         detail=detail))


async def wipe_if_done(session: Session, reference: str, now: datetime) -> None:
    """Wipe the sealed password once nothing left needs it."""
    pending = [x for x in await repo.sends_for(session, reference=reference)
               if x.kind != SendKind.HEADS_UP and x.status not in FINAL]
    transfer = await repo.get_transfer(session, reference=reference)
    if pending or transfer is None or transfer.password_sealed is None:
        return
    if await repo.wipe_password(session, reference=reference, now=now):
        await audit.append(session, at=now, actor="safehaven", action="password_wiped",
                           reference=reference, details={"reason": "delivered"})


async def by_id(session: Session, delivery_id: int) -> Send | None:
    """The send a callback URL names; None for ids no send can have (junk from outside)."""
    if not 0 < delivery_id <= MAX_ID:
        return None
    return await repo.get_send(session, send_id=delivery_id)


async def by_sid(session: Session, sid: str) -> Send | None:
    return await repo.send_by_provider_sid(session, provider_sid=sid)


def phone_of(transfer: TransferView | None, d: Send) -> str:
    return str(((transfer.recipient if transfer else None) or {}).get("phone_display",
                                                                       d.phone))


async def adopt(session: Session, svc: Services, d: Send, sid: str, *,
                transfer: TransferView | None, actor: str, by: str, now: datetime
                ) -> Send | None:
    """An unconfirmed attempt turns out to have been accepted (``by`` a signed callback
    naming the send, or the provider's list): record it as sent, as a prompt answer
    would have been. Returns the send as it is now (None if another caller moved it)."""
    adopted = await repo.move_send(session, send_id=d.id, only_from=(d.status,), now=now,
                                   provider_sid=sid, status=SendStatus.SENT, lease_until=None,
                                   last_error=None)
    if adopted is None:
        return None
    await audit.append(session, at=now, actor=actor,
                       action="heads_up_sent" if d.kind == SendKind.HEADS_UP else "password_sent",
                       reference=d.reference, details={
                           "method": d.kind, "phone": phone_of(transfer, d),
                           "attempt": d.attempts, "provider_id": sid, "confirmed_by": by})
    return adopted


async def adoptable(session: Session, d: Send | None, sid: str) -> bool:
    """Whether a signed callback naming send ``d`` (in its URL) may adopt ``sid``: ``d``
    is ``unconfirmed``, or still ``sending`` (the callback overtook Twilio's slow answer;
    recording the attempt then leaves the row alone), and ``sid`` is not an earlier
    attempt's id (kept in ``provider_sid``) nor another send's."""
    return (d is not None and d.status in (SendStatus.UNCONFIRMED, SendStatus.SENDING)
            and d.provider_sid != sid
            and PROVIDER_ID.fullmatch(sid) is not None and await by_sid(session, sid) is None)


async def sms_outcome(session: Session, svc: Services, d: Send, transfer: TransferView,
                      *, status: str, error: str | None, now: datetime,
                      adopted: bool = False) -> Reply | None:
    """Apply an SMS status (from a callback or the provider's list) to a sent row; returns
    the sender's receipt, if any."""
    phone = phone_of(transfer, d)
    if status == "delivered":
        if await repo.move_send(session, send_id=d.id, only_from=(d.status,), now=now,
                                status=SendStatus.DELIVERED) is None:
            return None
        await audit.append(session, at=now, actor="twilio", action="password_delivered"
                           if d.kind != SendKind.HEADS_UP else "heads_up_delivered",
                           reference=d.reference, details={"method": d.kind,
                                                           "phone": phone})
        await wipe_if_done(session, d.reference, now)
        if d.kind != SendKind.HEADS_UP:
            return Text(msg.PASSWORD_SENT.format(reference=d.reference, how=how(d.kind),
                                                 phone=phone))
        return None
    if status in ("undelivered", "failed", "canceled"):
        detail = f"the network reported it {status}" + (f" (error {error})" if error else "")
        return await after_failure(session, svc, d, detail=detail, retryable=True, now=now)
    if adopted and d.kind != SendKind.HEADS_UP:  # on its way: the receipt a prompt answer gives
        return Text(dmsg.RECEIPT_QUEUED.format(reference=d.reference, phone=phone))
    return None


def is_machine(answered_by: str | None) -> bool:
    """Twilio's ``AnsweredBy``: ``machine_start``, ``machine_end_*`` or ``fax``."""
    return bool(answered_by) and str(answered_by).startswith(("machine", "fax"))


async def call_ended(session: Session, svc: Services, d: Send, *, status: str,
                     answered_by: str | None, now: datetime) -> Reply | None:
    """A sent call ended without the password being read out: retry or give up."""
    machine = is_machine(answered_by)
    detail = (dmsg.RECEIPT_MACHINE if machine else
              {"busy": dmsg.RECEIPT_BUSY, "no-answer": dmsg.RECEIPT_NO_ANSWER}.get(
                  status, d.last_error or (dmsg.RECEIPT_NO_CODE if status == "completed"
                                           else f"the call ended ({status})")))
    return await after_failure(session, svc, d, detail=detail,
                               retryable=status != "failed" or machine, now=now)
