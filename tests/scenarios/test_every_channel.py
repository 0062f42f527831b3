"""The main conversations, each run on the console, Slack and Teams through the same steps
(:mod:`tests.support.chat`): a share without approval, approved and rejected shares, a portal
download that releases the password, a phone call at the agreed time, a cancelled share, and
a refused answer corrected. The password always goes through the fake Twilio."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import pyzipper
from sqlalchemy import select

from bot.options import CANCEL_QUESTION
from handlers import housekeeping
from store.models import AuditRecord
from tests.support.chat import ChatUser, World, confirm_cancel, portal_link_in, reference_in
from tests.support.core import PDF, Clock
from tests.support.fake_twilio import FakeTwilio
from tests.support.objects import upload_objects

LONDON = ZoneInfo("Europe/London")
RECIPIENT = {"name": "Priya Shah", "job_title": "Safeguarding Lead",
             "organisation": "Northfield NHS Trust", "email": "priya.shah@nhs.net",
             "phone": "07911 123456"}
PURPOSE = "Strategy meeting about a child at risk, as agreed with the family"
CONSENT = {"use_limits": "Only for the strategy meeting on Friday", "onward_sharing": "no",
           "delete_after_use": "yes"}
PHONE = "+447911123456"
# Not special category data, and within the NHS agreement: approval by level only.
CATEGORIES = ("Contact details only", "Other personal data")


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "to-share"
    folder.mkdir()
    (folder / "Julia Smith referral.pdf").write_bytes(PDF)
    (folder / "chronology.txt").write_bytes(b"Chronology of contact\n" * 40)
    return folder / "Julia Smith referral.pdf", folder / "chronology.txt"


async def answer_up_to_summary(alice: ChatUser, files: tuple[Path, ...], *,
                               classification: str = "CONTROLLED",
                               categories: tuple[str, ...] = CATEGORIES,
                               delivery: str = "Encrypted archive", password: str = "SMS now",
                               call_at: datetime | None = None) -> str:
    """Send the files and answer every question as a person would; returns the reference."""
    await alice.send_files(*files)
    reference = reference_in(alice.text)
    await alice.choose(classification)
    await alice.choose_several(*categories)
    await alice.fill(RECIPIENT)
    await alice.answer(PURPOSE)
    await alice.choose("UK GDPR Art 6(1)(e) public task")
    await alice.fill(CONSENT)
    await alice.choose(delivery)
    await alice.choose(password)
    if call_at is not None:
        await alice.pick_time(call_at)
    assert await alice.current_question() == "confirm", alice.text
    return reference


def texted_password(twilio: FakeTwilio, reference: str) -> str:
    """The one SMS Twilio took for ``reference``: to the recipient, with the password."""
    (sms,) = [m for m in twilio.messages if reference in m["Body"]]
    assert sms["To"] == PHONE
    found = re.search(r" is (\S+) \.", sms["Body"])
    assert found, "no password in the SMS"
    return found.group(1)


def opens_with(archive: bytes, password: str) -> list[str]:
    with pyzipper.AESZipFile(io.BytesIO(archive)) as zf:
        zf.setpassword(password.encode())
        names: list[str] = zf.namelist()
        for name in names:
            zf.read(name)
        return names


async def until_told(user: ChatUser, words: str) -> str:
    """What ``user`` was shown once it includes ``words`` (a download is recorded after the
    recipient has the last byte); fails after 30 s rather than hanging."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while words not in user.text:
        assert loop.time() < deadline, f"never told {words!r}:\n{user.text}"
        await asyncio.sleep(0.01)
    return user.text


async def test_controlled_share_without_approval_texts_the_password_once(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files)
    summary = alice.text
    assert "Priya Shah" in summary and "Northfield NHS Trust" in summary

    await alice.choose("Confirm and send")
    told = alice.text
    assert f"Subject: CONFIDENTIAL {reference}" in told
    assert "the password SMS to +44 7911 123456 is with the network" in told
    archive = await alice.archive(reference)

    password = texted_password(world.twilio, reference)
    names = opens_with(archive, password)
    assert "document-1.pdf" in names and not any("Julia" in n for n in names)
    assert password not in alice.text
    await alice.say(f"status {reference}")
    assert "archive handed back" in alice.text
    assert world.twilio.sent_to(reference) == 1


async def test_restricted_share_waits_for_the_approver_then_goes(
        world: World, files: tuple[Path, Path]) -> None:
    boss = await world.approver()
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files, classification="RESTRICTED",
                                           password="SMS once receipt is confirmed")
    await alice.choose("Confirm and send")
    assert f"Transfer {reference} needs authorising" in alice.text
    assert world.twilio.sent_to(reference) == 0

    asked = boss.text
    assert f"Do you authorise {reference}?" in asked and "Priya Shah" in asked
    assert "Julia Smith" not in asked  # the summary, never the files
    mark = alice.mark()
    await boss.approve(reference)
    assert f"approved transfer {reference}" in alice.since(mark)
    assert f"Subject: CONFIDENTIAL {reference}" in alice.since(mark)
    archive = await alice.archive(reference)
    assert world.twilio.sent_to(reference) == 0  # not until the recipient has the files

    await alice.say(f"received {reference}")
    assert "the password SMS to +44 7911 123456 is with the network" in alice.since(mark)
    password = texted_password(world.twilio, reference)
    assert "document-2.txt" in opens_with(archive, password)
    await alice.say(f"received {reference}")  # said twice: still one SMS
    assert world.twilio.sent_to(reference) == 1


async def test_restricted_share_rejected_with_a_reason_sends_nothing(
        world: World, files: tuple[Path, Path]) -> None:
    boss = await world.approver()
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files, classification="RESTRICTED",
                                           password="SMS once receipt is confirmed")
    await alice.choose("Confirm and send")
    assert not any(world.svc.settings.uploads_dir.rglob("*.bin")), "plaintext on the host"
    assert await upload_objects(world.svc), "kept (sealed) while approval is due"
    mark = alice.mark()

    await boss.reject(reference, "Not proportionate: send a summary instead")
    told = alice.since(mark)
    assert f"rejected transfer {reference}" in told and "Not proportionate" in told
    await alice.say(f"status {reference}")
    assert "rejected" in alice.since(mark)
    assert world.twilio.messages == []
    assert not any(world.svc.settings.uploads_dir.rglob("*.bin")), "plaintext left behind"
    assert await upload_objects(world.svc) == [], "upload left behind"


async def test_portal_download_tells_the_sender_and_releases_the_sms(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files, delivery="Secure download link",
                                           password="SMS once receipt is confirmed")
    await alice.choose("Confirm and send")
    link = urlsplit(portal_link_in(alice.text)).path
    assert world.twilio.sent_to(reference) == 0

    # The recipient opens the link (a preview is not a receipt), then downloads.
    preview = await world.portal.get(link)
    assert preview.status == 200 and reference in await preview.text()
    assert world.twilio.sent_to(reference) == 0
    download = await world.portal.post(link)
    assert download.status == 200
    archive = await download.read()

    await until_told(alice, f"Transfer {reference} was downloaded")
    password = texted_password(world.twilio, reference)
    assert "document-1.pdf" in opens_with(archive, password)
    assert password not in alice.text


async def test_voice_call_is_placed_at_the_agreed_time(
        world: World, files: tuple[Path, Path], clock: Clock) -> None:
    alice = await world.sender()
    agreed = datetime(2026, 11, 24, 14, 30, tzinfo=LONDON)
    reference = await answer_up_to_summary(alice, files, password="Phone call at an agreed time",
                                           call_at=agreed)
    assert "Tue 24 Nov 2026 14:30" in alice.text
    await alice.choose("Confirm and send")
    assert "I will phone +44 7911 123456" in alice.text
    await alice.archive(reference)

    await housekeeping.tick(world.svc)  # the scheduler, before the agreed time
    assert world.twilio.calls == []
    clock.now = agreed.astimezone(clock.now.tzinfo)
    await housekeeping.tick(world.svc)
    await housekeeping.tick(world.svc)
    (call,) = world.twilio.calls
    assert call["To"] == PHONE and world.twilio.created[call["Sid"]] == agreed
    # A text may tell them a call is coming; the password itself is only spoken.
    assert all(f"password for {reference} is" not in m["Body"] for m in world.twilio.messages)


async def test_cancelled_at_the_summary_keeps_nothing(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files)
    assert await upload_objects(world.svc), "the files are kept (sealed) meanwhile"
    await alice.choose("Cancel the transfer")
    if world.channel != "slack":  # Slack's button asked in its own dialog; others ask here
        assert await alice.current_question() == CANCEL_QUESTION
        assert f"Cancel {reference}?" in alice.text
        assert await upload_objects(world.svc), "nothing deleted before the yes"
    await confirm_cancel(alice)
    assert f"Transfer {reference} is cancelled" in alice.text
    assert await alice.current_question() is None
    assert not any(world.svc.settings.uploads_dir.rglob("*.bin")), "plaintext left behind"
    assert await upload_objects(world.svc) == [], "upload left behind"

    await alice.say(f"status {reference}")
    assert "cancelled" in alice.text
    assert world.twilio.messages == [] and world.twilio.calls == []


async def test_webmail_recipient_is_refused_then_corrected(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    await alice.send_files(files[0])
    await alice.choose("CONTROLLED")
    await alice.choose_several(*CATEGORIES)
    mark = alice.mark()
    await alice.fill(dict(RECIPIENT, email="priya.shah@gmail.com"))
    assert "personal email service" in alice.since(mark)
    assert await alice.current_question() == "recipient"

    await alice.fill(RECIPIENT)
    assert await alice.current_question() == "purpose"
    assert "Why is this being shared?" in alice.text


async def test_what_kind_of_information_several_apply_back_and_special_category_approval(
        world: World, files: tuple[Path, Path]) -> None:
    """The question after classification: several categories ticked, Back shows them ticked
    and they can be changed; the summary, the approver and the record carry them, with the
    recipient's department. Special category data at CONTROLLED needs a manager, even to an
    address the NHS agreement covers."""
    boss = await world.approver()
    alice = await world.sender()
    await alice.send_files(files[0])
    reference = reference_in(alice.text)
    await alice.choose("CONTROLLED")
    assert await alice.current_question() == "information_categories"
    assert "What kind of information is this?" in alice.text
    await alice.choose_several("Contact details only", "Education")
    assert await alice.current_question() == "recipient"
    await alice.say("back")
    assert await alice.current_question() == "information_categories"
    await alice.choose_several("Health or medical", "Safeguarding")
    await alice.fill(dict(RECIPIENT, department="Children's Safeguarding Team"))
    await alice.answer(PURPOSE)
    await alice.choose("UK GDPR Art 6(1)(e) public task")
    await alice.fill(CONSENT)
    await alice.choose("Encrypted archive")
    await alice.choose("SMS now")
    assert await alice.current_question() == "confirm", alice.text
    summary = alice.text
    assert "Information: Health or medical (special category), Safeguarding (child or adult)" \
        " (special category)" in summary
    assert "Children's Safeguarding Team" in summary
    assert "special category or criminal offence data" in summary
    await alice.choose("Confirm and send")
    assert f"Transfer {reference} needs authorising" in alice.text
    assert "Health or medical" in boss.text and "Children's Safeguarding Team" in boss.text
    assert world.twilio.sent_to(reference) == 0

    (confirmed,) = await audited(world, reference, "confirmed")
    assert confirmed.details["information_categories"] == ["health", "safeguarding"]
    assert confirmed.details["recipient"]["department"] == "Children's Safeguarding Team"
    assert confirmed.details["approval"]["required"] is True
    assert confirmed.details["approval"]["special_category"] is True


async def test_categories_typed_as_an_answer_are_read_on_every_channel(
        world: World, files: tuple[Path, Path]) -> None:
    """Typed in the chat instead of ticked: numbers and names, separated by commas; an
    unknown one is refused naming it, and nothing is not an answer."""
    alice = await world.sender()
    await alice.send_files(files[0])
    reference = reference_in(alice.text)
    await alice.choose("CONTROLLED")
    mark = alice.mark()
    await alice.say("8, astrology")
    assert '"astrology" is not one of the categories' in alice.since(mark)
    assert await alice.current_question() == "information_categories"
    await alice.say("8, Other personal data")
    assert await alice.current_question() == "recipient"
    (answered,) = [r for r in await audited(world, reference, "answered")
                   if r.details["question"] == "information_categories"]
    assert answered.details["information_categories"] == ["contact-details", "other-personal"]


async def audited(world: World, reference: str, action: str) -> list[AuditRecord]:
    async with world.svc.db.read() as session:
        return list((await session.scalars(select(AuditRecord).where(
            AuditRecord.reference == reference, AuditRecord.action == action))).all())
