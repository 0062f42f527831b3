"""Sealing archive passwords at rest with the server key.

A password is stored only until it has been delivered out of band, and only sealed:
AES-256-GCM with a random nonce, the transfer reference as associated data (so a sealed
value copied onto another transfer will not open). The key comes from
``SAFEHAVEN_SECRET_KEY`` (base64url of 32 bytes); in development a key is generated into
``var/secret.key`` with a warning, and production refuses to start without one.

Key rotation: ``SAFEHAVEN_PREVIOUS_SECRET_KEYS`` (comma-separated) and
``SAFEHAVEN_PREVIOUS_SECRET_KEYS_FILE`` (one a line) name keys that still open what they
sealed, never seal anything new. A sealed value says which key sealed it
(``v2:<key id>:<body>``, the key id a fingerprint derived from the key with HKDF, which
reveals nothing about it), so it is opened by that key, not by trying each.
``safehaven rotate-key`` re-seals what older keys sealed (bot/app/rotation.py).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.private import private_dir
from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)
_VERSION = "v2"
_LEGACY_VERSION = "v1"  # no key id: sealed before key rotation existed
_KEY_ID_LABEL = b"safehaven server-key id v1"
KEY_ID_LENGTH = 16


class VaultError(Exception):
    """A sealed value could not be opened (wrong key, tampered, or another transfer's)."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def _decode_key(text: str, *, name: str = "SAFEHAVEN_SECRET_KEY") -> bytes:
    """The 32 bytes of a key; the error names ``name`` (where it was set), never the key."""
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SettingsError(
            f"{name} is not valid base64; generate one with `safehaven generate-key`."
        ) from exc
    if len(key) != 32:
        raise SettingsError(
            f"{name} decodes to {len(key)} bytes; it must be 32 "
            "(generate one with `safehaven generate-key`)."
        )
    return key


def key_id(key: bytes) -> str:
    """The public name of a server key: 16 hex digits of HKDF-SHA256 of the key under a
    label of its own (one-way: it tells keys apart and reveals nothing of them)."""
    derived = HKDF(algorithm=hashes.SHA256(), length=8, salt=None,
                   info=_KEY_ID_LABEL).derive(key)
    return derived.hex()


def sealed_key_id(sealed: str) -> str | None:
    """The id of the key that sealed ``sealed``; None for a value sealed before values
    carried one (``v1``) or for something that is not a sealed value."""
    version, _, rest = sealed.partition(":")
    if version != _VERSION:
        return None
    kid, sep, _ = rest.partition(":")
    return kid if sep and len(kid) == KEY_ID_LENGTH else None


class Vault:
    """Seals with the current server key; opens with it or with a previous key, the one
    the sealed value names."""

    def __init__(self, key: bytes, previous: Sequence[bytes] = ()) -> None:
        self._aead = AESGCM(key)
        self._key = key
        self.key_id = key_id(key)
        self._previous = tuple(k for k in dict.fromkeys(previous) if k != key)
        self._by_id = {self.key_id: self._aead,
                       **{key_id(k): AESGCM(k) for k in self._previous}}

    @property
    def previous(self) -> tuple[Vault, ...]:
        """One vault per previous key (each sealing with that key), for what is derived
        from a key (the audit trail's keys of earlier rotations)."""
        return tuple(Vault(k) for k in self._previous)

    @property
    def previous_ids(self) -> tuple[str, ...]:
        return tuple(key_id(k) for k in self._previous)

    def without_previous(self) -> Vault:
        return Vault(self._key)

    def holds(self, sealed: str) -> bool:
        """Whether the key ``sealed`` names is configured here (a value sealed before key
        ids: maybe). False means another process holds a key this one was not given, e.g.
        a replica not yet restarted after a key rotation."""
        kid = sealed_key_id(sealed)
        return kid is None or kid in self._by_id

    def is_current(self, sealed: str) -> bool:
        """Whether ``sealed`` was sealed by the current key (so re-sealing it changes
        nothing)."""
        return sealed_key_id(sealed) == self.key_id

    def derive_key(self, label: bytes) -> bytes:
        """A 32-byte key for another purpose, HKDF-SHA256 of the server key with ``label``
        as its info (e.g. the audit trail's MAC key, bot/audit_keys.py): one secret serves
        several uses, and no derived key reveals the server key or another derived key."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(self._key)

    def __repr__(self) -> str:
        return f"Vault(key_id={self.key_id}, previous={len(self._previous)}, <keys hidden>)"

    def seal(self, secret: str, *, reference: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode("utf-8"), reference.encode("ascii"))
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        return f"{_VERSION}:{self.key_id}:{body}"

    def open(self, sealed: str, *, reference: str) -> str:
        version, _, rest = sealed.partition(":")
        if version == _VERSION:
            kid, _, body = rest.partition(":")
            aead = self._by_id.get(kid)
            if aead is None:
                raise VaultError(f"sealed under key {kid[:KEY_ID_LENGTH]!r}, which is not "
                                 "configured (neither SAFEHAVEN_SECRET_KEY nor one of "
                                 "SAFEHAVEN_PREVIOUS_SECRET_KEYS)")
            candidates = [aead]
        elif version == _LEGACY_VERSION:
            body, candidates = rest, list(self._by_id.values())  # no key id: each key
        else:
            raise VaultError("unknown sealed-value version")
        # Only the canonical URL-safe alphabet: the lenient decoder would also take "+" and "/"
        # (and skip junk), so two different strings would open as the same sealed value.
        if not _SEALED_BODY.fullmatch(body):
            raise VaultError("sealed value cannot be opened with this key")
        try:
            raw = base64.b64decode(body, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise VaultError("sealed value cannot be opened with this key") from None
        for candidate in candidates:
            try:
                plain = candidate.decrypt(raw[:12], raw[12:], reference.encode("ascii"))
            except (InvalidTag, ValueError):
                continue
            return plain.decode("utf-8")
        raise VaultError("sealed value cannot be opened with this key")

    def reseal(self, sealed: str, *, reference: str) -> str | None:
        """``sealed`` sealed again under the current key; None when it already is.
        :class:`VaultError` when no configured key opens it."""
        if self.is_current(sealed):
            return None
        return self.seal(self.open(sealed, reference=reference), reference=reference)


_SEALED_BODY = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def _previous_keys(settings: Settings) -> list[bytes]:
    return [_decode_key(text, name=f"SAFEHAVEN_PREVIOUS_SECRET_KEYS (key {n})")
            for n, text in enumerate(settings.previous_secret_keys, start=1)]


def vault_from_settings(settings: Settings) -> Vault:
    previous = _previous_keys(settings)
    if settings.secret_key:
        return Vault(_decode_key(settings.secret_key), previous)
    if settings.is_production:
        raise SettingsError("SAFEHAVEN_SECRET_KEY must be set in production.")
    path: Path = settings.var_dir / "secret.key"
    if not path.exists():
        private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(generate_key())
        log.warning(
            "No SAFEHAVEN_SECRET_KEY set: generated a development key in %s. Set "
            "SAFEHAVEN_SECRET_KEY in production; passwords sealed with this key can only be "
            "opened with it.", path)
    return Vault(_decode_key(path.read_text()), previous)
