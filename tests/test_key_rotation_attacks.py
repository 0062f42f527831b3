"""Attacks on and mistakes around a key rotation, each through the real `safehaven` process
(SQLite and PostgreSQL):

- a retired (leaked) key, with write access to the database and the anchor, cannot make
  `audit verify` accept altered records: neither a checkpoint saying "the chain starts at
  the head" nor one whose coverage digest is of the altered records is believed, and the
  next checkpoint the current key signs does not adopt such a start point;
- `rotate-key` run with a data folder other than the services' does not say the old key
  can go: every object the database refers to must be there and under the current key;
- a command that writes into the data folder refuses to run as a user who does not own it
  (root leaving 0600 files the service cannot read), naming the owner.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.app.config import load_config
from bot.app.runtime import build_runtime
from bot.audit_keys import AuditKeys, SignedCheckpoint
from bot.vault import Vault, _decode_key, generate_key
from store import audit
from store.db import Database
from store.models import AuditRecord

ROOT = Path(__file__).resolve().parents[1]
SAFEHAVEN = shutil.which("safehaven", path=str(Path(sys.executable).parent))
NOBODY = 65534


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assert SAFEHAVEN, "the safehaven entry point is installed beside this Python"
    return subprocess.run([SAFEHAVEN, *args], env=env, text=True, capture_output=True,
                          timeout=300, cwd=ROOT, check=False)


async def sh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run, env, *args)


def said(done: subprocess.CompletedProcess[str]) -> str:
    both = done.stdout + done.stderr
    assert "Traceback" not in both, both
    return both


def base_env(tmp_path: Path, database_url: str, var: str = "var") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "TWILIO_"))}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / var), SAFEHAVEN_DATABASE_URL=database_url,
               SAFEHAVEN_LOG_LEVEL="WARNING")
    return env


async def records(env: dict[str, str], count: int) -> None:
    """``count`` audit records appended by a process holding ``env``'s keys, checkpointed."""
    svc = build_runtime(load_config(env)).svc
    try:
        async with svc.db.transaction() as s:
            for n in range(count):
                await audit.append(s, at=svc.clock() + timedelta(seconds=n),
                                   actor="console:alice", action="confirmed",
                                   details={"purpose": f"case {n}"})
        trail = audit.trail_of(svc.db)
        assert trail is not None
        await trail.checkpoint(svc.db, now=svc.clock())
    finally:
        await svc.db.close()


async def rotated(tmp_path: Path, database_url: str) -> tuple[dict[str, str], str, str]:
    """Records under the old key, `rotate-key`, records under the new key alone: the
    settings with the new key alone, the old key and the new."""
    old, new = generate_key(), generate_key()
    env = base_env(tmp_path, database_url)
    assert (await sh(dict(env, SAFEHAVEN_SECRET_KEY=old), "migrate")).returncode == 0
    await records(dict(env, SAFEHAVEN_SECRET_KEY=old), 6)
    both = dict(env, SAFEHAVEN_SECRET_KEY=new, SAFEHAVEN_PREVIOUS_SECRET_KEYS=old)
    done = await sh(both, "rotate-key")
    assert done.returncode == 0, said(done)
    alone = dict(env, SAFEHAVEN_SECRET_KEY=new)
    await records(alone, 3)
    verified = await sh(alone, "audit", "verify")
    assert verified.returncode == 0 and "audit trail intact" in said(verified)
    return alone, old, new


async def alter(database_url: str, *seqs: int) -> None:
    db = Database(database_url)
    try:
        async with db.transaction() as s:
            await s.execute(update(AuditRecord).where(AuditRecord.seq.in_(seqs))
                            .values(details={"purpose": "rewritten"}))
    finally:
        await db.close()


async def digest_of(database_url: str, *, after: int, through: int) -> str:
    db = Database(database_url)
    try:
        async with db.read() as s:
            return await audit.segment_digest(s, after=after, through=through)
    finally:
        await db.close()


def anchor_lines(env: dict[str, str]) -> list[dict[str, object]]:
    path = Path(env["SAFEHAVEN_VAR_DIR"]) / "audit-anchor.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def forge(env: dict[str, str], key: str, **changes: object) -> None:
    """What the reviewer's attacker does: the anchor's latest checkpoint, changed, signed
    by ``key`` (the retired one) and appended to the anchor."""
    keys = AuditKeys.from_vault(Vault(_decode_key(key)))
    latest = SignedCheckpoint.from_json(anchor_lines(env)[-1]).checkpoint
    forged = replace(latest, key_id=keys.key_id, previous_key="",
                     at=latest.at + timedelta(minutes=5), **changes)  # type: ignore[arg-type]
    path = Path(env["SAFEHAVEN_VAR_DIR"]) / "audit-anchor.jsonl"
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(SignedCheckpoint.make(forged, keys).to_json()) + "\n")


async def test_a_retired_key_cannot_forge_a_start_point(tmp_path: Path,
                                                        database_url: str) -> None:
    alone, old, _new = await rotated(tmp_path, database_url)
    await alter(database_url, 2, 5, 8)
    broken = await sh(alone, "audit", "verify")
    assert broken.returncode == 1 and "BROKEN" in said(broken)

    head = SignedCheckpoint.from_json(anchor_lines(alone)[-1]).checkpoint
    forge(alone, old, base_seq=head.head_seq, base_mac=head.head_mac, count=0,
          sealed_through=0, sealed_digest="")
    verdict = await sh(alone, "audit", "verify")
    text = said(verdict)
    assert verdict.returncode == 1 and "retired key" in text, text

    # The next checkpoint the current key signs does not adopt the forged start point.
    await sh(alone, "audit", "checkpoint")
    mine = AuditKeys.from_vault(Vault(_decode_key(alone["SAFEHAVEN_SECRET_KEY"]))).key_id
    signed = [SignedCheckpoint.from_json(line).checkpoint for line in anchor_lines(alone)]
    assert all(c.base_seq == 0 for c in signed if c.key_id == mine)
    again = await sh(alone, "audit", "verify")
    assert again.returncode == 1 and "intact" not in said(again)


async def test_a_retired_key_cannot_forge_a_coverage(tmp_path: Path,
                                                     database_url: str) -> None:
    alone, old, _new = await rotated(tmp_path, database_url)
    await alter(database_url, 3)
    head = SignedCheckpoint.from_json(anchor_lines(alone)[-1]).checkpoint
    digest = await digest_of(database_url, after=0, through=head.head_seq)
    forge(alone, old, sealed_through=head.head_seq, sealed_digest=digest)
    verdict = await sh(alone, "audit", "verify")
    text = said(verdict)
    assert verdict.returncode == 1 and "intact" not in text, text


async def test_a_previous_key_still_held_cannot_have_its_start_point_resigned(
        tmp_path: Path, database_url: str) -> None:
    """Mid-rotation (the old key still configured as previous), a start point the old key
    signed over records still present is not taken on trust: `audit verify` checks the
    records before it, and `audit checkpoint` signs nothing over them."""
    old, new = generate_key(), generate_key()
    env = base_env(tmp_path, database_url)
    assert (await sh(dict(env, SAFEHAVEN_SECRET_KEY=old), "migrate")).returncode == 0
    await records(dict(env, SAFEHAVEN_SECRET_KEY=old), 6)
    both = dict(env, SAFEHAVEN_SECRET_KEY=new, SAFEHAVEN_PREVIOUS_SECRET_KEYS=old)
    await alter(database_url, 2)
    head = SignedCheckpoint.from_json(anchor_lines(env)[-1]).checkpoint
    forge(env, old, base_seq=head.head_seq, base_mac=head.head_mac, count=0)
    verdict = await sh(both, "audit", "verify")
    assert verdict.returncode == 1 and "BROKEN at record 2" in said(verdict)
    refused = await sh(both, "audit", "checkpoint")
    assert refused.returncode == 1 and "NOT written" in said(refused)
    mine = AuditKeys.from_vault(Vault(_decode_key(new))).key_id
    assert not [line for line in anchor_lines(env) if line["key_id"] == mine]


SHARE = ("share", "--classification", "CONTROLLED", "--category", "contact-details",
         "--lawful-basis", "UK GDPR Art 6(1)(e) public task", "--onward-sharing", "no",
         "--delete-after-use", "--recipient-name", "Jo Bloggs", "--recipient-title", "Officer",
         "--recipient-org", "NHS Trust", "--recipient-email", "jo@nhs.example.uk",
         "--recipient-phone", "07400 123456",
         "--purpose", "case review for the joint safeguarding panel",
         "--consent", "not needed", "--delivery", "portal", "--password-via", "sms-on-receipt",
         "--sender", "alice")


async def test_rotate_key_with_another_data_folder_is_not_done(tmp_path: Path,
                                                               database_url: str) -> None:
    """The services' folder holds the uploads and archives; `rotate-key` run with another
    (the database the same) finds nothing to re-seal there, and must not say the old key
    can go."""
    old, new = generate_key(), generate_key()
    services = dict(base_env(tmp_path, database_url), SAFEHAVEN_SECRET_KEY=old)
    assert (await sh(services, "migrate")).returncode == 0
    document = tmp_path / "notes.txt"
    document.write_text("case notes\n")
    shared = await sh(services, *SHARE, str(document))
    assert shared.returncode == 0, said(shared)

    elsewhere = dict(base_env(tmp_path, database_url, var="elsewhere"),
                     SAFEHAVEN_SECRET_KEY=new, SAFEHAVEN_PREVIOUS_SECRET_KEYS=old)
    wrong = await sh(elsewhere, "rotate-key")
    text = said(wrong)
    assert wrong.returncode == 1, text
    assert "NOT done" in text and "not in the object store" in text, text
    assert "You can now remove" not in text
    check = await sh(elsewhere, "rotate-key", "--check")
    assert check.returncode == 1 and "NOT done" in said(check)

    # With the services' folder: re-sealed and verified.
    right = await sh(dict(services, SAFEHAVEN_SECRET_KEY=new,
                          SAFEHAVEN_PREVIOUS_SECRET_KEYS=old), "rotate-key")
    text = said(right)
    assert right.returncode == 0 and "You can now remove" in text, text


def contents(folder: Path) -> dict[Path, tuple[int, int]]:
    """Every path in ``folder`` (itself too): its owner and when it last changed."""
    return {p: (p.stat().st_uid, p.stat().st_mtime_ns) for p in (folder, *folder.rglob("*"))}


def give_away(folder: Path) -> dict[Path, tuple[int, int]]:
    for path in (folder, *folder.rglob("*")):
        os.chown(path, NOBODY, NOBODY)
    found = contents(folder)
    assert {uid for uid, _ in found.values()} == {NOBODY}
    return found


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give the folder to another uid")
async def test_commands_refuse_a_data_folder_of_another_account(tmp_path: Path,
                                                                database_url: str) -> None:
    """Root running `rotate-key` (or any command that writes) in the service's folder would
    leave files 0600 the service cannot read: it refuses, naming the owner, and writes
    nothing there."""
    old, new = generate_key(), generate_key()
    env = dict(base_env(tmp_path, database_url), SAFEHAVEN_SECRET_KEY=old)
    assert (await sh(env, "migrate")).returncode == 0
    folder = Path(env["SAFEHAVEN_VAR_DIR"])
    before = give_away(folder)
    document = tmp_path / "notes.txt"
    document.write_text("case notes\n")
    rotating = dict(env, SAFEHAVEN_SECRET_KEY=new, SAFEHAVEN_PREVIOUS_SECRET_KEYS=old)
    for command in (("rotate-key",), ("audit", "checkpoint"), (*SHARE, str(document)),
                    ("worker", "--exit-when-idle")):
        refused = await sh(rotating, *command)
        text = said(refused)
        assert refused.returncode == 2, (command, text)
        assert f"the data folder {folder} belongs to nobody" in text, text
        assert "Run it as nobody" in text
    assert contents(folder) == before  # nothing added, changed or taken over
    # `doctor` still runs there, and says what is wrong.
    doctor = await sh(rotating, "doctor")
    assert "belongs to another account" in said(doctor)
