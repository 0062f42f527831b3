"""SAFEHAVEN_OBJECT_STORE: one URL picks the store; a bad one stops start-up naming the
variable; plain http only to this machine; no credential in what a store prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import SettingsError
from store.objects import (
    LocalObjectStore,
    RemoteObjectStore,
    default_object_store_url,
    object_store_url,
    open_object_store,
)

S3_ENV = {"AWS_REGION": "eu-west-2", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
          "AWS_SECRET_ACCESS_KEY": "never-shown-secret"}


def test_the_default_is_a_folder_under_the_var_dir(tmp_path: Path) -> None:
    url = object_store_url({}, tmp_path / "var")
    assert url == default_object_store_url(tmp_path / "var")
    assert url == (tmp_path / "var" / "objects").resolve().as_uri()
    store = open_object_store(url)
    assert isinstance(store, LocalObjectStore)
    assert store.root == (tmp_path / "var" / "objects").resolve() and store.root.is_dir()


def test_the_variable_wins_over_the_default(tmp_path: Path) -> None:
    env = {"SAFEHAVEN_OBJECT_STORE": "s3://bucket/prefix"}
    assert object_store_url(env, tmp_path) == "s3://bucket/prefix"
    assert object_store_url({"SAFEHAVEN_OBJECT_STORE": "  "}, tmp_path).startswith("file://")


def test_a_file_url_with_spaces_round_trips(tmp_path: Path) -> None:
    folder = tmp_path / "with space"
    store = open_object_store(folder.as_uri())
    assert isinstance(store, LocalObjectStore) and store.root == folder


@pytest.mark.parametrize("url", [
    "file://otherhost/srv/objects", "file:relative/objects", "ftp://host/objects",
    "/srv/objects", "gs://bucket/prefix", "s3:///no-bucket", "s3://bucket/pre fix",
    "s3://bucket/../up", "s3://user@bucket/x", "s3://bucket/x?versionId=1",
])
def test_bad_urls_name_the_variable(url: str) -> None:
    with pytest.raises(SettingsError, match="SAFEHAVEN_OBJECT_STORE"):
        open_object_store(url, env=S3_ENV)


@pytest.mark.parametrize("endpoint", [
    "http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000",
    "http://127.0.0.2:9000", "https://s3.example.org", "https://10.0.0.5:9000",
])
def test_allowed_s3_endpoints(endpoint: str) -> None:
    store = open_object_store("s3://bucket/safehaven",
                              env={**S3_ENV, "AWS_ENDPOINT_URL": endpoint})
    assert isinstance(store, RemoteObjectStore)
    assert "never-shown-secret" not in repr(store)


@pytest.mark.parametrize("endpoint", [
    "http://10.0.0.5:9000", "http://s3.example.org", "http://127.0.0.1.example.org",
    "ftp://127.0.0.1",
])
def test_plain_http_only_to_this_machine(endpoint: str) -> None:
    env = {**S3_ENV, "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true"}
    with pytest.raises(SettingsError, match="AWS_ENDPOINT_URL must be an https"):
        open_object_store("s3://bucket/safehaven", env=env)


@pytest.mark.parametrize("drop", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
def test_half_a_key_pair_is_refused(drop: str) -> None:
    env = {k: v for k, v in S3_ENV.items() if k != drop}
    with pytest.raises(SettingsError, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        open_object_store("s3://bucket", env=env)


def test_azure_blob_storage() -> None:
    env = {"AZURE_STORAGE_ACCOUNT_NAME": "devstoreaccount1",
           "AZURE_STORAGE_ACCOUNT_KEY": "bmV2ZXItc2hvd24ta2V5",
           "AZURE_STORAGE_ENDPOINT": "http://127.0.0.1:10000/devstoreaccount1"}
    for url in ("az://container/safehaven", "azure://container"):
        store = open_object_store(url, env=env)
        assert isinstance(store, RemoteObjectStore) and "bmV2ZXI" not in repr(store)
    with pytest.raises(SettingsError, match="AZURE_STORAGE_ACCOUNT_NAME"):
        open_object_store("az://container", env={})
    with pytest.raises(SettingsError, match="AZURE_STORAGE_ENDPOINT must be an https"):
        open_object_store("az://container", env={
            **env, "AZURE_STORAGE_ENDPOINT": "http://blob.example.org/devstoreaccount1"})
