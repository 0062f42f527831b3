"""Reporting a mistake on a transfer (``mistake REF``, or the button on a receipt).

Seed policy: "If you feel you may have accidentally breached this policy, you should contact
your line manager immediately". The sender, or an approver of the transfer, reports it; in
one transaction Safe Haven opens the incident (the insert that decides a double report),
withdraws the download links, cancels the password sends not yet made, destroys the sealed
password, closes the transfer and audits ``mistake_reported`` with what had reached the
recipient. After the commit it deletes the archive and the uploads from the object store,
and tells the approver and the policy's governance contacts through the notifier.
Information governance then records its decision on the incident
(:func:`decide_incident`): reported to the ICO or not, and why; that closes it.

What reached the recipient (:class:`Reached`) is read from the record, never guessed: an
archive handed back to the sender may have been emailed on (Safe Haven cannot know); a send
under way (``sending``, or ``unconfirmed``/``interrupted``) may have gone and is left to
finish, but with the password destroyed nothing later can carry it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.cleantext import one_line
from bot.messages import incidents as msg
from bot.messages import transfers as tmsg
from bot.messages.words import plural
from bot.objects import archive_key
from bot.replies import Reply, Text
from bot.statuses import (
    OPEN_TRANSFER_STATUSES,
    ApprovalStatus,
    DeliveryMethod,
    IcoDecision,
    IncidentStatus,
    SendKind,
    SendStatus,
    TransferStatus,
)
from handlers import access, notify, portal, retention, transfers
from handlers.services import Services
from store import audit
from store import repositories as repo
from store.db import roll_back

log = logging.getLogger(__name__)

ICO_DECISION_WITHIN = timedelta(hours=72)  # UK GDPR Art 33: report within 72 hours
# A transfer in one of these is withdrawn by a report (what was under way stops).
WITHDRAWABLE = (*OPEN_TRANSFER_STATUSES, TransferStatus.READY)
UNSENT = (SendStatus.WAITING, SendStatus.DUE)
MAY_HAVE_GONE = (SendStatus.SENDING, SendStatus.UNCONFIRMED, SendStatus.INTERRUPTED)
DECIDED_BY_MAX = 200  # incidents.decided_by
ICO_REFERENCE_MAX = 100  # incidents.ico_reference
REASON_MAX = 2000


@dataclass(frozen=True)
class PasswordFact:
    """One password send as it stood: how, to which number (as the sender typed it)."""

    kind: str  # SendKind
    phone: str


@dataclass(frozen=True)
class Reached:
    """What had reached the recipient when the mistake was reported (the incident's
    ``facts``): each list holds the password sends in that state."""

    stage: str  # the transfer's status before the report
    delivery: str | None  # DeliveryMethod
    packaged: bool  # an archive and a password were made
    handed_back: bool  # the archive was handed back to the sender (delivery by archive)
    link_issued: bool
    downloads: int  # finished portal downloads
    downloads_in_progress: int
    password_delivered: list[PasswordFact] = field(default_factory=list)
    password_sent: list[PasswordFact] = field(default_factory=list)  # not confirmed
    password_in_flight: list[PasswordFact] = field(default_factory=list)
    password_pending: int = 0  # sends not yet made (cancelled by a report)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def anything_out(self) -> bool:
        return self.packaged


async def reached(session: Any, transfer: repo.TransferRecord) -> Reached:
    """Read from the record what had reached ``transfer``'s recipient (in the caller's
    transaction, before anything is withdrawn)."""
    reference = transfer.reference
    sends = await repo.sends_for(session, reference=reference)
    links = await repo.portal_links_of(session, reference=reference)
    in_progress = 0
    finished = 0
    for link in links:
        running = await repo.downloads_in_progress(session, token_hash=link.token_hash)
        in_progress += running
        finished += max(link.downloads - running, 0)
    phone = str((transfer.recipient or {}).get("phone_display", ""))
    password = [d for d in sends if d.kind != SendKind.HEADS_UP]
    packaged = transfer.status == TransferStatus.READY or bool(sends) or bool(links)

    def facts(*states: SendStatus) -> list[PasswordFact]:
        return [PasswordFact(d.kind, phone or d.phone) for d in password if d.status in states]

    return Reached(
        stage=str(transfer.status),
        delivery=str(transfer.delivery_method) if transfer.delivery_method else None,
        packaged=packaged,
        handed_back=packaged and transfer.delivery_method == DeliveryMethod.ARCHIVE,
        link_issued=bool(links), downloads=finished, downloads_in_progress=in_progress,
        password_delivered=facts(SendStatus.DELIVERED),
        password_sent=facts(SendStatus.SENT),
        password_in_flight=facts(*MAY_HAVE_GONE),
        password_pending=sum(1 for d in sends if d.status in UNSENT))


def _what(fact: PasswordFact, *, delivered: bool = False) -> str:
    voice = fact.kind == SendKind.VOICE
    if delivered:
        text = msg.WHAT_CALL_COMPLETED if voice else msg.WHAT_SMS_DELIVERED
    else:
        text = msg.WHAT_CALL if voice else msg.WHAT_SMS
    return text.format(phone=fact.phone)


def reached_lines(facts: Reached) -> list[str]:
    """What had reached the recipient, one line per fact, as the sender reads it."""
    if not facts.packaged:
        label = tmsg.STATUS_LABELS.get(facts.stage, facts.stage)
        return [msg.REACHED_NOTHING.format(stage=label)]
    lines: list[str] = []
    if facts.handed_back:
        lines.append(msg.REACHED_HANDED_BACK)
    if facts.link_issued:
        if facts.downloads:
            lines.append(msg.REACHED_DOWNLOADS.format(times=plural(facts.downloads, "time")))
        if facts.downloads_in_progress:
            lines.append(msg.REACHED_DOWNLOADING.format(
                downloads=plural(facts.downloads_in_progress, "download")))
        if not facts.downloads and not facts.downloads_in_progress:
            lines.append(msg.REACHED_LINK_UNUSED)
    lines += [msg.REACHED_PASSWORD_DELIVERED.format(what=_what(f, delivered=True))
              for f in facts.password_delivered]
    lines += [msg.REACHED_PASSWORD_SENT.format(what=_what(f)) for f in facts.password_sent]
    lines += [msg.REACHED_PASSWORD_IN_FLIGHT.format(what=_what(f))
              for f in facts.password_in_flight]
    if not (facts.password_delivered or facts.password_sent or facts.password_in_flight):
        lines.append(msg.REACHED_PASSWORD_NOT)
    return lines


def _when(svc: Services, at: datetime) -> str:
    return f"{at.astimezone(svc.policy.timezone):%a %d %b %Y %H:%M %Z}"


@dataclass(frozen=True)
class _Withdrawn:
    links: int
    sends: int
    password: bool
    stopped: bool  # an open transfer closed before packaging


async def _withdraw(session: Any, svc: Services, transfer: repo.TransferRecord, *, by: str,
                    now: datetime) -> _Withdrawn:
    """In the report's transaction: close the transfer, cancel unsent password sends, drop
    its password, withdraw its links and end a pending approval."""
    reference = transfer.reference
    moved = await repo.set_status(session, reference=reference,
                                  status=TransferStatus.WITHDRAWN, now=now,
                                  only_from=WITHDRAWABLE, password_sealed=None)
    wiped = moved and transfer.password_sealed is not None
    if not moved:
        wiped = await repo.wipe_password(session, reference=reference, now=now)
    cancelled = 0
    for d in await repo.sends_for(session, reference=reference):
        if d.status in UNSENT and await repo.move_send(
                session, send_id=d.id, only_from=UNSENT, now=now,
                status=SendStatus.CANCELLED) is not None:
            cancelled += 1
    await repo.close_approval(session, reference=reference, status=ApprovalStatus.CANCELLED)
    await repo.drop_held_requests(session, reference=reference)
    links = await portal.revoke_links(session, reference=reference, by=by, now=now)
    return _Withdrawn(links=links, sends=cancelled, password=wiped,
                      stopped=moved and transfer.status != TransferStatus.READY)


async def _delete_archive(svc: Services, reference: str) -> bool | None:
    """Delete the archive (store and record); True if deleted, None if none was kept,
    False if the store failed (the retention and orphan sweeps retry)."""
    try:
        if await retention.delete_archive(svc, reference, reason="mistake reported"):
            return True
        await svc.objects.delete(archive_key(reference))  # an object no row named: gone too
        return None
    except Exception as exc:  # the store may be unreachable: say so, never claim it went
        log.error("could not delete the archive of %s: %s", reference, type(exc).__name__)
        return False


async def report_mistake(svc: Services, *, reference: str, user_id: str) -> list[Reply]:
    """``mistake REF`` from ``user_id``: the sender or an approver of the transfer (anyone
    else hears the transfer does not exist). Returns what the reporter is told."""
    found = await access.transfer_for(svc, reference=reference, actor=user_id,
                                      role=access.Role.SENDER_OR_APPROVER, command="mistake")
    if found is None:
        return [Text(access.unknown(reference))]
    now = svc.clock()
    async with svc.db.transaction() as session:
        transfer = await repo.get_transfer(session, reference=reference)
        approval = await repo.get_approval(session, reference=reference)
        if transfer is None:
            return [Text(access.unknown(reference))]
        existing = await repo.incident_for(session, reference=reference)
        if existing is None and transfer.status == TransferStatus.PACKAGING:
            return [Text(msg.BEING_PACKAGED.format(reference=reference))]
        if existing is None and transfer.status == TransferStatus.DRAFT:
            return [Text(msg.STILL_A_DRAFT.format(reference=reference))]
        facts = await reached(session, transfer) if existing is None else None
        due = now + ICO_DECISION_WITHIN
        if facts is None or not await repo.open_incident(
                session, reference=reference, reported_by=user_id, opened_at=now,
                ico_decision_due=due, facts=facts.as_json()):
            await roll_back(session)
            existing = existing or await _incident_after_race(svc, reference)
            return [Text(msg.ALREADY_REPORTED.format(
                reference=reference, by=existing.reported_by if existing else "someone",
                opened=_when(svc, existing.opened_at) if existing else "",
                status=existing.status if existing else "open"))]
        withdrawn = await _withdraw(session, svc, transfer, by=user_id, now=now)
        files = await repo.transfer_files(session, reference=reference)
        stored = [f.stored_path or "" for f in files]
        await repo.forget_stored_paths(session, reference=reference)
        await audit.append(session, at=now, actor=user_id, action="mistake_reported",
                           reference=reference, details={
                               "reached": facts.as_json(), "ico_decision_due": due.isoformat(),
                               "links_withdrawn": withdrawn.links,
                               "sends_cancelled": withdrawn.sends,
                               "password_wiped": withdrawn.password})
    archive = await _delete_archive(svc, reference)
    try:
        await transfers.record_uploads_deleted(svc, reference=reference, stored=stored,
                                               by=user_id, reason="mistake reported")
    except Exception as exc:  # the orphan sweep deletes what is left
        log.error("could not delete the uploads of %s: %s", reference, type(exc).__name__)
    told = await _tell_others(svc, transfer, approval, reporter=user_id, facts=facts,
                              opened=now, due=due)
    lines = [msg.REPORTED.format(reference=reference, opened=_when(svc, now),
                                 due=_when(svc, due)),
             "", msg.DONE_HEADER, *_done_lines(withdrawn, archive),
             "", msg.REACHED_HEADER, *reached_lines(facts),
             "", msg.TOLD_HEADER, *told, "", msg.LINE_MANAGER]
    return [Text("\n".join(lines))]


async def _incident_after_race(svc: Services, reference: str) -> repo.IncidentRecord | None:
    async with svc.db.read() as session:
        return await repo.incident_for(session, reference=reference)


def _done_lines(withdrawn: _Withdrawn, archive: bool | None) -> list[str]:
    lines: list[str] = []
    if withdrawn.stopped:
        lines.append(msg.DONE_STOPPED)
    if withdrawn.links:
        lines.append(msg.DONE_LINKS)
    if withdrawn.sends:
        lines.append(msg.DONE_SENDS.format(sends=plural(withdrawn.sends, "send")))
    if archive is True:
        lines.append(msg.DONE_ARCHIVE)
    elif archive is False:
        lines.append(msg.DONE_ARCHIVE_FAILED)
    if withdrawn.password:
        lines.append(msg.DONE_PASSWORD)
    return lines or [msg.DONE_NOTHING]


async def _tell_others(svc: Services, transfer: repo.TransferRecord,
                       approval: repo.ApprovalRecord | None, *, reporter: str,
                       facts: Reached, opened: datetime, due: datetime) -> list[str]:
    """Tell the approver (who decided, else those asked), the sender when an approver
    reported it, and the governance contacts; returns the "who I told" lines."""
    policy = svc.policy
    approvers: list[str] = []
    if approval is not None:
        approvers = [approval.decided_by] if approval.decided_by else list(approval.approvers)
    approvers = [a for a in approvers if not policy.same_person(a, reporter)]
    sender = [] if policy.same_person(reporter, transfer.sender_id) else [transfer.sender_id]
    governance = [g for g in policy.governance_ids()
                  if not policy.same_person(g, reporter)
                  and not policy.is_one_of(g, [*approvers, *sender])]
    organisation = one_line(str((transfer.recipient or {}).get("organisation") or "-"))[:120]
    notice = "\n".join([
        msg.NOTICE.format(reporter=reporter, reference=transfer.reference,
                          classification=transfer.classification or "-",
                          organisation=organisation, opened=_when(svc, opened),
                          due=_when(svc, due)),
        msg.REACHED_HEADER, *reached_lines(facts)])
    people = [*sender, *approvers, *governance]
    if people:
        try:
            await notify.notify_people(svc, people, [Text(notice)],
                                       reference=transfer.reference)
        except Exception as exc:  # the incident stands; the reply says who was meant
            log.error("could not tell everyone of the mistake on %s: %s",
                      transfer.reference, type(exc).__name__)
    lines = [msg.TOLD_SENDER.format(who=s) for s in sender]
    lines += [msg.TOLD_APPROVER.format(who=", ".join(approvers))] if approvers else []
    lines += [msg.TOLD_GOVERNANCE.format(who=", ".join(governance))] if governance else []
    if policy.governance.email:
        lines.append(msg.TOLD_GOVERNANCE_EMAIL.format(email=policy.governance.email))
    return lines or [msg.TOLD_NOBODY]


def finished_cancel_text(reference: str, before: Reached) -> str:
    """What ``cancel`` tells the sender of a transfer that had already gone out: what had
    reached the recipient, and ``mistake REF``."""
    return "\n".join([msg.CANCELLED_FINISHED.format(reference=reference),
                      *reached_lines(before),
                      msg.POINT_TO_MISTAKE.format(reference=reference)])


async def reached_now(svc: Services, *, reference: str) -> Reached | None:
    """What had reached the recipient of ``reference`` so far (None: no such transfer)."""
    async with svc.db.read() as session:
        transfer = await repo.get_transfer(session, reference=reference)
        return None if transfer is None else await reached(session, transfer)


async def list_incidents(svc: Services, *, only_open: bool = False
                         ) -> list[repo.IncidentRecord]:
    """The incidents opened by reported mistakes, oldest first (``safehaven incidents``)."""
    async with svc.db.read() as session:
        return await repo.incidents(session, only_open=only_open)


async def incident_of(svc: Services, *, reference: str) -> repo.IncidentRecord | None:
    """The incident opened on ``reference``, if a mistake was reported on it."""
    async with svc.db.read() as session:
        return await repo.incident_for(session, reference=reference)


class Decided(StrEnum):
    """How ``safehaven incidents decide REF`` ended."""

    DECIDED = "decided"  # recorded now; the incident is closed
    ALREADY_DECIDED = "already decided"  # nothing written
    NO_INCIDENT = "no incident"  # no mistake was reported on REF


@dataclass(frozen=True)
class Decision:
    """The outcome of a decision, and the incident as it now stands (None: no incident)."""

    outcome: Decided
    incident: repo.IncidentRecord | None


def decision_problem(*, decision: IcoDecision, ico_reference: str | None, reason: str,
                     decided_by: str) -> str | None:
    """What is wrong with a decision as given (the message names the flag), or None."""
    if not one_line(decided_by):
        return msg.DECIDE_NO_BY
    if len(one_line(decided_by)) > DECIDED_BY_MAX:
        return msg.DECIDE_TOO_LONG.format(flag="--by", limit=DECIDED_BY_MAX)
    if not one_line(reason):
        return msg.DECIDE_NO_REASON
    if len(one_line(reason)) > REASON_MAX:
        return msg.DECIDE_TOO_LONG.format(flag="--reason", limit=REASON_MAX)
    if ico_reference is not None:
        if decision != IcoDecision.REPORTED:
            return msg.DECIDE_REFERENCE_NOT_REPORTED
        if not one_line(ico_reference):
            return msg.DECIDE_EMPTY_REFERENCE
        if len(one_line(ico_reference)) > ICO_REFERENCE_MAX:
            return msg.DECIDE_TOO_LONG.format(flag="--ico-reference", limit=ICO_REFERENCE_MAX)
    return None


async def decide_incident(svc: Services, *, reference: str, decision: IcoDecision,
                          ico_reference: str | None, reason: str,
                          decided_by: str) -> Decision:
    """Record information governance's decision on the incident of ``reference`` (reported
    to the ICO or not, and why) and close it, audited ``incident_decided``. A decision after
    the 72-hour deadline is recorded, marked late. A second decision writes nothing.
    Raises ValueError for a decision :func:`decision_problem` refuses."""
    problem = decision_problem(decision=decision, ico_reference=ico_reference, reason=reason,
                               decided_by=decided_by)
    if problem is not None:
        raise ValueError(problem)
    by = one_line(decided_by)
    why = one_line(reason)
    case = one_line(ico_reference) if ico_reference is not None else None
    now = svc.clock()
    async with svc.db.transaction() as session:
        existing = await repo.incident_for(session, reference=reference)
        if existing is None:
            return Decision(Decided.NO_INCIDENT, None)
        if not await repo.decide_incident(session, reference=reference, decided_by=by,
                                          decided_at=now, ico_decision=decision,
                                          ico_reference=case, reason=why):
            await roll_back(session)
            return Decision(Decided.ALREADY_DECIDED,
                            await _incident_after_race(svc, reference))
        late = now > existing.ico_decision_due
        await audit.append(session, at=now, actor=by, action="incident_decided",
                           reference=reference, details={
                               "incident": existing.id, "ico": str(decision),
                               "ico_reference": case, "reason": why, "late": late,
                               "ico_decision_due": existing.ico_decision_due.isoformat()})
    return Decision(Decided.DECIDED, replace(
        existing, status=IncidentStatus.CLOSED, decided_at=now, decided_by=by,
        ico_decision=decision, ico_reference=case, decision_reason=why))
