"""Issue 11, finding 10: everything Safe Haven writes is for its own account: files 0600,
folders 0700, whatever umask it was started with. Run as real processes from a shell with
``umask 022`` (which used to leave the database, logs, notifications.log, outbox.log, the
audit export and the ``share --out`` copy readable by everyone)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
import stat
import sys
from pathlib import Path

import aiohttp

from bot.app.cli import main
from bot.vault import vault_from_settings
from channels.teams.package import build_package
from tests.channels.slack.test_flow import answer_up_to_confirm
from tests.channels.slack.test_serve import free_port
from tests.support.core import PDF, SHARE_RECORD_FLAGS
from tests.support.slack import (  # noqa: F401 (fixtures)
    Workspace,
    fake_slack,
    slack_policy,
    workspace,
)

ROOT = Path(__file__).resolve().parents[1]
SHARE = ["--classification", "CONTROLLED", *SHARE_RECORD_FLAGS, "--recipient-name", "Priya Shah",
         "--recipient-title", "Safeguarding Lead", "--recipient-org", "Northfield NHS Trust",
         "--recipient-phone", "07911 123456", "--purpose",
         "Strategy meeting about a child at risk", "--consent", "Only for the meeting",
         "--password-via", "sms", "--sender", "console:alice"]


def loose(*args: str) -> list[str]:
    """``safehaven ARGS`` started from a shell whose umask lets everyone read new files."""
    return ["/bin/sh", "-c", 'umask 022 && exec "$@"', "sh", sys.executable, "-m", "bot.app.cli",
            *args]


async def cli(env: dict[str, str], *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *loose(*args), env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, out.decode()
    return out.decode()


async def serve_once(env: dict[str, str], var: Path) -> None:
    """Start ``safehaven serve``, wait until it answers, check ``var`` while it runs (the
    database's -wal and -shm files exist only then), stop it as Ctrl-C would."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *loose("serve"), env=dict(env, SAFEHAVEN_PORT=str(port)), cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(400):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("safehaven serve did not start")
        assert "safehaven.db-wal" in names(var)
        assert modes(var) == {}
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 60)


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def modes(*roots: Path) -> dict[str, str]:
    """Every file and folder under ``roots`` (and the roots) whose mode is not private."""
    found: dict[str, str] = {}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(path.lstat().st_mode)
            wanted = 0o700 if path.is_dir() else 0o600
            if mode != wanted:
                found[str(path)] = oct(mode)
    return found


async def test_everything_written_is_private_whatever_the_umask(tmp_path: Path) -> None:
    var, out, export = tmp_path / "var", tmp_path / "out" / "archives", tmp_path / "audit.csv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "TWILIO_"))}
    # No SAFEHAVEN_SECRET_KEY: development makes var/secret.key itself.
    env.update(SAFEHAVEN_VAR_DIR=str(var), SAFEHAVEN_LOG_LEVEL="INFO",
               SAFEHAVEN_SCHEDULER="off")
    case = tmp_path / "case.pdf"
    case.write_bytes(PDF)

    # Packaged at once (agreement domain): the archive, its --out copy, outbox.log.
    shared = await cli(env, "share", str(case), *SHARE, "--recipient-email",
                       "priya.shah@nhs.net", "--out", str(out))
    reference = re.search(r"reference: (SH-\S+)", shared)
    assert reference, shared
    assert (out / f"{reference.group(1)}.zip").is_file()
    # Needs the approver, who is told on the console: notifications.log.
    await cli(env, "share", str(case), *SHARE, "--recipient-email",
              "priya.shah@northfield-trust.org.uk")
    await cli(env, "audit", "export", "--out", str(export))

    # A log and a folder left loose by an older version are tightened by the next start.
    (var / "safehaven.log").chmod(0o644)
    var.chmod(0o755)
    await serve_once(env, var)

    assert {"safehaven.db", "safehaven.log", "notifications.log", "outbox.log", "secret.key",
            "uploads", "objects", "packaging"} <= names(var), names(var)
    assert export.is_file() and export.stat().st_size > 0
    assert modes(var, tmp_path / "out", export) == {}


def test_the_command_line_starts_with_a_private_umask() -> None:
    """Files a library makes without a mode of its own (say a Teams package) are private
    too: ``safehaven`` sets umask 077 before anything else."""
    before = os.umask(0o022)
    try:
        assert main(["generate-key"]) == 0
        assert os.umask(0o022) == 0o077
    finally:
        os.umask(before)


async def test_folders_are_private_inside_a_program_with_a_loose_umask(
        workspace: Workspace, tmp_path: Path) -> None:  # noqa: F811 (imported fixture)
    """Safe Haven embedded in another program keeps that program's umask (022 here), not the
    CLI's: staged uploads, the object store's folder and the packaging folder (a Slack DM
    through signed HTTP, packaged; the folders found loose are tightened), a development
    key's folder and a Teams package's folder (both made with their parents) are still
    0700, files 0600."""
    var = workspace.svc.settings.var_dir
    for folder in ("packaging",):  # left loose by the host or an older version
        (var / folder).mkdir(mode=0o755, parents=True)
        (var / folder).chmod(0o755)
    before = os.umask(0o022)
    try:
        alice = workspace.user("UALICE01")
        await alice.send_files(("chronology.txt", b"Chronology of contact\n" * 50))
        await answer_up_to_confirm(alice, classification="CONTROLLED", password="SMS now")
        await alice.click("Confirm and send")
        assert len(workspace.fake.uploads) == 1, alice.text
        host = tmp_path / "host" / "var"  # a key made by the host's first start
        vault_from_settings(dataclasses.replace(workspace.svc.settings, var_dir=host,
                                                secret_key=None))
        package = build_package(out=tmp_path / "host" / "teams" / "app.zip",
                                bot_id="00000000-0000-4000-8000-000000000001",
                                website_url="https://example.org", developer_name="Council")
    finally:
        os.umask(before)
    assert {"uploads", "objects", "packaging"} <= names(var), names(var)
    assert (host / "secret.key").is_file() and package.is_file()
    assert modes(var, tmp_path / "host") == {}
