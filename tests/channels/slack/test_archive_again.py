"""When Slack refuses the archive upload, the sender is told how to get it again, and
`archive REF` uploads it once more."""

from __future__ import annotations

import re

from tests.channels.slack.conftest import Workspace


async def test_a_refused_upload_can_be_sent_again(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    workspace.fake.fail("files.getUploadURLExternal", error="invalid_arguments")
    await alice.send_files(("a.txt", b"case notes\n" * 20))
    await alice.click("CONTROLLED")
    await alice.submit(await alice.open_form(), {
        "name": "Priya Shah", "job_title": "Safeguarding Lead",
        "organisation": "Northfield NHS Trust", "email": "priya.shah@nhs.net",
        "phone": "07911 123456"})
    await alice.say("Strategy meeting about a child at risk, as agreed")
    await alice.click("UK GDPR Art 6(1)(e) public task")
    await alice.submit(await alice.open_form(), {
        "use_limits": "Only for the meeting", "onward_sharing": "no",
        "delete_after_use": ["yes"]})
    await alice.click("Encrypted archive")
    await alice.click("SMS now")
    await alice.click("Confirm and send")
    found = re.search(r"type `archive (SH-[A-Z0-9-]+)` to try again", alice.text)
    assert found, alice.text
    assert workspace.fake.called("files.completeUploadExternal") == []

    await alice.say(f"archive {found.group(1)}")
    [completed] = workspace.fake.called("files.completeUploadExternal")
    [upload] = workspace.fake.uploads.values()
    assert upload["data"][:2] == b"PK" and upload["filename"] == f"{found.group(1)}.zip"
    assert "the encrypted archive again" in str(completed.params)

    bob = workspace.user("UBOB0001")
    await bob.say(f"archive {found.group(1)}")
    assert "cannot find" in bob.text
    assert len(workspace.fake.called("files.completeUploadExternal")) == 1
