"""The data folder does not depend on the folder a command is run from, a new one is
announced once, `safehaven where` says where everything is, and files written for the user
are 0600 (issue 15). The commands run as real processes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import load_settings
from bot.vault import generate_key

CREATED = "Created a new Safe Haven data folder at"


def run(env: dict[str, str], cwd: Path, *args: str, umask: int | None = None
        ) -> subprocess.CompletedProcess[str]:
    """``safehaven ARGS`` started in ``cwd`` (optionally under a loose umask first)."""
    def loosen() -> None:
        if umask is not None:
            os.umask(umask)
    return subprocess.run([sys.executable, "-m", "bot.app.cli", *args], env=env, cwd=cwd,
                          text=True, capture_output=True, timeout=120, check=False,
                          preexec_fn=loosen)


@pytest.fixture
def home_env(tmp_path: Path) -> dict[str, str]:
    """A user with a home of their own and no SAFEHAVEN_VAR_DIR: the default applies."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SAFEHAVEN_") and k != "XDG_DATA_HOME"}
    env.update(HOME=str(tmp_path / "home"), SAFEHAVEN_LOG_LEVEL="WARNING")
    (tmp_path / "home").mkdir()
    return env


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_default_folder_is_the_same_from_any_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"HOME": str(tmp_path / "home")}
    seen = set()
    for here in (tmp_path / "a", tmp_path / "b" / "c"):
        here.mkdir(parents=True)
        monkeypatch.chdir(here)
        settings = load_settings(env)
        seen.add((settings.var_dir, settings.database_url, settings.object_store_url))
    assert seen == {(tmp_path / "home" / ".local" / "share" / "safehaven",
                     "sqlite+aiosqlite:///"
                     f"{tmp_path / 'home' / '.local' / 'share' / 'safehaven' / 'safehaven.db'}",
                     (tmp_path / "home" / ".local" / "share" / "safehaven" / "objects").as_uri())}
    xdg = load_settings({"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "x")})
    assert xdg.var_dir == tmp_path / "x" / "safehaven"
    relative_xdg = load_settings({"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": "x"})
    assert relative_xdg.var_dir == tmp_path / "home" / ".local" / "share" / "safehaven"


def test_a_relative_var_dir_is_made_absolute_once_at_start_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"SAFEHAVEN_VAR_DIR": "data/var", "HOME": str(tmp_path / "h")})
    assert settings.var_dir == tmp_path / "data" / "var"
    monkeypatch.chdir(tmp_path / "..")  # later changes of folder change nothing
    assert settings.var_dir.is_absolute()
    assert settings.database_url.endswith(f"{tmp_path / 'data' / 'var' / 'safehaven.db'}")


def test_commands_from_two_folders_share_one_data_folder_announced_once(
        tmp_path: Path, home_env: dict[str, str]) -> None:
    first, second = tmp_path / "desk", tmp_path / "elsewhere" / "deeper"
    first.mkdir()
    second.mkdir(parents=True)
    data = tmp_path / "home" / ".local" / "share" / "safehaven"

    made = run(home_env, first, "migrate")
    assert made.returncode == 0, made.stderr
    assert made.stderr.count(CREATED) == 1 and str(data) in made.stderr
    again = run(home_env, second, "agreements")
    assert again.returncode == 0, again.stderr
    assert CREATED not in again.stderr
    assert not (first / "var").exists() and not (second / "var").exists()
    assert list(first.iterdir()) == [] and list(second.iterdir()) == []
    assert (data / "safehaven.db").is_file() and mode(data) == 0o700

    where = run(home_env, second, "where")
    assert where.returncode == 0, where.stderr
    assert f"Data folder:  {data}\n" in where.stdout
    assert f"sqlite+aiosqlite:///{data / 'safehaven.db'}" in where.stdout
    assert (data / "objects").as_uri() in where.stdout
    assert "built-in policy" in where.stdout


def test_where_creates_nothing_and_shows_no_password(
        tmp_path: Path, home_env: dict[str, str]) -> None:
    home_env.update(SAFEHAVEN_VAR_DIR="relative/var",
                    SAFEHAVEN_DATABASE_URL="postgresql+asyncpg://bot:s3cr3t-Pw@db.local/sh",
                    SAFEHAVEN_OBJECT_STORE="s3://key:hush@bucket.example/prefix?sig=tok",
                    SAFEHAVEN_POLICY=str(tmp_path / "policy.toml"))
    where = run(home_env, tmp_path, "where")
    assert where.returncode == 0, where.stderr
    assert f"Data folder:  {tmp_path / 'relative' / 'var'}\n" in where.stdout
    assert "postgresql+asyncpg://bot:***@db.local/sh" in where.stdout
    assert "s3://bucket.example/prefix\n" in where.stdout
    assert f"Policy:       {tmp_path / 'policy.toml'}\n" in where.stdout
    for secret in ("s3cr3t-Pw", "hush", "tok"):
        assert secret not in where.stdout + where.stderr
    assert "does not exist yet" in where.stdout
    assert not (tmp_path / "relative").exists()


def test_files_written_for_the_user_are_0600_under_a_loose_umask(
        tmp_path: Path, home_env: dict[str, str]) -> None:
    """`audit export --out` (and its signature) and `teams-package --out`; `share --out` is
    covered by tests/test_file_modes.py."""
    home_env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"),
                    SAFEHAVEN_SECRET_KEY=generate_key())
    out = tmp_path / "for-me"
    out.mkdir(mode=0o755)
    assert run(home_env, tmp_path, "migrate", umask=0o022).returncode == 0
    export = run(home_env, tmp_path, "audit", "export", "--out", str(out / "audit.csv"),
                 umask=0o022)
    assert export.returncode == 0, export.stderr
    package = run(home_env, tmp_path, "teams-package", "--out", str(out / "app.zip"),
                  "--app-id", "00000000-0000-0000-0000-000000000001",
                  "--website-url", "https://example.org", umask=0o022)
    assert package.returncode == 0, package.stderr
    written = {p.name: mode(p) for p in out.iterdir()}
    assert written == {"audit.csv": 0o600, "audit.csv.sig": 0o600, "app.zip": 0o600}
