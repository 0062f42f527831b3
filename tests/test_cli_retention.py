"""``safehaven retention`` run as a real process: it shows what is due against the real
clock, and ``--apply`` deletes exactly that (an hour either side of each period), audited."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.state import State
from bot.statuses import IncidentStatus
from store import repositories as repo
from store.db import Database
from store.models import AuditRecord, Conversation, Incident, RecipientEntry
from tests.test_cli import cli_env, run

__all__ = ["cli_env"]

HOUR = timedelta(hours=1)
PERIODS = {"conversation": timedelta(days=30), "recipient": timedelta(days=365),
           "incident": timedelta(days=2192)}  # the shipped defaults


async def _seed(url: str) -> None:
    """For each artefact, one an hour past its period and one an hour short of it."""
    now = datetime.now(UTC)
    db = Database(url)
    try:
        async with db.transaction() as s:
            for tag, age in (("old", HOUR), ("new", -HOUR)):
                await repo.save_conversation(
                    s, conversation_id=f"console:{tag}", user_id=f"console:{tag}",
                    state=State().to_json(), expected_version=None,
                    now=now - PERIODS["conversation"] - age)
                s.add(RecipientEntry(sender_id="console:alice", name="Priya Shah",
                                     job_title="Lead", organisation="Trust",
                                     email=f"{tag}@nhs.net", phone="07911 123456",
                                     last_used_at=now - PERIODS["recipient"] - age))
                opened = now - PERIODS["incident"] - age
                s.add(Incident(reference=f"SH-{tag.upper()}A-01", opened_at=opened,
                               reported_by="console:alice", ico_decision_due=opened,
                               status=IncidentStatus.OPEN, facts={}))
    finally:
        await db.close()


async def _kept(url: str) -> tuple[list[str], list[str], list[str], list[AuditRecord]]:
    db = Database(url)
    try:
        async with db.read() as s:
            return (list((await s.scalars(select(Conversation.id))).all()),
                    list((await s.scalars(select(RecipientEntry.email))).all()),
                    list((await s.scalars(select(Incident.reference))).all()),
                    list((await s.scalars(select(AuditRecord).where(AuditRecord.action.in_(
                        ("retention_deleted", "incident_deleted"))))).all()))
    finally:
        await db.close()


def test_retention_shows_then_deletes_exactly_what_is_due(cli_env: dict[str, str],
                                                          tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'safehaven.db'}"
    cli_env["SAFEHAVEN_DATABASE_URL"] = url
    assert run(cli_env, "migrate").returncode == 0
    asyncio.run(_seed(url))

    shown = run(cli_env, "retention", "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    lines = {item["artefact"]: item for item in json.loads(shown.stdout)["artefacts"]}
    for artefact in PERIODS:
        assert lines[artefact]["due_now"] == 1, lines[artefact]
        assert lines[artefact]["next_due"] is not None
    assert lines["audit_record"]["due_now"] == 0
    assert len(asyncio.run(_kept(url))[0]) == 2  # showing deleted nothing

    text = run(cli_env, "retention")
    assert "- incident: 2192 days after it was opened." in text.stdout
    assert "Due now: 1." in text.stdout and "Deleted now" not in text.stdout

    applied = run(cli_env, "retention", "--apply", "--json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    document = json.loads(applied.stdout)
    assert {k: document["deleted"][k] for k in PERIODS} == dict.fromkeys(PERIODS, 1)
    assert all(item["due_now"] == 0 for item in document["artefacts"])
    conversations, emails, incidents, records = asyncio.run(_kept(url))
    assert conversations == ["console:new"]
    assert emails == ["new@nhs.net"]
    assert incidents == ["SH-NEWA-01"]
    assert sorted(r.action for r in records) == ["incident_deleted", "retention_deleted",
                                                 "retention_deleted"]
    assert not any("old@" in json.dumps(r.details) for r in records)
    verified = run(cli_env, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr

    again = run(cli_env, "retention", "--apply")
    assert "Deleted now: nothing was due." in again.stdout
    assert len(asyncio.run(_kept(url))[3]) == 3
