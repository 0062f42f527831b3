"""requirements/lock.txt, which scripts/setup installs with ``--require-hashes``, covers every
dependency in pyproject.toml (runtime, the dev extra, and what their own extras bring in) at
a version its range allows, and pins each with its hashes. A dependency added without
``make lock`` fails here. Checked by running scripts/check_lock.py, as setup does."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
PYPROJECT = ROOT / "pyproject.toml"


def check(pyproject: Path = PYPROJECT, lock: Path = LOCK) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "check_lock.py"),
                           "--pyproject", str(pyproject), "--lock", str(lock)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_lock_covers_every_dependency_of_pyproject() -> None:
    done = check()
    assert done.returncode == 0, done.stderr


def test_every_pin_in_the_lock_carries_a_hash() -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text(encoding="utf-8"))
    pinned = [e for e in entries if re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*==", e)]
    assert len(pinned) > 50
    unhashed = [e.split()[0] for e in pinned if "--hash=sha256:" not in e]
    assert not unhashed
    assert not re.search(r"^\s*-e\b|^[^#\s].*(?:>=|<=|~=)", LOCK.read_text(), re.M)


def test_a_dependency_added_without_relocking_fails(tmp_path: Path) -> None:
    text = PYPROJECT.read_text(encoding="utf-8")
    edited = tmp_path / "pyproject.toml"
    # One new runtime dependency, and a dev one whose range the locked version misses.
    new = text.replace("dependencies = [\n", 'dependencies = [\n    "left-pad-unlocked>=1",\n', 1)
    new, bumped = re.subn(r'"pytest>=[^"]*"', '"pytest>=999"', new, count=1)
    assert bumped == 1 and new != text
    edited.write_text(new, encoding="utf-8")
    done = check(edited)
    assert done.returncode == 1
    assert "left-pad-unlocked>=1 is not in the lock" in done.stderr
    assert "pytest>=999: the lock pins" in done.stderr
    assert "run `make lock`" in done.stderr


def test_what_an_extra_brings_in_must_be_locked_too(tmp_path: Path) -> None:
    # SQLAlchemy[asyncio] needs greenlet: a lock without it does not cover pyproject.toml.
    lock = tmp_path / "lock.txt"
    lock.write_text(re.sub(r"^greenlet==.*?(?=^\S)", "", LOCK.read_text(encoding="utf-8"),
                           flags=re.M | re.S), encoding="utf-8")
    assert "greenlet==" not in lock.read_text()
    done = check(lock=lock)
    assert done.returncode == 1 and "greenlet" in done.stderr, done.stderr


def test_the_build_backend_is_locked_too(tmp_path: Path) -> None:
    # pyproject's [build-system] requires (setuptools) is pinned with hashes in the lock ...
    assert re.search(r"^setuptools==\S+ \\\n(\s+--hash=sha256:\w+ \\?\n)+", LOCK.read_text(),
                     re.M)
    # ... and a lock without it does not cover pyproject.toml.
    lock = tmp_path / "lock.txt"
    lock.write_text(re.sub(r"^setuptools==.*?(?=^\S|\Z)", "", LOCK.read_text(encoding="utf-8"),
                           flags=re.M | re.S), encoding="utf-8")
    assert "setuptools==" not in lock.read_text()
    done = check(lock=lock)
    assert done.returncode == 1 and "setuptools>=68 is not in the lock" in done.stderr, \
        done.stderr


def test_setup_builds_safe_haven_only_with_the_locked_backend() -> None:
    # Every pip install in scripts/setup is the hashed lock or builds Safe Haven without an
    # isolated build environment (which pip would fill with an unpinned setuptools).
    setup = (ROOT / "scripts" / "setup").read_text(encoding="utf-8")
    installs = re.findall(r"^\s*pip_install (.*)$", setup, re.M)
    assert installs[0] == '--require-hashes -r "$lock"'
    assert len(installs) >= 2
    for line in installs[1:]:
        assert "--no-build-isolation" in line.split(), line
