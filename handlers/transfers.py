"""Use cases after the sender confirms: submit, package and hand back, cancel.

Every state change is a conditional status update, so a retried or concurrent call finds the
transfer already moved on and does nothing twice.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import shutil
import tempfile
from collections.abc import Coroutine, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from bot.chunks import read_chunks, write_chunks
from bot.entries import Consent, Recipient
from bot.envelope import EnvelopeError, EnvelopeReader, encrypt_stream
from bot.messages import agreements as agreements_msg
from bot.messages import notices as notice_msg
from bot.messages import portal as portal_msg
from bot.messages import transfers as msg
from bot.messages.words import plural
from bot.objects import ObjectKey, archive_key, delete_all, uploads_of
from bot.packaging import ArchiveMember, PackagedArchive, build_archive
from bot.passwords import generate_password
from bot.private import private_dir
from bot.replies import ApprovalRequest, FileReply, LinkReply, MistakeButton, Reply, Text
from bot.settings import Settings
from bot.sizes import human_size
from bot.state import State, TurnContext
from bot.statuses import (
    OPEN_TRANSFER_STATUSES,
    ApprovalStatus,
    DeliveryMethod,
    EffectKind,
    PasswordMethod,
    SendStatus,
    Step,
    TransferStatus,
)
from bot.summary import (
    approval_basis,
    approval_reason,
    categories_text,
    delivery_texts,
    needs_approval,
)
from bot.vault import Vault
from handlers import access, archive_reads, intake, notify, portal, retention
from handlers.password_sends import dispatch, scheduling
from handlers.services import Services
from store import audit, outbox
from store import repositories as repo

log = logging.getLogger(__name__)
PACKAGING_HEARTBEAT = 60.0  # at most this many seconds between a packager's renewals


def packaging_heartbeat(settings: Settings) -> float:
    """Seconds between a live packager's renewals of its hold: a quarter of the take-over
    grace (``SAFEHAVEN_PACKAGING_GRACE_SECONDS``), at most :data:`PACKAGING_HEARTBEAT`."""
    return min(PACKAGING_HEARTBEAT, settings.packaging_grace_seconds / 4)

_T = TypeVar("_T")

OPEN_STATUSES = OPEN_TRANSFER_STATUSES


def context_for(svc: Services, *, user_id: str, now: datetime | None = None) -> TurnContext:
    return TurnContext(policy=svc.policy, now=now or svc.clock(), user_id=user_id,
                       default_region=svc.settings.default_region,
                       new_reference=svc.new_reference)


def state_from_transfer(transfer: repo.TransferRecord,
                        files: list[repo.TransferFileRecord]) -> State:
    """Rebuild the answers of a submitted transfer (for summaries shown later)."""
    return State(
        step=Step.CONFIRM, reference=transfer.reference,
        files=[{"name": f.original_name, "path": f.stored_path or "", "size": f.size,
                "kind": f.kind, "position": f.position, "flags": []} for f in files],
        classification=transfer.classification,
        information_categories=transfer.information_categories,
        recipient=cast(Recipient | None, transfer.recipient),
        purpose=transfer.purpose, lawful_basis=transfer.lawful_basis,
        consent=cast(Consent | None, transfer.consent),
        delivery=DeliveryMethod(transfer.delivery_method) if transfer.delivery_method else None,
        password_method=(PasswordMethod(transfer.password_method) if transfer.password_method
                         else None),
        call_at=transfer.call_at.isoformat() if transfer.call_at else None,
    )


def delete_plaintext(paths: list[str]) -> None:
    """Remove plaintext files staged on this host (and their per-upload folder when it is
    left empty); blocking."""
    for raw in paths:
        if not raw:
            continue
        path = Path(raw)
        with suppress(FileNotFoundError):
            path.unlink()
        with suppress(OSError):
            path.parent.rmdir()


async def delete_uploads(svc: Services, stored: Iterable[str], *,
                         reference: str | None = None) -> int:
    """Delete uploads through the object store: every key in ``stored`` and, given the
    transfer's ``reference``, everything under ``uploads/<reference>``. A host path (a row
    from before uploads were sealed) is unlinked here. Returns once every delete returned
    (so the caller may then record ``plaintext_deleted``); how many keys it was given."""
    keys: list[ObjectKey] = []
    local: list[str] = []
    for raw in stored:
        if raw:
            key = intake.as_upload_key(raw)
            keys.append(key) if key is not None else local.append(raw)
    for key in keys:
        await svc.objects.delete(key)
    if reference is not None:
        await delete_all(svc.objects, uploads_of(reference))
    if local:
        await asyncio.to_thread(delete_plaintext, local)
    return len(keys) + len(local)


def packaging_dir(settings: Settings) -> Path:
    """This host's own scratch folder for packaging (sealed uploads copied down, the archive
    being built); each packaging has a folder in it, removed when it ends, and
    :func:`handlers.recovery.clean_host_scratch` removes what a killed process left."""
    return settings.var_dir / "packaging"


@contextmanager
def _open_sealed(path: Path, vault: Vault, key: str) -> Iterator[EnvelopeReader]:
    """The plaintext of the envelope copied to ``path``, decrypted as it is read."""
    with path.open("rb") as sealed:
        yield EnvelopeReader(sealed, vault, context=key)


async def _build_in(svc: Services, work: Path, *, reference: str,
                    files: list[repo.TransferFileRecord], password: str) -> PackagedArchive:
    """:func:`_build` then :func:`_put_archive` (what packaging does, without its hold)."""
    archive = await _build(svc, work, reference=reference, files=files, password=password)
    await _put_archive(svc, reference, archive)
    return archive


async def _put_archive(svc: Services, reference: str,
                       archive: PackagedArchive) -> PackagedArchive:
    """Put the archive into the object store at ``archive_key(reference)``, sealed in an
    envelope for that key (so it cannot be altered or swapped there unnoticed:
    :mod:`handlers.archive_reads`)."""
    key = archive_key(reference)
    await svc.objects.put(key, encrypt_stream(read_chunks(archive.path), svc.vault,
                                              context=key))
    return archive


async def _build(svc: Services, work: Path, *, reference: str,
                 files: list[repo.TransferFileRecord], password: str) -> PackagedArchive:
    """Copy each sealed upload into ``work`` and build the archive there from their
    plaintext (read through :class:`EnvelopeReader`, never written out)."""
    members: list[ArchiveMember] = []
    for f in files:
        key = intake.as_upload_key(f.stored_path or "")
        if key is None:
            raise FileNotFoundError(f"file {f.position} of {reference} has no sealed upload")
        copy = work / f"{f.position}.sealed"
        await write_chunks(svc.objects.get(key), copy)
        members.append(ArchiveMember(functools.partial(_open_sealed, copy, svc.vault, key),
                                     f.original_name))
    archive = await asyncio.to_thread(
        build_archive, reference=reference, members=members, password=password,
        out_dir=work / "archive", neutral_names=svc.policy.neutral_member_names)
    return archive


def _new_scratch(settings: Settings, reference: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{reference}.", dir=private_dir(packaging_dir(settings))))


async def record_submission(session: Any, svc: Services, *, state: State, sender_id: str,
                            now: datetime) -> None:
    """Write the confirmed answers onto the transfer row, in the confirming turn's
    transaction, so the conversation can be reset without losing anything."""
    assert state.reference is not None
    recipient = state.recipient or {}
    await repo.upsert_draft(session, reference=state.reference, sender_id=sender_id,
                            files=state.files, classification=state.classification, now=now)
    await repo.set_status(
        session, reference=state.reference, status=TransferStatus.SUBMITTED, now=now,
        only_from=[TransferStatus.DRAFT],
        recipient=recipient, purpose=state.purpose, lawful_basis=state.lawful_basis,
        information_categories=(list(state.information_categories)
                                if state.information_categories is not None else None),
        consent=state.consent, delivery_method=state.delivery,
        password_method=state.password_method,
        call_at=datetime.fromisoformat(state.call_at) if state.call_at else None,
        submitted_at=now, call_code=f"{secrets.randbelow(10**6):06d}",
    )


async def submit(svc: Services, *, reference: str) -> list[Reply]:
    """Ask for approval when the policy requires it, else package at once. The request
    to the approvers is an outbox entry written with the approval (``REQUEST_APPROVAL``,
    run by :mod:`handlers.outbox` through :func:`request_approval`): a process that dies
    after that commit leaves it to the scheduler, not undone."""
    now = svc.clock()
    async with svc.db.transaction() as session:
        transfer = await repo.get_transfer(session, reference=reference)
        if transfer is None or transfer.status != TransferStatus.SUBMITTED:
            return []
        files = await repo.transfer_files(session, reference=reference)
        state = state_from_transfer(transfer, files)
        ctx = context_for(svc, user_id=transfer.sender_id, now=now)
        if not needs_approval(state, ctx):
            needs = False
        else:
            needs = True
            approvers = svc.policy.approvers_for(transfer.sender_id)
            expires = now + timedelta(hours=svc.policy.approval_expiry_hours)
            await repo.set_status(session, reference=reference,
                                  status=TransferStatus.AWAITING_APPROVAL, now=now,
                                  only_from=[TransferStatus.SUBMITTED])
            await repo.add_approval_request(session, reference=reference, approvers=approvers,
                                            now=now, expires_at=expires)
            await audit.append(session, at=now, actor="safehaven", action="approval_requested",
                               reference=reference,
                               details={"approvers": list(approvers),
                                        "expires_at": expires.isoformat(),
                                        "reason": approval_reason(state, ctx),
                                        "agreement_gap": approval_basis(
                                            state, ctx)["agreement_gap"]})
            await outbox.add(session, key=outbox.transfer_key(
                reference, EffectKind.REQUEST_APPROVAL), kind=EffectKind.REQUEST_APPROVAL,
                reference=reference, payload={"tell": transfer.sender_id}, now=now)
    if not needs:
        return await package(svc, reference=reference)
    return []


async def request_approval(svc: Services, *, reference: str) -> list[Reply]:
    """Send the approval request of a transfer awaiting approval to its approvers; returns
    what the sender is told. Nothing once the request is no longer pending."""
    async with svc.db.read() as session:
        transfer = await repo.get_transfer(session, reference=reference)
        approval = await repo.get_approval(session, reference=reference)
        files = await repo.transfer_files(session, reference=reference)
    if transfer is None or approval is None or transfer.status != TransferStatus.AWAITING_APPROVAL \
            or approval.status != ApprovalStatus.PENDING:
        return []
    approvers = list(approval.approvers)
    ctx = context_for(svc, user_id=transfer.sender_id)
    state = state_from_transfer(transfer, files)
    request: list[Reply] = [approval_request(state, ctx, sender=transfer.sender_id)]
    unreached = await notify.notify_people(svc, approvers, request, reference=reference)
    reason = approval_reason(state, ctx)
    return [Text("\n".join([msg.AWAITING_APPROVAL.format(
        reference=reference, classification=transfer.classification,
        approvers=", ".join(approvers), hours=svc.policy.approval_expiry_hours),
        *([agreements_msg.AWAITING_APPROVAL_REASON.format(reason=reason)] if reason else [])])),
        *(Text(notice_msg.APPROVER_HELD.format(
            approver=approver, reason=notify.unreached_reason(svc, approver),
            reference=reference)) for approver in unreached)]


def approval_request(state: State, ctx: TurnContext, *, sender: str) -> ApprovalRequest:
    """What an approver is asked: the facts of a submitted transfer, never its files."""
    assert state.reference is not None
    recipient = state.recipient or {}
    consent = state.consent or {}
    delivery, password = delivery_texts(state, ctx)
    return ApprovalRequest(
        reference=state.reference, sender=sender,
        classification=state.classification or "",
        recipient_name=str(recipient.get("name") or ""),
        recipient_organisation=str(recipient.get("organisation") or ""),
        recipient_email=str(recipient.get("email") or ""),
        purpose=state.purpose or "", lawful_basis=state.lawful_basis or "",
        file_count=len(state.files), total_size=human_size(state.total_bytes),
        recipient_job_title=str(recipient.get("job_title") or ""),
        recipient_phone=str(recipient.get("phone_display") or ""),
        use_limits=str(consent.get("use_limits") or ""),
        onward_sharing=bool(consent.get("onward_sharing")),
        delivery=delivery, password=password,
        information="" if state.information_categories is None
        else categories_text(state, ctx),
        recipient_department=str(recipient.get("department") or ""),
        approval_reason=approval_reason(state, ctx) or "")


def email_text(svc: Services, transfer: repo.TransferRecord, filename: str,
               link: portal.IssuedLink | None = None) -> tuple[str, str]:
    """The ready-to-paste email: CONFIDENTIAL subject with no personal details, which
    programs open the archive, the policy's deletion statement, and never the password.
    With a portal ``link`` it says where to download the archive instead of that it is
    attached, and closes with the policy's link statement."""
    consent = transfer.consent or {}
    method = transfer.password_method
    if method == PasswordMethod.VOICE:
        password_line = msg.EMAIL_PASSWORD_VOICE.format(code=transfer.call_code)
    elif method == PasswordMethod.SMS_ON_RECEIPT:
        password_line = (portal_msg.EMAIL_PASSWORD_ON_DOWNLOAD if link
                         else msg.EMAIL_PASSWORD_ON_RECEIPT)
    else:
        password_line = msg.EMAIL_PASSWORD_SMS
    subject = msg.EMAIL_SUBJECT.format(reference=transfer.reference)
    extra = {} if link is None else {
        "url": link.url, "expires": portal.describe_expiry(svc, link.expires_at),
        "downloads": plural(link.download_limit, "download")}
    body = (portal_msg.EMAIL_BODY if link else msg.EMAIL_BODY).format(
        **extra, filename=filename, password_line=password_line, purpose=transfer.purpose,
        use_limits=consent.get("use_limits", ""),
        onward=msg.EMAIL_ONWARD_YES if consent.get("onward_sharing") else msg.EMAIL_ONWARD_NO,
        zip_openers=msg.ZIP_OPENERS, reference=transfer.reference,
        deletion_statement=(svc.policy.link_statement if link
                            else svc.policy.deletion_statement))
    return subject, body


async def package(svc: Services, *, reference: str) -> list[Reply]:
    """Build the archive, delete the plaintext, seal the password, schedule its delivery
    and hand the archive back. Returns the replies for the sender."""
    now = svc.clock()
    async with svc.db.transaction() as session:
        won = await repo.set_status(session, reference=reference, status=TransferStatus.PACKAGING,
                                    now=now, only_from=[TransferStatus.SUBMITTED,
                                                        TransferStatus.APPROVED])
        transfer = await repo.get_transfer(session, reference=reference)
        files = await repo.transfer_files(session, reference=reference)
    if not won or transfer is None:
        return []
    return await package_held(svc, transfer=transfer, files=files, held_since=now)


class PackagingHold:
    """This process's hold on a transfer's packaging: the ``updated_at`` it last wrote,
    renewed every :func:`packaging_heartbeat` seconds while it works
    (:func:`store.repositories.hold_packaging`). Recovery takes over only a packaging not
    renewed for its grace period; a holder that finds its hold taken stops there."""

    def __init__(self, svc: Services, reference: str, since: datetime) -> None:
        self.svc = svc
        self.reference = reference
        self.since = since

    async def renew(self) -> bool:
        now = self.svc.clock()
        async with self.svc.db.transaction() as session:
            held = await repo.hold_packaging(session, reference=self.reference,
                                             held_since=self.since, now=now)
        if held:
            self.since = now
        return held

    async def run(self, work: Coroutine[Any, Any, _T]) -> _T | None:
        """``work``'s result, renewing the hold meanwhile; None (``work`` cancelled) once
        the hold was taken over. A renewal the database fails is tried again next beat."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait(
                    {task}, timeout=packaging_heartbeat(self.svc.settings))
                if done:
                    return task.result()
                try:
                    held = await self.renew()
                except Exception as exc:
                    log.error("could not renew the packaging of %s: %s", self.reference,
                              type(exc).__name__)
                    continue
                if not held:
                    log.warning("packaging %s was taken over by another process; stopped",
                                self.reference)
                    return None
        finally:
            if not task.done():
                task.cancel()
                with suppress(BaseException):
                    await task


async def package_held(svc: Services, *, transfer: repo.TransferRecord,
                       files: list[repo.TransferFileRecord],
                       held_since: datetime) -> list[Reply]:
    """The packaging of ``transfer``, ``packaging`` and held by this process since
    ``held_since`` (:class:`PackagingHold`): from :func:`package`, or taken over from a dead
    process by :func:`handlers.recovery.recover_packaging`. Nothing is changed once the
    hold is lost."""
    reference = transfer.reference
    hold = PackagingHold(svc, reference, held_since)
    password = generate_password()
    work = await asyncio.to_thread(_new_scratch, svc.settings, reference)
    try:
        archive = await hold.run(_build(svc, work, reference=reference, files=files,
                                        password=password))
        # The archive goes into the store only while this process still holds the
        # packaging, so a packager that was taken over never replaces the other's archive
        # (unless it stalls for a whole grace period in the middle of this very put).
        if archive is None or not await hold.renew() \
                or await hold.run(_put_archive(svc, reference, archive)) is None:
            return []  # taken over: the other process finishes it
    except Exception as exc:  # report, keep the transfer and its files for a retry
        # A sealed upload that fails its check (altered, truncated, swapped in the store)
        # stops the archive before it is put: nothing is made from it, and it says so.
        tampered = isinstance(exc, EnvelopeError)
        log.error("packaging %s failed: %s", reference, type(exc).__name__)
        async with svc.db.transaction() as session:
            # Only while this process still holds it: a taken-over packaging is not ours
            # to fail, nor its archive ours to delete.
            held = await repo.hold_packaging(session, reference=reference,
                                             held_since=hold.since, now=svc.clock())
            if held:
                await repo.set_status(session, reference=reference,
                                      status=TransferStatus.PACKAGE_FAILED, now=svc.clock(),
                                      only_from=[TransferStatus.PACKAGING])
                await audit.append(session, at=svc.clock(), actor="safehaven",
                                   action="packaging_failed", reference=reference,
                                   details={"error": type(exc).__name__,
                                            **({"integrity": "failed"} if tampered else {})})
        if not held:
            return []
        with suppress(Exception):
            await svc.objects.delete(archive_key(reference))
        failed = msg.PACKAGING_TAMPERED if tampered else msg.PACKAGING_FAILED
        return [Text(failed.format(reference=reference))]
    finally:
        await asyncio.shield(asyncio.to_thread(shutil.rmtree, work, True))
    # Just renewed: a take-over needs a whole grace period of silence from here.
    await delete_uploads(svc, [f.stored_path or "" for f in files], reference=reference)
    sealed = svc.vault.seal(password, reference=reference)
    del password
    now = svc.clock()
    recipient = transfer.recipient or {}
    async with svc.db.transaction() as session:
        if not await repo.hold_packaging(session, reference=reference, held_since=hold.since,
                                         now=now) or not await repo.set_status(
                session, reference=reference, status=TransferStatus.READY, now=now,
                only_from=[TransferStatus.PACKAGING], archive_path=archive_key(reference),
                archive_size=archive.size, password_sealed=sealed):
            log.warning("packaging %s was taken over before it finished; stopped", reference)
            return []
        await repo.forget_stored_paths(session, reference=reference)
        await repo.remember_recipient(session, sender_id=transfer.sender_id,
                                      recipient=recipient, now=now)
        await audit.append(session, at=now, actor="safehaven", action="packaged",
                           reference=reference, details={
                               "archive": archive.path.name, "size": archive.size,
                               "members": len(files), "cipher": "AES-256 (WinZip AE-2)",
                               "neutral_names": svc.policy.neutral_member_names,
                               "plaintext_deleted": True})
        await audit.append(session, at=now, actor="safehaven", action="handed_back",
                           reference=reference, details={
                               "to": transfer.sender_id, "method": transfer.delivery_method})
        plan = await scheduling.schedule(session, svc, transfer=transfer, now=now)
        link = (await portal.issue_link(session, svc, transfer=transfer, now=now)
                if transfer.delivery_method == DeliveryMethod.PORTAL else None)
    subject, body = email_text(svc, transfer, archive.path.name, link)
    email = Text(f"{msg.EMAIL_HEADER}\n\nSubject: {subject}\n\n{body}")
    replies: list[Reply]
    if link is not None:
        if transfer.password_method == PasswordMethod.SMS_ON_RECEIPT:
            plan = portal_msg.PASSWORD_PLAN_ON_DOWNLOAD.format(
                reference=reference, phone=recipient.get("phone_display", ""))
        replies = [
            Text(portal_msg.LINK_READY.format(
                reference=reference, filename=archive.path.name,
                size=human_size(archive.size), recipient_email=recipient.get("email"),
                expires=portal.describe_expiry(svc, link.expires_at),
                downloads=plural(link.download_limit, "download"))),
            LinkReply(link.url, portal_msg.LINK_LABEL.format(reference=reference)),
            email, Text(plan)]
    else:
        replies = [
            FileReply(reference, archive_key(reference), archive.path.name,
                      msg.ARCHIVE_READY.format(
                          reference=reference, filename=archive.path.name,
                          size=human_size(archive.size),
                          recipient_email=recipient.get("email")), archive.size),
            email, Text(plan)]
    replies += await dispatch.run_due(svc, reference=reference)
    if not any(isinstance(r, MistakeButton) for r in replies):  # the receipt's button
        replies.append(MistakeButton(reference))
    return replies


async def archive_again(svc: Services, *, reference: str, user_id: str) -> list[Reply]:
    """The sender's ``archive REF``: the encrypted archive handed back once more (say the
    chat refused the first upload), with the receipt's "Report a mistake" button. Only to
    the sender, only while the transfer is ready and its archive kept; audited. Anyone else
    hears the transfer does not exist."""
    if await access.transfer_for(svc, reference=reference, actor=user_id,
                                 role=access.Role.SENDER, command="archive") is None:
        return [Text(access.unknown(reference))]
    async with svc.db.transaction() as session:
        transfer = await repo.get_transfer(session, reference=reference)
        if transfer is None:
            return [Text(access.unknown(reference))]
        size = (await archive_reads.archive_size(svc.objects, svc.settings.archives_dir,
                                                 reference)
                if transfer.archive_path else None)
        if transfer.status != TransferStatus.READY or size is None:
            label = msg.STATUS_LABELS.get(transfer.status, transfer.status)
            return [Text(msg.ARCHIVE_GONE.format(reference=reference, status=label))]
        if transfer.delivery_method != DeliveryMethod.ARCHIVE:
            return [Text(msg.ARCHIVE_BY_LINK.format(reference=reference))]
        key = archive_key(reference)
        await audit.append(session, at=svc.clock(), actor=user_id, action="archive_resent",
                           reference=reference, details={"to": user_id,
                                                         "archive": key.parts[-1]})
    return [FileReply(reference, key, key.parts[-1], msg.ARCHIVE_AGAIN.format(
        reference=reference, filename=key.parts[-1], size=human_size(size)), size),
            MistakeButton(reference)]  # a receipt like the first


async def cancel(svc: Services, *, reference: str, by: str, reason: str = "sender",
                 status: TransferStatus = TransferStatus.CANCELLED) -> bool:
    """Cancel an unfinished transfer: plaintext deleted, password wiped, password sends
    stopped. True if this call cancelled it."""
    now = svc.clock()
    async with svc.db.transaction() as session:
        transfer = await repo.get_transfer(session, reference=reference)
        if transfer is None:
            return False
        cancellable = [*OPEN_STATUSES, TransferStatus.READY]
        won = await repo.set_status(session, reference=reference, status=status, now=now,
                                    only_from=cancellable, password_sealed=None)
        if not won:
            return False
        files = await repo.transfer_files(session, reference=reference)
        stored = [f.stored_path or "" for f in files]
        await repo.forget_stored_paths(session, reference=reference)
        unsent = (SendStatus.WAITING, SendStatus.DUE)
        for d in await repo.sends_for(session, reference=reference):
            if d.status in unsent:
                await repo.move_send(session, send_id=d.id, only_from=unsent, now=now,
                                     status=SendStatus.CANCELLED)
        await repo.close_approval(session, reference=reference, status=ApprovalStatus(status))
        await repo.drop_held_requests(session, reference=reference)
        await portal.revoke_links(session, reference=reference, by=by, now=now)
        await audit.append(session, at=now, actor=by, action=status, reference=reference,
                           details={"reason": reason, "password_wiped": True})
    # A process that dies before this leaves unreferenced objects: the orphan sweep's.
    await record_uploads_deleted(svc, reference=reference, stored=stored, by=by,
                                 reason=str(status))
    # An archive handed back in the chat goes now; a portal archive at the next pass, once
    # no download is in progress (handlers/portal_archives.py).
    if transfer.delivery_method == DeliveryMethod.ARCHIVE:
        try:
            await retention.delete_archive(svc, reference,
                                           reason=repo.RetentionReason.TRANSFER_OVER)
        except Exception as exc:  # the store may be unreachable: the retention pass retries
            log.error("could not delete the archive of %s: %s", reference,
                      type(exc).__name__)
    return True


async def record_uploads_deleted(svc: Services, *, reference: str, stored: list[str], by: str,
                                 reason: str) -> None:
    """Delete a closed transfer's uploads (:func:`delete_uploads`), then audit
    ``plaintext_deleted``: written only once every delete returned."""
    count = await delete_uploads(svc, stored, reference=reference)
    async with svc.db.transaction() as session:
        await audit.append(session, at=svc.clock(), actor=by, action="plaintext_deleted",
                           reference=reference, details={"files": count, "reason": reason})
