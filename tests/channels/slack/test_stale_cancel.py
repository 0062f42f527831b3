"""A Cancel (or a yes to a cancel) pressed on an older Slack message never cancels the
transfer the conversation is on now without asking about it by its reference."""

from __future__ import annotations

import copy

from bot.messages import conversation as msg
from handlers.conversation import current_state
from tests.channels.slack.test_flow import answer_up_to_confirm, reference_in, transfer
from tests.support.slack import Workspace


async def test_an_old_cancel_button_asks_about_the_current_transfer(
        workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("chronology.txt", b"Chronology of contact\n" * 50))
    first = reference_in(alice.text)
    await answer_up_to_confirm(alice, classification="CONTROLLED", password="SMS now")
    # The summary as a client still shows it (the record of the answer replaces it here):
    # its Cancel button carries Slack's confirm dialog.
    old_summary = copy.deepcopy(alice.last)
    await alice.click("Confirm and send")
    assert (await transfer(workspace, first)).status == "ready"
    mark = len(alice.messages())
    await alice.send_files(("second.txt", b"Another chronology\n" * 50))
    second = reference_in("\n".join(m.text for m in alice.messages()[mark:]))
    assert second != first

    # The first transfer's summary, still on screen: its Cancel (already "confirmed" in
    # Slack's dialog) is not a cancel of the second transfer; it asks, naming it.
    await alice.click(msg.CONFIRM_CANCEL, message=old_summary)
    assert (await transfer(workspace, second)).status == "draft"
    state = await current_state(workspace.svc, conversation_id=f"slack:{alice.id}")
    assert state.reference == second and state.cancel_pending == second
    assert f"Cancel {second}?" in alice.text
    asked_second = copy.deepcopy(alice.last)

    # Now asked about the first one: the yes still showing for the second is stale.
    await alice.say(f"cancel {first}")
    assert f"Cancel {first}?" in alice.text
    await alice.click(msg.CANCEL_YES.format(reference=second), message=asked_second)
    assert (await transfer(workspace, second)).status == "draft"
    assert (await transfer(workspace, first)).status == "ready"
    state = await current_state(workspace.svc, conversation_id=f"slack:{alice.id}")
    assert state.cancel_pending == first  # still asked, still open

    # The yes asked now does what it says.
    await alice.click(msg.CANCEL_NO)
    assert (await transfer(workspace, first)).status == "ready"
    await alice.say("cancel")
    await alice.click(msg.CANCEL_YES.format(reference=second))
    assert (await transfer(workspace, second)).status == "cancelled"
