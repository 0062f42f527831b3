"""The Teams app package: built by `safehaven teams-package`, checked as Teams would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from bot.vault import generate_key
from channels.teams.package import MANIFEST_DIR, PackageError, build_package, png_size

BOT_ID = "0b5e7f1c-1111-4222-8333-944445555666"
ROOT = Path(__file__).resolve().parents[3]


def test_package_has_a_valid_manifest_and_icons(tmp_path: Path) -> None:
    out = build_package(out=tmp_path / "app.zip", bot_id=BOT_ID,
                        website_url="https://intranet.example.gov.uk/safe-haven",
                        developer_name="Example County Council")
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(zf.read("manifest.json"))
        color, outline = zf.read("color.png"), zf.read("outline.png")
    assert manifest["manifestVersion"] == "1.22"
    assert manifest["$schema"].endswith("/v1.22/MicrosoftTeams.schema.json")
    assert str(uuid.UUID(manifest["id"])) == manifest["id"] == BOT_ID
    (bot,) = manifest["bots"]
    assert bot["botId"] == BOT_ID and bot["scopes"] == ["personal"]
    assert bot["supportsFiles"] is True and bot["isNotificationOnly"] is False
    assert manifest["developer"]["name"] == "Example County Council"
    for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        assert manifest["developer"][key] == "https://intranet.example.gov.uk/safe-haven"
    assert len(manifest["name"]["short"]) <= 30 and len(manifest["description"]["short"]) <= 80
    assert "{{" not in json.dumps(manifest)
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert png_size(color) == (192, 192) and png_size(outline) == (32, 32)
    # The outline icon is white on transparent, as Teams requires (RGBA, colour type 6).
    assert outline[25] == 6


def test_package_refuses_bad_ids_and_urls(tmp_path: Path) -> None:
    def build(bot_id: str = BOT_ID, website_url: str = "https://example.gov.uk",
              version: str = "1.0.0") -> None:
        build_package(out=tmp_path / "a.zip", bot_id=bot_id, developer_name="Council",
                      website_url=website_url, version=version)

    with pytest.raises(PackageError, match="MicrosoftAppId"):
        build(bot_id="my-bot")
    with pytest.raises(PackageError, match="https://"):
        build(website_url="http://example.gov.uk")
    with pytest.raises(PackageError, match="version"):
        build(version="one")
    assert not (tmp_path / "a.zip").exists()


def test_icons_in_the_repository_are_the_generated_ones() -> None:
    sys.path.insert(0, str(MANIFEST_DIR))
    try:
        import make_icons  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(MANIFEST_DIR))
    assert (MANIFEST_DIR / "color.png").read_bytes() == make_icons.color_icon()
    assert (MANIFEST_DIR / "outline.png").read_bytes() == make_icons.outline_icon()


def test_teams_package_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SAFEHAVEN_", "MicrosoftApp"))}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key())
    run = [sys.executable, "-m", "bot.app.cli", "teams-package", "--out", str(tmp_path / "t.zip")]
    missing = subprocess.run(run, env=env, cwd=ROOT, capture_output=True, text=True,
                             check=False)
    assert missing.returncode == 2 and "MicrosoftAppId" in missing.stderr
    env.update(MicrosoftAppId=BOT_ID, SAFEHAVEN_TEAMS_WEBSITE_URL="https://example.gov.uk/sh")
    done = subprocess.run(run, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "t.zip") as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["bots"][0]["botId"] == BOT_ID
    assert manifest["developer"]["name"] == "Example County Council"
