"""Does requirements/lock.txt still cover pyproject.toml? Exit 0 if every requirement (the
runtime ones, the dev extra's and the build backend's, ``[build-system] requires``) is pinned
there at a version its range allows, and so is every requirement its own extras bring in
(``SQLAlchemy[asyncio]`` brings greenlet); else
name each one missing or out of range, say to run ``make lock``, and exit 1.

Run by ``scripts/lock`` and ``scripts/setup``, and by the test suite
(``tests/test_lock.py``), so a dependency added without re-locking fails the suite.
``--pyproject`` and ``--lock`` name other files (the test uses them).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("dev",)  # the optional-dependency groups the lock includes
# The platform the lock is resolved for (scripts/lock): Python 3.11, Linux, x86_64.
TARGET = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
          "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
          "implementation_name": "cpython", "platform_python_implementation": "CPython"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.M)


def wanted(pyproject: Path) -> list[Requirement]:
    """The requirements the lock must cover, for the target platform."""
    document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = document["project"]
    # The build backend too: scripts/setup installs it from the lock and builds Safe Haven
    # with --no-build-isolation, so pip never fetches an unpinned setuptools.
    texts = list(document.get("build-system", {}).get("requires", []))
    texts += project.get("dependencies", [])
    for extra in EXTRAS:
        texts += project.get("optional-dependencies", {}).get(extra, [])
    return [r for r in map(Requirement, texts) if applies(r, "")]


def applies(req: Requirement, extra: str) -> bool:
    return req.marker is None or req.marker.evaluate({**TARGET, "extra": extra})


def extras_requirements(req: Requirement) -> list[Requirement]:
    """What ``req``'s extras bring in, read from the installed distribution's metadata
    (nothing when it is not installed: the resolver still covered it)."""
    if not req.extras:
        return []
    try:
        declared = metadata.requires(req.name) or []
    except metadata.PackageNotFoundError:
        return []
    found = []
    for text in declared:
        sub = Requirement(text)
        if sub.marker is not None and "extra" in str(sub.marker) \
                and any(applies(sub, extra) for extra in req.extras):
            found.append(sub)
    return found


def pins(lock: Path) -> dict[str, str]:
    """Locked versions by canonical name."""
    return {canonicalize_name(name): version
            for name, version in PIN.findall(lock.read_text(encoding="utf-8"))}


def problems(pyproject: Path, lock: Path) -> list[str]:
    if not lock.exists():
        return [f"{lock.name} does not exist"]
    locked = pins(lock)
    found: list[str] = []
    for req in wanted(pyproject):
        for need in (req, *extras_requirements(req)):
            name = canonicalize_name(need.name)
            if name not in locked:
                found.append(f"{need} is not in the lock")
            elif not need.specifier.contains(locked[name], prereleases=True):
                found.append(f"{need}: the lock pins {locked[name]}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements" / "lock.txt")
    args = parser.parse_args(argv)
    found = problems(args.pyproject, args.lock)
    for line in found:
        print(f"lock: {line}", file=sys.stderr)
    if found:
        print(f"lock: {args.lock} is out of date with {args.pyproject.name}: run `make lock`",
              file=sys.stderr)
        return 1
    print(f"lock: {args.lock.name} covers every requirement of {args.pyproject.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
