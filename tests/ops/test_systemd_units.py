"""The systemd units in deploy/systemd pass ``systemd-analyze verify`` without a single
warning, keep their sandboxing (and ``systemd-analyze security`` rates them OK), and run the
commands that exist.

``verify`` checks that ``ExecStart``'s program exists, so the units are verified under
``--root`` in a folder laid out as an installed host: the units in /etc/systemd/system, the
system's own units beside them, and /opt/safehaven/.venv/bin/safehaven (a stand-in script:
only its existence is checked). The unit files themselves are verified unchanged."""

from __future__ import annotations

import shutil
import subprocess
from configparser import ConfigParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
NAMES = ("safehaven-serve.service", "safehaven-worker.service")
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
EXPOSURE = 2  # highest "overall exposure" allowed (0 best, 10 worst; --threshold counts tenths)


@pytest.fixture(scope="module")
def host_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installed host's files, as ``--root`` for systemd-analyze."""
    if not Path(ANALYZE).exists():
        pytest.skip("systemd-analyze is not installed (scripts/setup installs systemd)")
    if not (SYSTEM_UNITS / "sysinit.target").exists():
        pytest.skip(f"no system units at {SYSTEM_UNITS} to verify against")
    root = tmp_path_factory.mktemp("host")
    program = root / "opt/safehaven/.venv/bin/safehaven"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    installed = root / "etc/systemd/system"
    installed.mkdir(parents=True)
    for name in NAMES:
        shutil.copy(UNITS / name, installed / name)
    return root


def analyze(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([ANALYZE, *args, f"--root={root}"], capture_output=True,
                              text=True, timeout=120, check=False)
    except OSError as exc:
        pytest.skip(f"systemd-analyze cannot run here: {exc}")


def service_section(name: str) -> dict[str, list[str]]:
    """Every ``key=value`` of the unit's [Service] section (a key may repeat)."""
    values: dict[str, list[str]] = {}
    section = ""
    for raw in (UNITS / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_verify_reports_nothing(host_root: Path) -> None:
    done = analyze("verify", *NAMES, root=host_root)
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), \
        done.stdout + done.stderr


def test_verify_would_report_a_broken_unit(host_root: Path) -> None:
    # The check above can fail: a misspelt key and a missing program are reported.
    broken = host_root / "etc/systemd/system/safehaven-broken.service"
    broken.write_text((UNITS / NAMES[0]).read_text().replace(
        "ProtectSystem=strict", "ProtectSytem=strict").replace(
        "/opt/safehaven/.venv/bin/safehaven", "/opt/safehaven/.venv/bin/missing"))
    try:
        done = analyze("verify", broken.name, root=host_root)
    finally:
        broken.unlink()
    output = done.stdout + done.stderr
    assert "Unknown key 'ProtectSytem'" in output and "missing is not executable" in output


@pytest.mark.parametrize("name", NAMES)
def test_sandboxing_is_kept(name: str) -> None:
    service = service_section(name)

    def one(key: str) -> str:
        assert key in service, f"{name}: {key}= is missing"
        return service[key][-1]

    assert one("NoNewPrivileges") == "yes"
    assert one("ProtectSystem") == "strict"
    assert one("ProtectHome") == "yes"
    assert one("PrivateTmp") == "yes"
    assert one("CapabilityBoundingSet") == ""  # no capability at all
    assert one("User") == "safehaven" and one("Group") == "safehaven"
    assert one("ReadWritePaths") == "/var/lib/safehaven"
    assert one("StateDirectory") == "safehaven"
    assert "SAFEHAVEN_VAR_DIR=/var/lib/safehaven" in service["Environment"]
    assert one("Restart") == "on-failure"
    assert one("UMask") == "0077"
    assert one("KillSignal") == "SIGINT"  # both commands stop cleanly on it
    command = one("ExecStart").split()
    assert command[0] == "/opt/safehaven/.venv/bin/safehaven"
    assert command[1:] == [name.removeprefix("safehaven-").removesuffix(".service")]


def test_serve_leaves_the_scheduler_to_the_worker() -> None:
    assert "SAFEHAVEN_SCHEDULER=off" in service_section(NAMES[0])["Environment"]
    assert not any("SAFEHAVEN_SCHEDULER" in v
                   for v in service_section(NAMES[1]).get("Environment", []))


@pytest.mark.parametrize("name", NAMES)
def test_security_rating_is_ok(host_root: Path, name: str) -> None:
    done = analyze("security", "--offline=true", f"--threshold={EXPOSURE * 10}", name,
                   root=host_root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert "Overall exposure level" in last
    assert float(last.split(":")[1].split()[0]) <= EXPOSURE, last


def test_the_environment_file_example_names_known_settings() -> None:
    example = ConfigParser(delimiters=("=",), interpolation=None)
    example.optionxform = str  # type: ignore[assignment,method-assign]
    text = (UNITS / "safehaven.env.example").read_text(encoding="utf-8")
    example.read_string("[env]\n" + text)
    names = set(example["env"])
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unknown = [n for n in names if f"`{n}`" not in readme and n not in readme]
    assert not unknown, f"not documented in README.md: {unknown}"
    assert example["env"]["SAFEHAVEN_ENV"] == "production"
    assert example["env"]["SAFEHAVEN_SECRET_KEY"] == ""  # never a real key in the repo


def test_the_environment_file_names_the_units_data_folder() -> None:
    """An admin command run with the environment file alone (docs/operations.md, "Admin
    commands") uses the data folder the services use."""
    example = ConfigParser(delimiters=("=",), interpolation=None)
    example.optionxform = str  # type: ignore[assignment,method-assign]
    example.read_string("[env]\n" + (UNITS / "safehaven.env.example").read_text("utf-8"))
    folder = example["env"]["SAFEHAVEN_VAR_DIR"]
    for name in NAMES:
        service = service_section(name)
        assert f"SAFEHAVEN_VAR_DIR={folder}" in service["Environment"]
        assert service["ReadWritePaths"][-1] == folder
        assert f"/var/lib/{service['StateDirectory'][-1]}" == folder
