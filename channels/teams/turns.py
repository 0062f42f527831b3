"""What the bot does with each Teams activity: translate it to a neutral event, take the
turn through the handlers, and render the replies back.

Every activity is claimed once by its id (a retried delivery does nothing), and every card
submission once by the card and the values sent (a double click does nothing); answers also
name their question, so the engine ignores an answer to a question already answered.
Messages outside a personal chat get one short reply and are otherwise ignored.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress
from enum import StrEnum
from typing import Any

from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.schema import Activity, ActivityTypes, Attachment

from bot.answers import ApprovalAnswer, Decision, approval_answer
from bot.events import Answer, FilesReceived, IncomingFile
from bot.messages import teams as msg
from bot.objects import ObjectStoreError
from bot.reference import is_reference, normalise_reference
from bot.replies import DecisionNote, Reply, Text
from bot.sizes import human_size
from channels.teams import cards, files, records
from channels.teams.inbound import (
    RemoteFile,
    Submission,
    conversation_id,
    conversation_reference,
    is_personal,
    read_submission,
    remote_files,
    user_id,
)
from channels.teams.models import OfferStatus
from channels.teams.outbound import TeamsOutbound
from handlers import approvals, near_misses, notify
from handlers.archive_reads import OpenArchive, archive_size, opener
from handlers.conversation import parse_text, take_turn
from handlers.transfers import delete_plaintext

log = logging.getLogger(__name__)
FILE_CONSENT_INVOKE = "fileConsent/invoke"


class ConsentAction(StrEnum):
    """What the sender did with a file consent card (the invoke's ``action``)."""

    ACCEPT = "accept"
    DECLINE = "decline"


class TeamsTurns:
    def __init__(self, channel: TeamsOutbound) -> None:
        self.channel = channel
        self.svc = channel.svc

    # --- entry -------------------------------------------------------------------------

    async def on_turn(self, turn: TurnContext) -> None:
        activity = turn.activity
        try:
            await self._dispatch(turn)
        except Exception:
            log.exception("a Teams %s activity failed", activity.type)
            with suppress(Exception):
                await self._say(turn, msg.SOMETHING_WENT_WRONG)
        finally:
            if activity.type == ActivityTypes.invoke:
                await turn.send_activity(Activity(type=ActivityTypes.invoke_response,
                                                  value=InvokeResponse(status=200, body={})))

    async def _dispatch(self, turn: TurnContext) -> None:
        activity = turn.activity
        db, now = self.svc.db, self.svc.clock()
        if activity.id and not await records.claim(
                db, key=records.teams_key("activity", activity.conversation.id, activity.id),
                now=now):
            return
        if not is_personal(activity):
            if activity.type == ActivityTypes.message:
                await self._say(turn, msg.PERSONAL_CHAT_ONLY)
            return
        uid = user_id(activity)
        if activity.type == ActivityTypes.installation_update and activity.action == "remove":
            await records.forget_reference(db, user_id=uid)
            return
        await records.remember_reference(
            db, user_id=uid, reference=conversation_reference(activity), now=now)
        if activity.type == ActivityTypes.conversation_update and any(
                m.id == activity.recipient.id for m in activity.members_added or []):
            await self._say(turn, msg.WELCOME)
        if activity.type in (ActivityTypes.conversation_update,
                             ActivityTypes.installation_update):
            # They opened the chat or added the app: what was kept for them while the bot
            # could not reach them, from the core's one store (a message turn gets it there).
            held = await notify.deliver_held(self.svc, user_id=uid)
            if held:
                await self._reply(turn, uid, held)
        if activity.type == ActivityTypes.message:
            await self._on_message(turn, uid)
        elif activity.type == ActivityTypes.invoke and activity.name == FILE_CONSENT_INVOKE:
            await self._on_file_consent(turn, uid)

    # --- helpers -----------------------------------------------------------------------

    async def _say(self, turn: TurnContext, text: str) -> None:
        await self.channel.send(turn, [cards.text_message(text)])

    async def _reply(self, turn: TurnContext, uid: str, replies: list[Reply]) -> None:
        await self.channel.send(turn, await self.channel.prepare(replies, user_id=uid))

    async def _replace_card(self, turn: TurnContext, activity_id: str,
                            card: dict[str, Any]) -> bool:
        """Show ``card`` in place of a submitted one (best effort: the turn has acted);
        False when Teams did not take it."""
        try:
            await turn.update_activity(Activity(
                id=activity_id, type=ActivityTypes.message,
                attachments=[Attachment(content_type=cards.ADAPTIVE, content=card)]))
        except Exception as exc:
            log.warning("could not update a Teams card (%s)", type(exc).__name__)
            return False
        return True

    # --- messages ----------------------------------------------------------------------

    async def _on_message(self, turn: TurnContext, uid: str) -> None:
        activity = turn.activity
        if activity.value is not None:
            submission = read_submission(activity.value)
            if submission is None:
                await self._say(turn, msg.CARD_NOT_UNDERSTOOD)
            else:
                await self._on_submission(turn, uid, submission)
            return
        remote, others = remote_files(activity)
        if remote:
            await self._on_files(turn, uid, remote)
            return
        text = (activity.text or "").strip()
        if not text:
            if others:
                await self._say(turn, msg.ATTACHMENT_NOT_A_FILE)
            return
        result = await take_turn(self.svc, conversation_id=conversation_id(activity),
                                 user_id=uid, event=parse_text(text))
        await self._reply(turn, uid, result.replies)

    async def _on_files(self, turn: TurnContext, uid: str, remote: list[RemoteFile]) -> None:
        limit = self.svc.policy.max_file_bytes
        notes: list[str] = []
        staged: list[IncomingFile] = []
        for item in remote:
            try:
                got = await files.download(self.channel.http(), self.channel.egress,
                                           url=item.url, name=item.name,
                                           settings=self.svc.settings, max_bytes=limit)
            except files.NotAllowed as exc:
                log.warning("a Teams file was not downloaded: %s", exc)
                notes.append(msg.DOWNLOAD_NOT_ALLOWED.format(name=item.name))
                continue
            except files.TransferFailed as exc:
                log.warning("a Teams file could not be downloaded: %s", exc)
                notes.append(msg.DOWNLOAD_FAILED.format(name=item.name))
                continue
            if isinstance(got, files.TooLarge):
                notes.append(msg.DOWNLOAD_TOO_LARGE.format(name=item.name,
                                                           limit=human_size(limit)))
                await near_misses.record_refused_downloads(self.svc, actor=uid, count=1)
            else:
                staged.append(got)
        replies: list[Reply] = [Text("\n".join(notes))] if notes else []
        if staged:
            try:
                result = await take_turn(self.svc, conversation_id=conversation_id(
                    turn.activity), user_id=uid, event=FilesReceived(tuple(staged)))
            except BaseException:  # never leave plaintext behind that no transfer owns
                await asyncio.to_thread(delete_plaintext, [str(f.path) for f in staged])
                raise
            replies += result.replies
        await self._reply(turn, uid, replies)

    async def _on_submission(self, turn: TurnContext, uid: str, sub: Submission) -> None:
        activity = turn.activity
        card_id = activity.reply_to_id or activity.id or ""
        values = json.dumps(activity.value, sort_keys=True, default=str)
        if not await records.claim(
                self.svc.db, key=records.teams_key("submit", activity.conversation.id,
                                                   card_id, values), now=self.svc.clock()):
            return
        decided = approval_answer(sub.question, sub.value)
        if decided is not None:  # an answer to an ApprovalRequest
            await self._on_approval(turn, uid, sub, decided)
        elif sub.question == cards.REOFFER:
            await self._offer_again(turn, uid, offer_id=str(sub.value))
        else:
            result = await take_turn(self.svc, conversation_id=conversation_id(activity),
                                     user_id=uid, event=Answer(sub.value, sub.question))
            out = await self.channel.prepare(result.replies, user_id=uid)
            if activity.reply_to_id and result.error is None:
                # Accepted: the card becomes a read-only record of the answer.
                await self._replace_card(turn, activity.reply_to_id,
                                         cards.answered_card(sub.title, sub.shown))
            elif activity.reply_to_id and not result.stale:
                # Refused: the card stays the question, asked again in its place with what
                # was typed and the error on the field it is about.
                again = cards.asking(out, sub.question)
                if again is not None and await self._replace_card(
                        turn, activity.reply_to_id, cards.attempt(again, activity.id or "")):
                    out = [a for a in out if cards.card_of(a) is not again]
            await self.channel.send(turn, out)

    async def _on_approval(self, turn: TurnContext, uid: str, sub: Submission,
                           decided: ApprovalAnswer) -> None:
        reference = normalise_reference(decided.reference)
        if not is_reference(reference) or decided.decision is None:
            await self._say(turn, msg.CARD_NOT_UNDERSTOOD)
            return
        approve = decided.decision is Decision.APPROVE
        replies = await approvals.decide(self.svc, approver_id=uid, reference=reference,
                                         approve=approve, reason=sub.reason)
        recorded = next((r for r in replies if isinstance(r, DecisionNote)), None)
        reply_to = turn.activity.reply_to_id
        if reply_to and recorded is not None:
            await self._replace_card(turn, reply_to, cards.decided_card(
                recorded.text, "" if approve else sub.reason))
            replies = [r for r in replies if r is not recorded]
        await self._reply(turn, uid, replies)

    # --- the archive, through the file consent card ------------------------------------

    async def _on_file_consent(self, turn: TurnContext, uid: str) -> None:
        value = turn.activity.value if isinstance(turn.activity.value, dict) else {}
        context = value.get("context") if isinstance(value.get("context"), dict) else {}
        offer_id = context.get("offer") if isinstance(context, dict) else None
        offer = await records.get_offer(self.svc.db, offer_id=offer_id) if isinstance(
            offer_id, str) else None
        if offer is None or offer.user_id != uid:
            await self._say(turn, msg.OFFER_UNKNOWN)
            return
        now = self.svc.clock()
        action = value.get("action")
        if action == ConsentAction.DECLINE:
            if await records.move_offer(self.svc.db, offer_id=offer.id, to=OfferStatus.DECLINED,
                                        only_from=(OfferStatus.OFFERED,), now=now):
                text = msg.DECLINED.format(reference=offer.reference)
                if offer.link_url:
                    text += "\n" + msg.DECLINED_LINK.format(url=offer.link_url)
                await self.channel.send(turn, [cards.card_message(
                    cards.offer_again_card(text, offer.id))])
            return
        upload = value.get("uploadInfo")
        if action != ConsentAction.ACCEPT or not isinstance(upload, dict):
            await self._say(turn, msg.CARD_NOT_UNDERSTOOD)
            return
        url = upload.get("uploadUrl")
        if not isinstance(url, str):
            await self._say(turn, msg.CARD_NOT_UNDERSTOOD)
            return
        try:
            files.check_file_url(self.channel.egress, url)
        except files.NotAllowed as exc:
            log.warning("archive %s was not uploaded: %s", offer.reference, exc)
            await self.channel.send(turn, [cards.card_message(cards.offer_again_card(
                msg.UPLOAD_NOT_ALLOWED.format(reference=offer.reference), offer.id))])
            return
        if not await records.move_offer(self.svc.db, offer_id=offer.id, to=OfferStatus.UPLOADING,
                                        only_from=(OfferStatus.OFFERED,), now=now):
            return  # a second accept of the same offer: the first one is uploading it
        self.channel.spawn(self.channel.uploads.holding(offer.id, self._upload(
            offer, url, dict(upload), conversation_reference(turn.activity))))

    async def _upload(self, offer: records.Offer, url: str, upload: dict[str, Any],
                      reference: dict[str, Any]) -> None:
        db, channel = self.svc.db, self.channel
        try:
            archive = await self._archive(offer)
            if archive is None:
                await records.move_offer(db, offer_id=offer.id, to=OfferStatus.FAILED,
                                         only_from=(OfferStatus.UPLOADING,), now=self.svc.clock())
                await channel.send_to(reference, [cards.text_message(
                    msg.ARCHIVE_GONE.format(reference=offer.reference))])
                return
            try:
                await files.upload(channel.http(), channel.egress, url=url,
                                   chunks=archive.chunks, size=archive.size,
                                   chunk_bytes=channel.upload_chunk_bytes)
            except (files.TransferFailed, OSError, ObjectStoreError) as exc:
                log.warning("archive %s could not be uploaded to OneDrive: %s",
                            offer.reference, exc)
                await records.move_offer(db, offer_id=offer.id, to=OfferStatus.FAILED,
                                         only_from=(OfferStatus.UPLOADING,), now=self.svc.clock())
                await channel.send_to(reference, [cards.card_message(cards.offer_again_card(
                    msg.UPLOAD_FAILED.format(filename=offer.filename,
                                             reference=offer.reference), offer.id))])
                return
            finally:
                await archive.chunks.aclose()
            await records.move_offer(db, offer_id=offer.id, to=OfferStatus.UPLOADED,
                                     only_from=(OfferStatus.UPLOADING,), now=self.svc.clock())
            await channel.send_to(reference, [
                {"type": "message", "attachments": [cards.file_info_attachment(upload)]},
                cards.text_message(msg.UPLOADED.format(filename=offer.filename))])
        except Exception:
            log.exception("the upload of archive %s failed", offer.reference)

    async def _archive(self, offer: records.Offer) -> OpenArchive | None:
        """The offered archive, streamed from the object store (whichever replica packaged
        it); None when it is no longer kept."""
        try:
            return await opener(self.svc)(offer.reference)
        except ObjectStoreError as exc:
            log.warning("archive %s could not be read: %s", offer.reference,
                        type(exc).__name__)
            return None

    async def _offer_again(self, turn: TurnContext, uid: str, *, offer_id: str) -> None:
        """The "Offer it again" button on a declined or failed offer: the same offer, a new
        file consent card. (Typed ``archive REF`` goes through the core, which hands the
        archive back as a :class:`FileReply`; :meth:`TeamsChannel.prepare` renders it.)"""
        db = self.svc.db
        offer = await records.get_offer(db, offer_id=offer_id)
        if offer is None or offer.user_id != uid:
            await self._say(turn, msg.OFFER_UNKNOWN)
            return
        if offer.status is OfferStatus.UPLOADING:
            await self._say(turn, msg.ARCHIVE_BUSY.format(reference=offer.reference))
            return
        if await archive_size(self.svc.objects, self.svc.settings.archives_dir,
                              offer.reference) is None:
            await self._say(turn, msg.ARCHIVE_GONE.format(reference=offer.reference))
            return
        await records.move_offer(db, offer_id=offer.id, to=OfferStatus.OFFERED,
                                 only_from=records.OFFERABLE_AGAIN, now=self.svc.clock())
        consent = cards.ConsentOffer(offer.id, offer.reference, offer.filename, offer.size, "")
        await self.channel.send(turn, [{"type": "message",
                                        "attachments": [cards.consent_attachment(consent)]}])
