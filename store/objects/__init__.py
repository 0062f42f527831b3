"""Opening the object store named by one URL (``SAFEHAVEN_OBJECT_STORE``).

- ``file:///srv/safehaven/objects``: a folder (default ``file://<var dir>/objects``);
- ``s3://bucket/prefix``: S3 or S3-compatible storage, configured by ``AWS_ENDPOINT_URL``,
  ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (``AWS_SESSION_TOKEN``);
- ``az://container/prefix`` (or ``azure://``): Azure Blob Storage, configured by
  ``AZURE_STORAGE_ACCOUNT_NAME``, ``AZURE_STORAGE_ACCOUNT_KEY`` or
  ``AZURE_STORAGE_SAS_TOKEN``, and ``AZURE_STORAGE_ENDPOINT`` (Azurite, sovereign clouds).

An endpoint must be https; plain http is allowed only to this machine (127.0.0.1,
localhost, ::1), for a test server. With no access key, the library falls back to the
platform's own credentials (instance or workload identity), as the AWS and Azure tools do.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from obstore.store import AzureStore, S3Store

from bot.objects import ObjectKey, ObjectKeyError, ObjectStore
from bot.settings import SettingsError
from store.objects.local import LocalObjectStore
from store.objects.remote import RemoteObjectStore

if TYPE_CHECKING:
    from obstore.store import AzureConfig, ClientConfig, S3Config

__all__ = ["OBJECT_STORE_VARIABLE", "LocalObjectStore", "RemoteObjectStore",
           "default_object_store_url", "object_store_url", "open_object_store"]

OBJECT_STORE_VARIABLE = "SAFEHAVEN_OBJECT_STORE"


def default_object_store_url(var_dir: Path) -> str:
    """``file://`` URL of ``<var dir>/objects``, the embedded default."""
    return (var_dir / "objects").resolve().as_uri()


def object_store_url(env: Mapping[str, str], var_dir: Path) -> str:
    """``SAFEHAVEN_OBJECT_STORE`` from ``env``, or the default under ``var_dir``."""
    return env.get(OBJECT_STORE_VARIABLE, "").strip() or default_object_store_url(var_dir)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _client_options(endpoint: str | None, variable: str) -> ClientConfig:
    """allow_http, set either way (so a stray AWS_ALLOW_HTTP in the environment cannot widen
    it): only for an http endpoint on this machine."""
    if endpoint is None:
        return {"allow_http": False}
    parts = urlsplit(endpoint)
    if parts.scheme == "https":
        return {"allow_http": False}
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return {"allow_http": True}
    raise SettingsError(f"{variable} must be an https:// URL (plain http only to 127.0.0.1 "
                        "or localhost, for a test server).")


def _location(url: str) -> tuple[str, str | None]:
    """(bucket or container, prefix) of ``s3://bucket/prefix``."""
    parts = urlsplit(url)
    # A user or key anywhere ("s3://KEY:SECRET/WITH/SLASH@bucket" ends the host early): the
    # message never repeats any of it.
    if not parts.netloc or parts.query or parts.fragment or "@" in url or ":" in parts.netloc:
        raise SettingsError(f"{OBJECT_STORE_VARIABLE} must look like "
                            f"{parts.scheme}://bucket/optional/prefix.")
    prefix = unquote(parts.path).strip("/")
    if prefix:
        try:
            ObjectKey(prefix)
        except ObjectKeyError:
            raise SettingsError(f"{OBJECT_STORE_VARIABLE}: the prefix {prefix!r} may have only "
                                "letters, digits, '.', '_', '-' and '/'.") from None
    return parts.netloc, prefix or None


def _s3(url: str, env: Mapping[str, str]) -> RemoteObjectStore:
    bucket, prefix = _location(url)
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    config: S3Config = {
        "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"}
    if endpoint:
        config["endpoint"] = endpoint
    key_id, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if bool(key_id) != bool(secret):
        raise SettingsError("Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither.")
    if key_id and secret:
        config["access_key_id"] = key_id
        config["secret_access_key"] = secret
        if env.get("AWS_SESSION_TOKEN"):
            config["session_token"] = env["AWS_SESSION_TOKEN"]
    backend = S3Store(bucket, prefix=prefix, config=config,
                      client_options=_client_options(endpoint, "AWS_ENDPOINT_URL"))
    return RemoteObjectStore(backend, label=f"s3://{bucket}/{prefix or ''}")


def _azure(url: str, env: Mapping[str, str]) -> RemoteObjectStore:
    container, prefix = _location(url)
    endpoint = env.get("AZURE_STORAGE_ENDPOINT") or None
    config: AzureConfig = {}
    if env.get("AZURE_STORAGE_ACCOUNT_NAME"):
        config["account_name"] = env["AZURE_STORAGE_ACCOUNT_NAME"]
    if env.get("AZURE_STORAGE_ACCOUNT_KEY"):
        config["account_key"] = env["AZURE_STORAGE_ACCOUNT_KEY"]
    if env.get("AZURE_STORAGE_SAS_TOKEN"):
        config["sas_key"] = env["AZURE_STORAGE_SAS_TOKEN"]
    if endpoint:
        config["endpoint"] = endpoint
    if "account_name" not in config:
        raise SettingsError("Set AZURE_STORAGE_ACCOUNT_NAME for an az:// object store.")
    backend = AzureStore(container, prefix=prefix, config=config,
                         client_options=_client_options(endpoint, "AZURE_STORAGE_ENDPOINT"))
    return RemoteObjectStore(backend, label=f"az://{container}/{prefix or ''}")


def open_object_store(url: str, *, env: Mapping[str, str] | None = None) -> ObjectStore:
    """The store for ``url`` (see the table above), configured from ``env`` (default: the
    process environment). A bad URL or setting raises :class:`SettingsError` naming the
    variable; nothing is contacted until the first operation."""
    env = os.environ if env is None else env
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file":
        parts = urlsplit(url)
        path = Path(unquote(parts.path))
        if parts.netloc not in ("", "localhost") or not path.is_absolute():
            raise SettingsError(f"{OBJECT_STORE_VARIABLE} must be file:///absolute/path "
                                "for a folder on this machine.")
        return LocalObjectStore(path)
    if scheme in ("s3", "s3a"):
        return _s3(url, env)
    if scheme in ("az", "azure"):
        return _azure(url, env)
    raise SettingsError(f"{OBJECT_STORE_VARIABLE} must start with file://, s3:// or az:// "
                        f"(got {scheme or 'no scheme'}://).")
