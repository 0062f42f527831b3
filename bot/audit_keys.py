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

Key rotation: keys derived from previous server keys still check what they made
(``AuditKeys.previous``); a rotation checkpoint signed by the new key and the old one names
the old public key and a digest of the records so far, so the trail verifies once the old
key is gone (:func:`standings`; docs/governance.md, "Key rotation"). A retired key is
believed only for what its link covers, never for anything after it.

Nothing here does I/O: signing, checking and the canonical bytes that are signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
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


def raw_public(public: Ed25519PublicKey) -> str:
    """The base64 of the key's 32 raw bytes (how a checkpoint names another key)."""
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)).decode("ascii")


class AuditKeys:
    """The MAC key and the checkpoint signing key, both from the server key; ``previous``:
    the same pair from each previous server key still configured (key rotation), which
    checks what it made and makes nothing new."""

    def __init__(self, mac_key: bytes, signing_seed: bytes,
                 previous: tuple[AuditKeys, ...] = ()) -> None:
        self._mac_key = mac_key
        self._signing = Ed25519PrivateKey.from_private_bytes(signing_seed)
        self.public_key = self._signing.public_key()
        self.key_id = key_id_of(self.public_key)
        self.previous = tuple(p for p in previous if p.key_id != self.key_id)

    @classmethod
    def from_vault(cls, vault: Vault) -> AuditKeys:
        return cls(vault.derive_key(MAC_LABEL), vault.derive_key(SIGNING_LABEL),
                   tuple(cls.from_vault(old) for old in vault.previous))

    def for_key_id(self, key_id: str | None) -> AuditKeys | None:
        """The held pair (current or previous) named ``key_id``; None when not held."""
        return next((k for k in (self, *self.previous) if k.key_id == key_id), None)

    def held_public_keys(self) -> dict[str, Ed25519PublicKey]:
        return {k.key_id: k.public_key for k in (self, *self.previous)}

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
    # Key rotation (all three absent from the signed bytes when unset, so checkpoints
    # written before rotation existed verify as they did): records base_seq+1 ..
    # sealed_through, whatever key made their MACs, hash to sealed_digest
    # (store.audit.segment_digest), checked here with the keys held then, so they still
    # verify once an old key is gone; previous_key is an older signing key this one
    # vouches for (its own signature of the same bytes is SignedCheckpoint.link_signature).
    sealed_through: int = 0
    sealed_digest: str = ""
    previous_key: str = ""

    def body(self) -> bytes:
        fields = asdict(self)
        fields["at"] = self.at.astimezone(UTC).isoformat(timespec="microseconds")
        fields["format"] = CHECKPOINT_FORMAT
        for name in _ROTATION_FIELDS:
            if not fields[name]:
                del fields[name]
        return canonical(fields).encode("utf-8")

    def describe(self) -> str:
        return (f"the checkpoint of {self.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC "
                f"({self.count} records, head record {self.head_seq})")


_ROTATION_FIELDS = ("sealed_through", "sealed_digest", "previous_key")


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint and its signature by the key ``key_id`` names; a link checkpoint (one
    naming a ``previous_key``) carries that key's signature of the same bytes as well, so
    the old key hands over to the new one and the new one vouches for the old."""

    checkpoint: Checkpoint
    signature: str
    link_signature: str = ""

    @classmethod
    def make(cls, checkpoint: Checkpoint, keys: AuditKeys,
             previous: AuditKeys | None = None) -> SignedCheckpoint:
        body = checkpoint.body()
        return cls(checkpoint, keys.sign(body), previous.sign(body) if previous else "")

    def valid(self, public: Ed25519PublicKey) -> bool:
        return signature_valid(public, self.checkpoint.body(), self.signature)

    def link_valid(self) -> bool:
        """Whether the previous key this checkpoint names signed it too."""
        if not self.checkpoint.previous_key:
            return False
        try:
            previous = load_public_key(self.checkpoint.previous_key)
        except AuditKeyError:
            return False
        return signature_valid(previous, self.checkpoint.body(), self.link_signature)

    def valid_under(self, trusted: dict[str, Ed25519PublicKey]) -> bool:
        """Signed by the trusted key its ``key_id`` names (and, naming a previous key, by
        that key too)."""
        public = trusted.get(self.checkpoint.key_id)
        if public is None or not self.valid(public):
            return False
        return not self.checkpoint.previous_key or self.link_valid()

    def to_json(self) -> dict[str, Any]:
        found = {**json.loads(self.checkpoint.body()), "signature": self.signature}
        if self.link_signature:
            found["link_signature"] = self.link_signature
        return found

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
                at=at if at.tzinfo else at.replace(tzinfo=UTC), key_id=str(data["key_id"]),
                sealed_through=int(data.get("sealed_through", 0)),
                sealed_digest=str(data.get("sealed_digest", "")),
                previous_key=str(data.get("previous_key", "")))
            return cls(checkpoint, str(data["signature"]), str(data.get("link_signature", "")))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, AuditKeyError):
                raise
            raise AuditKeyError("a checkpoint is malformed") from None


class Standing(StrEnum):
    """Whether a checkpoint at the anchor is believed, and how far.

    ``HELD``: signed by a key this server holds (current, or previous still configured).
    ``LINKED``: signed by a retired key that a believed link checkpoint names, and naming
    nothing the link does not cover (its head and start point at or before the link's),
    so it is only ever checked against, never a start point, the latest or a coverage.
    ``RETIRED``: signed by such a retired key but naming records past its link: whoever
    signed it held a key retired before then (a leaked key is why one rotates)."""

    HELD = "held"
    LINKED = "linked"
    RETIRED = "retired"


def _within(checkpoint: Checkpoint, link: Checkpoint) -> bool:
    """Whether a retired key's checkpoint names only what its link covers."""
    return (checkpoint.head_seq <= link.head_seq and checkpoint.base_seq <= link.base_seq
            and checkpoint.sealed_through <= link.head_seq)


def standings(keys: AuditKeys | None, found: Sequence[SignedCheckpoint | None]
              ) -> list[Standing | None]:
    """Each checkpoint's :class:`Standing` (None: not validly signed by a trusted key).

    A retired key is trusted only through a believed link checkpoint naming it, back
    through each rotation, and only for what that link vouches for: records up to the
    link's head, from a start point no later than the link's."""
    held = keys.held_public_keys() if keys is not None else {}
    retired: dict[str, tuple[Ed25519PublicKey, Checkpoint]] = {}

    def standing(signed: SignedCheckpoint | None) -> Standing | None:
        if signed is None:
            return None
        checkpoint = signed.checkpoint
        if checkpoint.previous_key and not signed.link_valid():
            return None
        public = held.get(checkpoint.key_id)
        if public is not None:
            return Standing.HELD if signed.valid(public) else None
        if checkpoint.key_id not in retired:
            return None
        public, link = retired[checkpoint.key_id]
        if not signed.valid(public):
            return None
        return Standing.LINKED if _within(checkpoint, link) else Standing.RETIRED

    links = [s for s in found if s is not None and s.checkpoint.previous_key]
    grew = True
    while grew:
        grew = False
        for link in links:
            if standing(link) not in (Standing.HELD, Standing.LINKED):
                continue
            previous = load_public_key(link.checkpoint.previous_key)
            named = key_id_of(previous)
            if named not in held and named not in retired:
                retired[named] = (previous, link.checkpoint)
                grew = True
    return [standing(s) for s in found]


def trusted_keys(keys: AuditKeys | None,
                 found: Sequence[SignedCheckpoint | None]) -> dict[str, Ed25519PublicKey]:
    """The signing keys whose checkpoints are believed (within :func:`standings`' limits):
    those held (current and previous), and every older key a believed link checkpoint
    names, back through each rotation."""
    trusted = keys.held_public_keys() if keys is not None else {}
    for signed, standing in zip(found, standings(keys, found), strict=True):
        if signed is not None and standing is not None and signed.checkpoint.previous_key:
            previous = load_public_key(signed.checkpoint.previous_key)
            trusted.setdefault(key_id_of(previous), previous)
    return trusted
