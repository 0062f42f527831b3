"""``safehaven chat`` answered line by line: commands typed into a form field, Enter on a
choice with a marked answer, and the wording the terminal prints around questions."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

from bot.statuses import Step
from channels.console.chat import run_chat
from channels.console.render import render
from handlers.conversation import current_state, parse_text, take_turn
from handlers.services import Services


def script(lines: list[str]) -> tuple[Callable[[str], Any], list[str]]:
    """A terminal that types ``lines`` one by one, keeping the prompts it was shown."""
    prompts: list[str] = []
    queue = list(lines)

    async def read(prompt: str) -> str | None:
        prompts.append(prompt)
        return queue.pop(0) if queue else None

    return read, prompts


TO_RECIPIENT = ["CONTROLLED", "8, 9"]
RECIPIENT = ["Priya Shah", "Safeguarding Lead", "", "Northfield NHS Trust",
             "priya.shah@nhs.net", "07911 123456"]


async def chat(services: Services, make_file: Any, lines: list[str], *, resume: bool = False
               ) -> tuple[str, list[str]]:
    """A `safehaven chat notes.txt` (or, to ``resume``, a `safehaven chat` with no files)."""
    read, prompts = script(lines)
    out = io.StringIO()
    await run_chat(services, user_id="console:alice",
                   files=[] if resume else [make_file("notes.txt")], read=read, out=out)
    return out.getvalue(), prompts


def reference(text: str) -> str:
    found = re.search(r"Transfer (SH-[A-Z0-9-]+)", text)
    assert found, text
    return found.group(1)


async def test_a_command_typed_into_a_form_field_is_the_command(
        services: Services, make_file: Any) -> None:
    ref = reference((await chat(services, make_file, TO_RECIPIENT))[0])
    text, prompts = await chat(services, make_file, [f"status {ref}"], resume=True)
    # `status SH-…` typed as the recipient's name: the status is shown, the form asked again
    assert re.search(rf"{ref}: being prepared · CONTROLLED · 1 file · created", text), text
    assert [p for p in prompts if p.startswith("Full name")] == ["Full name: "] * 2, prompts


async def test_cancel_typed_into_a_form_field_cancels_the_transfer(
        services: Services, make_file: Any) -> None:
    ref = reference((await chat(services, make_file, TO_RECIPIENT))[0])
    text, prompts = await chat(services, make_file, [f"cancel {ref}", "yes", "Priya Shah"],
                               resume=True)
    assert f"Cancel {ref}?" in text, text  # asked first
    assert f"Transfer {ref} is cancelled" in text, text
    assert [p for p in prompts if p.startswith("Full name")] == ["Full name: "], prompts


async def test_enter_keeps_the_marked_choice(services: Services, make_file: Any) -> None:
    text, _ = await chat(services, make_file, ["CONTROLLED", "back", ""])
    assert "CONTROLLED (press Enter for this)" in text, text
    assert text.count("What kind of information is this?") == 2, text
    assert " *" not in text


async def test_form_wording(services: Services, make_file: Any) -> None:
    text, prompts = await chat(services, make_file, [
        *TO_RECIPIENT, *RECIPIENT, "Strategy meeting about a child at risk", "1",
        "Only for the strategy meeting", "no"])
    assert "What may the recipient do with it? " in prompts, prompts
    assert not any(p.endswith("?: ") for p in prompts), prompts
    assert 'Type yes for "Yes, I will tell them".' in text, text
    assert "(yes = " not in text and "(s)" not in text, text


async def test_lawful_bases_explained_and_not_sure_points_to_governance(
        services: Services, make_file: Any) -> None:
    to_basis = [*TO_RECIPIENT, *RECIPIENT, "Strategy meeting about a child at risk"]
    text, _ = await chat(services, make_file, [*to_basis, "Not sure"])
    assert "UK GDPR Art 6(1)(a) consent — The person has clearly agreed to this sharing." \
        in text, text
    assert "information governance contact (console:governance)" in text, text
    assert text.count("What is the lawful basis for sharing?") == 2, text
    state = await current_state(services, conversation_id="console:alice")
    assert state.step == Step.LAWFUL_BASIS and state.lawful_basis is None


async def test_cancelling_twice_says_it_is_already_cancelled(
        services: Services, make_file: Any) -> None:
    ref = reference((await chat(services, make_file, TO_RECIPIENT))[0])
    again = ""
    for typed in (f"cancel {ref}", "yes", f"cancel {ref}"):
        turn = await take_turn(services, conversation_id="console:alice",
                               user_id="console:alice", event=parse_text(typed))
        again = "\n".join(render(r) for r in turn.replies)
    assert again == f"Transfer {ref} is already cancelled.", again
