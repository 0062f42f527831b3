"""The audit trail's keys and its signed checkpoints (issue 14).

Two keys are derived from the server key (``SAFEHAVEN_SECRET_KEY``, see bot/vault.py) with
HKDF under labels of their own, so the database, which holds neither, cannot forge them:

- the **MAC key**: each record's ``hash`` is HMAC-SHA256 of its content and the record
  before it. Someone who can rewrite the database cannot recompute the chain.
- the **checkpoint key**, Ed25519: a checkpoint (count, head seq, head MAC, time, where the
  chain begins after pruning, from which record on every record is keyed) is signed and
  written outside the database (store/audit_anchor.py). Deleting the newest records, or
  downgrading records to the old unkeyed scheme, then shows against the latest checkpoint.
  Its public key (``safehaven audit public-key``) lets an auditor check checkpoints and
  exports with no database and no secret.

Nothing here does I/O: signing, checking and the canonical bytes that are signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from bot.vault import Vault

MAC_LABEL = b"safehaven audit-trail record MAC v1"
SIGNING_LABEL = b"safehaven audit-trail checkpoint signing v1"
GENESIS = "0" * 64
CHECKPOINT_FORMAT = "safehaven-audit-checkpoint/1"
EXPORT_SIGNATURE_FORMAT = "safehaven-audit-export-signature/1"


class Scheme(StrEnum):
    """How a record's ``hash`` was made: the old unkeyed SHA-256 (records written before
    migration 0012) or HMAC-SHA256 under the MAC key."""

    SHA256 = "sha256"
    HMAC_SHA256 = "hmac-sha256"


class AuditKeyError(ValueError):
    """A public key, signature or checkpoint that cannot be read."""


def canonical(value: Any) -> str:
    """The one JSON spelling of ``value`` that is hashed and signed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_id_of(public: Ed25519PublicKey) -> str:
    """A short fingerprint naming a key pair (first 16 hex digits of SHA-256 of the raw
    public key); recorded with each keyed record so a rotated key is told apart."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM or from the base64 of its 32 raw bytes."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
            if not isinstance(key, Ed25519PublicKey):
                raise AuditKeyError("the public key is not an Ed25519 key")
            return key
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, TypeError) as exc:
        if isinstance(exc, AuditKeyError):
            raise
        raise AuditKeyError("not an Ed25519 public key (PEM, or base64 of 32 bytes)") from None


class AuditKeys:
    """The MAC key and the checkpoint signing key, both from the server key."""

    def __init__(self, mac_key: bytes, signing_seed: bytes) -> None:
        self._mac_key = mac_key
        self._signing = Ed25519PrivateKey.from_private_bytes(signing_seed)
        self.public_key = self._signing.public_key()
        self.key_id = key_id_of(self.public_key)

    @classmethod
    def from_vault(cls, vault: Vault) -> AuditKeys:
        return cls(vault.derive_key(MAC_LABEL), vault.derive_key(SIGNING_LABEL))

    def __repr__(self) -> str:
        return f"AuditKeys(key_id={self.key_id}, <keys hidden>)"

    def mac(self, body: bytes) -> str:
        return hmac.new(self._mac_key, body, hashlib.sha256).hexdigest()

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self._signing.sign(data)).decode("ascii")

    def public_key_pem(self) -> str:
        return public_key_pem(self.public_key)


def signature_valid(public: Ed25519PublicKey, data: bytes, signature: str) -> bool:
    try:
        public.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Checkpoint:
    """What the trail looked like at ``at``: ``count`` records, the newest ``head_seq`` with
    MAC ``head_mac``; the chain begins after record ``base_seq`` (0, or the last record
    pruned) whose MAC was ``base_mac``; every record from ``keyed_from`` on carries a keyed
    MAC (so none can be downgraded to the unkeyed scheme)."""

    head_seq: int
    head_mac: str
    count: int
    base_seq: int
    base_mac: str
    keyed_from: int
    at: datetime
    key_id: str

    def body(self) -> bytes:
        fields = asdict(self)
        fields["at"] = self.at.astimezone(UTC).isoformat(timespec="microseconds")
        fields["format"] = CHECKPOINT_FORMAT
        return canonical(fields).encode("utf-8")

    def describe(self) -> str:
        return (f"the checkpoint of {self.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC "
                f"({self.count} records, head record {self.head_seq})")


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signature: str

    @classmethod
    def make(cls, checkpoint: Checkpoint, keys: AuditKeys) -> SignedCheckpoint:
        return cls(checkpoint, keys.sign(checkpoint.body()))

    def valid(self, public: Ed25519PublicKey) -> bool:
        return signature_valid(public, self.checkpoint.body(), self.signature)

    def to_json(self) -> dict[str, Any]:
        return {**json.loads(self.checkpoint.body()), "signature": self.signature}

    @classmethod
    def from_json(cls, data: Any) -> SignedCheckpoint:
        """Read one checkpoint as written by :meth:`to_json`; :class:`AuditKeyError` when it
        is not one (the signature is checked by :meth:`valid`, not here)."""
        try:
            if data.get("format") != CHECKPOINT_FORMAT:
                raise AuditKeyError("not a Safe Haven audit checkpoint")
            at = datetime.fromisoformat(data["at"])
            checkpoint = Checkpoint(
                head_seq=int(data["head_seq"]), head_mac=str(data["head_mac"]),
                count=int(data["count"]), base_seq=int(data["base_seq"]),
                base_mac=str(data["base_mac"]), keyed_from=int(data["keyed_from"]),
                at=at if at.tzinfo else at.replace(tzinfo=UTC), key_id=str(data["key_id"]))
            return cls(checkpoint, str(data["signature"]))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, AuditKeyError):
                raise
            raise AuditKeyError("a checkpoint is malformed") from None
