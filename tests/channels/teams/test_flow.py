"""The whole Safe Haven conversation in a Teams personal chat, over real HTTP: activities
posted to /api/messages, replies and card updates recorded by a fake Bot Connector, files
fetched from and archives uploaded to a fake OneDrive."""

from __future__ import annotations

import re
from typing import Any

import pyzipper
from sqlalchemy import select

from bot.objects import archive_key
from channels.teams.cards import FILE_CONSENT, FILE_INFO
from handlers.password_sends import dispatch
from store.models import Approval, Transfer
from tests.handlers.test_flow import outbox_password
from tests.support.core import CONSENT, PDF, PURPOSE, RECIPIENT, Clock
from tests.support.fake_teams import Call, FakeFileHost, TeamsUser
from tests.support.teams import APPROVER_AAD, INTRUDER_AAD, SENDER_AAD, TeamsWorld

REF = re.compile(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}")


def reference_in(text: str) -> str:
    match = REF.search(text)
    assert match, text
    return match.group(0)


async def answer_questions(user: TeamsUser, *, classification: str, password: str,
                           recipient: dict[str, str] | None = None) -> None:
    """Answer every card from classification to the summary, as a person would."""
    await user.click(user.last_card(), classification)
    await user.tick("Contact details only", "Other personal data")
    await user.click(user.last_card(), "Continue", recipient or RECIPIENT)
    await user.click(user.last_card(), "Send", {"sh_text": PURPOSE})
    card = user.last_card()
    first_basis = next(e for e in card.card["body"] if e["type"] == "Input.ChoiceSet")
    await user.click(card, "Continue", {"sh_v": first_basis["choices"][0]["value"]})
    await user.click(user.last_card(), "Continue", CONSENT)
    delivery = user.last_card()
    await user.click(delivery, user.option_title(delivery, "archive"))
    await user.click(user.last_card(), password)


def consent_call(user: TeamsUser) -> Call:
    return next(c for c in reversed(user.received) if c.attachment(FILE_CONSENT))


async def accept(user: TeamsUser, world: TeamsWorld, call: Call) -> tuple[str, dict[str, Any]]:
    consent = call.attachment(FILE_CONSENT)
    assert consent is not None
    upload_url = world.files.upload_url()
    body = await user.send(type="invoke", name="fileConsent/invoke", replyToId=call.id, value={
        "type": "fileUpload", "action": "accept", "context": consent["content"]["acceptContext"],
        "uploadInfo": {"name": consent["name"], "uploadUrl": upload_url,
                       "contentUrl": f"https://contoso-my.sharepoint.com/{consent['name']}",
                       "uniqueId": "1150D938-8870-4044-9F2C-5BBDEBA70C8C",
                       "fileType": "zip"}})
    await world.channel.drain()
    return upload_url.rsplit("/", 1)[1], body


async def test_file_to_archive_upload_with_approval(teams: TeamsWorld) -> None:
    services, connector = teams.services, teams.connector
    approver = teams.user(APPROVER_AAD, "Morgan Manager")
    await approver.install()
    assert "Hello, I am Safe Haven" in approver.received[-1].text

    sender = teams.user(SENDER_AAD, "Alex Sender")
    await sender.send_file("Julia Smith referral.pdf", teams.files.serve(PDF))
    said = sender.text_since(0)
    ref = reference_in(said)
    assert "Julia Smith referral.pdf" in said and "looks like it identifies a person" in said
    classification = sender.last_card()
    assert "How is this information classified?" in classification.words

    await answer_questions(sender, classification="RESTRICTED",
                           password="SMS once receipt is confirmed")
    # Each submitted card was replaced by a read-only record of the answer.
    records = connector.updates(sender.conversation)
    assert records[0].activity_id == classification.id
    assert "✓ RESTRICTED" in records[0].words and not records[0].card.get("actions")
    assert any("Priya Shah" in r.words for r in records)

    confirm = sender.last_card()
    assert "Please check transfer" in confirm.words and "Priya Shah" in confirm.words
    # People by the name Teams gave them, never by id.
    assert "needed from Morgan Manager" in confirm.words
    mark = len(approver.received)
    await sender.click(confirm, "Confirm and send")
    assert "needs authorising" in sender.text_since(0)

    # The approver is asked proactively, with the summary (never the files).
    request = approver.last_card()
    assert f"Alex Sender asks you to authorise transfer {ref}" in request.words
    assert f"approval:{ref}" == request.card["actions"][0]["data"]["sh_q"]
    assert "Priya Shah" in approver.text_since(mark)
    assert not approver.received[mark:][0].attachment(FILE_CONSENT)

    # Someone else cannot decide it, even by posting the approver's card data.
    intruder = teams.user(INTRUDER_AAD, "Ivy Intruder")
    await intruder.install()
    await intruder.send(text="", value=approver.card_value(request, "Approve"),
                        replyToId=request.id)
    assert "cannot find" in intruder.received[-1].text  # as for a made-up reference
    async with services.db.read() as s:
        approval = (await s.scalars(select(Approval).where(Approval.reference == ref))).one()
    assert approval.status == "pending"
    assert not connector.updates(approver.conversation)

    # Rejecting needs a reason; approving works, and the card shows the decision.
    await approver.click(request, "Reject (give a reason)")
    assert "give a reason" in approver.received[-1].text
    sender_mark = len(sender.received)
    await approver.click(request, "Approve")
    update = connector.updates(approver.conversation)[-1]
    assert update.activity_id == request.id
    assert f"Recorded: you approved transfer {ref}" in update.words
    assert not update.card.get("actions")

    # The sender hears proactively, and gets the archive through the file consent card.
    heard = sender.text_since(sender_mark)
    assert "approved transfer" in heard and f"CONFIDENTIAL {ref}" in heard
    assert f"type “received {ref}”" in heard
    call = consent_call(sender)
    consent = call.attachment(FILE_CONSENT)
    assert consent["name"] == f"{ref}.zip"
    assert consent["content"]["sizeInBytes"] > 0

    session, body = await accept(sender, teams, call)
    upload = teams.files.uploads[session]
    assert upload.done and len(upload.chunks) >= 1
    size = consent["content"]["sizeInBytes"]
    assert upload.chunks[0][0].startswith("bytes 0-") and upload.chunks[-1][0].endswith(
        f"-{size - 1}/{size}")
    info = next(c for c in reversed(sender.received) if c.attachment(FILE_INFO))
    assert info.attachment(FILE_INFO)["name"] == f"{ref}.zip"
    assert "saved in your OneDrive" in sender.received[-1].text

    await sender.say(f"received {ref}")
    assert "the password was texted" in sender.text_since(sender_mark)
    password = outbox_password(services, ref)
    archive = services.settings.var_dir / "uploaded.zip"
    archive.write_bytes(upload.data)
    with pyzipper.AESZipFile(archive) as zf:
        zf.setpassword(password.encode())
        assert zf.read("document-1.pdf") == PDF
    assert password not in "".join(c.words for c in connector.calls)
    assert "teams:" not in "".join(c.words for c in connector.calls)

    # The same accept delivered again (same activity id) uploads nothing more.
    uploads = len(teams.files.uploads)
    status, _ = await sender.post(body)
    await teams.channel.drain()
    assert status == 200 and len(teams.files.uploads) == uploads
    assert upload.chunks == teams.files.uploads[session].chunks
    async with services.db.read() as s:
        row = await s.get(Transfer, ref)
    assert row is not None and row.status == "ready"


async def controlled_transfer(teams: TeamsWorld, sender: TeamsUser) -> str:
    """A CONTROLLED share to an NHS address (no approval needed), password by phone call at
    a time picked with the card's date and time inputs; returns the reference."""
    await sender.send_file("chronology.txt", teams.files.serve(b"Chronology of contact\n" * 50))
    ref = reference_in(sender.text_since(0))
    await answer_questions(sender, classification="CONTROLLED",
                           password="Phone call at an agreed time")
    when = sender.last_card()
    inputs = {e["id"]: e["type"] for e in when.card["body"] if e["type"].startswith("Input.")}
    assert inputs == {"sh_date": "Input.Date", "sh_time": "Input.Time"}
    await sender.click(when, "Send", {"sh_date": "2026-11-24", "sh_time": "14:30"})
    confirm = sender.last_card()
    assert "Tue 24 Nov 2026 14:30" in confirm.words
    await sender.click(confirm, "Confirm and send")
    return ref


async def test_file_consent_decline_then_offer_again(teams: TeamsWorld) -> None:
    sender = teams.user(SENDER_AAD, "Alex Sender")
    ref = await controlled_transfer(teams, sender)
    assert "I will phone +44 7911 123456" in sender.text_since(0)
    call = consent_call(sender)
    consent = call.attachment(FILE_CONSENT)

    await sender.send(type="invoke", name="fileConsent/invoke", replyToId=call.id, value={
        "type": "fileUpload", "action": "decline",
        "context": consent["content"]["declineContext"]})
    declined = sender.last_card()
    assert f"You declined the archive for {ref}" in declined.words
    assert f"archive {ref}" in declined.words and not teams.files.uploads

    # The button offers it again; so does typing `archive REF`.
    await sender.click(declined, "Offer it again")
    again = consent_call(sender)
    assert again.id != call.id
    assert again.attachment(FILE_CONSENT)["content"]["acceptContext"] == consent["content"][
        "acceptContext"]
    await sender.say(f"archive {ref.lower()}")
    typed = consent_call(sender)
    assert typed.id != again.id

    session, _ = await accept(sender, teams, typed)
    assert teams.files.uploads[session].done

    # At the agreed time the scheduler places the call; the receipt reaches the sender.
    clock = teams.services.clock
    assert isinstance(clock, Clock)
    clock.advance(days=1, hours=5, minutes=1)
    mark = len(sender.received)
    await dispatch.run_due(teams.services)
    receipt = sender.text_since(mark)
    assert f"Transfer {ref}: the password was read out in a call" in receipt
    assert "Report a mistake" in receipt  # the receipt carries the button
    # An accept on an older card of the same offer does not upload a second time.
    await accept(sender, teams, again)
    assert sum(u.done for u in teams.files.uploads.values()) == 1

    # Another user cannot have it offered to them.
    intruder = teams.user(INTRUDER_AAD, "Ivy Intruder")
    await intruder.say(f"archive {ref}")
    assert f"I cannot find a transfer {ref}" in intruder.received[-1].text
    assert not any(c.attachment(FILE_CONSENT) for c in intruder.received)
    await intruder.send(type="invoke", name="fileConsent/invoke", value={
        "type": "fileUpload", "action": "accept", "context": consent["content"]["acceptContext"],
        "uploadInfo": {"uploadUrl": teams.files.upload_url(), "name": "x.zip"}})
    await teams.channel.drain()
    assert "cannot find that archive" in intruder.received[-1].text
    assert sum(bool(u.chunks) for u in teams.files.uploads.values()) == 1


async def test_failed_upload_can_be_retried(teams: TeamsWorld) -> None:
    sender = teams.user(SENDER_AAD, "Alex Sender")
    ref = await controlled_transfer(teams, sender)
    teams.files.fail_uploads = True
    await accept(sender, teams, consent_call(sender))
    failed = sender.last_card()
    assert "could not save" in failed.words and f"{ref}.zip" in failed.words
    teams.files.fail_uploads = False
    await sender.click(failed, "Offer it again")
    session, _ = await accept(sender, teams, consent_call(sender))
    assert teams.files.uploads[session].done


async def test_double_submit_and_repeated_activity_act_once(teams: TeamsWorld) -> None:
    sender = teams.user(SENDER_AAD, "Alex Sender")
    first = await sender.send_file("notes.txt", teams.files.serve(b"case note line\n" * 40))
    replies = len(sender.received)
    # Bot Framework delivers the same activity again: nothing happens.
    status, _ = await sender.post(first)
    assert status == 200 and len(sender.received) == replies
    assert len(teams.files.downloads) == 1

    card = sender.last_card()
    value = sender.card_value(card, "CONTROLLED")
    await sender.send(text="", value=value, replyToId=card.id)
    after_first = len(sender.received)
    await sender.send(text="", value=value, replyToId=card.id)  # the double click
    assert len(sender.received) == after_first
    assert len(teams.connector.updates(sender.conversation)) == 1
    assert "What kind of information is this?" in sender.last_card().words


async def test_upload_url_not_on_the_list_gets_no_archive(teams: TeamsWorld) -> None:
    """An accepted file consent whose uploadUrl is not OneDrive (here an attacker's server
    on 127.0.0.1, not named by the operator) sends nothing there; the offer stands."""
    attacker = FakeFileHost()
    await attacker.start()
    try:
        sender = teams.user(SENDER_AAD, "Alex Sender")
        ref = await controlled_transfer(teams, sender)
        call = consent_call(sender)
        consent = call.attachment(FILE_CONSENT)
        for url in (attacker.upload_url(), "https://attacker.example/upload/1",
                    "https://contoso-my.sharepoint.com.attacker.example/upload/1"):
            mark = len(sender.received)
            await sender.send(type="invoke", name="fileConsent/invoke", replyToId=call.id,
                              value={"type": "fileUpload", "action": "accept",
                                     "context": consent["content"]["acceptContext"],
                                     "uploadInfo": {"name": consent["name"], "uploadUrl": url}})
            await teams.channel.drain()
            said = sender.text_since(mark)
            assert f"I did not save archive {ref}" in said and "Offer it again" in said, url
        assert all(not u.chunks for u in attacker.uploads.values())
        # The real OneDrive upload still works afterwards.
        session, _ = await accept(sender, teams, call)
        assert teams.files.uploads[session].done
    finally:
        await attacker.close()


async def test_an_archive_gone_from_the_store_is_said_plainly(teams: TeamsWorld) -> None:
    sender = teams.user(SENDER_AAD, "Alex Sender")
    ref = await controlled_transfer(teams, sender)
    await teams.services.objects.delete(archive_key(ref))
    await accept(sender, teams, consent_call(sender))
    assert f"The archive for {ref} is no longer kept on the server" in \
        sender.received[-1].text
    assert not any(u.chunks for u in teams.files.uploads.values())


async def refuse_a_recipient(teams: TeamsWorld, user: TeamsUser) -> Call:
    """Up to the recipient form, sent with a webmail address and a short phone number;
    returns the form's message."""
    await user.send_file("referral.pdf", teams.files.serve(PDF))
    await user.click(user.last_card(), "CONTROLLED")
    await user.tick("Contact details only", "Other personal data")
    form = user.last_card()
    await user.click(form, "Continue", {**RECIPIENT, "email": "someone@gmail.com",
                                        "phone": "12"})
    return form


def _after(card: dict[str, Any], field: str) -> list[dict[str, Any]]:
    body = card["body"]
    at = next(i for i, e in enumerate(body) if e.get("id") == field)
    following = []
    for element in body[at + 1:]:
        if element["type"] != "TextBlock":
            break
        following.append(element)
    return following


async def test_a_refused_answer_keeps_the_form_with_the_error_on_the_field(
        teams: TeamsWorld) -> None:
    sender = teams.user(SENDER_AAD, "Alex Sender")
    form = await refuse_a_recipient(teams, sender)

    # The card was not recorded as answered: it is the form again, in its place, with what
    # was typed and each error right under its field.
    (update,) = teams.connector.updates(sender.conversation)[-1:]
    assert update.activity_id == form.id
    assert "✓" not in update.words
    values = {e["id"]: e.get("value") for e in update.card["body"]
              if e["type"].startswith("Input.")}
    assert values["email"] == "someone@gmail.com" and values["phone"] == "12"
    assert values["name"] == RECIPIENT["name"]
    for field in ("email", "phone"):
        errors = [b for b in _after(update.card, field) if b.get("color") == "Attention"]
        assert errors, (field, _after(update.card, field))
    assert not [b for b in _after(update.card, "name") if b.get("color") == "Attention"]
    # No second form was sent: the person corrects the one they have.
    assert sender.last_card().id == form.id

    # Corrected there, it is accepted and only then shown as answered.
    await sender.click(sender.last_card(), "Continue", RECIPIENT)
    assert "✓" in teams.connector.updates(sender.conversation)[-1].words
    assert "Priya Shah" in teams.connector.updates(sender.conversation)[-1].words
    assert sender.last_card().id != form.id
