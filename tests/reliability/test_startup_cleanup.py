"""At start-up a host removes the temporary files a previous run of its own left: packaging
scratch of a transfer nobody is packaging any more at once, staged plaintext and scratch of a
transfer still ``packaging`` only once untouched for five minutes (a live process on the same
var dir may be writing them; recovery takes a stuck packaging over). Through the real
``safehaven worker`` process, and at the handler for the ``packaging`` case."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from handlers import recovery, transfers
from handlers.services import Services
from store.models import Transfer
from tests.reliability.test_faults import output, run_to_end, safehaven
from tests.support.core import Conversation, answer_all


def _leftover(folder: Path, *, age_seconds: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "upload.bin"
    path.write_bytes(b"Case notes nobody sealed\n" * 100)
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    os.utime(folder, (then, then))
    return path


async def test_worker_start_up_removes_what_a_previous_run_left(cli_env: dict[str, str]) -> None:
    await run_to_end(cli_env, "worker", "--exit-when-idle")  # the database and var/ exist
    var = Path(cli_env["SAFEHAVEN_VAR_DIR"])
    dead_scratch = _leftover(var / "packaging" / "SH-DEAD42.k3j2h1", age_seconds=10)
    old_upload = _leftover(var / "uploads" / "1f2e3d4c5b6a79881f2e3d4c5b6a7988",
                           age_seconds=600)
    live_upload = _leftover(var / "uploads" / "aa11bb22cc33dd44ee55ff6677889900",
                            age_seconds=5)

    proc = await safehaven(cli_env, "worker", "--exit-when-idle")
    await proc.wait()
    assert proc.returncode == 0, output(proc, ".err")[-2000:]

    assert not dead_scratch.parent.exists(), "scratch of a transfer nobody packages stays"
    assert not old_upload.parent.exists(), "staged plaintext untouched for ten minutes stays"
    assert live_upload.exists(), "a file another live process is writing was deleted"
    said = output(proc) + output(proc, ".err")
    for name in ("SH-DEAD42", "1f2e3d4c5b6a", "aa11bb22cc33"):
        assert name not in said


async def test_scratch_of_a_transfer_still_packaging_is_left_to_recovery(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat: Conversation = conversation("console:alice")
    await chat.send_files(make_file("notes.txt", b"Case notes\n" * 50))
    await answer_all(chat)
    async with services.db.transaction() as session:
        reference = (await session.scalars(select(Transfer.reference))).one()
        await session.execute(update(Transfer).where(Transfer.reference == reference)
                              .values(status="packaging"))
    folder = transfers.packaging_dir(services.settings)
    packaging = _leftover(folder / f"{reference}.abc123", age_seconds=10)
    finished = _leftover(folder / "SH-GONE99.def456", age_seconds=10)

    removed = await recovery.clean_host_at_startup(services)

    assert packaging.exists()
    assert not finished.exists()
    assert removed == 1
