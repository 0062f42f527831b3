"""The administrator's commands: ``migrate``, ``generate-key`` and ``audit`` (``verify``,
``export``, ``public-key``, ``checkpoint``). ``audit export`` is the only place the audit
trail is exported; see docs/governance.md for handing it to an auditor."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bot.app.config import Config
from bot.app.process import EXIT_INVALID, out, run_with_services
from bot.audit_evidence import export_statement, sign_statement, verify_export
from bot.audit_keys import (
    AuditKeyError,
    AuditKeys,
    SignedCheckpoint,
    load_public_key,
    public_key_pem,
    raw_public,
    trusted_keys,
)
from bot.private import open_private
from bot.settings import SettingsError
from bot.vault import generate_key, vault_from_settings
from handlers.services import Services
from store import audit
from store.db import migrate


def cmd_migrate(config: Config, args: argparse.Namespace) -> int:
    migrate(config.core.database_url)
    out("database is up to date")
    return 0


def cmd_generate_key(config: Config, args: argparse.Namespace) -> int:
    out(generate_key())
    return 0


def cmd_audit_verify(config: Config, args: argparse.Namespace) -> int:
    """The trail against the signed checkpoints at the anchor; with ``--export``, an export
    file against its signature and a public key alone (:func:`cmd_audit_verify_export`)."""
    if args.export:
        return cmd_audit_verify_export(args)

    async def job(svc: Services) -> int:
        trail = _trail(svc)
        checkpoints = await trail.checkpoints()
        async with svc.db.read() as session:
            result = await audit.verify(session, keys=trail.keys, checkpoints=checkpoints)
        out(result.message())
        out(f"anchor: {trail.anchor.description} ({len(checkpoints)} checkpoints)")
        return 0 if result.ok else EXIT_INVALID

    return run_with_services(config, job)


def cmd_audit_verify_export(args: argparse.Namespace) -> int:
    """Needs no database, no settings and no secret: the file, its ``.sig`` and the key."""
    if not args.public_key:
        raise SettingsError("--export needs --public-key FILE (the key `safehaven audit "
                            "public-key` printed, PEM or base64)")
    try:
        public = load_public_key(Path(args.public_key).read_text(encoding="ascii"))
        data = Path(args.export).read_bytes()
        signature = Path(args.signature or f"{args.export}.sig").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, AuditKeyError) as exc:
        out(f"export NOT verified: {exc}")
        return EXIT_INVALID
    check = verify_export(data, signature, public)
    for note in check.notes:
        out(note)
    if check.ok:
        out(f"export verified: {args.export}")
        return 0
    for problem in check.problems:
        out(f"export NOT verified: {problem}")
    return EXIT_INVALID


def _key_text(public: Ed25519PublicKey, fmt: str) -> str:
    if fmt == "base64":
        return raw_public(public) + "\n"
    return public_key_pem(public)


def cmd_audit_public_key(config: Config, args: argparse.Namespace) -> int:
    """The Ed25519 public key that checks checkpoints and exports, for an auditor; with
    ``--all``, each labelled, the keys of earlier rotations too (those still configured and
    those the anchor's rotation checkpoints link to the current one)."""
    keys = AuditKeys.from_vault(vault_from_settings(config.core))
    if not getattr(args, "all", False):
        sys.stdout.write(_key_text(keys.public_key, args.format))
        return 0

    async def job(svc: Services) -> int:
        found = await _trail(svc).checkpoints()
        trusted = trusted_keys(keys, found)
        out(f"current key {keys.key_id}:")
        sys.stdout.write(_key_text(keys.public_key, args.format))
        for key_id, public in trusted.items():
            if key_id != keys.key_id:
                out(f"previous key {key_id}:")
                sys.stdout.write(_key_text(public, args.format))
        return 0

    return run_with_services(config, job)


def cmd_audit_checkpoint(config: Config, args: argparse.Namespace) -> int:
    """Sign and write a checkpoint now (after checking the records since the latest)."""
    async def job(svc: Services) -> int:
        trail = _trail(svc)
        try:
            checkpoint = await trail.checkpoint(svc.db, now=svc.clock())
        except audit.AuditBroken as exc:
            out(f"checkpoint NOT written: {exc}")
            return EXIT_INVALID
        out(f"checkpoint written to {trail.anchor.description}: {checkpoint.describe()}")
        return 0

    return run_with_services(config, job)


def _trail(svc: Services) -> audit.AuditTrail:
    trail = audit.trail_of(svc.db)
    assert trail is not None  # the composition root attaches one (bot/app/runtime.py)
    return trail


def _parse_time(option: str, text: str, *, end_of_day: bool = False) -> datetime:
    """An ISO-8601 time (UTC unless it says otherwise); a date alone is its midnight, or
    with ``end_of_day`` the next midnight (so ``--until 2026-11-30`` includes that day)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SettingsError(f"{option} {text!r} is not a date; use YYYY-MM-DD") from exc
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    if end_of_day and len(text.strip()) == 10:
        value += timedelta(days=1)
    return value


def _export_filter(args: argparse.Namespace) -> audit.ExportFilter:
    return audit.ExportFilter(
        since=_parse_time("--since", args.since) if args.since else None,
        until=_parse_time("--until", args.until, end_of_day=True) if args.until else None,
        reference=args.reference.strip().upper() if args.reference else None,
        sender=args.sender or None, organisation=args.organisation or None)


def cmd_audit_export(config: Config, args: argparse.Namespace) -> int:
    """To ``--out FILE``: written 0600 with ``FILE.sig`` beside it (0600), relating to a
    checkpoint signed as the export starts, and holding no record after its head. To
    standard output: the same records, unsigned."""
    where = _export_filter(args)

    async def job(svc: Services) -> int:
        if not args.out:
            async with svc.db.read() as session:
                async for chunk in audit.export(session, fmt=args.format, where=where):
                    sys.stdout.write(chunk)
            sys.stderr.write("safehaven: an export to standard output is not signed; use "
                             "--out FILE for a signed one\n")
            return 0
        trail = _trail(svc)
        now = svc.clock()
        try:
            checkpoint = await trail.checkpoint(svc.db, now=now)
            await audit.verify_or_raise(svc.db, trail)  # every record the export may carry
        except audit.AuditBroken as exc:
            out(f"export NOT written: {exc}. Run `safehaven audit verify`; an unsigned "
                "export of the trail as it is can still go to standard output.")
            return EXIT_INVALID
        where_then = replace(where, through_seq=checkpoint.head_seq)
        path = Path(args.out)
        digest, size, chunks, seqs = hashlib.sha256(), 0, 0, []
        with open_private(path, "wb") as sink:
            async with svc.db.read() as session:
                async for chunk in audit.export(session, fmt=args.format, where=where_then):
                    data = chunk.encode("utf-8")
                    digest.update(data)
                    size += len(data)
                    chunks += 1  # one per record (and the CSV header)
                    sink.write(data)
                    if args.format == "json":
                        seqs.append(int(json.loads(chunk)["seq"]))
        statement = export_statement(
            data_sha256=digest.hexdigest(), size=size, file_name=path.name,
            export_format=args.format, filters=where.to_json(),
            records=len(seqs) if args.format == "json" else chunks - 1,
            first_seq=min(seqs, default=None), last_seq=max(seqs, default=None),
            exported_at=now, checkpoint=SignedCheckpoint.make(checkpoint, trail.keys))
        signature = Path(f"{path}.sig")
        with open_private(signature, "w", encoding="utf-8") as sig:
            sig.write(sign_statement(statement, trail.keys))
        out(f"wrote {statement['records']} records to {path} and its signature to {signature}, "
            f"relating to {checkpoint.describe()}")
        return 0

    return run_with_services(config, job)
