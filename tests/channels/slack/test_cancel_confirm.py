"""Slack asks before a Cancel press is sent: the button carries a Block Kit ``confirm``."""

from __future__ import annotations

from bot import answers
from bot.messages import slack as msg
from bot.options import CONFIRM_OPTIONS
from bot.replies import Choice, OptionRole
from bot.statuses import Step
from channels.slack.blocks import choice_blocks
from tests.support import block_kit


def test_the_cancel_button_asks_slack_to_confirm() -> None:
    blocks = choice_blocks(Choice(Step.CONFIRM, "Please check transfer SH-AAAA-22.",
                                  CONFIRM_OPTIONS))
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    cancel = [o.label for o in CONFIRM_OPTIONS if o.role is OptionRole.CANCEL]
    confirmed = [b for b in buttons if "confirm" in b]
    assert [b["text"]["text"] for b in confirmed] == cancel
    assert confirmed[0]["confirm"]["title"]["text"] == msg.CANCEL_CONFIRM_TITLE
    assert confirmed[0]["confirm"]["style"] == "danger"
    assert len(confirmed) < len(buttons)  # confirm only where the press deletes files
    # The press says Slack asked already, so the conversation does not ask again.
    assert [answers.confirmed(b["value"]) for b in buttons] == ["confirm" in b for b in buttons]
    assert block_kit.message_problems(blocks, "Please check") == []
