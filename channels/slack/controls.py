"""The names our Block Kit carries and Slack hands back: action ids, callback ids, the
block-id prefixes (answers themselves are encoded by :mod:`bot.answers`). The renderer
(:mod:`channels.slack.blocks`) writes them, the listeners match on them and
:mod:`channels.slack.inputs` reads them back, so they live here, apart from both.

A reply that asks carries its question id into every button value, select block and modal,
so the answer names the question it answers and the core recognises a late or repeated
click as stale.
"""

from __future__ import annotations

ANSWER = "sh.answer"        # + ".<n>": a button answering a Choice
SELECT = "sh.select"        # a static select answering a Choice
OPEN_FORM = "sh.form"       # a button opening a Form in a modal
USE_TIME = "sh.time"        # the button sending the picked date and time
PICK_TIME = "sh.time.pick"  # the date-time picker itself (its changes are only acknowledged)
USE_CHECKED = "sh.checked"  # the button sending the options ticked in a several-choice question
CHECK = "sh.check"          # its checkboxes or multi-select (changes only acknowledged)
MAX_CHECKBOXES = 10         # Slack's limit for a checkboxes element; more go in a multi-select
FORM_VIEW = "sh.form.view"  # callback id of a Form modal
REJECT_VIEW = "sh.reject.view"
QUESTION_BLOCK = "sh.q:"    # + question id: the block holding a question's controls
FIELD_BLOCK = "f."          # + field name: an input block in a Form modal
REASON_FIELD = "reason"     # the rejection modal's one field
TIME_FORMAT = "%Y-%m-%d %H:%M"  # a date and time as the engine reads typed ones
BLOCK_ID_MAX = 255


def question_block(question: str) -> str:
    """The block id of the block holding ``question``'s controls (within Slack's limit)."""
    block_id = QUESTION_BLOCK + question
    return block_id if len(block_id) <= BLOCK_ID_MAX else block_id[: BLOCK_ID_MAX - 1] + "…"
