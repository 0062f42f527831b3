"""The tamper-evident audit trail: append, verify, export.

Each record's hash covers its own content and the previous record's hash, so changing,
deleting or reordering any record breaks the chain from that point on; ``verify`` names the
first broken record. Appends are serialised (a PostgreSQL advisory lock, or one writer at a
time on SQLite) so the chain stays linear when several processes write.

The caller decides what goes in ``details``; it must never hold a password. ``append``
refuses obviously secret keys as a second line of defence.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AuditRecord

GENESIS = "0" * 64
_ADVISORY_LOCK_KEY = 0x5AFE_4A7E
_FORBIDDEN_KEYS = frozenset({"password", "password_sealed", "secret", "token"})


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(
    *, seq: int, at: datetime, reference: str | None, actor: str, action: str,
    details: Mapping[str, Any], prev_hash: str,
) -> str:
    body = _canonical(
        {
            "seq": seq,
            "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "reference": reference,
            "actor": actor,
            "action": action,
            "details": details,
            "prev": prev_hash,
        }
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _check_no_secrets(details: Mapping[str, Any]) -> None:
    for key, value in details.items():
        if key.lower() in _FORBIDDEN_KEYS:
            raise ValueError(f"audit details must not contain {key!r}")
        if isinstance(value, Mapping):
            _check_no_secrets(value)


async def append(
    session: AsyncSession, *, at: datetime, actor: str, action: str,
    reference: str | None = None, details: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """Append one record inside the caller's transaction (committed with it)."""
    details = dict(details or {})
    _check_no_secrets(details)
    # Round-trip through JSON so what is hashed is exactly what will be read back.
    details = json.loads(_canonical(details))
    # The chain's tail is read once per transaction (under the lock) and then carried in
    # the session, so a transaction appending many records makes one round trip, not two
    # per record. Records get their seq here, so no flush is needed until commit.
    transaction = session.get_transaction()
    tail = session.info.get("audit_tail")
    if tail is not None and tail[0] is transaction:
        seq, prev = tail[1] + 1, tail[2]
    else:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                                  {"k": _ADVISORY_LOCK_KEY})
        last = (
            await session.execute(
                select(AuditRecord.seq, AuditRecord.hash)
                .order_by(AuditRecord.seq.desc()).limit(1)
            )
        ).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at = at.astimezone(UTC)
    record = AuditRecord(
        seq=seq, at=at, reference=reference, actor=actor, action=action, details=details,
        prev_hash=prev,
        hash=record_hash(
            seq=seq, at=at, reference=reference, actor=actor, action=action, details=details,
            prev_hash=prev,
        ),
    )
    session.add(record)
    session.info["audit_tail"] = (transaction, seq, record.hash)
    return record


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    first_broken: int | None = None
    problem: str | None = None


async def _iter_records(
    session: AsyncSession, *, since: datetime | None = None, batch: int = 1000
) -> AsyncIterator[AuditRecord]:
    last = 0
    while True:
        query = select(AuditRecord).where(AuditRecord.seq > last)
        if since is not None:
            query = query.where(AuditRecord.at >= since)
        rows = (await session.scalars(query.order_by(AuditRecord.seq).limit(batch))).all()
        if not rows:
            return
        for row in rows:
            yield row
        last = rows[-1].seq


async def verify(session: AsyncSession) -> VerifyResult:
    """Recompute the whole chain; report the first record whose hash or link is wrong."""
    prev, expected_seq, count = GENESIS, 1, 0
    async for rec in _iter_records(session):
        count += 1
        if rec.seq != expected_seq:
            return VerifyResult(False, count, expected_seq, f"record {expected_seq} is missing")
        if rec.prev_hash != prev:
            return VerifyResult(False, count, rec.seq, "does not link to the record before it")
        actual = record_hash(
            seq=rec.seq, at=rec.at, reference=rec.reference, actor=rec.actor, action=rec.action,
            details=rec.details, prev_hash=rec.prev_hash,
        )
        if actual != rec.hash:
            return VerifyResult(False, count, rec.seq, "its content does not match its hash")
        prev, expected_seq = rec.hash, expected_seq + 1
    return VerifyResult(True, count)


EXPORT_COLUMNS = (
    "seq", "at", "reference", "actor", "action", "recipient_name", "recipient_job_title",
    "recipient_organisation", "recipient_phone", "classification", "purpose", "lawful_basis",
    "consent", "authorised_by", "method", "details", "hash",
)


_TRANSFER_FIELDS = ("classification", "recipient", "purpose", "lawful_basis", "consent",
                    "method", "authorised_by")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PHONE = re.compile(r"\+[0-9 ]{6,20}")


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas: a purpose typed as ``=HYPERLINK(...)`` must open
    in Excel as text, not run (CSV injection)."""
    if _PHONE.fullmatch(value):  # "+44 7911 123456" is a phone number, not a formula
        return value
    return "'" + value if value.startswith(_FORMULA_START) else value


def _flatten(rec: AuditRecord, context: dict[str, Any]) -> dict[str, str]:
    row = _flatten_raw(rec, context)
    return {key: _cell(value) for key, value in row.items()}


def _flatten_raw(rec: AuditRecord, context: dict[str, Any]) -> dict[str, str]:
    """One CSV row; fields the record itself lacks come from its transfer's confirmed
    record and approval earlier in the chain, so every row of a transfer carries the
    record-keeping fields (recipient, purpose, consent limits, who authorised it)."""
    d = {**context, **{k: v for k, v in rec.details.items() if v is not None}}
    recipient = d.get("recipient") if isinstance(d.get("recipient"), dict) else {}
    assert isinstance(recipient, dict)
    return {
        "seq": str(rec.seq),
        "at": rec.at.isoformat(),
        "reference": rec.reference or "",
        "actor": rec.actor,
        "action": rec.action,
        "recipient_name": str(recipient.get("name") or ""),
        "recipient_job_title": str(recipient.get("job_title") or ""),
        "recipient_organisation": str(recipient.get("organisation") or ""),
        "recipient_phone": str(recipient.get("phone") or ""),
        "classification": str(d.get("classification") or ""),
        "purpose": str(d.get("purpose") or ""),
        "lawful_basis": str(d.get("lawful_basis") or ""),
        "consent": _canonical(d["consent"]) if d.get("consent") else "",
        "authorised_by": str(d.get("authorised_by") or ""),
        "method": str(d.get("method") or ""),
        "details": _canonical(rec.details),
        "hash": rec.hash,
    }


def _remember(contexts: dict[str, dict[str, Any]], rec: AuditRecord) -> dict[str, Any]:
    if rec.reference is None:
        return {}
    context = contexts.setdefault(rec.reference, {})
    if rec.action in ("confirmed", "answered", "approval_decided"):
        for key in _TRANSFER_FIELDS:
            if rec.details.get(key) is not None:
                context[key] = rec.details[key]
    return context


async def export(session: AsyncSession, *, since: datetime | None, fmt: str) -> AsyncIterator[str]:
    """Yield the records from ``since`` as CSV (one row each, seed-001 fields as columns)
    or JSON lines (every field, with the hashes so the export itself can be checked)."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        yield buf.getvalue()
        contexts: dict[str, dict[str, Any]] = {}
        async for rec in _iter_records(session):
            context = dict(_remember(contexts, rec))
            if since is not None and rec.at < since:
                continue
            buf.seek(0)
            buf.truncate()
            writer.writerow(_flatten(rec, context))
            yield buf.getvalue()
    elif fmt == "json":
        async for rec in _iter_records(session, since=since):
            yield _canonical(
                {
                    "seq": rec.seq, "at": rec.at.isoformat(), "reference": rec.reference,
                    "actor": rec.actor, "action": rec.action, "details": rec.details,
                    "prev_hash": rec.prev_hash, "hash": rec.hash,
                }
            ) + "\n"
    else:
        raise ValueError(f"unknown export format {fmt!r}; use csv or json")
