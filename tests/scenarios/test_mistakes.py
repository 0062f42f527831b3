"""Reporting a mistake (``mistake REF``, or the button on a receipt) at every stage, on the
console, Slack and Teams through their real entry points: what the sender is told names
each fact that had reached the recipient, and what can be withdrawn is (the portal link
refuses over HTTP, a pending send is never made by the worker, the archive object is gone).
The approver and the governance contact hear of it; a second report changes nothing; only
the sender or an approver may report."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.app.web import create_app
from bot.events import Answer, Command
from bot.objects import archive_key
from bot.replies import MistakeButton, Reply
from channels.twilio.settings import load_twilio_settings
from channels.twilio.webhooks import mount_twilio
from handlers import approvals, housekeeping
from handlers.archive_reads import archive_size
from handlers.conversation import pressed_command
from store.models import AuditRecord, Incident, PasswordSend, Transfer
from tests.scenarios.test_every_channel import answer_up_to_summary, files, until_told
from tests.support.chat import ChatUser, World, cancel, portal_link_in
from tests.support.console import Transcripts
from tests.support.core import Clock
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.support.objects import upload_objects

__all__ = ["files"]  # the fixture, shared with the main scenarios

LONDON = ZoneInfo("Europe/London")
GOVERNANCE = "console:governance"  # the default policy's [governance] contact
PUBLIC = "https://safehaven.example.gov.uk"


async def report(world: World, alice: ChatUser, reference: str) -> str:
    """Report the mistake as each channel offers it: the button on the receipt in Slack and
    Teams, the command in the terminal (which has no buttons). Returns what was said."""
    mark = alice.mark()
    if world.channel == "console":
        await alice.say(f"mistake {reference}")
    else:
        await alice.choose("Report a mistake")
    return alice.since(mark)


def told_to(world: World, user_id: str) -> str:
    """What the notifier's fallback (where console ids go on every channel) gave ``user_id``."""
    fallback: Any = world.svc.notifier.fallback  # type: ignore[attr-defined]
    replies: list[Reply] = (fallback.of(user_id) if isinstance(fallback, Transcripts)
                            else fallback.for_user(user_id))
    return "\n".join(str(getattr(r, "text", "")) for r in replies)


async def incident(world: World, reference: str) -> Incident:
    async with world.svc.db.read() as session:
        row = (await session.scalars(select(Incident).where(
            Incident.reference == reference))).one()
    return row


async def status_of(world: World, reference: str) -> str:
    async with world.svc.db.read() as session:
        row = await session.get(Transfer, reference)
    assert row is not None
    return row.status


async def send_statuses(world: World, reference: str) -> list[str]:
    async with world.svc.db.read() as session:
        rows = (await session.scalars(select(PasswordSend).where(
            PasswordSend.reference == reference).order_by(PasswordSend.id))).all()
    return [r.status for r in rows]


async def audited(world: World, reference: str, action: str) -> list[dict[str, Any]]:
    async with world.svc.db.read() as session:
        rows = (await session.scalars(select(AuditRecord).where(
            AuditRecord.reference == reference, AuditRecord.action == action))).all()
    return [r.details for r in rows]


async def archive_kept(world: World, reference: str) -> bool:
    return await archive_size(world.svc.objects, world.svc.settings.archives_dir,
                              reference) is not None


async def test_mistake_after_hand_back_from_the_receipt_button(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files)
    await alice.choose("Confirm and send")
    assert "Report a mistake" in alice.text or f"mistake {reference}" in alice.text
    assert world.twilio.sent_to(reference) == 1
    assert await archive_kept(world, reference)

    said = await report(world, alice, reference)
    assert f"Mistake on transfer {reference} reported" in said
    assert "the encrypted archive was handed back to you" in said
    assert "Safe Haven cannot recall an email" in said
    assert "the password was sent but its delivery was not confirmed: text message to " \
        "+44 7911 123456" in said
    assert "deleted the encrypted archive from Safe Haven" in said
    assert "destroyed the password" in said
    assert f"information governance: {GOVERNANCE}" in said
    assert "(72 hours)" in said

    assert not await archive_kept(world, reference)
    assert await world.svc.objects.head(archive_key(reference)) is None
    assert await status_of(world, reference) == "withdrawn"
    found = await incident(world, reference)
    assert found.reported_by == alice.user_id and found.status == "open"
    assert found.ico_decision_due - found.opened_at == timedelta(hours=72)
    assert found.facts["handed_back"] is True and len(found.facts["password_sent"]) == 1
    (details,) = await audited(world, reference, "mistake_reported")
    assert details["reached"] == found.facts
    governance = told_to(world, GOVERNANCE)
    assert f"reported a mistake on transfer {reference}" in governance
    assert "handed back" in governance

    # A second report (a second press, or typed) changes nothing and says so.
    mark = alice.mark()
    await alice.say(f"mistake {reference}")
    assert f"A mistake on transfer {reference} was already reported" in alice.since(mark)
    assert len(await audited(world, reference, "mistake_reported")) == 1
    assert world.twilio.sent_to(reference) == 1


async def test_mistake_before_packaging_stops_it_and_tells_the_approver(
        world: World, files: tuple[Path, Path]) -> None:
    boss = await world.approver()
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files, classification="RESTRICTED",
                                           password="SMS once receipt is confirmed")
    await alice.choose("Confirm and send")
    assert f"Transfer {reference} needs authorising" in alice.text

    said = await _say(alice, f"mistake {reference}")
    assert "nothing: the transfer was waiting for approval and no archive or password had " \
        "been made" in said
    assert "stopped the transfer before anything was packaged" in said
    # (Slack shows the id as a mention: its part after "slack:"; Teams the name it gave.)
    assert "- the approver: " in said and (
        "Morgan Manager" in said if world.channel == "teams"
        else boss.user_id.split(":", 1)[1] in said)
    # Slack shows it on the request itself (amended in place), the others after it.
    assert f"reported a mistake on transfer {reference}" in boss.text
    assert f"reported a mistake on transfer {reference}" in told_to(world, GOVERNANCE)
    assert await upload_objects(world.svc) == [], "the sealed uploads are deleted"

    # Too late to approve (as `safehaven approve` would; Slack removed the buttons).
    late = await approvals.decide(world.svc, approver_id=boss.user_id, reference=reference,
                                  approve=True)
    assert "not waiting for approval" in " ".join(str(getattr(r, "text", "")) for r in late)
    assert await status_of(world, reference) == "withdrawn"
    assert world.twilio.messages == [] and world.twilio.calls == []
    assert not await archive_kept(world, reference)
    assert (await incident(world, reference)).facts["packaged"] is False


async def _say(user: ChatUser, text: str) -> str:
    mark = user.mark()
    await user.say(text)
    return user.since(mark)


async def test_mistake_after_a_portal_download_withdraws_the_link(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files, delivery="Secure download link",
                                           password="SMS once receipt is confirmed")
    await alice.choose("Confirm and send")
    link = urlsplit(portal_link_in(alice.text)).path
    download = await world.portal.post(link)
    assert download.status == 200
    await download.read()
    await until_told(alice, f"Transfer {reference} was downloaded")
    assert world.twilio.sent_to(reference) == 1  # the download released the SMS

    said = await _say(alice, f"mistake {reference}")
    assert "the archive was downloaded 1 time through the download link" in said
    assert "handed back to you" not in said
    assert "the password was sent but its delivery was not confirmed" in said
    assert "withdrew the download link" in said
    assert "deleted the encrypted archive" in said

    again = await world.portal.post(link)
    assert again.status in (404, 410), again.status
    page = await world.portal.get(link)
    assert page.status in (404, 410) and reference not in await page.text()
    assert not await archive_kept(world, reference)
    facts = (await incident(world, reference)).facts
    assert facts["downloads"] == 1 and facts["link_issued"] is True


async def test_mistake_with_the_password_still_waiting_cancels_it_for_good(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files, password="SMS once receipt is confirmed")
    await alice.choose("Confirm and send")
    assert await send_statuses(world, reference) == ["waiting"]

    said = await report(world, alice, reference)
    assert "cancelled 1 send of the password not yet made (text messages or calls)" in said
    assert "the password had not reached them" in said
    assert await send_statuses(world, reference) == ["cancelled"]

    await alice.say(f"received {reference}")  # the recipient "confirms": nothing goes
    await housekeeping.tick(world.svc)
    assert world.twilio.sent_to(reference) == 0
    assert await send_statuses(world, reference) == ["cancelled"]


async def test_mistake_before_the_agreed_call_means_no_call(
        world: World, files: tuple[Path, Path], clock: Clock) -> None:
    alice = await world.sender()
    agreed = datetime(2026, 11, 24, 14, 30, tzinfo=LONDON)
    reference = await answer_up_to_summary(alice, files, password="Phone call at an agreed time",
                                           call_at=agreed)
    await alice.choose("Confirm and send")

    said = await _say(alice, f"mistake {reference}")
    assert "cancelled" in said and "the password had not reached them" in said
    clock.now = agreed.astimezone(clock.now.tzinfo)
    await housekeeping.tick(world.svc)
    await housekeeping.tick(world.svc)
    assert world.twilio.calls == []
    assert all(s == "cancelled" for s in await send_statuses(world, reference))


async def test_mistake_after_the_password_was_delivered_says_so(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files)
    await alice.choose("Confirm and send")
    (sms,) = [m for m in world.twilio.messages if reference in m["Body"]]
    settings = load_twilio_settings({
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+441632960001", "TWILIO_API_URL": world.twilio.url,
        "SAFEHAVEN_PUBLIC_URL": PUBLIC})
    assert settings is not None
    app = create_app(world.svc, migrate=False, scheduler=False)
    mount_twilio(app, world.svc, settings)
    path = urlsplit(sms["StatusCallback"])
    path_qs = f"{path.path}?{path.query}"
    form = {"MessageSid": sms["Sid"], "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + path_qs, form)
    mark = alice.mark()
    async with TestClient(TestServer(app, host="127.0.0.1")) as twilio_hooks:
        answer = await twilio_hooks.post(path_qs, data=form,
                                         headers={"X-Twilio-Signature": signature})
        assert answer.status == 204
    assert await send_statuses(world, reference) == ["delivered"]
    # The receipt the sender gets, with the button (Slack, Teams) or the command to type.
    receipt = await until_told(alice, f"Transfer {reference}: the password was texted to")
    assert f"mistake {reference}" in alice.since(mark), receipt
    if world.channel != "console":  # the line that goes with the button, not the terminal's
        assert "(or press the button)" in alice.since(mark)

    said = await report(world, alice, reference)  # pressed on the password's receipt
    assert "the password was delivered: text message delivered to +44 7911 123456" in said
    assert "the encrypted archive was handed back to you" in said
    assert len((await incident(world, reference)).facts["password_delivered"]) == 1


async def test_only_the_sender_or_an_approver_may_report(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files)
    await alice.choose("Confirm and send")
    boss = await world.approver()  # listed approver for every sender, but not asked here
    said = await _say(boss, f"mistake {reference}")
    assert f"I cannot find a transfer {reference} that you can act on" in said
    async with world.svc.db.read() as session:
        assert (await session.scalars(select(Incident))).all() == []
    assert await status_of(world, reference) == "ready"
    assert await archive_kept(world, reference)
    assert (await audited(world, reference, "access_refused"))[-1]["command"] == "mistake"


async def test_cancel_after_hand_back_says_what_went_and_points_to_mistake(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files)
    await alice.choose("Confirm and send")
    mark = alice.mark()
    await cancel(alice, reference)
    said = alice.since(mark)
    assert "no password will be sent" not in said
    assert f"Transfer {reference} is cancelled" in said
    assert "the encrypted archive was handed back to you" in said
    assert "the password was sent but its delivery was not confirmed" in said
    assert f"`mistake {reference}`" in said or f"mistake {reference}" in said

    # Reporting it afterwards still works: the cancel withdrew, the report records.
    said = await _say(alice, f"mistake {reference}")
    assert f"Mistake on transfer {reference} reported" in said
    assert "the encrypted archive was handed back to you" in said


def test_the_buttons_answer_is_the_command() -> None:
    """The button's answer is the command: pressing it is typing ``mistake REF``."""
    button = MistakeButton("SH-7K3Q-9F")
    assert pressed_command(Answer(button.reference, button.question)) == \
        Command("mistake", ("SH-7K3Q-9F",))
    # Any other command, or a value that is no reference, stays an answer (stale).
    assert isinstance(pressed_command(Answer("SH-7K3Q-9F", "command:cancel")), Answer)
    assert isinstance(pressed_command(Answer("not a ref", button.question)), Answer)


async def test_the_archive_sent_again_carries_the_mistake_button(
        world: World, files: tuple[Path, Path]) -> None:
    """``archive REF`` is a receipt like the first hand-back: in Slack and Teams its last
    message is the "Report a mistake" button, and pressing it reports the mistake."""
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files)
    await alice.choose("Confirm and send")
    mark = alice.mark()
    await alice.say(f"archive {reference}")
    again = alice.since(mark)
    assert len(await audited(world, reference, "archive_resent")) == 1
    # (Teams documents no code formatting: the command is in quotes there.)
    assert (f"“mistake {reference}”" if world.channel == "teams"
            else f"`mistake {reference}`") in again
    assert ("(or press the button)" in again) == (world.channel != "console")
    said = await report(world, alice, reference)  # the button under the archive sent again
    assert f"Mistake on transfer {reference} reported" in said
    assert not await archive_kept(world, reference)
    assert len(await audited(world, reference, "mistake_reported")) == 1
