"""Where channels put incoming files before the engine sees them.

Each upload gets its own random folder under ``var/uploads`` and a fixed file name, so a
sender's file name (which may identify a person, or try ``../``) is never part of a path.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from bot.events import IncomingFile
from bot.settings import Settings

CHUNK = 1024 * 1024


def new_upload_path(settings: Settings) -> Path:
    folder = settings.uploads_dir / secrets.token_hex(16)
    folder.mkdir(parents=True, mode=0o700)
    return folder / "upload.bin"


def stage_local_file(settings: Settings, source: Path, *, name: str | None = None
                     ) -> IncomingFile:
    """Copy a local file into the uploads area by streaming (blocking; use a thread)."""
    target = new_upload_path(settings)
    with source.open("rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK)
    return IncomingFile(name=name or source.name, path=target, size=target.stat().st_size)
