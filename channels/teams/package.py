"""``safehaven teams-package``: the installable Teams app package (a zip of the manifest
and the two icons), with the ids filled in from settings and checked before it is written.

The template lives in ``manifest/teams/manifest.json``; ``{{NAME}}`` placeholders are
filled from the command's options or, failing those, the environment: ``MicrosoftAppId``
(the bot), ``SAFEHAVEN_TEAMS_APP_ID`` (the Teams app, by default the bot's id),
``SAFEHAVEN_TEAMS_WEBSITE_URL``, ``SAFEHAVEN_TEAMS_PRIVACY_URL`` and
``SAFEHAVEN_TEAMS_TERMS_URL``. The developer name defaults to the policy's organisation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.policy import load_policy
from bot.private import open_private, private_dir
from bot.settings import Settings, SettingsError

MANIFEST_DIR = Path(__file__).resolve().parents[2] / "manifest" / "teams"
ICONS = {"color.png": (192, 192), "outline.png": (32, 32)}
PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


class PackageError(SettingsError):
    """The package cannot be built; the message says what to set."""


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise PackageError("an icon is not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def fill(template: Any, values: Mapping[str, str]) -> Any:
    """Replace ``{{NAME}}`` in every string of a parsed JSON document."""
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    if isinstance(template, str):
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise PackageError(f"manifest placeholder {{{{{name}}}}} has no value")
            return values[name]
        return PLACEHOLDER.sub(value, template)
    return template


def _guid(name: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise PackageError(f"{name} must be an id like xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx "
                           f"(got {value[:60]!r}).") from None


def _https(name: str, value: str) -> str:
    if not re.match(r"^https://[^\s/]+\.[^\s/]+(/\S*)?$", value):
        raise PackageError(f"{name} must be an https:// address (got {value[:80]!r}); Teams "
                           "shows it on the app's details page.")
    return value


def check_manifest(manifest: Mapping[str, Any]) -> None:
    """The checks Teams makes on upload that a template edit could break."""
    _guid("The manifest id", str(manifest.get("id", "")))
    if not SEMVER.match(str(manifest.get("version", ""))):
        raise PackageError("The app version must look like 1.0.0.")
    bots = manifest.get("bots") or []
    if len(bots) != 1:
        raise PackageError("The manifest must declare exactly one bot.")
    bot = bots[0]
    _guid("The bot id", str(bot.get("botId", "")))
    if bot.get("scopes") != ["personal"] or bot.get("supportsFiles") is not True:
        raise PackageError("Safe Haven's bot must be personal-scope only, with supportsFiles.")
    developer = manifest.get("developer") or {}
    for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        _https(f"developer.{key}", str(developer.get(key, "")))
    name = manifest.get("name") or {}
    description = manifest.get("description") or {}
    if not 0 < len(str(name.get("short", ""))) <= 30 or len(str(name.get("full", ""))) > 100:
        raise PackageError("name.short must be 1-30 characters, name.full at most 100.")
    if not 0 < len(str(description.get("short", ""))) <= 80 or not 0 < len(
            str(description.get("full", ""))) <= 4000:
        raise PackageError("description.short must be 1-80 characters, full 1-4000.")
    if not re.match(r"^#[0-9A-Fa-f]{6}$", str(manifest.get("accentColor", ""))):
        raise PackageError("accentColor must be a colour like #1F4E79.")
    icons = manifest.get("icons") or {}
    if set(icons.values()) != set(ICONS):
        raise PackageError("icons must be color.png and outline.png.")


def build_package(*, out: Path, bot_id: str, website_url: str, developer_name: str,
                  teams_app_id: str | None = None, privacy_url: str | None = None,
                  terms_url: str | None = None, version: str = "1.0.0",
                  template_dir: Path = MANIFEST_DIR) -> Path:
    """Write the app package zip to ``out`` and return its path."""
    values = {
        "BOT_ID": _guid("MicrosoftAppId", bot_id),
        "TEAMS_APP_ID": _guid("SAFEHAVEN_TEAMS_APP_ID", teams_app_id or bot_id),
        "VERSION": version,
        "DEVELOPER_NAME": developer_name.strip()[:32] or "Safe Haven",
        "WEBSITE_URL": _https("SAFEHAVEN_TEAMS_WEBSITE_URL", website_url),
        "PRIVACY_URL": _https("SAFEHAVEN_TEAMS_PRIVACY_URL", privacy_url or website_url),
        "TERMS_URL": _https("SAFEHAVEN_TEAMS_TERMS_URL", terms_url or website_url),
    }
    manifest = fill(json.loads((template_dir / "manifest.json").read_text("utf-8")), values)
    check_manifest(manifest)
    icons = {name: (template_dir / name).read_bytes() for name in ICONS}
    for name, size in ICONS.items():
        if png_size(icons[name]) != size:
            raise PackageError(f"{name} must be {size[0]}x{size[1]} pixels.")
    private_dir(out.parent, own=False)
    with open_private(out, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in [("manifest.json", json.dumps(manifest, indent=2).encode()),
                           *icons.items()]:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return out


def cmd_teams_package(settings: Settings, args: argparse.Namespace) -> int:
    env = os.environ
    bot_id = args.app_id or env.get("MicrosoftAppId", "")
    if not bot_id:
        raise PackageError("MicrosoftAppId is not set: the package needs the bot's Microsoft "
                           "App ID (from the Azure Bot registration), or pass --app-id.")
    website = args.website_url or env.get("SAFEHAVEN_TEAMS_WEBSITE_URL", "")
    if not website:
        raise PackageError("SAFEHAVEN_TEAMS_WEBSITE_URL is not set: give the https page that "
                           "describes Safe Haven for your staff, or pass --website-url.")
    developer = args.developer_name or load_policy(settings.policy_path).organisation
    out = Path(args.out) if args.out else settings.var_dir / "safehaven-teams.zip"
    path = build_package(
        out=out, bot_id=bot_id, website_url=website, developer_name=developer,
        teams_app_id=args.teams_app_id or env.get("SAFEHAVEN_TEAMS_APP_ID") or None,
        privacy_url=args.privacy_url or env.get("SAFEHAVEN_TEAMS_PRIVACY_URL") or None,
        terms_url=args.terms_url or env.get("SAFEHAVEN_TEAMS_TERMS_URL") or None,
        version=args.app_version)
    print(f"Teams app package written to {path}; upload it in Teams (Apps, Manage your apps, "
          "Upload an app) or in the Teams admin centre.")
    return 0


def add_teams_package_parser(sub: Any) -> Any:
    """Register ``safehaven teams-package`` on the CLI's subcommands; returns its parser."""
    s = sub.add_parser("teams-package", help="write the Microsoft Teams app package (zip)")
    s.add_argument("--out", help="where to write it (default: safehaven-teams.zip in the data "
                   "folder that 'safehaven where' shows)")
    s.add_argument("--app-id", help="the bot's Microsoft App ID (default: MicrosoftAppId)")
    s.add_argument("--teams-app-id", help="the Teams app id (default: the bot's id)")
    s.add_argument("--app-version", default="1.0.0", help="the app version, e.g. 1.0.0")
    s.add_argument("--developer-name", help="default: the policy's organisation")
    s.add_argument("--website-url", help="default: SAFEHAVEN_TEAMS_WEBSITE_URL")
    s.add_argument("--privacy-url", help="default: SAFEHAVEN_TEAMS_PRIVACY_URL or the website")
    s.add_argument("--terms-url", help="default: SAFEHAVEN_TEAMS_TERMS_URL or the website")
    s.set_defaults(func=cmd_teams_package)
    return s
