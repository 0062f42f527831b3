"""The record a submitted Slack form leaves on its message reads as the person answered:
a question label followed by its answer without a colon, options by their labels."""

from __future__ import annotations

from tests.channels.slack.test_flow import CONSENT, RECIPIENT
from tests.support.core import PDF, PURPOSE
from tests.support.slack import Workspace, message_text

RECIPIENT_FORM: dict[str, str | list[str]] = dict(RECIPIENT)
CONSENT_FORM: dict[str, str | list[str]] = {
    "use_limits": str(CONSENT["use_limits"]), "onward_sharing": "no",
    "delete_after_use": ["yes"]}


async def test_the_consent_form_record_has_no_question_colon_or_raw_values(
        workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("notes.pdf", PDF))
    await alice.click("CONTROLLED")
    await alice.tick("Contact details only", "Other personal data")
    assert await alice.submit(await alice.open_form(), RECIPIENT_FORM) == {}
    await alice.say(PURPOSE)
    await alice.click("UK GDPR Art 6(1)(e) public task")
    assert await alice.submit(await alice.open_form(), CONSENT_FORM) == {}
    record = next(message_text(m) for m in alice.messages()
                  if "Only for the strategy meeting" in message_text(m))
    assert "What may the recipient do with it? Only for the strategy meeting on Friday" \
        in record, record
    assert "May they share it onward with other agencies? No onward sharing" in record, record
    assert "?:" not in record and ": no" not in record and ": yes" not in record
