"""The tamper-evident audit trail: append, verify, checkpoint, prune, export.

Each record's ``hash`` covers its own content and the record before it. Since migration
0012 it is an HMAC-SHA256 under a key derived from the server key (bot/audit_keys.py), which
the database does not hold: someone who can rewrite the database cannot recompute the
chain. Older records keep their unkeyed SHA-256 (``scheme`` says which) and verify as
before. Signed checkpoints written outside the database (store/audit_anchor.py) fix the
count and the newest record at a point in time, so deleting records from the end, or
relabelling keyed records as unkeyed ones, shows too; ``verify`` names the first altered,
missing, reordered or truncated record and the checkpoint it checked against.
A server-key rotation is bridged by a rotation checkpoint (:meth:`AuditTrail.rotate`) whose
signed digest vouches for the records made under the old key once that key is gone.

Appends are serialised (a PostgreSQL advisory lock, or one writer at a time on SQLite) so
the chain stays linear when several processes write. An append costs one HMAC: checkpoints
are signed by the scheduler's tick and at the end of each command, not per record.

The caller decides what goes in ``details``; it must never hold a password. ``append``
refuses obviously secret keys as a second line of defence.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.audit_keys import (
    GENESIS,
    AuditKeys,
    Checkpoint,
    Scheme,
    SignedCheckpoint,
    Standing,
    canonical,
    raw_public,
    standings,
)
from bot.objects import ObjectStore
from bot.settings import Settings
from bot.vault import Vault
from store.audit_anchor import Anchor, open_anchor
from store.db import Database
from store.models import AuditRecord

__all__ = ["GENESIS", "AuditBroken", "AuditTrail", "ExportFilter", "VerifyResult", "append",
           "attach", "export", "prune", "record_hash", "trail_from_settings", "trail_of",
           "verify"]

log = logging.getLogger(__name__)
_ADVISORY_LOCK_KEY = 0x5AFE_4A7E
_FORBIDDEN_KEYS = frozenset({"password", "password_sealed", "secret", "token"})
_TRAIL_INFO = "safehaven_audit_trail"
_canonical = canonical


def _body(*, seq: int, at: datetime, reference: str | None, actor: str, action: str,
          details: Mapping[str, Any], prev_hash: str, scheme: Scheme,
          key_id: str | None) -> bytes:
    fields: dict[str, Any] = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "reference": reference,
        "actor": actor,
        "action": action,
        "details": details,
        "prev": prev_hash,
    }
    if scheme is not Scheme.SHA256:  # the unkeyed records' bytes stay as they always were
        fields["scheme"] = scheme.value
        fields["key_id"] = key_id
    return canonical(fields).encode("utf-8")


def record_hash(
    *, seq: int, at: datetime, reference: str | None, actor: str, action: str,
    details: Mapping[str, Any], prev_hash: str,
) -> str:
    """The unkeyed SHA-256 of a record written before migration 0012 (``scheme`` sha256)."""
    return hashlib.sha256(_body(seq=seq, at=at, reference=reference, actor=actor,
                                action=action, details=details, prev_hash=prev_hash,
                                scheme=Scheme.SHA256, key_id=None)).hexdigest()


def _check_no_secrets(details: Mapping[str, Any]) -> None:
    for key, value in details.items():
        if key.lower() in _FORBIDDEN_KEYS:
            raise ValueError(f"audit details must not contain {key!r}")
        if isinstance(value, Mapping):
            _check_no_secrets(value)


@dataclass
class AuditTrail:
    """One process's view of the trail: its keys, where checkpoints go, and how often
    (``SAFEHAVEN_AUDIT_CHECKPOINT_RECORDS`` / ``_MINUTES``). :func:`attach` it to the
    database so every append is keyed."""

    keys: AuditKeys
    anchor: Anchor
    every_records: int = 1000
    every: timedelta = timedelta(minutes=10)
    _latest: Checkpoint | None = field(default=None, repr=False)

    async def checkpoints(self) -> list[SignedCheckpoint | None]:
        return await self.anchor.read()

    async def checkpoint_if_due(self, db: Database, *, now: datetime) -> Checkpoint | None:
        """Write a checkpoint when none exists yet, when ``every_records`` records came
        since the latest, or when ``every`` has passed and any came; None when not due."""
        async with db.read() as session:
            head = (await session.execute(select(func.max(AuditRecord.seq)))).scalar()
        if head is None:
            return None
        if self._latest is None:
            self._latest = _latest(await self.anchor.read(), self.keys)
        latest = self._latest
        if latest is not None:
            new = head - latest.head_seq
            if new <= 0 or (new < self.every_records and now - latest.at < self.every):
                return None
        return await self.checkpoint(db, now=now)

    async def checkpoint(self, db: Database, *, now: datetime,
                         prune_through: int | None = None) -> Checkpoint:
        """Sign and write a checkpoint of the trail as it is now, after checking every
        record since the latest checkpoint (a broken chain is never signed: raises
        :class:`AuditBroken`). With ``prune_through``, the chain's new beginning is after
        that record (:func:`prune` deletes the records up to it next). The latest
        checkpoint this process knows is trusted as the starting point, so the anchor's
        whole history is read only once per process (and again on a pruning)."""
        cached = self._latest is not None and prune_through is None
        found = None if cached else await self.anchor.read()
        latest = self._latest if found is None else _latest(found, self.keys)
        coverage = _coverage(_good(found, self.keys), latest.base_seq) \
            if found is not None and latest is not None else None
        try:
            return await self._checkpoint(db, latest, now=now, prune_through=prune_through,
                                          coverage=coverage)
        except AuditBroken:
            if not cached:
                raise
            # Another process may have written newer checkpoints (or pruned): look again.
            latest = _latest(await self.anchor.read(), self.keys)
            return await self._checkpoint(db, latest, now=now, prune_through=prune_through)

    async def rotate(self, db: Database, *, now: datetime) -> list[Checkpoint]:
        """After a server-key rotation: checkpoints signed by the current key that link
        each previous key still held (and used: it signed a checkpoint or made a MAC) to
        it, and cover every record so far with a signed digest, so the whole trail still
        verifies once the previous keys are gone (docs/governance.md). The whole trail is
        checked first. Nothing is written when every previous key is linked already and
        no record under an older key is left uncovered (running it again is harmless)."""
        await verify_or_raise(db, self)
        found = await self.anchor.read()
        good = _good(found, self.keys)
        latest = _latest(found, self.keys)
        linked = {c.previous_key for c in good
                  if c.key_id == self.keys.key_id and c.previous_key}
        base_seq = latest.base_seq if latest is not None else 0
        coverage = _coverage(good, base_seq)
        async with db.read() as session:
            used = set((await session.scalars(
                select(AuditRecord.key_id).where(AuditRecord.key_id.is_not(None))
                .distinct())).all())
            uncovered = (await session.execute(
                select(func.count()).select_from(AuditRecord)
                .where(AuditRecord.seq > (coverage.through if coverage else base_seq),
                       AuditRecord.key_id.is_not(None),
                       AuditRecord.key_id != self.keys.key_id))).scalar() or 0
        signers = {c.key_id for c in good}
        to_link = [p for p in self.keys.previous
                   if (p.key_id in used or p.key_id in signers)
                   and raw_public(p.public_key) not in linked]
        written: list[Checkpoint] = []
        links: list[AuditKeys | None] = [*to_link] or ([None] if uncovered else [])
        for link in links:
            written.append(await self._checkpoint(db, _latest(await self.anchor.read(),
                                                              self.keys),
                                                  now=now, prune_through=None, cover=True,
                                                  link=link))
        return written

    async def _checkpoint(self, db: Database, latest: Checkpoint | None, *, now: datetime,
                          prune_through: int | None, coverage: Coverage | None = None,
                          cover: bool = False, link: AuditKeys | None = None) -> Checkpoint:
        if latest is not None and latest.key_id != self.keys.key_id:
            # A start point and head this key did not sign itself are adopted only once the
            # whole trail verifies against them (once per process, after a rotation).
            await verify_or_raise(db, self)
        async with db.read() as session:
            if latest is None:
                base_seq, base_mac = 0, GENESIS
                keyed_from = await _first_keyed(session)
                result = await _walk(session, keys=self.keys, base_seq=0, base_mac=GENESIS,
                                     keyed_from=keyed_from, heads={})
            else:
                base_seq, base_mac = latest.base_seq, latest.base_mac
                keyed_from = latest.keyed_from
                result = await self._since(session, latest)
            if not result.ok:
                raise AuditBroken(result)
            head_seq = result.head_seq if result.head_seq is not None else (
                latest.head_seq if latest is not None else 0)
            head = await session.get(AuditRecord, head_seq) if head_seq else None
            if prune_through is not None and prune_through > base_seq:
                pruned = await session.get(AuditRecord, prune_through)
                if pruned is None or prune_through > head_seq:
                    raise ValueError(f"record {prune_through} is not in the trail")
                base_seq, base_mac = pruned.seq, pruned.hash
            # What a rotation checkpoint covered stays covered from the new beginning on.
            sealed_through = head_seq if cover else (
                coverage.through if coverage is not None and coverage.through > base_seq
                else 0)
            sealed_digest = await segment_digest(session, after=base_seq,
                                                 through=sealed_through) \
                if sealed_through > base_seq else ""
        checkpoint = Checkpoint(
            head_seq=head_seq, head_mac=head.hash if head is not None else base_mac,
            count=head_seq - base_seq, base_seq=base_seq, base_mac=base_mac,
            keyed_from=min(keyed_from or head_seq + 1, head_seq + 1),
            at=now.astimezone(UTC), key_id=self.keys.key_id,
            sealed_through=sealed_through if sealed_digest else 0,
            sealed_digest=sealed_digest,
            previous_key=raw_public(link.public_key) if link is not None else "")
        await self.anchor.append(SignedCheckpoint.make(checkpoint, self.keys, link))
        self._latest = checkpoint
        log.info("audit checkpoint written to %s: %d records, head record %d",
                 self.anchor.description, checkpoint.count, checkpoint.head_seq)
        return checkpoint

    async def _since(self, session: AsyncSession, latest: Checkpoint) -> VerifyResult:
        """The records after ``latest``'s head (not the whole trail again: a checkpoint
        costs what was appended since the one before it)."""
        if latest.head_seq > latest.base_seq:
            head = await session.get(AuditRecord, latest.head_seq)
            if head is None or head.hash != latest.head_mac:
                problem = ("it is missing (truncated)" if head is None else
                           f"it is not the record {latest.describe()} names (replaced)")
                return VerifyResult(False, 0, latest.head_seq, problem, latest)
        return await _walk(session, keys=self.keys, base_seq=latest.head_seq,
                           base_mac=latest.head_mac, keyed_from=latest.keyed_from, heads={})


def trail_from_settings(settings: Settings, *, vault: Vault, objects: ObjectStore
                        ) -> AuditTrail:
    """The trail of a process: keys from the server key, the anchor and cadence from
    ``SAFEHAVEN_AUDIT_*``."""
    return AuditTrail(keys=AuditKeys.from_vault(vault),
                      anchor=open_anchor(settings.audit_anchor_spec, objects=objects),
                      every_records=settings.audit_checkpoint_records,
                      every=timedelta(minutes=settings.audit_checkpoint_minutes))


class AuditBroken(Exception):
    """The trail does not verify, so no checkpoint is signed over it."""

    def __init__(self, result: VerifyResult) -> None:
        super().__init__(result.message())
        self.result = result


def attach(db: Database, trail: AuditTrail) -> None:
    """Make every session of ``db`` append keyed records under ``trail``'s keys."""
    info = dict(db.sessions.kw.get("info") or {})
    info[_TRAIL_INFO] = trail
    db.sessions.configure(info=info)


def trail_of(db: Database) -> AuditTrail | None:
    trail = (db.sessions.kw.get("info") or {}).get(_TRAIL_INFO)
    return trail if isinstance(trail, AuditTrail) else None


def _session_keys(session: AsyncSession) -> AuditKeys | None:
    trail = session.info.get(_TRAIL_INFO)
    return trail.keys if isinstance(trail, AuditTrail) else None


async def append(
    session: AsyncSession, *, at: datetime, actor: str, action: str,
    reference: str | None = None, details: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """Append one record inside the caller's transaction (committed with it): keyed when
    the database has a trail attached (every process the composition root builds)."""
    details = dict(details or {})
    _check_no_secrets(details)
    # Round-trip through JSON so what is hashed is exactly what will be read back.
    details = json.loads(canonical(details))
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
    keys = _session_keys(session)
    scheme = Scheme.SHA256 if keys is None else Scheme.HMAC_SHA256
    key_id = None if keys is None else keys.key_id
    body = _body(seq=seq, at=at, reference=reference, actor=actor, action=action,
                 details=details, prev_hash=prev, scheme=scheme, key_id=key_id)
    record = AuditRecord(
        seq=seq, at=at, reference=reference, actor=actor, action=action, details=details,
        prev_hash=prev, scheme=scheme.value, key_id=key_id,
        hash=hashlib.sha256(body).hexdigest() if keys is None else keys.mac(body),
    )
    session.add(record)
    session.info["audit_tail"] = (transaction, seq, record.hash)
    return record


@dataclass(frozen=True)
class VerifyResult:
    """``first_broken``: the first record altered, missing, out of order or (past the end)
    truncated; ``checkpoint``: the latest signed checkpoint the trail was checked against."""

    ok: bool
    records: int
    first_broken: int | None = None
    problem: str | None = None
    checkpoint: Checkpoint | None = None
    checkpoints: int = 0
    head_seq: int | None = None

    def message(self) -> str:
        against = (f"checked against {self.checkpoint.describe()}" if self.checkpoint
                   else "no signed checkpoint to check against")
        if self.ok:
            return f"audit trail intact: {self.records} records verified, {against}"
        where = f" at record {self.first_broken}" if self.first_broken is not None else ""
        return f"audit trail BROKEN{where}: {self.problem} ({against})"


async def _iter_records(
    session: AsyncSession, *, after: int = 0, since: datetime | None = None,
    through: int | None = None, batch: int = 1000,
) -> AsyncIterator[AuditRecord]:
    last = after
    while True:
        query = select(AuditRecord).where(AuditRecord.seq > last)
        if since is not None:
            query = query.where(AuditRecord.at >= since)
        if through is not None:
            query = query.where(AuditRecord.seq <= through)
        rows = (await session.scalars(query.order_by(AuditRecord.seq).limit(batch))).all()
        if not rows:
            return
        for row in rows:
            yield row
        last = rows[-1].seq


async def _first_keyed(session: AsyncSession) -> int | None:
    return (await session.execute(select(func.min(AuditRecord.seq))
                                  .where(AuditRecord.scheme != Scheme.SHA256.value))).scalar()


def _expected(rec: AuditRecord, keys: AuditKeys | None) -> str | None:
    """The hash ``rec`` should have, or None when it cannot be checked here."""
    try:
        scheme = Scheme(rec.scheme)
    except ValueError:
        return None
    body = _body(seq=rec.seq, at=rec.at, reference=rec.reference, actor=rec.actor,
                 action=rec.action, details=rec.details, prev_hash=rec.prev_hash,
                 scheme=scheme, key_id=rec.key_id)
    if scheme is Scheme.SHA256:
        return hashlib.sha256(body).hexdigest()
    held = keys.for_key_id(rec.key_id) if keys is not None else None
    return held.mac(body) if held is not None else None


def _digest_line(rec: AuditRecord) -> bytes:
    try:
        scheme = Scheme(rec.scheme)
    except ValueError:
        scheme = Scheme.HMAC_SHA256  # (an unknown scheme fails its MAC check anyway)
    body = _body(seq=rec.seq, at=rec.at, reference=rec.reference, actor=rec.actor,
                 action=rec.action, details=rec.details, prev_hash=rec.prev_hash,
                 scheme=scheme, key_id=rec.key_id)
    return body + b"\n" + rec.hash.encode("ascii", "replace") + b"\n"


async def segment_digest(session: AsyncSession, *, after: int, through: int) -> str:
    """SHA-256 over the records ``after``+1 .. ``through``, each its MAC'd bytes and its
    MAC: what a rotation checkpoint signs, so those records verify without the key that
    made their MACs (docs/governance.md, "Key rotation")."""
    digest = hashlib.sha256()
    async for rec in _iter_records(session, after=after, through=through):
        digest.update(_digest_line(rec))
    return digest.hexdigest()


@dataclass(frozen=True)
class Coverage:
    """Records ``base_seq``+1 .. ``through`` hash to ``digest`` (a signed checkpoint's
    ``sealed_through``/``sealed_digest``)."""

    base_seq: int
    through: int
    digest: str


def _coverage(checkpoints: Sequence[Checkpoint], base_seq: int) -> Coverage | None:
    """The widest signed coverage of the chain starting after ``base_seq``."""
    found = [c for c in checkpoints if c.base_seq == base_seq and c.sealed_through > base_seq]
    if not found:
        return None
    best = max(found, key=lambda c: c.sealed_through)
    return Coverage(base_seq, best.sealed_through, best.sealed_digest)


async def _walk(session: AsyncSession, *, keys: AuditKeys | None, base_seq: int,
                base_mac: str, keyed_from: int | None,
                heads: Mapping[int, tuple[Checkpoint, ...]],
                coverage: Coverage | None = None,
                bases: Mapping[int, tuple[Checkpoint, ...]] | None = None) -> VerifyResult:
    """Check every record after ``base_seq``: contiguous, linked, its MAC right, keyed
    from ``keyed_from`` on, and equal to each checkpoint's head it reaches. A record whose
    MAC key is no longer held is checked by ``coverage`` instead: with every record up to
    its end, against the digest a rotation checkpoint signed."""
    prev, expected_seq, count = base_mac, base_seq + 1, 0
    covered = coverage is not None and coverage.base_seq == base_seq
    digest = hashlib.sha256()
    async for rec in _iter_records(session, after=base_seq):
        count += 1
        if rec.seq != expected_seq:
            return VerifyResult(False, count, expected_seq, f"record {expected_seq} is missing")
        if rec.prev_hash != prev:
            return VerifyResult(False, count, rec.seq, "it does not link to the record before "
                                "it (a record was removed, reordered or replaced)")
        if keyed_from is not None and rec.seq >= keyed_from \
                and rec.scheme != Scheme.HMAC_SHA256.value:
            return VerifyResult(False, count, rec.seq, f"it carries an unkeyed {rec.scheme!r} "
                                f"hash, but every record from {keyed_from} on must carry a "
                                "keyed MAC (a downgraded or forged record)")
        expected = _expected(rec, keys)
        in_coverage = covered and coverage is not None and rec.seq <= coverage.through
        if in_coverage:
            digest.update(_digest_line(rec))
        if expected is None and not in_coverage:
            return VerifyResult(False, count, rec.seq, f"its MAC ({rec.scheme}, key "
                                f"{rec.key_id}) cannot be checked with this server's key")
        if expected is not None and not hmac.compare_digest(expected, rec.hash):
            return VerifyResult(False, count, rec.seq,
                                "its content does not match its MAC (altered)")
        if in_coverage and coverage is not None and rec.seq == coverage.through \
                and not hmac.compare_digest(digest.hexdigest(), coverage.digest):
            return VerifyResult(False, count, base_seq + 1, f"records {base_seq + 1} to "
                                f"{rec.seq} do not hash to the digest the key-rotation "
                                "checkpoint signed (one of them was altered)")
        for checkpoint in heads.get(rec.seq, ()):
            if checkpoint.head_mac != rec.hash:
                return VerifyResult(False, count, rec.seq, "it is not the record "
                                    f"{checkpoint.describe()} names as its head (replaced)",
                                    checkpoint)
        for checkpoint in (bases or {}).get(rec.seq, ()):
            if checkpoint.base_mac != rec.hash:
                return VerifyResult(False, count, rec.seq, "it is not the record "
                                    f"{checkpoint.describe()} starts the chain after "
                                    "(replaced, or the start point was forged)", checkpoint)
        prev, expected_seq = rec.hash, expected_seq + 1
    return VerifyResult(True, count, head_seq=expected_seq - 1 if count else None)


def _good(found: Sequence[SignedCheckpoint | None] | None, keys: AuditKeys) -> list[Checkpoint]:
    """The checkpoints of ``found`` signed by a key this server holds: the only ones that
    may give a start point, the latest, or a coverage (a retired key's are only checked
    against: :func:`bot.audit_keys.standings`)."""
    found = found or ()
    return [s.checkpoint for s, standing in zip(found, standings(keys, found), strict=True)
            if s is not None and standing is Standing.HELD]


def _latest(found: Sequence[SignedCheckpoint | None], keys: AuditKeys) -> Checkpoint | None:
    good = _good(found, keys)
    return max(good, key=lambda c: (c.head_seq, c.base_seq, c.at)) if good else None


async def _verify_against(session: AsyncSession, keys: AuditKeys | None,
                          checkpoints: Sequence[Checkpoint],
                          linked: Sequence[Checkpoint] = ()) -> VerifyResult:
    """``checkpoints``: signed by held keys (they give the start point, the latest and the
    coverage); ``linked``: a retired key's, within its link (their heads are checked)."""
    latest = max(checkpoints, key=lambda c: (c.head_seq, c.base_seq, c.at))
    # The chain is checked from the newest start point with no record left at or before
    # it; a start point whose records are still there (a pruning cut short, or a forged
    # "the chain starts here") is checked as a record of the chain instead.
    oldest = (await session.execute(select(func.min(AuditRecord.seq)))).scalar()
    starts = [c for c in checkpoints if oldest is None or c.base_seq < oldest]
    if not starts:
        return VerifyResult(False, 0, oldest, f"record {oldest} is still in the trail, but "
                            "no signed checkpoint starts the chain before it (a start point "
                            "was forged, or the records it began after were restored)",
                            latest, len(checkpoints) + len(linked))
    based = max(starts, key=lambda c: c.base_seq)
    heads: dict[int, tuple[Checkpoint, ...]] = {}
    bases: dict[int, tuple[Checkpoint, ...]] = {}
    for checkpoint in (*checkpoints, *linked):
        if checkpoint.head_seq > based.base_seq:
            heads[checkpoint.head_seq] = (*heads.get(checkpoint.head_seq, ()), checkpoint)
        if checkpoint.base_seq > based.base_seq:
            bases[checkpoint.base_seq] = (*bases.get(checkpoint.base_seq, ()), checkpoint)
    result = await _walk(session, keys=keys, base_seq=based.base_seq, base_mac=based.base_mac,
                         keyed_from=min(c.keyed_from for c in checkpoints), heads=heads,
                         coverage=_coverage(checkpoints, based.base_seq), bases=bases)
    end = based.base_seq + result.records
    if result.ok and end < latest.head_seq:
        return VerifyResult(False, result.records, end + 1,
                            f"the trail ends at record {end}, but {latest.describe()} names "
                            f"record {latest.head_seq} as its head: records {end + 1} to "
                            f"{latest.head_seq} were deleted from the end (truncated)",
                            latest, len(checkpoints) + len(linked), result.head_seq)
    return VerifyResult(result.ok, result.records, result.first_broken, result.problem,
                        latest, len(checkpoints) + len(linked), result.head_seq)


async def verify(session: AsyncSession, *, keys: AuditKeys | None = None,
                 checkpoints: Sequence[SignedCheckpoint | None] | None = None) -> VerifyResult:
    """Check the whole chain and report the first record whose MAC or link is wrong.

    ``keys`` defaults to the attached trail's. With ``checkpoints`` (what the anchor holds:
    ``AuditTrail.checkpoints()``), each must carry a valid signature, the chain is checked
    from the newest pruning point, every checkpoint's head must be in it unchanged, and the
    trail must reach the latest checkpoint's head (else it was truncated). With no
    checkpoint at all, only the chain is checked and the result says so (``checkpoint``
    None): deleting the newest records cannot be seen that way.
    """
    keys = keys or _session_keys(session)
    if checkpoints is None:
        return await _walk(session, keys=keys, base_seq=0, base_mac=GENESIS,
                           keyed_from=None, heads={})
    good: list[Checkpoint] = []
    linked: list[Checkpoint] = []
    for position, (signed, standing) in enumerate(
            zip(checkpoints, standings(keys, checkpoints), strict=True), start=1):
        if signed is None:
            return VerifyResult(False, 0, None, f"checkpoint {position} at the anchor cannot "
                                "be read (altered or cut short)", checkpoints=len(checkpoints))
        if standing is Standing.RETIRED:
            return VerifyResult(False, 0, None, f"checkpoint {position} at the anchor "
                                f"({signed.checkpoint.describe()}) is signed by the retired "
                                f"key {signed.checkpoint.key_id} but names records after the "
                                "rotation that retired it (forged with a retired key)",
                                checkpoints=len(checkpoints))
        if standing is Standing.LINKED:
            linked.append(signed.checkpoint)
            continue
        if keys is None or standing is not Standing.HELD:
            return VerifyResult(False, 0, None, f"checkpoint {position} at the anchor "
                                f"({signed.checkpoint.describe()}) does not carry a valid "
                                "signature of this server's key (altered or forged)",
                                checkpoints=len(checkpoints))
        good.append(signed.checkpoint)
    if not good and not linked:
        first = (await session.scalars(
            select(AuditRecord).order_by(AuditRecord.seq).limit(1))).first()
        if first is None:
            return VerifyResult(True, 0)
        result = await _walk(session, keys=keys, base_seq=0, base_mac=GENESIS,
                             keyed_from=None, heads={})
        if not result.ok:
            return result
        return VerifyResult(False, result.records, None, "the anchor holds no signed "
                            "checkpoint, so records deleted from the end or a rewritten chain "
                            "could not be seen; run `safehaven audit checkpoint` once the "
                            "trail is known good", head_seq=result.head_seq)
    if not good:  # (a retired key is believed only through a held key's link)
        return VerifyResult(False, 0, None, "no checkpoint at the anchor is signed by a key "
                            "this server holds", checkpoints=len(checkpoints))
    return await _verify_against(session, keys, good, linked)


async def verify_or_raise(db: Database, trail: AuditTrail) -> VerifyResult:
    """The whole trail, checked against the anchor's checkpoints (against the chain from
    its start while the anchor holds none); raises :class:`AuditBroken` when it is not
    intact. Called before signing anything that vouches for old records."""
    found = await trail.checkpoints()
    async with db.read() as session:
        result = await verify(session, keys=trail.keys, checkpoints=found or None)
    if not result.ok:
        raise AuditBroken(result)
    return result


# The record saying a database found behind its anchor had its pending sends checked.
RESTORE_CHECKED = "restore_checked"


@dataclass(frozen=True)
class Behind:
    """The database does not hold, unchanged, the head record of the anchor's latest
    checkpoint: it was restored from a dump older than that checkpoint (or its newest
    records were deleted or replaced). ``trail_head``: the newest record it does hold."""

    checkpoint: Checkpoint
    trail_head: int | None
    noted: bool  # a restore_checked record for this checkpoint is in the trail already


async def behind_anchor(db: Database, trail: AuditTrail) -> Behind | None:
    """Whether the database is behind what the anchor once saw of it (None: it is not, or
    the anchor holds no checkpoint this server's keys trust)."""
    latest = _latest(await trail.anchor.read(), trail.keys)
    if trail._latest is None:  # what the first checkpoint_if_due would read again
        trail._latest = latest
    if latest is None or latest.head_seq <= latest.base_seq:
        return None
    async with db.read() as session:
        head = await session.get(AuditRecord, latest.head_seq)
        if head is not None and hmac.compare_digest(head.hash, latest.head_mac):
            return None
        newest = (await session.execute(select(func.max(AuditRecord.seq)))).scalar()
        noted = any(
            d.get("checkpoint_head") == latest.head_seq
            and d.get("checkpoint_at") == latest.at.isoformat()
            for d in (await session.scalars(select(AuditRecord.details).where(
                AuditRecord.action == RESTORE_CHECKED))).all() if isinstance(d, dict))
    return Behind(latest, newest, noted)


async def prune(db: Database, *, trail: AuditTrail, before: datetime,
                now: datetime) -> int:
    """Delete the records older than ``before`` (the policy's ``[retention] audit_days``),
    never the newest one. A signed checkpoint naming the last pruned record and its MAC is
    written first, so ``verify`` checks the chain from there; the pruning is itself
    recorded. Returns how many records were deleted."""
    async with db.read() as session:
        keep_from = (await session.execute(select(func.min(AuditRecord.seq))
                                           .where(AuditRecord.at >= before))).scalar()
        newest = (await session.execute(select(func.max(AuditRecord.seq)))).scalar()
        oldest = (await session.execute(select(func.min(AuditRecord.seq)))).scalar()
    if newest is None or oldest is None:
        return 0
    through = min(newest, keep_from if keep_from is not None else newest) - 1
    if through < oldest:
        return 0
    # The records about to go are checked first: a checkpoint over records whose ``at`` was
    # backdated (or whose content was altered) would launder the change away.
    await verify_or_raise(db, trail)
    await trail.checkpoint(db, now=now, prune_through=through)
    async with db.transaction() as session:
        deleted = (await session.execute(select(func.count()).select_from(AuditRecord)
                                         .where(AuditRecord.seq <= through))).scalar() or 0
        await session.execute(delete(AuditRecord).where(AuditRecord.seq <= through))
        await append(session, at=now, actor="safehaven", action="audit_pruned",
                     details={"through_seq": through, "before": before.isoformat(),
                              "records": deleted})
    return int(deleted)


EXPORT_COLUMNS = (
    "seq", "at", "reference", "actor", "action", "recipient_name", "recipient_job_title",
    "recipient_department", "recipient_organisation", "recipient_phone", "classification",
    "information_categories", "purpose", "lawful_basis",
    "consent", "authorised_by", "method", "details", "hash",
)


_TRANSFER_FIELDS = ("classification", "information_categories", "recipient", "purpose",
                    "lawful_basis", "consent", "method", "authorised_by")


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
        "recipient_department": str(recipient.get("department") or ""),
        "recipient_organisation": str(recipient.get("organisation") or ""),
        "recipient_phone": str(recipient.get("phone") or ""),
        "classification": str(d.get("classification") or ""),
        # The policy's category keys, as recorded; "; " as a key never holds one.
        "information_categories": "; ".join(str(k) for k in d.get("information_categories")
                                            or ()),
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


@dataclass(frozen=True)
class ExportFilter:
    """Which records an export holds. ``sender``: records of transfers the sender started
    and records the sender made; ``organisation``: records of transfers to a recipient of
    that organisation (case-insensitive); ``until`` is exclusive; ``through_seq`` stops at
    the head of the checkpoint the export relates to."""

    since: datetime | None = None
    until: datetime | None = None
    reference: str | None = None
    sender: str | None = None
    organisation: str | None = None
    through_seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "reference": self.reference, "sender": self.sender,
                "organisation": self.organisation}

    @property
    def by_transfer(self) -> bool:
        return self.sender is not None or self.organisation is not None


def _is_person(actor: str) -> bool:
    return ":" in actor  # channel ids ("slack:U1", "console:alice"); not "safehaven", "twilio"


async def _transfer_parties(session: AsyncSession, through: int | None
                            ) -> tuple[dict[str, str], dict[str, str]]:
    """Per reference: who started the transfer (the first person on its record) and the
    recipient's organisation (the latest the record names), from the trail itself, which
    outlives the transfers table."""
    senders: dict[str, str] = {}
    organisations: dict[str, str] = {}
    async for rec in _iter_records(session, through=through):
        if rec.reference is None:
            continue
        if rec.reference not in senders and _is_person(rec.actor):
            senders[rec.reference] = rec.actor
        recipient = rec.details.get("recipient")
        if isinstance(recipient, dict) and recipient.get("organisation"):
            organisations[rec.reference] = str(recipient["organisation"])
    return senders, organisations


def _selected(rec: AuditRecord, flt: ExportFilter, senders: Mapping[str, str],
              organisations: Mapping[str, str]) -> bool:
    if flt.since is not None and rec.at < flt.since:
        return False
    if flt.until is not None and rec.at >= flt.until:
        return False
    if flt.reference is not None and rec.reference != flt.reference:
        return False
    if flt.sender is not None and rec.actor != flt.sender and (
            rec.reference is None or senders.get(rec.reference) != flt.sender):
        return False
    if flt.organisation is not None:
        wanted = flt.organisation.strip().casefold()
        if rec.reference is None or \
                organisations.get(rec.reference, "").strip().casefold() != wanted:
            return False
    return True


def json_line(rec: AuditRecord) -> str:
    """One record as an export line: every field, with the MAC, the link and the scheme,
    so a reader can check the chain of consecutive records (bot/audit_evidence.py)."""
    return canonical(
        {
            "seq": rec.seq, "at": rec.at.astimezone(UTC).isoformat(timespec="microseconds"),
            "reference": rec.reference, "actor": rec.actor, "action": rec.action,
            "details": rec.details, "prev_hash": rec.prev_hash, "hash": rec.hash,
            "scheme": rec.scheme, "key_id": rec.key_id,
        }
    ) + "\n"


async def export(session: AsyncSession, *, since: datetime | None = None, fmt: str,
                 where: ExportFilter | None = None) -> AsyncIterator[str]:
    """Yield the selected records as CSV (one row each, seed-001 fields as columns) or JSON
    lines (every field, with the MACs so the chain of the export can be checked)."""
    flt = where or ExportFilter()
    if since is not None:
        flt = ExportFilter(since=since, until=flt.until, reference=flt.reference,
                           sender=flt.sender, organisation=flt.organisation,
                           through_seq=flt.through_seq)
    senders, organisations = (await _transfer_parties(session, flt.through_seq)
                              if flt.by_transfer else ({}, {}))
    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown export format {fmt!r}; use csv or json")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS)
    if fmt == "csv":
        writer.writeheader()
        yield buf.getvalue()
    contexts: dict[str, dict[str, Any]] = {}
    # CSV rows take a transfer's record-keeping fields from earlier records, so CSV reads
    # from the start; JSON lines need only the selected records.
    start = flt.since if fmt == "json" and flt.since is not None else None
    async for rec in _iter_records(session, since=start, through=flt.through_seq):
        context = dict(_remember(contexts, rec)) if fmt == "csv" else {}
        if not _selected(rec, flt, senders, organisations):
            continue
        if fmt == "json":
            yield json_line(rec)
            continue
        buf.seek(0)
        buf.truncate()
        writer.writerow(_flatten(rec, context))
        yield buf.getvalue()
