"""What the recipient is told, on the console, Slack and Teams: the ready-to-paste email is
true for its delivery (an attachment for an archive, a link for a portal link) and names the
programs that open an AES-256 zip and the built-in ones that do not; so does the download
page."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot.policy_rules import DEFAULT_LINK_STATEMENT
from tests.scenarios.test_every_channel import answer_up_to_summary
from tests.support.chat import ChatUser, World, portal_link_in
from tests.support.core import PDF

OPENERS = ("7-Zip", "WinZip", "PeaZip", "bsdtar")
BUILT_IN = ("built into Windows (File Explorer)", "macOS (Archive Utility")


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "to-share"
    folder.mkdir()
    (folder / "referral.pdf").write_bytes(PDF)
    (folder / "chronology.txt").write_bytes(b"Chronology of contact\n" * 40)
    return folder / "referral.pdf", folder / "chronology.txt"


def email_in(user: ChatUser, reference: str) -> str:
    """The ready-to-paste email the sender was handed, from its header to its reference."""
    text = user.text
    start = text.rindex("Ready-to-paste email")
    end = text.index(f"Reference: {reference}", start)
    return " ".join(text[start:end].split())  # as read, whatever the channel's line breaks


def names_the_openers(text: str) -> None:
    for tool in OPENERS + BUILT_IN:
        assert tool in text, f"{tool!r} not in {text!r}"
    assert "cannot open" in text


async def test_archive_email_speaks_of_the_attachment_and_the_openers(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files)
    await alice.choose("Confirm and send")
    email = email_in(alice, reference)
    assert f"Subject: CONFIDENTIAL {reference}" in email
    assert "Attached is" in email
    assert "This email has an attachment which contains personal information." in email
    assert "secure link" not in email
    names_the_openers(email)


async def test_link_email_and_page_speak_of_the_link_and_the_openers(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files, delivery="Secure download link",
                                           password="SMS once receipt is confirmed")
    await alice.choose("Confirm and send")
    email = email_in(alice, reference)
    assert "from this secure link" in email
    assert "This email contains a link to download a file" in email
    assert " ".join(DEFAULT_LINK_STATEMENT.split()) in email
    assert "attach" not in email.lower()
    names_the_openers(email)

    page = await world.portal.get(urlsplit(portal_link_in(alice.text)).path)
    assert page.status == 200
    html = await page.text()
    assert reference in html
    names_the_openers(" ".join(html.split()))
