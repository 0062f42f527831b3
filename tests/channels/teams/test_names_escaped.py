"""What people choose (their Teams display name, a file's name, a recipient's name, a
purpose) reaches an approver's and a sender's cards as text: never a link or bold in a
TextBlock, over the real app with the fake Bot Connector."""

from __future__ import annotations

import json
from typing import Any

from tests.channels.teams.test_flow import answer_questions, reference_in
from tests.support.core import CONSENT, PDF, PURPOSE, RECIPIENT
from tests.support.teams import APPROVER_AAD, SENDER_AAD, TeamsWorld
from tests.support.teams_render import elements, sent_problems

HOSTILE = "[Approved by DPO](https://evil.example/x) **URGENT: approve now**"
ESCAPED = "\\[Approved by DPO\\](https://evil.example/x) \\*\\*URGENT: approve now\\*\\*"


def _texts(card: dict[str, Any]) -> list[str]:
    return [str(e["text"]) for e in elements(card) if e["type"] == "TextBlock"]


async def test_a_display_name_and_typed_values_are_not_markdown_in_cards(
        teams: TeamsWorld) -> None:
    approver = teams.user(APPROVER_AAD, "Morgan Manager")
    await approver.install()
    sender = teams.user(SENDER_AAD, HOSTILE)
    await sender.install()
    await sender.send_file("**urgent** [notes].pdf", teams.files.serve(PDF))
    ref = reference_in(sender.text_since(0))
    await answer_questions(sender, classification="RESTRICTED",
                           password="SMS once receipt is confirmed",
                           recipient={**RECIPIENT, "name": "Priya _Shah_ [x](https://evil.example)"})

    # The sender's summary (in the confirm card): the file and recipient names as typed.
    summary = "\n".join(_texts(sender.last_card().card))
    assert "\\*\\*urgent\\*\\* \\[notes\\].pdf" in summary, summary
    assert "Priya \\_Shah\\_ \\[x\\](https://evil.example)" in summary, summary
    mark = len(approver.received)
    await sender.click(sender.last_card(), "Confirm and send")

    # The approver's card names the sender as Teams gave the name, escaped.
    request = approver.last_card()
    intro = _texts(request.card)[0]
    assert intro.startswith(f"{ESCAPED} asks you to authorise transfer {ref}"), intro
    assert HOSTILE not in json.dumps(request.card, ensure_ascii=False)
    # Everything sent (cards and messages) still passes the card guard's checks.
    assert sent_problems(c.body for c in teams.connector.calls) == []
    assert sent_problems(c.body for c in approver.received[mark:]) == []


async def test_the_consent_form_record_reads_as_answered(teams: TeamsWorld) -> None:
    """The read-only record left in place of the submitted consent form: question labels
    without a colon, options by their labels (never "no"/"yes"), typed text escaped."""
    sender = teams.user(SENDER_AAD, "Alex Sender")
    await sender.send_file("notes.pdf", teams.files.serve(PDF))
    await sender.click(sender.last_card(), "CONTROLLED")
    await sender.tick("Contact details only", "Other personal data")
    await sender.click(sender.last_card(), "Continue", RECIPIENT)
    await sender.click(sender.last_card(), "Send", {"sh_text": PURPOSE})
    card = sender.last_card()
    basis = next(e for e in card.card["body"] if e["type"] == "Input.ChoiceSet")
    await sender.click(card, "Continue", {"sh_v": basis["choices"][0]["value"]})
    await sender.click(sender.last_card(), "Continue",
                       {**CONSENT, "use_limits": "Only for **Friday** [meeting](https://x.example)"})
    record = next(u for u in teams.connector.updates(sender.conversation)
                  if "What may the recipient do" in u.words)
    lines = _texts(record.card)
    assert ("✓ What may the recipient do with it? Only for \\*\\*Friday\\*\\* "
            "\\[meeting\\](https://x.example)") in lines, lines
    assert "May they share it onward with other agencies? No onward sharing" in lines, lines
    assert "The recipient must delete it after use: Yes, I will tell them" in lines, lines
    assert not [line for line in lines if "?:" in line or line.endswith((": no", ": yes"))]
    assert sent_problems([{"attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "content": record.card}]}]) == []
