"""Settings explain themselves; the vault seals passwords bound to their transfer."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings
from bot.vault import Vault, VaultError, _decode_key, generate_key, vault_from_settings


@pytest.mark.parametrize(("env", "named"), [
    ({"SAFEHAVEN_ENV": "staging"}, "SAFEHAVEN_ENV"),
    ({"SAFEHAVEN_PORT": "http"}, "SAFEHAVEN_PORT"),
    ({"SAFEHAVEN_PORT": "70000"}, "SAFEHAVEN_PORT"),
    ({"SAFEHAVEN_DEFAULT_REGION": "XX"}, "SAFEHAVEN_DEFAULT_REGION"),
    ({"SAFEHAVEN_ENV": "production"}, "SAFEHAVEN_SECRET_KEY"),
    ({"SAFEHAVEN_SCHEDULER_INTERVAL": "-1"}, "SAFEHAVEN_SCHEDULER_INTERVAL"),
    ({"SAFEHAVEN_PACKAGING_GRACE_SECONDS": "0"}, "SAFEHAVEN_PACKAGING_GRACE_SECONDS"),
    ({"SAFEHAVEN_PACKAGING_GRACE_SECONDS": "soon"}, "SAFEHAVEN_PACKAGING_GRACE_SECONDS"),
])
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


def test_defaults(tmp_path: Path) -> None:
    s = load_settings({"SAFEHAVEN_VAR_DIR": str(tmp_path)})
    assert s.port == 3978 and s.host == "127.0.0.1" and not s.is_production
    assert s.database_url.startswith("sqlite+aiosqlite:///") and "safehaven.db" in s.database_url
    assert s.packaging_grace_seconds == 600  # ten minutes before a packaging is taken over


def test_a_packager_renews_its_hold_well_within_the_grace(tmp_path: Path) -> None:
    from handlers.transfers import packaging_heartbeat

    def beat(grace: str) -> float:
        return packaging_heartbeat(load_settings({"SAFEHAVEN_VAR_DIR": str(tmp_path),
                                                  "SAFEHAVEN_PACKAGING_GRACE_SECONDS": grace}))
    assert beat("600") == 60  # every minute, as before the setting
    assert beat("2") == 0.5  # a quarter of a short grace


def test_seal_is_bound_to_reference_and_key() -> None:
    vault = Vault(_decode_key(generate_key()))
    sealed = vault.seal("Harbor-Velvet-482", reference="SH-AAAA-22")
    assert "Harbor" not in sealed
    assert vault.open(sealed, reference="SH-AAAA-22") == "Harbor-Velvet-482"
    with pytest.raises(VaultError):
        vault.open(sealed, reference="SH-BBBB-33")
    with pytest.raises(VaultError):
        Vault(_decode_key(generate_key())).open(sealed, reference="SH-AAAA-22")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(VaultError):
        vault.open(tampered, reference="SH-AAAA-22")
    assert "Velvet" not in repr(vault)


def test_only_the_canonical_encoding_of_a_seal_opens() -> None:
    """The lenient base64 decoder reads "+" as "-" and "/" as "_" and skips junk: such a
    string is not the sealed value, and is refused (found by the hostile-input fuzzing)."""
    vault = Vault(_decode_key(generate_key()))
    sealed = vault.seal("Harbor-Velvet-482", reference="SH-AAAA-22")
    prefix, _, body = sealed.rpartition(":")  # "v2:<key id>", the body
    for variant in (body.replace("-", "+").replace("_", "/"), body[:8] + "\n" + body[8:],
                    body[:8] + "." + body[8:], body + "==="):
        if variant == body:
            continue
        for version in (prefix, "v1"):  # and as a value sealed before key ids
            with pytest.raises(VaultError):
                vault.open(f"{version}:{variant}", reference="SH-AAAA-22")


def test_development_key_is_generated_privately(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings({"SAFEHAVEN_VAR_DIR": str(tmp_path)})
    v1 = vault_from_settings(settings)
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "SAFEHAVEN_SECRET_KEY" in caplog.text
    sealed = v1.seal("x", reference="SH-AAAA-22")
    assert vault_from_settings(settings).open(sealed, reference="SH-AAAA-22") == "x"


def test_bad_key_is_explained() -> None:
    with pytest.raises(SettingsError, match="32"):
        _decode_key("c2hvcnQ")
