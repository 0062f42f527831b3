"""Everything Safe Haven writes is for the account it runs as: files 0600, folders 0700.

``safehaven`` sets :data:`UMASK` when it starts (``bot.app.cli.main``), and every place that
creates a file or folder also gives it these modes itself, because the library may run
embedded in a process with a looser umask. Files and folders Safe Haven owns (``var/`` and
what is in it) are tightened if they already exist with looser modes; a folder someone
else chose (``share --out``) is only made private if Safe Haven creates it.
"""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700
UMASK = 0o077


def foreign_owner(folder: Path) -> int | None:
    """The uid owning ``folder`` when that is not this process's account (None when it is,
    or when there is no such folder): a process writing there would leave files (0600)
    the owner, the service, cannot read."""
    try:
        uid = folder.stat().st_uid
    except FileNotFoundError:
        return None
    return None if uid == os.getuid() else uid


def account_name(uid: int) -> str:
    """The account's name, or ``uid <n>`` when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def private_dir(path: Path, *, own: bool = True) -> Path:
    """Create ``path`` and any missing parents as 0700 folders. With ``own`` (a folder
    of Safe Haven's, such as ``var/``), an existing folder is made 0700 too."""
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by someone else; not ours to change
        os.chmod(folder, DIR_MODE)
    if own:
        os.chmod(path, DIR_MODE)
    return path


def open_private(path: Path | str, mode: str = "a", **kwargs: Any) -> IO[Any]:
    """Open ``path`` for writing (``mode``: ``a``, ``w``, ``ab`` or ``wb``), creating it
    0600; a file that already exists is made 0600 before anything is written to it."""
    if mode.rstrip("b") not in ("a", "w"):
        raise ValueError(f"open_private writes only, not {mode!r}")
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_APPEND if mode.startswith("a") else os.O_TRUNC
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def touch_private(path: Path) -> Path:
    """Create ``path`` empty if it does not exist; either way it ends up 0600."""
    open_private(path, "ab").close()
    return path


def copy_private(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` (replacing it), which is 0600 from its first byte."""
    with source.open("rb") as src, open_private(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
    return target
