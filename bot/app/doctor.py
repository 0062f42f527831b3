"""``safehaven doctor``: check an installation before (and after) deploying it.

Each check gives one row: its name, OK / WARN / FAIL and a detail. The settings are read
with the loaders ``serve`` uses (the core, then each channel's section), with the
production-only rules; then the policy, its time zone and call window, the secret key, the
data folder's permissions, the database (reachable, schema at the Alembic head), the object
store (a probe object written, read back and deleted), the audit anchor, and the
credentials of each configured service, asked of the service itself at its configured base
URL: Twilio's account fetch, Slack's ``auth.test``, the Microsoft identity platform's token
endpoint for Teams (``TEAMS_LOGIN_URL``, default ``https://login.microsoftonline.com``).

Exit codes: 0 every check OK; 1 any FAIL; 2 only WARNs (so a script can tell "will not
work" from "works, but look"). Nothing printed is a secret: a token is named by its setting,
a URL is shown without its user, password or query.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import os
import secrets
import stat
import tomllib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app.plugins import CHANNELS
from bot.app.process import out
from bot.app.where import _without_credentials, _without_password
from bot.messages import doctor as msg
from bot.messages.words import plural
from bot.objects import ObjectKey, ObjectStore
from bot.policy import PolicyError, load_policy
from bot.policy_rules import Policy
from bot.private import foreign_owner
from bot.settings import Settings, SettingsError, load_settings
from channels.slack.settings import SlackSettings
from channels.teams.settings import TeamsSettings
from channels.twilio.settings import TwilioSettings
from handlers.services import utc_now
from store.audit_anchor import OBJECTS_PREFIX
from store.db import alembic_config, database_url
from store.objects import open_object_store

EXIT_FAIL = 1
EXIT_WARN = 2
TIMEOUT_SECONDS = 10.0
BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MAX_FILES_LISTED = 3
MAX_FILES_WALKED = 20_000


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def exit_code(checks: Sequence[Check]) -> int:
    statuses = {c.status for c in checks}
    if Status.FAIL in statuses:
        return EXIT_FAIL
    return EXIT_WARN if Status.WARN in statuses else 0


def render(checks: Sequence[Check]) -> str:
    """The checks as an aligned table, then a one-line count."""
    rows = [msg.HEADER] + [(c.name, c.status.value, c.detail) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in (0, 1)]
    lines = [f"{name:<{widths[0]}}  {status:<{widths[1]}}  {detail}"
             for name, status, detail in rows]
    counts = {s: sum(1 for c in checks if c.status is s) for s in Status}
    lines.append(msg.SUMMARY.format(ok=counts[Status.OK], warn=counts[Status.WARN],
                                    fail=counts[Status.FAIL]))
    return "\n".join(lines)


def _reason(exc: BaseException) -> str:
    """A short reason for a failure, without the URL (which may carry a credential)."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return f"no answer within {TIMEOUT_SECONDS:.0f} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connection failed: {exc.os_error.strerror or type(exc.os_error).__name__}"
    words = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    return words


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


# --- settings, policy, time ----------------------------------------------------------------


def check_settings(env: Mapping[str, str]) -> tuple[list[Check], Settings | None,
                                                     dict[str, Any]]:
    """The core settings and every channel's section, read as ``serve`` reads them."""
    try:
        core = load_settings(env)
    except SettingsError as exc:
        return [Check(msg.SETTINGS, Status.FAIL, str(exc))], None, {}
    rows: list[Check] = []
    sections: dict[str, Any] = {}
    for wiring in CHANNELS:
        try:
            sections[wiring.name] = wiring.load(core, env)
        except SettingsError as exc:
            rows.append(Check(wiring.name, Status.FAIL, str(exc)))
            sections[wiring.name] = exc
    is_sqlite = core.database_url.startswith("sqlite")
    if core.is_production and is_sqlite:
        rows.insert(0, Check(msg.SETTINGS, Status.WARN, msg.SETTINGS_SQLITE_IN_PRODUCTION.format(
            database=_without_password(core.database_url))))
    else:
        rows.insert(0, Check(msg.SETTINGS, Status.OK, msg.SETTINGS_OK.format(
            environment=core.environment, public_url=core.public_url)))
    return rows, core, sections


def check_policy(settings: Settings) -> tuple[Check, Policy | None]:
    source = str(settings.policy_path) if settings.policy_path else "bot/policies/default.toml"
    try:
        policy = load_policy(settings.policy_path)
    except PolicyError as exc:
        return Check(msg.POLICY, Status.FAIL, msg.POLICY_FAIL.format(
            source=source, errors=plural(len(exc.errors), "error"), first=exc.errors[0])), None
    return Check(msg.POLICY, Status.OK, msg.POLICY_OK.format(
        source=source, levels=len(policy.levels), agreements=len(policy.agreements))), policy


def check_time_zone(settings: Settings, policy: Policy | None, now: datetime) -> Check:
    if policy is not None:
        local = now.astimezone(policy.timezone)
        return Check(msg.TIME_ZONE, Status.OK, msg.TIME_ZONE_OK.format(
            zone=policy.timezone.key, now=local.strftime("%Y-%m-%d %H:%M %Z")))
    # The policy failed: say whether its time zone is one of the reasons.
    try:
        path = settings.policy_path
        document = tomllib.loads(path.read_text(encoding="utf-8")) if path else {}
        zone = str(document.get("organisation", {}).get("timezone", "Europe/London"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
        return Check(msg.TIME_ZONE, Status.FAIL, msg.TIME_ZONE_UNREAD)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return Check(msg.TIME_ZONE, Status.FAIL, msg.TIME_ZONE_FAIL.format(zone=zone))
    return Check(msg.TIME_ZONE, Status.FAIL, msg.NOT_CHECKED.format(what=msg.POLICY))


def _next_opening(policy: Policy, local: datetime) -> datetime | None:
    window = policy.call_window
    for days_ahead in range(8):
        day = (local + timedelta(days=days_ahead)).date()
        start = datetime.combine(day, window.start, tzinfo=local.tzinfo)
        end = datetime.combine(day, window.end, tzinfo=local.tzinfo)
        if day.weekday() in window.days and end > local:
            return max(start, local)
    return None


def check_call_window(policy: Policy | None, now: datetime) -> Check:
    if policy is None:
        return Check(msg.CALL_WINDOW, Status.FAIL, msg.NOT_CHECKED.format(what=msg.POLICY))
    window = policy.call_window
    local = now.astimezone(policy.timezone)
    fields = {"start": window.start.strftime("%H:%M"), "end": window.end.strftime("%H:%M"),
              "days": ", ".join(WEEKDAYS[d] for d in window.days), "zone": policy.timezone.key}
    minutes = ((window.end.hour * 60 + window.end.minute)
               - (window.start.hour * 60 + window.start.minute))
    if minutes < 60:
        return Check(msg.CALL_WINDOW, Status.WARN, msg.CALL_WINDOW_NARROW.format(**fields))
    opening = _next_opening(policy, local)
    state = (msg.CALL_WINDOW_OPEN if opening == local else msg.CALL_WINDOW_CLOSED.format(
        next=opening.strftime("%a %H:%M") if opening else "-"))
    return Check(msg.CALL_WINDOW, Status.OK, msg.CALL_WINDOW_OK.format(state=state, **fields))


# --- secrets and files ---------------------------------------------------------------------


def _key_problem(value: str) -> str | None:
    try:
        raw = base64.b64decode(value.strip() + "=" * (-len(value.strip()) % 4),
                               altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return msg.SECRET_NOT_BASE64
    if len(raw) != 32:
        return msg.SECRET_LENGTH.format(length=len(raw))
    distinct = len(set(raw))
    if distinct < 16:  # 32 random bytes have about 30 distinct values; 16 is far below
        return msg.SECRET_WEAK.format(distinct=distinct)
    return None


def check_secret_key(settings: Settings) -> Check:
    """The key (and the previous keys still accepted: SAFEHAVEN_PREVIOUS_SECRET_KEYS and its
    _FILE form) decode to 32 random-looking bytes; without one, the development key file."""
    previous = settings.previous_secret_keys
    if settings.secret_key:
        for name, value in [("SAFEHAVEN_SECRET_KEY", settings.secret_key)] + [
                (f"SAFEHAVEN_PREVIOUS_SECRET_KEYS (key {n})", k)
                for n, k in enumerate(previous, start=1)]:
            problem = _key_problem(value)
            if problem:
                return Check(msg.SECRET_KEY, Status.FAIL,
                             msg.SECRET_BAD.format(name=name, problem=problem))
        more = msg.SECRET_PREVIOUS.format(keys=plural(len(previous), "previous key")) \
            if previous else ""
        return Check(msg.SECRET_KEY, Status.OK, msg.SECRET_FROM_ENV.format(previous=more))
    path = settings.var_dir / "secret.key"
    if path.exists():
        return Check(msg.SECRET_KEY, Status.WARN, msg.SECRET_DEV_FILE.format(path=path))
    return Check(msg.SECRET_KEY, Status.WARN, msg.SECRET_DEV_NONE.format(path=path))


def check_data_folder(settings: Settings) -> Check:
    folder = settings.var_dir
    if not folder.exists():
        return Check(msg.DATA_FOLDER, Status.WARN, msg.FOLDER_MISSING.format(path=folder))
    info = folder.stat()
    owner = foreign_owner(folder)
    if owner is not None:
        return Check(msg.DATA_FOLDER, Status.FAIL,
                     msg.FOLDER_NOT_OWNED.format(path=folder, uid=owner))
    if info.st_mode & 0o077:
        return Check(msg.DATA_FOLDER, Status.FAIL, msg.FOLDER_OPEN.format(
            path=folder, mode=oct(stat.S_IMODE(info.st_mode))[2:].zfill(4)))
    exposed: list[str] = []
    for n, path in enumerate(folder.rglob("*")):
        if n >= MAX_FILES_WALKED:
            break
        try:
            mode = path.lstat().st_mode
        except OSError:
            continue  # removed while walked
        if not stat.S_ISLNK(mode) and mode & 0o077:
            exposed.append(str(path.relative_to(folder)))
    if exposed:
        listed = ", ".join(sorted(exposed)[:MAX_FILES_LISTED])
        if len(exposed) > MAX_FILES_LISTED:
            listed += f" and {len(exposed) - MAX_FILES_LISTED} more"
        return Check(msg.DATA_FOLDER, Status.FAIL, msg.FOLDER_FILES_OPEN.format(paths=listed))
    return Check(msg.DATA_FOLDER, Status.OK, msg.FOLDER_OK.format(path=folder))


# --- database, object store, anchor --------------------------------------------------------


def _sqlite_file(url: str) -> Path | None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


async def check_database(settings: Settings) -> list[Check]:
    url = settings.database_url
    shown = _without_password(url)
    try:
        database_url(url)
    except SettingsError as exc:  # says so without the URL's text
        return [Check(msg.DATABASE, Status.FAIL, str(exc)),
                Check(msg.MIGRATIONS, Status.FAIL, msg.NOT_CHECKED.format(what=msg.DATABASE))]
    sqlite = _sqlite_file(url)
    if sqlite is not None and not sqlite.exists():
        return [Check(msg.DATABASE, Status.WARN, msg.DATABASE_SQLITE_MISSING.format(url=shown)),
                Check(msg.MIGRATIONS, Status.WARN, msg.MIGRATIONS_EMPTY)]
    options: dict[str, Any] = {}
    if url.startswith("postgresql+asyncpg"):
        options["connect_args"] = {"timeout": TIMEOUT_SECONDS}
    try:
        engine = create_async_engine(url, hide_parameters=True, **options)
    except (ArgumentError, ImportError, ValueError) as exc:
        return [Check(msg.DATABASE, Status.FAIL, msg.DATABASE_FAIL.format(
            url=shown, reason=_reason(exc))),
            Check(msg.MIGRATIONS, Status.FAIL, msg.NOT_CHECKED.format(what=msg.DATABASE))]
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            try:
                current = (await connection.execute(
                    text("SELECT version_num FROM alembic_version"))).scalar()
            except Exception:  # no table yet: an empty database
                current = None
    except Exception as exc:  # unreachable, refused, bad credentials: all one answer
        return [Check(msg.DATABASE, Status.FAIL, msg.DATABASE_FAIL.format(
            url=shown, reason=_reason(exc))),
            Check(msg.MIGRATIONS, Status.FAIL, msg.NOT_CHECKED.format(what=msg.DATABASE))]
    finally:
        await engine.dispose()
    script = ScriptDirectory.from_config(alembic_config(url))
    head = script.get_current_head()
    if current is None:
        migrations = Check(msg.MIGRATIONS, Status.WARN, msg.MIGRATIONS_EMPTY)
    elif current == head:
        migrations = Check(msg.MIGRATIONS, Status.OK, msg.MIGRATIONS_CURRENT.format(head=head))
    elif current in {rev.revision for rev in script.walk_revisions()}:
        migrations = Check(msg.MIGRATIONS, Status.WARN,
                           msg.MIGRATIONS_BEHIND.format(current=current, head=head))
    else:
        migrations = Check(msg.MIGRATIONS, Status.FAIL,
                           msg.MIGRATIONS_UNKNOWN.format(current=current))
    return [Check(msg.DATABASE, Status.OK, msg.DATABASE_OK.format(url=shown)), migrations]


async def _probe(store: ObjectStore) -> str | None:
    """Write, read back and delete a probe object; None when all three worked, else why."""
    key = ObjectKey(f"doctor/probe-{secrets.token_hex(8)}")
    data = secrets.token_bytes(64)

    async def chunks() -> AsyncIterator[bytes]:
        yield data

    try:
        async with asyncio.timeout(TIMEOUT_SECONDS * 3):
            await store.put(key, chunks())
            try:
                read = b"".join([chunk async for chunk in store.get(key)])
            finally:
                await store.delete(key)
    except Exception as exc:
        return _reason(exc)
    return None if read == data else msg.OBJECTS_MISMATCH


async def _probe_store(url: str) -> str | None:
    """What is wrong with the object store at ``url`` (a probe object written, read back and
    deleted), or None."""
    try:
        return await _probe(open_object_store(url))
    except SettingsError as exc:
        return str(exc)


async def check_object_store(settings: Settings) -> Check:
    url = settings.object_store_url
    shown = _without_credentials(url)
    if not settings.object_store and not settings.var_dir.exists():
        return Check(msg.OBJECT_STORE, Status.WARN,
                     msg.OBJECTS_DATA_FOLDER_MISSING.format(url=shown))
    problem = await _probe_store(url)
    if problem:
        return Check(msg.OBJECT_STORE, Status.FAIL,
                     msg.OBJECTS_FAIL.format(url=shown, reason=problem))
    return Check(msg.OBJECT_STORE, Status.OK, msg.OBJECTS_OK.format(url=shown))


async def check_anchor(settings: Settings) -> Check:
    spec = settings.audit_anchor_spec
    if spec.startswith(OBJECTS_PREFIX):
        return Check(msg.AUDIT_ANCHOR, Status.OK, msg.ANCHOR_IN_STORE.format(spec=spec))
    if "://" in spec:
        shown = _without_credentials(spec)
        problem = await _probe_store(spec)
        if problem:
            return Check(msg.AUDIT_ANCHOR, Status.FAIL,
                         msg.OBJECTS_FAIL.format(url=shown, reason=problem))
        return Check(msg.AUDIT_ANCHOR, Status.OK, msg.ANCHOR_STORE_OK.format(spec=shown))
    return _file_anchor(Path(spec))


def _file_anchor(path: Path) -> Check:
    """A file anchor: appendable, or its folder (the nearest that exists) writable."""
    target = path if path.exists() else path.parent
    while not target.exists():  # created with its folders on the first checkpoint
        target = target.parent
    if not os.access(target, os.W_OK) or (target.is_dir() and not os.access(target, os.X_OK)):
        return Check(msg.AUDIT_ANCHOR, Status.FAIL, msg.ANCHOR_FILE_FAIL.format(
            path=path, reason=f"{target} is not writable"))
    return Check(msg.AUDIT_ANCHOR, Status.OK, msg.ANCHOR_FILE_OK.format(
        path=path, exists="" if path.exists() else msg.ANCHOR_FILE_NEW))


# --- services ------------------------------------------------------------------------------


async def check_twilio(section: Any, settings: Settings,
                       session: aiohttp.ClientSession) -> Check | None:
    if isinstance(section, SettingsError):
        return None  # reported with the settings
    if section is None:
        if settings.is_production:
            return Check(msg.TWILIO, Status.FAIL, msg.TWILIO_REQUIRED)
        return Check(msg.TWILIO, Status.WARN, msg.TWILIO_CONSOLE)
    assert isinstance(section, TwilioSettings)
    host = _host(section.api_url)
    url = f"{section.api_url}/2010-04-01/Accounts/{section.account_sid}.json"
    try:
        async with session.get(url, auth=aiohttp.BasicAuth(section.account_sid,
                                                           section.auth_token)) as response:
            if response.status in (401, 403):
                return Check(msg.TWILIO, Status.FAIL, msg.TWILIO_REFUSED.format(
                    host=host, status=response.status))
            if response.status != 200:
                return Check(msg.TWILIO, Status.FAIL, msg.TWILIO_HTTP.format(
                    host=host, status=response.status))
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Check(msg.TWILIO, Status.FAIL, msg.UNREACHABLE.format(host=host,
                                                                     reason=_reason(exc)))
    sender = section.from_number or section.messaging_service_sid or "-"
    status = str(body.get("status", "?")) if isinstance(body, dict) else "?"
    return Check(msg.TWILIO, Status.OK if status == "active" else Status.WARN,
                 msg.TWILIO_OK.format(sid=section.account_sid, status=status, host=host,
                                      sender=sender))


async def check_slack(section: Any, session: aiohttp.ClientSession) -> Check | None:
    if isinstance(section, SettingsError):
        return None
    if section is None:
        return Check(msg.SLACK, Status.OK, msg.NOT_CONFIGURED)
    assert isinstance(section, SlackSettings)
    host = _host(section.api_url)
    try:
        async with session.post(section.api_url + "auth.test", headers={
                "Authorization": f"Bearer {section.bot_token}"}) as response:
            if response.status != 200:
                return Check(msg.SLACK, Status.FAIL, msg.SLACK_HTTP.format(
                    host=host, status=response.status))
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Check(msg.SLACK, Status.FAIL, msg.UNREACHABLE.format(host=host,
                                                                    reason=_reason(exc)))
    if not isinstance(body, dict) or not body.get("ok"):
        error = str(body.get("error", "no reason given"))[:60] if isinstance(body, dict) else "?"
        return Check(msg.SLACK, Status.FAIL, msg.SLACK_REFUSED.format(host=host, error=error))
    return Check(msg.SLACK, Status.OK, msg.SLACK_OK.format(
        user=body.get("user_id", "?"), team=body.get("team", "?"), host=host))


async def check_teams(section: Any, session: aiohttp.ClientSession) -> Check | None:
    if isinstance(section, SettingsError):
        return None
    if section is None:
        return Check(msg.TEAMS, Status.OK, msg.NOT_CONFIGURED)
    assert isinstance(section, TeamsSettings)
    if section.auth_off:
        return Check(msg.TEAMS, Status.WARN, msg.TEAMS_AUTH_OFF)
    if section.app_type == "UserAssignedMSI":
        return Check(msg.TEAMS, Status.WARN, msg.TEAMS_MSI)
    login = section.login_url  # https, or http to this machine outside production
    host = _host(login)
    tenant = section.tenant_id if section.app_type == "SingleTenant" else "botframework.com"
    form = {"grant_type": "client_credentials", "client_id": section.app_id or "",
            "client_secret": section.app_password or "", "scope": BOT_FRAMEWORK_SCOPE}
    try:
        async with session.post(f"{login}/{tenant}/oauth2/v2.0/token", data=form) as response:
            body = await response.json(content_type=None)
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Check(msg.TEAMS, Status.FAIL, msg.UNREACHABLE.format(host=host,
                                                                    reason=_reason(exc)))
    if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
        error = "?"
        if isinstance(body, dict):
            codes = body.get("error_codes") or []
            error = str(body.get("error", f"HTTP {status}"))[:60] + (
                f", AADSTS{codes[0]}" if codes else "")
        return Check(msg.TEAMS, Status.FAIL, msg.TEAMS_REFUSED.format(host=host, error=error))
    return Check(msg.TEAMS, Status.OK, msg.TEAMS_OK.format(host=host, app_id=section.app_id))


# --- the command ---------------------------------------------------------------------------


async def run_checks(env: Mapping[str, str], *, now: datetime) -> list[Check]:
    rows, settings, sections = check_settings(env)
    if settings is None:
        return rows
    policy_row, policy = check_policy(settings)
    rows += [policy_row, check_time_zone(settings, policy, now),
             check_call_window(policy, now), check_secret_key(settings),
             check_data_folder(settings)]
    rows += await check_database(settings)
    rows.append(await check_object_store(settings))
    rows.append(await check_anchor(settings))
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=True) as session:
        services = await asyncio.gather(
            check_twilio(sections.get("twilio"), settings, session),
            check_slack(sections.get("slack"), session),
            check_teams(sections.get("teams"), session))
    rows += [row for row in services if row is not None]
    return rows


def cmd_doctor(args: argparse.Namespace) -> int:
    checks = asyncio.run(run_checks(dict(os.environ), now=utc_now()))
    out(render(checks))
    return exit_code(checks)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser(
        "doctor", help="check settings, database, storage and services before deploying",
        description="Check this installation: settings, policy, time zone, call window, "
        "secret key, data folder permissions, database and migrations, object store, audit "
        "anchor, and the Twilio, Slack and Teams credentials (asked of each service). "
        "Prints a table; exit 0 all OK, 1 any FAIL, 2 only warnings. Prints no secret.")
    s.set_defaults(standalone=cmd_doctor)
