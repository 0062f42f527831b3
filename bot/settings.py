"""One typed settings object, read from the environment and validated at start-up.

Every missing or malformed value produces a sentence saying which variable to set and how,
so a council IT officer can fix a deployment without reading code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import phonenumbers

from bot.client_address import Network, parse_trusted_proxies
from bot.egress import HostRule, parse_host_rules

ENVIRONMENTS = ("development", "production")


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names the variable and the fix."""


class LogFormat(StrEnum):
    """How log lines are written (``SAFEHAVEN_LOG_FORMAT``)."""

    TEXT = "text"  # time level logger: message
    JSON = "json"  # one JSON object a line (bot/app/logs.py)


@dataclass(frozen=True)
class Settings:
    """Process-wide configuration. Build it with :func:`load_settings`."""

    environment: str
    var_dir: Path
    database_url: str
    policy_path: Path | None
    secret_key: str | None
    host: str
    port: int
    default_region: str
    log_level: str
    run_scheduler: bool
    scheduler_interval_seconds: float
    # Where recipients reach this server (portal links start with it); no trailing slash.
    public_url: str = ""
    # SAFEHAVEN_ALLOWED_FETCH_HOSTS: hosts (and ports) besides the platforms' own that files
    # may be fetched from or uploaded to on a platform's word; private addresses included.
    allowed_fetch_hosts: tuple[HostRule, ...] = ()
    # SAFEHAVEN_OBJECT_STORE: where uploads (sealed) and archives are kept, shared by every
    # replica: file:///path, s3://bucket/prefix or az://container/prefix (store.objects).
    object_store: str = ""
    # SAFEHAVEN_AUDIT_ANCHOR: where the audit trail's signed checkpoints go, outside the
    # database: a file path, objects:<key> in the object store, or an object-store URL
    # (store/audit_anchor.py). A checkpoint is written at least every so many records or
    # minutes (SAFEHAVEN_AUDIT_CHECKPOINT_RECORDS / _MINUTES).
    audit_anchor: str = ""
    audit_checkpoint_records: int = 1000
    audit_checkpoint_minutes: int = 10
    # SAFEHAVEN_PACKAGING_GRACE_SECONDS: how long a packaging nobody renews is left before
    # another process takes it over (plus an allowance for its size; handlers/recovery.py).
    packaging_grace_seconds: float = 600.0
    # SAFEHAVEN_PREVIOUS_SECRET_KEYS (comma-separated) and _FILE (one a line): keys of
    # earlier rotations, which still open what they sealed and seal nothing (bot/vault.py).
    previous_secret_keys: tuple[str, ...] = ()
    # SAFEHAVEN_METRICS=on: `serve` answers GET /metrics in the Prometheus text format
    # (bot/app/metrics.py); off by default, when /metrics is 404.
    metrics: bool = False
    # SAFEHAVEN_LOG_FORMAT: text (default) or json, one object a line (bot/app/logs.py).
    log_format: LogFormat = LogFormat.TEXT
    # SAFEHAVEN_TRUSTED_PROXIES: the proxies whose X-Forwarded-For names the client
    # (bot/client_address.py); none by default, when the peer's address is the client's.
    trusted_proxies: tuple[Network, ...] = ()

    @property
    def audit_anchor_spec(self) -> str:
        """The anchor's spec; by default the file ``<var dir>/audit-anchor.jsonl``."""
        return self.audit_anchor or str((self.var_dir / "audit-anchor.jsonl").resolve())

    @property
    def object_store_url(self) -> str:
        """The object store's URL; by default the folder ``<var dir>/objects``."""
        return self.object_store or (self.var_dir / "objects").resolve().as_uri()

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def uploads_dir(self) -> Path:
        """Plaintext files waiting to be packaged; emptied as soon as the archive exists."""
        return self.var_dir / "uploads"

    @property
    def archives_dir(self) -> Path:
        return self.var_dir / "archives"

    @property
    def outbox_path(self) -> Path:
        """Where the development console transport writes what it would have sent."""
        return self.var_dir / "outbox.log"

    @property
    def log_path(self) -> Path:
        return self.var_dir / "safehaven.log"


def default_var_dir(env: Mapping[str, str]) -> Path:
    """The data folder when ``SAFEHAVEN_VAR_DIR`` is not set: this account's own data folder
    (``$XDG_DATA_HOME/safehaven``, else ``~/.local/share/safehaven``; on Windows
    ``%LOCALAPPDATA%\\safehaven``), the same whichever folder a command is run from."""
    if os.name == "nt" and env.get("LOCALAPPDATA"):
        return Path(env["LOCALAPPDATA"]) / "safehaven"
    xdg = env.get("XDG_DATA_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():  # the XDG spec ignores a relative value
        return Path(xdg) / "safehaven"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share" / "safehaven"


def _var_dir(env: Mapping[str, str]) -> Path:
    """``SAFEHAVEN_VAR_DIR`` made absolute once, here (a relative one against the folder the
    process starts in), else :func:`default_var_dir`."""
    given = (env.get("SAFEHAVEN_VAR_DIR") or "").strip()
    if not given:
        return default_var_dir(env)
    return Path(os.path.abspath(Path(given).expanduser()))


def _default_database_url(var_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(var_dir / 'safehaven.db').resolve()}"


def _public_url(env: Mapping[str, str], *, environment: str, host: str, port: int) -> str:
    """``SAFEHAVEN_PUBLIC_URL`` without its trailing slash; in development it defaults to
    the listening address. Production takes only ``https://``: recipients' portal links and
    Twilio's webhooks are built from it, and over plain http a link's token (and the archive)
    would cross the network readable by anyone on the path."""
    given = (env.get("SAFEHAVEN_PUBLIC_URL") or "").strip().rstrip("/")
    if environment == "production" and not given.lower().startswith("https://"):
        found = f"is {given!r}" if given else "is not set"
        raise SettingsError(
            f"SAFEHAVEN_PUBLIC_URL {found}; in production it must be the https:// address "
            "recipients and Twilio reach this server at (portal links and Twilio webhooks "
            "are built from it), e.g. https://safehaven.example.gov.uk"
        )
    public_url = given or f"http://{host}:{port}"
    if not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", public_url):
        raise SettingsError(
            f"SAFEHAVEN_PUBLIC_URL is {public_url!r}; set it to the address recipients use "
            "to reach this server, e.g. https://safehaven.example.gov.uk"
        )
    return public_url


def _allowed_fetch_hosts(env: Mapping[str, str]) -> tuple[HostRule, ...]:
    text = env.get("SAFEHAVEN_ALLOWED_FETCH_HOSTS") or ""
    try:
        return parse_host_rules(text)
    except ValueError as exc:
        raise SettingsError(
            f"SAFEHAVEN_ALLOWED_FETCH_HOSTS: {exc}. Set it to a comma-separated list of "
            "host or host:port (e.g. proxy.council.local:8080,127.0.0.1:9000), or leave it "
            "unset to allow only Slack's and Microsoft's own file and service hosts."
        ) from None


def _whole_number(env: Mapping[str, str], name: str, default: int, example: str) -> int:
    text = env.get(name, str(default)).strip()
    if not text.isdigit() or int(text) < 1:
        raise SettingsError(f"{name} is {text!r}; set it to a whole number of at least 1, "
                            f"e.g. {example}.")
    return int(text)


def _switch(env: Mapping[str, str], name: str, *, default: bool, what: str) -> bool:
    text = env.get(name, "").strip().lower()
    if not text:
        return default
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    raise SettingsError(f"{name} is {text!r}; set it to on or off ({what}).")


def _trusted_proxies(env: Mapping[str, str]) -> tuple[Network, ...]:
    try:
        return parse_trusted_proxies(env.get("SAFEHAVEN_TRUSTED_PROXIES") or "")
    except ValueError as exc:
        raise SettingsError(
            f"SAFEHAVEN_TRUSTED_PROXIES: {exc}. Set it to the addresses or networks of the "
            "proxies in front of serve, comma-separated (e.g. 127.0.0.1/32 for nginx on the "
            "same host), or leave it unset to take the connecting address as the client's."
        ) from None


def _log_format(env: Mapping[str, str]) -> LogFormat:
    text = env.get("SAFEHAVEN_LOG_FORMAT", "").strip().lower() or LogFormat.TEXT
    try:
        return LogFormat(text)
    except ValueError:
        raise SettingsError(
            f"SAFEHAVEN_LOG_FORMAT is {text!r}; set it to text (the default: one readable "
            "line a record) or json (one JSON object a line, for a log collector).") from None


def _previous_secret_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    """The keys of ``SAFEHAVEN_PREVIOUS_SECRET_KEYS`` (comma-separated) and of the file
    ``SAFEHAVEN_PREVIOUS_SECRET_KEYS_FILE`` (one a line; blank lines and ``#`` comments
    skipped). Checked as keys by bot/vault.py; an error never quotes one."""
    keys = [k.strip() for k in (env.get("SAFEHAVEN_PREVIOUS_SECRET_KEYS") or "").split(",")]
    path = (env.get("SAFEHAVEN_PREVIOUS_SECRET_KEYS_FILE") or "").strip()
    if path:
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(
                f"SAFEHAVEN_PREVIOUS_SECRET_KEYS_FILE names {path!r}, which cannot be read "
                f"({type(exc).__name__}); set it to a file holding one previous key a line."
            ) from None
        keys += [line.strip() for line in text.splitlines()
                 if line.strip() and not line.strip().startswith("#")]
    return tuple(dict.fromkeys(k for k in keys if k))


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read ``SAFEHAVEN_*`` variables; raise :class:`SettingsError` naming the first bad one."""
    env = os.environ if env is None else env
    environment = env.get("SAFEHAVEN_ENV", "development").strip().lower()
    if environment not in ENVIRONMENTS:
        raise SettingsError(
            f"SAFEHAVEN_ENV is {environment!r}; set it to one of: {', '.join(ENVIRONMENTS)}."
        )
    var_dir = _var_dir(env)
    port_text = env.get("SAFEHAVEN_PORT", "3978")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise SettingsError(f"SAFEHAVEN_PORT is {port_text!r}; set it to a port number 0-65535.")
    region = env.get("SAFEHAVEN_DEFAULT_REGION", "GB").strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise SettingsError(
            f"SAFEHAVEN_DEFAULT_REGION is {region!r}; set it to a two-letter country code "
            "such as GB or IE (used to read phone numbers written without +country code)."
        )
    secret_key = env.get("SAFEHAVEN_SECRET_KEY") or None
    if environment == "production" and not secret_key:
        raise SettingsError(
            "SAFEHAVEN_SECRET_KEY is not set. In production it must hold the key that "
            "encrypts passwords at rest: generate one with `safehaven generate-key`."
        )
    policy = env.get("SAFEHAVEN_POLICY") or None
    interval_text = env.get("SAFEHAVEN_SCHEDULER_INTERVAL", "5")
    try:
        interval = float(interval_text)
    except ValueError:
        interval = 0.0
    if interval <= 0:
        raise SettingsError(
            f"SAFEHAVEN_SCHEDULER_INTERVAL is {interval_text!r}; set it to seconds, e.g. 5."
        )
    grace_text = env.get("SAFEHAVEN_PACKAGING_GRACE_SECONDS", "600")
    try:
        grace = float(grace_text)
    except ValueError:
        grace = 0.0
    if not 0 < grace <= 86400:
        raise SettingsError(
            f"SAFEHAVEN_PACKAGING_GRACE_SECONDS is {grace_text!r}; set it to seconds above 0 "
            "and at most 86400, e.g. 600 (the default)."
        )
    host = env.get("SAFEHAVEN_HOST", "127.0.0.1")
    public_url = _public_url(env, environment=environment, host=host, port=port)
    return Settings(
        environment=environment,
        var_dir=var_dir,
        database_url=env.get("SAFEHAVEN_DATABASE_URL") or _default_database_url(var_dir),
        policy_path=Path(policy) if policy else None,
        secret_key=secret_key,
        host=host,
        port=port,
        default_region=region,
        log_level=env.get("SAFEHAVEN_LOG_LEVEL", "INFO").upper(),
        run_scheduler=env.get("SAFEHAVEN_SCHEDULER", "on").lower() not in ("off", "0", "false"),
        scheduler_interval_seconds=interval,
        public_url=public_url,
        object_store=env.get("SAFEHAVEN_OBJECT_STORE", "").strip(),
        allowed_fetch_hosts=_allowed_fetch_hosts(env),
        audit_anchor=env.get("SAFEHAVEN_AUDIT_ANCHOR", "").strip(),
        audit_checkpoint_records=_whole_number(env, "SAFEHAVEN_AUDIT_CHECKPOINT_RECORDS", 1000,
                                               "1000 (records between signed checkpoints)"),
        audit_checkpoint_minutes=_whole_number(env, "SAFEHAVEN_AUDIT_CHECKPOINT_MINUTES", 10,
                                               "10 (minutes between signed checkpoints)"),
        packaging_grace_seconds=grace,
        previous_secret_keys=_previous_secret_keys(env),
        metrics=_switch(env, "SAFEHAVEN_METRICS", default=False,
                        what="on serves GET /metrics in the Prometheus format; default off"),
        log_format=_log_format(env),
        trusted_proxies=_trusted_proxies(env),
    )
