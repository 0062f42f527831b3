"""``safehaven policy check FILE`` through the real CLI process: the shipped and example
policies pass with a summary per classification; broken ones list every error, each naming
its key, and exit 1. What ``serve`` refuses is unchanged: the same broken file stops it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "bot" / "policies" / "default.toml"
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEHAVEN_")}
    env["SAFEHAVEN_VAR_DIR"] = str(tmp_path / "var")
    return subprocess.run([sys.executable, "-m", "bot.app.cli", *args], env=env, text=True,
                          capture_output=True, timeout=120, cwd=ROOT, check=False)


def broken(tmp_path: Path, replacements: dict[str, str], extra: str = "") -> Path:
    """The default policy with each ``old -> new`` text replaced (each must occur)."""
    text = DEFAULT.read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "policy.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def test_the_default_policy_passes_with_a_summary_per_classification(tmp_path: Path) -> None:
    result = run(tmp_path, "policy", "check", str(DEFAULT))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "OK. Policy of Example County Council" in out
    for name in ("PUBLIC", "CONTROLLED", "RESTRICTED"):
        assert f"\n{name}: " in out
    restricted = out.split("\nRESTRICTED: ")[1]
    assert "always: a listed approver authorises every share" in restricted
    assert "phone call at an agreed time, SMS once receipt is confirmed" in restricted
    assert "expire after 48 hours; 1 download" in restricted
    assert "1024 MB per transfer" in restricted
    controlled = out.split("\nCONTROLLED: ")[1].split("\nRESTRICTED: ")[0]
    assert "only when no live agreement covers" in controlled
    assert "always when the share carries special category data" in controlled
    assert "NHS health and care partners (nhs.net; review by 2027-11-30)" in controlled
    assert "need an approver at this level: Health or medical" in controlled
    assert "Password calls: 09:00-17:00 on Mon, Tue, Wed, Thu, Fri (Europe/London)" in out


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_policy_passes(tmp_path: Path, example: Path) -> None:
    result = run(tmp_path, "policy", "check", str(example))
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": OK. Policy of " in result.stdout


def test_every_error_is_listed_with_its_key(tmp_path: Path) -> None:
    policy = broken(tmp_path, {
        'timezone = "Europe/London"': 'timezone = "Mars/Olympus"',
        "max_file_mb = 2048": "max_file_mb = 0",
        'days = ["mon", "tue", "wed", "thu", "fri"]': 'days = ["mon", "funday"]',
        'default_delivery = "portal"': 'default_delivery = "pigeon"',
        "download_limit = 1\n": "download_limit = -1\n",
        "review_by = 2027-11-30": 'review_by = "2027-11-30"',
        'key = "hr"': 'key = "Human Resources"',
    }, extra='\n[surprise]\nkey = 1\n')
    result = run(tmp_path, "policy", "check", str(policy))
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    expected = [
        "`surprise`: unknown key",
        "`organisation.timezone`: 'Mars/Olympus' is not a known time zone",
        "`intake.max_file_mb`: must be greater than 0",
        "`password.call_window.days`: 'funday' is not one of",
        "`classification[2].default_delivery`: 'pigeon' is not in delivery_methods",
        "`classification[2].download_limit`: must be greater than 0",
        "`agreement[0].review_by`: must be a TOML date without quotes",
        "`information_category[5].key`: 'Human Resources' must be lower-case",
    ]
    for error in expected:
        assert error in out, out
    assert "8 errors found" in out
    # Each broken key once: nothing reported again by what depends on it.
    assert out.count("policy key `") == len(expected), out


def test_serve_refuses_the_same_file_naming_the_first_error(tmp_path: Path) -> None:
    policy = broken(tmp_path, {"max_file_mb = 2048": "max_file_mb = 0",
                               "download_limit = 1\n": "download_limit = -1\n"})
    checked = run(tmp_path, "policy", "check", str(policy))
    assert checked.returncode == 1
    env_run = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "where"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("SAFEHAVEN_")},
             "SAFEHAVEN_VAR_DIR": str(tmp_path / "var"), "SAFEHAVEN_POLICY": str(policy)},
        text=True, capture_output=True, timeout=120, cwd=ROOT, check=False)
    assert env_run.returncode == 0  # `where` reads no policy
    status = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "status", "SH-ZZZZ-99"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("SAFEHAVEN_")},
             "SAFEHAVEN_VAR_DIR": str(tmp_path / "var"), "SAFEHAVEN_POLICY": str(policy)},
        text=True, capture_output=True, timeout=120, cwd=ROOT, check=False)
    assert status.returncode == 2, status.stdout + status.stderr
    first = checked.stdout.splitlines()[1].split(". ", 1)[1]
    assert f"safehaven: {first}" in status.stderr


@pytest.mark.parametrize(("text", "error"), [
    ("[organisation\nname = 1\n", "is not valid TOML"),
    ("", "policy key `organisation`: missing or not a table"),
])
def test_a_file_that_is_not_a_policy_gets_clear_errors(tmp_path: Path, text: str,
                                                         error: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    result = run(tmp_path, "policy", "check", str(path))
    assert result.returncode == 1
    assert error in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_missing_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    result = run(tmp_path, "policy", "check", str(tmp_path / "nope.toml"))
    assert result.returncode == 1
    assert "cannot be read" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_file_that_is_not_utf8_is_an_error_naming_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b'x = "\xff\xfe"\n')
    error = f"policy file {path} is not UTF-8 text: byte 5 (0xff) cannot be read"
    checked = run(tmp_path, "policy", "check", str(path))
    assert checked.returncode == 1 and error in checked.stdout, checked.stdout + checked.stderr
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SAFEHAVEN_")},
           "SAFEHAVEN_VAR_DIR": str(tmp_path / "var"), "SAFEHAVEN_POLICY": str(path),
           "SAFEHAVEN_PORT": "0"}
    for command in (["doctor"], ["serve"]):  # serve refuses to start: it does not listen
        done = subprocess.run([sys.executable, "-m", "bot.app.cli", *command], env=env,
                              text=True, capture_output=True, timeout=120, cwd=ROOT,
                              check=False)
        assert done.returncode in (1, 2) and error in done.stdout + done.stderr, command
        assert "Traceback" not in done.stdout + done.stderr, command
