"""A question with buttons answered by typing is updated in place, as after a click: the
DM reads as a clean record, with no live buttons left on questions already answered."""

from __future__ import annotations

from tests.support.core import PDF
from tests.support.slack import Workspace, controls, message_text


async def test_a_typed_answer_updates_the_question_in_place(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    assert await alice.send_files(("case.pdf", PDF)) == 200
    question, _, _ = alice.find_control("CONTROLLED")
    assert controls(question)

    await alice.say("help")  # a command: the question stays open, buttons and all
    asked = next(m for m in alice.messages() if m.ts == question.ts)
    assert controls(asked)

    await alice.say("purple")  # refused: noted on the question, which is asked again below
    refused = next(m for m in alice.messages() if m.ts == question.ts)
    assert not controls(refused) and "✗ purple: not accepted" in message_text(refused)
    again, _, _ = alice.find_control("CONTROLLED")
    assert again.ts != question.ts

    await alice.say("controlled")
    answered = next(m for m in alice.messages() if m.ts == again.ts)
    assert not controls(answered) and "✓ controlled" in message_text(answered)
    live = [m for m in alice.messages() if controls(m)]
    assert [m.ts for m in live] == [alice.messages()[-1].ts]  # only the next question's
