"""Sealing archive passwords at rest with the server key.

A password is stored only until it has been delivered out of band, and only sealed:
AES-256-GCM with a random nonce, the transfer reference as associated data (so a sealed
value copied onto another transfer will not open). The key comes from
``SAFEHAVEN_SECRET_KEY`` (base64url of 32 bytes); in development a key is generated into
``var/secret.key`` with a warning, and production refuses to start without one.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.private import private_dir
from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)
_VERSION = "v1"


class VaultError(Exception):
    """A sealed value could not be opened (wrong key, tampered, or another transfer's)."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def _decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SettingsError(
            "SAFEHAVEN_SECRET_KEY is not valid base64; generate one with "
            "`safehaven generate-key`."
        ) from exc
    if len(key) != 32:
        raise SettingsError(
            f"SAFEHAVEN_SECRET_KEY decodes to {len(key)} bytes; it must be 32 "
            "(generate one with `safehaven generate-key`)."
        )
    return key


class Vault:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self._key = key

    def derive_key(self, label: bytes) -> bytes:
        """A 32-byte key for another purpose, HKDF-SHA256 of the server key with ``label``
        as its info (e.g. the audit trail's MAC key, bot/audit_keys.py): one secret serves
        several uses, and no derived key reveals the server key or another derived key."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(self._key)

    def __repr__(self) -> str:
        return "Vault(<key hidden>)"

    def seal(self, secret: str, *, reference: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode("utf-8"), reference.encode("ascii"))
        return f"{_VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def open(self, sealed: str, *, reference: str) -> str:
        version, _, body = sealed.partition(":")
        if version != _VERSION:
            raise VaultError("unknown sealed-value version")
        # Only the canonical URL-safe alphabet: the lenient decoder would also take "+" and "/"
        # (and skip junk), so two different strings would open as the same sealed value.
        if not _SEALED_BODY.fullmatch(body):
            raise VaultError("sealed value cannot be opened with this key")
        try:
            raw = base64.b64decode(body, altchars=b"-_", validate=True)
            plain = self._aead.decrypt(raw[:12], raw[12:], reference.encode("ascii"))
        except (InvalidTag, binascii.Error, ValueError):
            raise VaultError("sealed value cannot be opened with this key") from None
        return plain.decode("utf-8")


_SEALED_BODY = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def vault_from_settings(settings: Settings) -> Vault:
    if settings.secret_key:
        return Vault(_decode_key(settings.secret_key))
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
    return Vault(_decode_key(path.read_text()))
