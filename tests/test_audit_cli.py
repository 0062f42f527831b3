"""``safehaven audit`` through the real ``safehaven`` entry point, as an administrator and
as an auditor: ``verify`` names a truncated or altered trail and exits non-zero; ``export``
writes a 0600 file and a 0600 signature; ``verify --export`` checks it with the public key
alone, in an empty environment, and refuses a tampered export or a wrong key."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from bot.app.config import load_config
from bot.app.runtime import build_runtime
from bot.vault import generate_key
from store import audit
from store.db import Database
from store.models import AuditRecord

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SAFEHAVEN = shutil.which("safehaven", path=str(Path(sys.executable).parent))


def run(env: dict[str, str], *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    assert SAFEHAVEN, "the safehaven entry point is installed beside this Python"
    return subprocess.run([SAFEHAVEN, *args], env=env, text=True, capture_output=True,
                          timeout=120, cwd=cwd, check=False)


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEHAVEN_")}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key(),
               SAFEHAVEN_DATABASE_URL=database_url)
    return env


def record_shares(env: dict[str, str], n: int) -> None:
    """Append ``n`` records as a running Safe Haven would (its keys, its anchor)."""
    async def go() -> None:
        svc = build_runtime(load_config(env)).svc
        for i in range(n):
            async with svc.db.transaction() as s:
                await audit.append(
                    s, at=T0 + timedelta(minutes=i), actor="console:alice", action="answered",
                    reference="SH-AAAA-22" if i % 2 else "SH-BBBB-33",
                    details={"recipient": {"name": "Priya Shah",
                                           "organisation": "Northfield NHS Trust"
                                           if i % 2 else "Riverside Council"}})
        await svc.db.close()
    asyncio.run(go())


def tamper(database_url: str, statement: object) -> None:
    async def go() -> None:
        db = Database(database_url)
        async with db.transaction() as s:
            await s.execute(statement)  # type: ignore[call-overload]
        await db.close()
    asyncio.run(go())


def test_verify_names_truncation_and_edits(env: dict[str, str], database_url: str) -> None:
    assert run(env, "migrate").returncode == 0
    record_shares(env, 5)
    assert run(env, "audit", "checkpoint").returncode == 0
    ok = run(env, "audit", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "intact: 5 records" in ok.stdout and "checked against the checkpoint" in ok.stdout

    tamper(database_url, delete(AuditRecord).where(AuditRecord.seq >= 4))  # the last two
    broken = run(env, "audit", "verify")
    assert broken.returncode == 1
    assert "BROKEN at record 4" in broken.stdout and "truncated" in broken.stdout
    assert "head record 5" in broken.stdout  # the checkpoint it checked against

    tamper(database_url, update(AuditRecord).where(AuditRecord.seq == 2)
           .values(details={"recipient": {"name": "Someone Else"}}))
    broken = run(env, "audit", "verify")
    assert broken.returncode == 1 and "BROKEN at record 2" in broken.stdout


def test_signed_export_verified_by_an_auditor_with_the_public_key_alone(
        env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "migrate").returncode == 0
    record_shares(env, 6)
    out = tmp_path / "evidence" / "audit.json"
    out.parent.mkdir()
    made = run(env, "audit", "export", "--format", "json", "--out", str(out),
               "--organisation", "Northfield NHS Trust")
    assert made.returncode == 0, made.stdout + made.stderr
    sig = Path(f"{out}.sig")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(sig.stat().st_mode) == 0o600
    seqs = [json.loads(line)["seq"] for line in out.read_text().splitlines()]
    assert seqs == [2, 4, 6]
    key = run(env, "audit", "public-key")
    assert key.returncode == 0 and "BEGIN PUBLIC KEY" in key.stdout
    public = tmp_path / "evidence" / "safehaven.pem"
    public.write_text(key.stdout)

    # The auditor: no SAFEHAVEN_* settings, no database, no secret, another folder.
    auditor = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    checked = run(auditor, "audit", "verify", "--export", str(out), "--public-key",
                  str(public), cwd=elsewhere)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "export verified" in checked.stdout and "cannot show" in checked.stdout
    assert not any(elsewhere.iterdir())  # nothing written on the auditor's side

    original = out.read_bytes()
    out.write_bytes(original.replace(b"Priya Shah", b"Priya Shaw"))
    refused = run(auditor, "audit", "verify", "--export", str(out), "--public-key",
                  str(public), cwd=elsewhere)
    assert refused.returncode == 1 and "NOT verified" in refused.stdout

    out.write_bytes(original)
    signed = json.loads(sig.read_text())
    signed["statement"]["filters"]["organisation"] = None  # "this is everything"
    sig.write_text(json.dumps(signed))
    refused = run(auditor, "audit", "verify", "--export", str(out), "--public-key",
                  str(public), cwd=elsewhere)
    assert refused.returncode == 1 and "signature does not match" in refused.stdout

    other = {**env, "SAFEHAVEN_SECRET_KEY": generate_key()}
    public.write_text(run(other, "audit", "public-key").stdout)
    sig.write_text(json.dumps({**signed, "statement": {
        **signed["statement"], "filters": {**signed["statement"]["filters"],
                                           "organisation": "Northfield NHS Trust"}}}))
    refused = run(auditor, "audit", "verify", "--export", str(out), "--public-key",
                  str(public), cwd=elsewhere)
    assert refused.returncode == 1


def test_csv_export_is_signed_too_and_stdout_is_unsigned(env: dict[str, str],
                                                         tmp_path: Path) -> None:
    assert run(env, "migrate").returncode == 0
    record_shares(env, 3)
    out = tmp_path / "audit.csv"
    made = run(env, "audit", "export", "--out", str(out), "--reference", "sh-bbbb-33",
               "--since", "2026-11-23", "--until", "2026-11-23")
    assert made.returncode == 0, made.stdout + made.stderr
    assert len(out.read_text().splitlines()) == 3  # header and records 1 and 3
    public = tmp_path / "key.b64"
    public.write_text(run(env, "audit", "public-key", "--format", "base64").stdout)
    checked = run({"PATH": os.environ.get("PATH", "")}, "audit", "verify", "--export",
                  str(out), "--public-key", str(public), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
    plain = run(env, "audit", "export", "--format", "json")
    assert plain.returncode == 0 and "not signed" in plain.stderr
    assert len(plain.stdout.splitlines()) == 3


def test_checkpoint_settings_are_explained(env: dict[str, str], tmp_path: Path) -> None:
    bad = run({**env, "SAFEHAVEN_AUDIT_CHECKPOINT_RECORDS": "often"}, "audit", "verify")
    assert bad.returncode == 2 and "SAFEHAVEN_AUDIT_CHECKPOINT_RECORDS" in bad.stderr
    anchor = tmp_path / "elsewhere" / "checkpoints.jsonl"
    assert run(env, "migrate").returncode == 0
    record_shares({**env, "SAFEHAVEN_AUDIT_ANCHOR": str(anchor)}, 2)
    made = run({**env, "SAFEHAVEN_AUDIT_ANCHOR": str(anchor)}, "audit", "checkpoint")
    assert made.returncode == 0 and str(anchor) in made.stdout
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o600
    assert not (tmp_path / "var" / "audit-anchor.jsonl").exists()


def test_an_altered_checkpointed_record_is_never_signed_into_an_export(
        env: dict[str, str], database_url: str, tmp_path: Path) -> None:
    """A database administrator rewrites a record the latest checkpoint already covers and
    asks for a signed export: the server checks every record first and writes nothing, so
    the altered record can never reach an auditor under the server's signature."""
    assert run(env, "migrate").returncode == 0
    record_shares(env, 5)
    assert run(env, "audit", "checkpoint").returncode == 0
    tamper(database_url, update(AuditRecord).where(AuditRecord.seq == 3)
           .values(actor="slack:UEVIL"))
    out = tmp_path / "audit.json"
    refused = run(env, "audit", "export", "--format", "json", "--out", str(out))
    assert refused.returncode != 0
    assert "export NOT written" in refused.stdout and "record 3" in refused.stdout
    assert not out.exists() and not Path(f"{out}.sig").exists()
