"""Issue 11, finding 4: one file froze the server.

A 63 MB ZIP listing 1.35 M entries kept ``inspect_file`` on the event loop for 17 s: no
acknowledgements, portal downloads or webhooks meanwhile. Here the attack is a direct
message to the bot through the signed Slack endpoint (the fake Slack serves the file):

- a ZIP whose end records claim too many entries is refused at once, with the reason;
- while a big ZIP within the limit is being checked (in a worker process, which the test
  pauses so the check is certainly still running), ``GET /healthz`` and a signed Slack
  event are answered; the order is proven with events, not timings;
- a check that runs out of time refuses the file: "could not be checked in time"; one
  that runs out of memory in its worker: "could not be checked";
- ``safehaven share`` applies the same rules.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path

from sqlalchemy import func, select

from bot.filecheck import FileVerdict
from bot.vault import generate_key
from bot.zip_directory import MAX_ARCHIVE_ENTRIES
from handlers.intake import CHECK_SECONDS, FileInspector
from store.models import Transfer
from tests.bot.test_filecheck import claiming_zip, directory_zip, two_directories
from tests.support import slack
from tests.support.core import PDF, SHARE_RECORD_FLAGS
from tests.support.slack import Workspace

# The Slack workspace (real app, signed requests, fake Slack API) from the Slack tests.
fake_slack = slack.fake_slack
slack_policy = slack.slack_policy
workspace = slack.workspace

GUARD = 120  # seconds: only so that a broken build fails instead of hanging


async def transfers(ws: Workspace) -> int:
    async with ws.svc.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Transfer)) or 0)


class WatchedInspector(FileInspector):
    """The real inspector, one worker, telling the test when a check starts and ends."""

    def __init__(self) -> None:
        super().__init__(workers=1)
        self.started = asyncio.Event()
        self.finished = asyncio.Event()
        self.verdicts: list[FileVerdict] = []

    async def inspect(self, path: Path, *, display_name: str, blocked: Collection[str],
                      max_bytes: int | None = None) -> FileVerdict:
        self.started.set()
        try:
            verdict = await super().inspect(path, display_name=display_name, blocked=blocked,
                                            max_bytes=max_bytes)
            self.verdicts.append(verdict)
            return verdict
        finally:
            self.finished.set()


async def test_a_zip_claiming_1_35_million_entries_is_refused_with_the_reason(
        workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    status = await alice.send_files(("case-bundle.zip", claiming_zip(1_350_000, 63_450_000)))
    assert status == 200
    assert "“case-bundle.zip” lists 1,350,000 files inside it, more than the " \
        f"{MAX_ARCHIVE_ENTRIES:,} Safe Haven can check" in alice.text
    assert await transfers(workspace) == 0
    assert not [p for p in workspace.svc.settings.uploads_dir.rglob("*") if p.is_file()]


async def test_the_server_answers_while_a_file_is_being_checked(
        workspace: Workspace, tmp_path: Path) -> None:
    inspector = WatchedInspector()
    workspace.svc.inspector = inspector
    before = set(multiprocessing.active_children())
    warm = tmp_path / "warm.pdf"
    warm.write_bytes(PDF)
    assert (await inspector.inspect(warm, display_name="warm.pdf", blocked=())).accepted
    workers = set(multiprocessing.active_children()) - before
    assert len(workers) == 1
    worker = workers.pop()
    inspector.started.clear()
    inspector.finished.clear()
    inspector.verdicts.clear()

    alice, bob = workspace.user("UALICE01"), workspace.user("UBOB0001")
    big = directory_zip(MAX_ARCHIVE_ENTRIES)  # within the limit: its directory is parsed
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGSTOP)  # the check cannot finish until the test says so
    try:
        assert await alice.send_files(("big-bundle.zip", big), settle=False) == 200
        await asyncio.wait_for(inspector.started.wait(), GUARD)
        # The check is in progress. The server still answers everyone else:
        health = await workspace.client.get("/healthz")
        assert health.status == 200 and (await health.json())["status"] == "ok"
        assert await bob.say("help", settle=False) == 200  # a signed Slack event, acked
        assert not inspector.finished.is_set()
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    await asyncio.wait_for(inspector.finished.wait(), GUARD)
    await asyncio.wait_for(workspace.settle(), GUARD)
    assert inspector.verdicts == [FileVerdict(True, "ZIP archive", None)]
    assert "I have 1 file," in alice.text
    assert bob.messages()  # bob's help was answered too
    assert await transfers(workspace) == 1


async def test_a_check_that_runs_out_of_time_refuses_the_file(workspace: Workspace) -> None:
    inspector = FileInspector(seconds=0)  # every check is already too late
    workspace.svc.inspector = inspector
    alice = workspace.user("UALICE01")
    await alice.send_files(("case.pdf", PDF))
    assert "“case.pdf” could not be checked in time, so it can't be sent" in alice.text
    assert await transfers(workspace) == 0
    inspector.seconds = CHECK_SECONDS  # its killed workers are replaced by the next check
    await alice.send_files(("case.pdf", PDF))
    assert "I have 1 file," in alice.text


async def test_a_check_without_memory_refuses_the_file(workspace: Workspace) -> None:
    """The worker's address space is capped: a check that needs more than the cap fails in
    the worker, and the file is refused; the server carries on."""
    workspace.svc.inspector = FileInspector(memory_bytes=1)  # no check can get any memory
    alice = workspace.user("UALICE01")
    await alice.send_files(("big-bundle.zip", directory_zip(MAX_ARCHIVE_ENTRIES)))
    assert "“big-bundle.zip” could not be checked, so it can't be sent" in alice.text
    assert await transfers(workspace) == 0
    health = await workspace.client.get("/healthz")
    assert health.status == 200


def test_share_refuses_the_zip_bomb_too(tmp_path: Path) -> None:
    bomb = tmp_path / "case-bundle.zip"
    bomb.write_bytes(claiming_zip(1_350_000, 63_450_000))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEHAVEN_")}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key())
    result = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "share", str(bomb), "--classification", "CONTROLLED",
         "--recipient-name", "Priya Shah", "--recipient-title", "Safeguarding Lead",
         "--recipient-org", "Northfield NHS Trust", "--recipient-email", "priya.shah@nhs.net",
         "--recipient-phone", "07911 123456", "--purpose", "Strategy meeting",
         "--consent", "Only for the meeting", "--password-via", "sms",
         "--sender", "console:alice", *SHARE_RECORD_FLAGS],
        env=env, text=True, capture_output=True, timeout=GUARD,
        cwd=Path(__file__).resolve().parents[2], check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "“case-bundle.zip” lists 1,350,000 files inside it" in result.stdout
    assert not list((tmp_path / "var" / "uploads").rglob("*.bin"))


def test_share_refuses_a_docx_whose_directories_disagree(tmp_path: Path) -> None:
    """The second review: a .docx whose end record points at a directory listing
    word/vbaProject.bin while a clean one sits where zipfile looks. ``share`` used to call it
    a Word document and package it; it is refused as damaged, and nothing is kept."""
    document = tmp_path / "report.docx"
    document.write_bytes(two_directories())
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEHAVEN_")}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key())
    result = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "share", str(document), "--classification",
         "CONTROLLED", "--recipient-name", "Priya Shah", "--recipient-title",
         "Safeguarding Lead", "--recipient-org", "Northfield NHS Trust", "--recipient-email",
         "priya.shah@nhs.net", "--recipient-phone", "07911 123456", "--purpose",
         "Strategy meeting about a child at risk", "--consent", "Only for the meeting",
         "--password-via", "sms", "--sender", "console:alice", *SHARE_RECORD_FLAGS],
        env=env, text=True, capture_output=True, timeout=GUARD,
        cwd=Path(__file__).resolve().parents[2], check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "“report.docx” is a damaged ZIP file" in result.stdout
    assert "Word document" not in result.stdout
    assert not list((tmp_path / "var").rglob("*.zip"))
    assert not list((tmp_path / "var" / "uploads").rglob("*.bin"))
