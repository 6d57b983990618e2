"""Settings from the environment: strict helpers, defaults that run on a laptop."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from muxweb.settings import env_bool, env_number
from tests.conftest import ROOT


def test_boolean_typo_is_an_error_not_false(monkeypatch):
    monkeypatch.setenv("MUXWEB_FLAG", "ture")
    with pytest.raises(ImproperlyConfigured):
        env_bool("MUXWEB_FLAG", False)
    for raw, expected in (("1", True), ("Yes", True), ("off", False), ("0", False)):
        monkeypatch.setenv("MUXWEB_FLAG", raw)
        assert env_bool("MUXWEB_FLAG", not expected) is expected


def test_an_empty_boolean_means_unset(monkeypatch):
    for raw in ("", "   "):
        monkeypatch.setenv("MUXWEB_FLAG", raw)
        assert env_bool("MUXWEB_FLAG", True) is True
        assert env_bool("MUXWEB_FLAG", False) is False


def test_number_typo_is_an_error(monkeypatch):
    monkeypatch.setenv("MUXWEB_N", "twelve")
    with pytest.raises(ImproperlyConfigured):
        env_number("MUXWEB_N", 1)


def settings_in_fresh_process(env: dict, expression: str) -> str:
    code = (
        f"import django; django.setup(); from django.conf import settings as s; print({expression})"
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MUXWEB_", "DATABASE_URL", "REDIS_URL"))
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "muxweb.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_zero_configuration_is_sqlite_wal_orm_broker_and_the_simulator(tmp_path):
    env = {"MUXWEB_DATA_DIR": str(tmp_path)}
    db = settings_in_fresh_process(env, "s.DATABASES['default']")
    assert "sqlite3" in db and str(tmp_path) in db
    assert "'transaction_mode': 'IMMEDIATE'" in db and "journal_mode=WAL" in db
    assert settings_in_fresh_process(env, "s.Q_CLUSTER['orm']") == "default"
    assert settings_in_fresh_process(env, "s.MUXWEB_USE_SIMULATOR") == "True"
    q = settings_in_fresh_process(
        env, "(s.Q_CLUSTER['timeout'] < s.Q_CLUSTER['retry'], s.Q_CLUSTER['ack_failures'])"
    )
    assert q == "(True, True)"


def test_database_and_redis_urls_switch_engines(tmp_path):
    env = {
        "MUXWEB_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://u:p@db.example:5433/mux",
        "REDIS_URL": "redis://127.0.0.1:6379/2",
        "MUXWEB_API_BASE": "https://relay.example/v1/",
        "MUXWEB_API_KEY": "k",
    }
    assert (
        settings_in_fresh_process(env, "s.DATABASES['default']['ENGINE']")
        == "django.db.backends.postgresql"
    )
    assert settings_in_fresh_process(env, "s.Q_CLUSTER['redis']") == "redis://127.0.0.1:6379/2"
    assert settings_in_fresh_process(env, "s.MUXWEB_API_BASE") == "https://relay.example/v1"
    assert settings_in_fresh_process(env, "s.MUXWEB_USE_SIMULATOR") == "False"


def test_an_empty_muxweb_https_keeps_https_only_on(tmp_path):
    env = {"MUXWEB_DATA_DIR": str(tmp_path), "MUXWEB_HTTPS": "", "DEBUG": " "}
    values = settings_in_fresh_process(
        env, "(s.DEBUG, s.MUXWEB_HTTPS, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE)"
    )
    assert values == "(False, True, True, True)"
