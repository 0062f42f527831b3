"""The vault across key rotation: a sealed value names its key (an HKDF fingerprint, not the
key) and opens with that key whether current or previous; a value sealed before values had
key ids still opens; a value under a key not configured says so without naming any key
material; re-sealing is idempotent; an envelope's header is re-sealed with its chunks
untouched; previous keys come from the environment or a file, and a malformed one is
named by position, never quoted."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.envelope import decrypt_stream, encrypt_stream, header_key_id, header_size, reseal_header
from bot.settings import SettingsError, load_settings
from bot.vault import Vault, VaultError, _decode_key, generate_key, key_id, sealed_key_id
from bot.vault import vault_from_settings as from_settings


async def _feed(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 10_000):
        yield data[start:start + 10_000]


async def seal(data: bytes, vault: Vault, *, context: str) -> bytes:
    return b"".join([c async for c in encrypt_stream(_feed(data), vault, context=context)])


async def collect(envelope: bytes, vault: Vault, *, context: str) -> bytes:
    return b"".join([c async for c in decrypt_stream(_feed(envelope), vault, context=context)])


def legacy_seal(key: bytes, secret: str, reference: str) -> str:
    """What the vault wrote before sealed values named their key."""
    nonce = secrets.token_bytes(12)
    body = AESGCM(key).encrypt(nonce, secret.encode(), reference.encode())
    return "v1:" + base64.urlsafe_b64encode(nonce + body).decode()


def test_sealed_values_name_their_key_and_open_with_a_previous_key() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    sealed = Vault(old).seal("Correct-Horse-7", reference="SH-AAAA-22")
    assert sealed_key_id(sealed) == key_id(old) != key_id(new)
    assert key_id(old) not in base64.urlsafe_b64encode(old).decode()
    rotated = Vault(new, [old])
    assert rotated.open(sealed, reference="SH-AAAA-22") == "Correct-Horse-7"
    assert not rotated.is_current(sealed)
    again = rotated.reseal(sealed, reference="SH-AAAA-22")
    assert again is not None and rotated.is_current(again)
    assert rotated.reseal(again, reference="SH-AAAA-22") is None  # idempotent
    assert Vault(new).open(again, reference="SH-AAAA-22") == "Correct-Horse-7"
    with pytest.raises(VaultError, match="not configured") as caught:
        Vault(new).open(sealed, reference="SH-AAAA-22")
    assert base64.urlsafe_b64encode(old).decode()[:8] not in str(caught.value)
    with pytest.raises(VaultError):  # still bound to its transfer
        rotated.open(sealed, reference="SH-BBBB-33")
    assert repr(rotated) == f"Vault(key_id={key_id(new)}, previous=1, <keys hidden>)"


def test_values_sealed_before_key_ids_open_with_any_configured_key() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    legacy = legacy_seal(old, "Battery-Staple-9", "SH-AAAA-22")
    assert sealed_key_id(legacy) is None
    rotated = Vault(new, [old])
    assert rotated.open(legacy, reference="SH-AAAA-22") == "Battery-Staple-9"
    resealed = rotated.reseal(legacy, reference="SH-AAAA-22")
    assert resealed is not None and sealed_key_id(resealed) == key_id(new)
    with pytest.raises(VaultError):
        Vault(new).open(legacy, reference="SH-AAAA-22")


async def test_an_envelope_header_is_resealed_and_its_chunks_kept() -> None:
    old_key, new = secrets.token_bytes(32), secrets.token_bytes(32)
    old = Vault(old_key)
    data = secrets.token_bytes(200_000)
    envelope = await seal(data, old, context="uploads/SH-AAAA-22/1")
    end = header_size(envelope)
    assert end is not None and header_key_id(envelope[:end]) == old.key_id
    rotated = Vault(new, [old_key])
    header = reseal_header(envelope[:end], rotated, context="uploads/SH-AAAA-22/1")
    assert header is not None and header_key_id(header) == key_id(new)
    moved = header + envelope[end:]
    assert len(moved) == len(envelope) and moved[end:] == envelope[end:]
    assert await collect(moved, Vault(new), context="uploads/SH-AAAA-22/1") == data
    assert reseal_header(header, rotated, context="uploads/SH-AAAA-22/1") is None


def test_previous_keys_from_the_environment_and_a_file(tmp_path: Path) -> None:
    current, first, second = generate_key(), generate_key(), generate_key()
    keys = tmp_path / "previous.keys"
    keys.write_text(f"# retired keys\n\n{second}\n{first}\n")
    settings = load_settings({"SAFEHAVEN_VAR_DIR": str(tmp_path), "SAFEHAVEN_SECRET_KEY": current,
                              "SAFEHAVEN_PREVIOUS_SECRET_KEYS": f" {first} ,",
                              "SAFEHAVEN_PREVIOUS_SECRET_KEYS_FILE": str(keys)})
    assert settings.previous_secret_keys == (first, second)
    vault = from_settings(settings)
    assert vault.key_id == key_id(_decode_key(current))
    assert set(vault.previous_ids) == {key_id(_decode_key(first)), key_id(_decode_key(second))}

    bad = load_settings({"SAFEHAVEN_VAR_DIR": str(tmp_path), "SAFEHAVEN_SECRET_KEY": current,
                         "SAFEHAVEN_PREVIOUS_SECRET_KEYS": f"{first},{second[:30]}"})
    with pytest.raises(SettingsError, match=r"SAFEHAVEN_PREVIOUS_SECRET_KEYS \(key 2\)") as e:
        from_settings(bad)
    assert second[:30] not in str(e.value)
    with pytest.raises(SettingsError, match="SAFEHAVEN_PREVIOUS_SECRET_KEYS_FILE"):
        load_settings({"SAFEHAVEN_VAR_DIR": str(tmp_path),
                       "SAFEHAVEN_PREVIOUS_SECRET_KEYS_FILE": str(tmp_path / "missing")})
