"""Whatever reaches /api/messages, the answer is a 4xx or a polite reply: never a 500, never
a crash, never a half-made transfer."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from store.models import Transfer
from tests.channels.teams.test_flow import REF, answer_questions, consent_call, reference_in
from tests.support.core import PDF
from tests.support.fake_teams import FakeFileHost, TeamsUser
from tests.support.objects import upload_objects
from tests.support.teams import APPROVER_AAD, SENDER_AAD, TeamsWorld


async def transfers(world: TeamsWorld) -> int:
    async with world.services.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(Transfer)) or 0)


def _without(body: dict[str, object], key: str) -> dict[str, object]:
    return {k: v for k, v in body.items() if k != key}


async def test_malformed_requests_get_4xx(teams: TeamsWorld) -> None:
    user = teams.user(SENDER_AAD, "Alex Sender")
    good = user.activity(text="help")
    cases: list[tuple[object, bool]] = [
        (b"not json at all", True),
        (b"\xff\xfe{", True),
        (b'{"type": "message"', True),
        ([], False), ("just a string", False), (42, False), ({}, False),
        (_without(good, "type"), False),
        (_without(good, "conversation"), False),
        (_without(good, "from"), False),
        (_without(good, "recipient"), False),
        (_without(good, "serviceUrl"), False),
        ({**good, "type": 7}, False),
        ({**good, "serviceUrl": "ftp://example.org/"}, False),
        ({**good, "serviceUrl": "not a url"}, False),
        ({**good, "conversation": "a:1"}, False),
        ({**good, "conversation": {"id": ""}}, False),
        ({**good, "conversation": {"id": "x" * 5000}}, False),
        ({**good, "from": {"name": "no id"}}, False),
        ({**good, "from": {"id": 12}}, False),
        ({**good, "attachments": "file"}, False),
        ({**good, "attachments": [1, 2]}, False),
        ({**good, "text": ["a"]}, False),
        ({**good, "timestamp": "yesterday"}, False),
    ]
    for body, raw in cases:
        status, _ = await user.post(body, raw=raw)
        assert 400 <= status < 500, (body, status)
    response = await teams.client.post("/api/messages", data="{}",
                                       headers={"Content-Type": "text/plain"})
    assert response.status == 415
    response = await teams.client.post("/api/messages", data=b"x" * (2 * 1024 * 1024),
                                       headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert teams.connector.calls == [] and await transfers(teams) == 0
    assert (await user.post(good))[0] == 200  # and the bot still works


@pytest.mark.parametrize("fields", [
    {"value": "not an object"},
    {"value": {"sh_q": 5}},
    {"value": {"sh_q": "classification", "sh_v": {"nested": True}}},
    {"value": {"sh_q": "approval:SH-NOPE", "sh_v": "approve"}},
    {"value": {"sh_q": "approval:SH-AAAA-22", "sh_v": "maybe"}},
    {"value": {"sh_q": "teams:reoffer", "sh_v": "no-such-offer"}},
    {"value": {"sh_q": "recipient", "name": ["x"]}},
    {"attachments": [{"contentType": "image/png", "contentUrl": "https://x/y.png"}]},
    {"attachments": [{"contentType": "application/vnd.microsoft.teams.file.download.info",
                      "name": "a.pdf", "content": {"downloadUrl": "file:///etc/passwd"}}]},
    {"attachments": [{"contentType": "application/vnd.microsoft.teams.file.download.info",
                      "name": "a.pdf", "content": "nope"}]},
    {"type": "invoke", "name": "fileConsent/invoke", "value": {"action": "accept"}},
    {"type": "invoke", "name": "fileConsent/invoke", "value": "garbage"},
    {"type": "invoke", "name": "fileConsent/invoke",
     "value": {"action": "accept", "context": {"offer": ["x"]}}},
    {"type": "invoke", "name": "adaptiveCard/action", "value": {}},
    {"type": "messageReaction", "reactionsAdded": [{"type": "like"}]},
    {"type": "typing"},
    {"type": "conversationUpdate", "membersAdded": "everyone"},
])
async def test_odd_activities_are_answered_not_crashed(teams: TeamsWorld,
                                                       fields: dict[str, object]) -> None:
    user = teams.user(SENDER_AAD, "Alex Sender")
    status, _ = await user.post(user.activity(text="", **fields))
    assert status in (200, 400), status
    await teams.channel.drain()
    assert await transfers(teams) == 0
    assert not any(teams.services.settings.uploads_dir.rglob("*.bin"))
    assert (await user.post(user.activity(text="help")))[0] == 200


async def test_channels_and_group_chats_get_personal_chat_only(teams: TeamsWorld) -> None:
    for kind in ("channel", "groupChat"):
        user = teams.user(SENDER_AAD, "Alex Sender", conversation_type=kind,
                          conversation_id=f"19:{kind}@thread.tacv2")
        await user.send_file("report.pdf", teams.files.serve(PDF))
        assert "only work in a personal chat" in user.received[-1].text
    assert teams.files.downloads == [] and await transfers(teams) == 0


async def test_file_over_the_limit_is_refused_while_streaming(teams: TeamsWorld) -> None:
    services = teams.services
    services.policy = replace(services.policy, max_file_bytes=50_000)
    user = teams.user(SENDER_AAD, "Alex Sender")
    await user.send_file("huge.pdf", teams.files.serve(PDF + b"0" * 200_000))
    assert "over the 48.8 KB limit" in user.received[-1].text
    assert await transfers(teams) == 0
    assert not any(services.settings.uploads_dir.rglob("*.bin"))
    # One good and one too large: the good one starts the transfer.
    mark = len(user.received)
    await user.send(text="", attachments=[
        {"contentType": "application/vnd.microsoft.teams.file.download.info", "name": n,
         "content": {"downloadUrl": teams.files.serve(data)}}
        for n, data in (("ok.pdf", PDF), ("big.pdf", PDF * 5000))])
    said = user.text_since(mark)
    assert "“big.pdf” is over" in said and REF.search(said)
    assert not any(services.settings.uploads_dir.rglob("*.bin"))  # none kept here
    assert len(await upload_objects(services)) == 1  # the good one, sealed


async def test_approver_without_the_app(teams: TeamsWorld) -> None:
    sender = teams.user(SENDER_AAD, "Alex Sender")
    await sender.send_file("notes.txt", teams.files.serve(b"case note line\n" * 40))
    ref = reference_in(sender.text_since(0))
    await answer_questions(sender, classification="RESTRICTED",
                           password="SMS once receipt is confirmed")
    # An approver who installed the app once and removed it counts as never having it.
    approver = TeamsUser(teams.client, teams.connector, aad=APPROVER_AAD, name="Morgan")
    await approver.install()
    await approver.send(type="installationUpdate", action="remove")
    approver_seen = len(approver.received)
    await sender.click(sender.last_card(), "Confirm and send")
    assert len(approver.received) == approver_seen
    told = sender.text_since(0)
    # The bot no longer knows their name, and never shows their id.
    assert "could not reach your approver: " in told and APPROVER_AAD not in told
    assert f"Your request {ref} is kept for them" in told
    assert "install" in told

    # When they install the app again, the request is waiting for them, and it works.
    await approver.install()
    assert "Hello, I am Safe Haven" in approver.received[approver_seen].text
    request = approver.last_card()
    assert request.card["actions"][0]["data"]["sh_q"] == f"approval:{ref}"
    await approver.click(request, "Approve")
    assert consent_call(sender)


async def test_text_from_users_is_escaped_and_emulator_files_are_refused(
        teams: TeamsWorld) -> None:
    user = teams.user(SENDER_AAD, "Alex Sender")
    await user.send_file("<b>Case</b> notes.pdf", teams.files.serve(PDF))
    said = user.received[0].text
    assert "\\<b\\>Case\\</b\\> notes.pdf" in said and "<b>" not in said

    # The Emulator (like Web Chat) is not Teams: its activities are refused, and its plain
    # contentUrl attachments are no longer fetched (they once were, for local development).
    emulator = teams.user("e-user-1", "Emulator User")
    downloads = list(teams.files.downloads)
    status, _ = await emulator.post(emulator.activity(channelId="emulator", text="", attachments=[
        {"contentType": "application/pdf", "name": "local.pdf",
         "contentUrl": teams.files.serve(PDF)}]))
    assert status == 403
    assert emulator.received == [] and teams.files.downloads == downloads


async def test_download_url_to_an_internal_service_is_not_fetched(teams: TeamsWorld) -> None:
    """Even with TEAMS_AUTH=off, a downloadUrl on 127.0.0.1 that the operator did not name
    (an internal service) gets no request; the sender is told why."""
    internal = FakeFileHost()
    await internal.start()
    try:
        user = teams.user(SENDER_AAD, "Alex Sender")
        await user.send_file("report.pdf", internal.serve(b"internal only"))
        assert "could not fetch “report.pdf”: it is not stored in OneDrive" in \
            user.received[-1].text
        assert internal.downloads == [] and await transfers(teams) == 0
    finally:
        await internal.close()
