"""Evidence for an auditor: the detached signature of an audit export, and checking an
export with nothing but the public key (no database, no server secret).

``<export>.sig`` is JSON: a statement (the export's SHA-256 and size, its format, the
filters it was made with, the records it holds, when, and the signed checkpoint it relates
to) and an Ed25519 signature over the statement's canonical bytes, so the signature covers
the export's bytes through their digest. :func:`verify_export` checks that signature, the
digest, the checkpoint's own signature, and for JSON lines the chain inside the export
wherever its records are consecutive (each links to the one before; records with the old
unkeyed scheme are recomputed; a keyed MAC needs the server's key and is not), and that the
checkpoint's head, if exported, is the record it names.

What it cannot prove: that a filtered export holds every record matching its filters. The
records left out are in the trail, which ``safehaven audit verify`` checks on the server.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bot.audit_keys import (
    EXPORT_SIGNATURE_FORMAT,
    AuditKeyError,
    AuditKeys,
    Scheme,
    SignedCheckpoint,
    canonical,
    signature_valid,
)
from bot.messages.words import plural


def export_statement(*, data_sha256: str, size: int, file_name: str, export_format: str,
                     filters: dict[str, Any], records: int, first_seq: int | None,
                     last_seq: int | None, exported_at: datetime,
                     checkpoint: SignedCheckpoint) -> dict[str, Any]:
    return {
        "format": EXPORT_SIGNATURE_FORMAT,
        "file": file_name,
        "sha256": data_sha256,
        "bytes": size,
        "export_format": export_format,
        "filters": filters,
        "records": records,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "exported_at": exported_at.isoformat(),
        "checkpoint": checkpoint.to_json(),
        "key_id": checkpoint.checkpoint.key_id,
    }


def sign_statement(statement: dict[str, Any], keys: AuditKeys) -> str:
    """The ``.sig`` file's text."""
    signed = {"statement": statement,
              "signature": keys.sign(canonical(statement).encode("utf-8"))}
    return json.dumps(signed, indent=2, sort_keys=True) + "\n"


@dataclass
class ExportCheck:
    ok: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _legacy_hash(rec: dict[str, Any]) -> str:
    body = canonical({"seq": rec["seq"], "at": rec["at"], "reference": rec["reference"],
                      "actor": rec["actor"], "action": rec["action"],
                      "details": rec["details"], "prev": rec["prev_hash"]})
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _check_chain(data: bytes, statement: dict[str, Any], signed: SignedCheckpoint,
                 check: ExportCheck) -> None:
    try:
        records = [json.loads(line) for line in data.decode("utf-8").splitlines() if line]
        seqs = [int(r["seq"]) for r in records]
    except (ValueError, KeyError, TypeError):
        check.problems.append("the export is not JSON lines of audit records")
        return
    if len(records) != statement.get("records"):
        check.problems.append(f"the export holds {len(records)} records; its signature says "
                              f"{statement.get('records')}")
    links = runs = 0
    previous: dict[str, Any] | None = None
    for rec in records:
        seq = int(rec["seq"])
        if previous is not None and seq <= int(previous["seq"]):
            check.problems.append(f"record {seq} is out of order")
            return
        if previous is not None and seq == int(previous["seq"]) + 1:
            links += 1
            if rec.get("prev_hash") != previous.get("hash"):
                check.problems.append(f"record {seq} does not link to record {seq - 1}")
                return
        else:
            runs += 1
        if rec.get("scheme", Scheme.SHA256.value) == Scheme.SHA256.value \
                and _legacy_hash(rec) != rec.get("hash"):
            check.problems.append(f"record {seq}'s content does not match its SHA-256 hash")
            return
        previous = rec
    head = signed.checkpoint
    for rec in records:
        if int(rec["seq"]) == head.head_seq and rec.get("hash") != head.head_mac:
            check.problems.append(f"record {head.head_seq} is not the head its checkpoint "
                                  "names")
            return
    if seqs:
        check.notes.append(f"{len(records)} records ({seqs[0]} to {seqs[-1]}) in "
                           f"{plural(runs, 'consecutive run')}; {links} links checked")


def verify_export(data: bytes, signature_text: str, public: Ed25519PublicKey) -> ExportCheck:
    """Check an export against its ``.sig`` with the public key alone."""
    check = ExportCheck(ok=False)
    try:
        signed_doc = json.loads(signature_text)
        statement = signed_doc["statement"]
        signature = str(signed_doc["signature"])
        if statement.get("format") != EXPORT_SIGNATURE_FORMAT:
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        check.problems.append("the signature file is not a Safe Haven export signature")
        return check
    if not signature_valid(public, canonical(statement).encode("utf-8"), signature):
        check.problems.append("the signature does not match this public key (the export's "
                              "statement was altered, or another key signed it)")
        return check
    if hashlib.sha256(data).hexdigest() != statement.get("sha256"):
        check.problems.append("the export's bytes are not the bytes that were signed "
                              "(altered, cut short or added to)")
        return check
    try:
        signed = SignedCheckpoint.from_json(statement.get("checkpoint"))
    except AuditKeyError:
        check.problems.append("the checkpoint in the signature cannot be read")
        return check
    if not signed.valid(public):
        check.problems.append("the checkpoint in the signature is not validly signed")
        return check
    check.notes.append(f"signed export of {statement.get('records')} records, relating to "
                       f"{signed.checkpoint.describe()}")
    if statement.get("export_format") == "json":
        _check_chain(data, statement, signed, check)
    else:
        check.notes.append("CSV export: the signature covers its bytes; only a JSON export "
                           "carries the chain")
    filters = {k: v for k, v in (statement.get("filters") or {}).items() if v}
    if filters:
        check.notes.append(f"filtered by {canonical(filters)}: it cannot show that no "
                           "matching record was left out")
    check.ok = not check.problems
    return check
