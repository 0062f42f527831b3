"""Only people of the bot's own Slack workspace are served: someone from another workspace
(a Slack Connect user in a shared conversation, say) is refused, with nothing downloaded,
kept or changed."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from bot.messages import slack as msg
from bot.settings import SettingsError
from channels.slack.settings import load_slack_settings
from store.models import Transfer
from tests.support.core import PDF
from tests.support.slack import Workspace, message_text

OTHER = "T0OTHER99"


async def transfers(workspace: Workspace) -> int:
    async with workspace.svc.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Transfer)) or 0)


async def test_files_from_another_workspace_are_refused_once_and_never_downloaded(
        workspace: Workspace) -> None:
    mallory = workspace.user("UMALLORY1")
    event = {**mallory.file_event(("case.pdf", PDF)), "user_team": OTHER}
    assert await workspace.event(event, event_id="EvFOREIGN1") == 200
    assert await workspace.event(event, event_id="EvFOREIGN1", retry=1) == 200
    assert [message_text(m) for m in mallory.messages()] == [msg.OTHER_WORKSPACE]
    assert workspace.fake.downloads == []
    assert await transfers(workspace) == 0


async def test_a_command_from_another_workspace_is_answered_with_the_refusal(
        workspace: Workspace) -> None:
    body = (f"token=legacy&team_id={OTHER}&user_id=UMALLORY1&command=%2Fsafehaven"
            "&text=list&channel_id=DUMALLORY1&api_app_id=A0001&trigger_id=t1")
    status, text = await workspace.post(body, "application/x-www-form-urlencoded")
    assert status == 200 and "own organisation" in text
    await workspace.settle()
    assert workspace.fake.called("chat.postMessage") == []


async def test_a_click_by_someone_of_another_workspace_changes_nothing(
        workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    assert await alice.send_files(("case.pdf", PDF)) == 200
    before = [(m.ts, m.blocks) for m in alice.messages()]
    message, block, element = alice.find_control("CONTROLLED")
    payload = alice.action_payload(message, block, element)
    payload["user"]["team_id"] = OTHER
    status, _ = await workspace.interact(payload)
    assert status == 200
    assert [(m.ts, m.blocks) for m in alice.messages()] == before
    # The same click by Alice herself is acted on.
    await alice.click("CONTROLLED")
    assert [(m.ts, m.blocks) for m in alice.messages()] != before


async def test_own_workspace_and_listed_workspaces_are_served(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    assert await workspace.event({**alice.message_event("help"), "user_team": "T0001"}) == 200
    assert msg.OTHER_WORKSPACE not in alice.text and "I package" in alice.text
    workspace.channel.settings = dataclasses.replace(workspace.channel.settings,
                                                     team_ids=frozenset({OTHER}))
    bob = workspace.user("UBOB0001")
    assert await workspace.event({**bob.message_event("help"), "user_team": OTHER}) == 200
    assert "I package" in bob.text


def test_slack_team_ids_setting_is_checked() -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    settings = load_slack_settings({**env, "SLACK_TEAM_IDS": " T0002 ,E0003,"})
    assert settings is not None and settings.team_ids == {"T0002", "E0003"}
    with pytest.raises(SettingsError, match="SLACK_TEAM_IDS"):
        load_slack_settings({**env, "SLACK_TEAM_IDS": "T0002,<script>"})
