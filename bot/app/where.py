"""Where this installation keeps its data: ``safehaven where``, and the one-time notice a
command gives when it starts a new data folder.

The data folder is ``SAFEHAVEN_VAR_DIR`` (made absolute at start-up) or this account's own
data folder (bot.settings.default_var_dir), never a folder relative to where a command runs,
so every command finds the same database and key.
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.app.config import Config
from bot.messages import doctor as msg
from bot.private import account_name, foreign_owner, private_dir
from bot.settings import Settings, SettingsError

NOT_A_URL = "(not a valid URL)"
_UNREACHABLE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED,
                          errno.ETIMEDOUT})


def _without_password(database_url: str) -> str:
    """A database URL without its password, and without its query, which may carry one
    (``?password=``, ``sslpassword``, ``sslkey``); never the text of one that cannot be read."""
    try:
        return make_url(database_url).set(query={}).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return NOT_A_URL


def database_unreachable(exc: BaseException, database_url: str) -> str | None:
    """What to tell an operator when ``exc`` means the database could not be reached (refused,
    unknown host, timed out, login or database refused), else None. The URL is shown without
    its password; the driver's own words are kept only for the login and database cases."""
    cause: BaseException | None = exc
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionError | socket.gaierror | TimeoutError) or (
                isinstance(cause, OSError) and cause.errno in _UNREACHABLE):
            reason = cause.strerror or type(cause).__name__
            return msg.DATABASE_UNREACHABLE.format(url=_without_password(database_url),
                                                   reason=reason)
        if type(cause).__module__.startswith("asyncpg") and type(cause).__name__ in (
                "InvalidPasswordError", "InvalidAuthorizationSpecificationError",
                "InvalidCatalogNameError", "CannotConnectNowError", "TooManyConnectionsError"):
            return msg.DATABASE_UNREACHABLE.format(url=_without_password(database_url),
                                                   reason=type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return None


def _without_credentials(url: str) -> str:
    """An object-store or anchor URL without any user, password or query (a SAS token);
    never the text of one that cannot be read (a secret with a ``/`` ends the host early)."""
    parts = urlsplit(url)
    if not parts.scheme or "://" not in url:
        return url  # a plain path, or objects:<key>
    try:
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return NOT_A_URL
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def data_locations(settings: Settings) -> list[tuple[str, str]]:
    """What ``safehaven where`` prints, as (label, value) pairs; nothing in them is secret."""
    policy = (str(settings.policy_path.resolve()) if settings.policy_path
              else "the built-in policy (bot/policies/default.toml); set SAFEHAVEN_POLICY "
              "to use your own")
    key = ("SAFEHAVEN_SECRET_KEY (from the environment)" if settings.secret_key
           else str(settings.var_dir / "secret.key"))
    return [
        ("Data folder", str(settings.var_dir)),
        ("Database", _without_password(settings.database_url)),
        ("Object store", _without_credentials(settings.object_store_url)),
        ("Audit anchor", _without_credentials(settings.audit_anchor_spec)),
        ("Policy", policy),
        ("Secret key", key),
        ("Log file", str(settings.log_path)),
    ]


def cmd_where(config: Config, args: argparse.Namespace) -> int:
    """Print where this installation's data is; creates nothing."""
    settings = config.core
    rows = data_locations(settings)
    width = max(len(label) for label, _ in rows) + 1
    for label, value in rows:
        print(f"{label + ':':<{width}} {value}")
    if not settings.var_dir.exists():
        print("(The data folder does not exist yet: the first command that needs it "
              "creates it.)")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("where", help="show where the data is: folder, database, object "
                       "store, policy, key", description="Print where this installation "
                       "keeps its data (nothing is created). Set SAFEHAVEN_VAR_DIR to use "
                       "another data folder.")
    s.set_defaults(func=cmd_where)


def ensure_data_folder(settings: Settings) -> None:
    """Create the data folder if it is missing, saying so once on standard error (a new
    folder means a new database and key: no transfer made elsewhere is in it).
    :class:`SettingsError` when it belongs to another account: every command writes
    there (its log, the anchor's checkpoints, objects, scratch)."""
    owner = foreign_owner(settings.var_dir)
    if owner is not None:
        # (root, say, would leave files 0600 that the service cannot read)
        raise SettingsError(msg.NOT_YOURS.format(path=settings.var_dir,
                                                 owner=account_name(owner)))
    if settings.var_dir.exists():
        return
    private_dir(settings.var_dir)
    new = [what for what, inside in (
        ("database", str(settings.var_dir) in settings.database_url),
        ("key", not settings.secret_key)) if inside]
    fresh = f" (with a new {' and '.join(new)})" if new else ""
    sys.stderr.write(
        f"safehaven: Created a new Safe Haven data folder at {settings.var_dir}{fresh}. If "
        "your data is elsewhere, set SAFEHAVEN_VAR_DIR to its folder; 'safehaven where' "
        "shows what is in use.\n")
