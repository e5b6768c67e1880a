from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from labapp.environment import (
    env_bool,
    env_database,
    env_int,
    env_list,
    env_log_format,
    env_str,
    env_worker_concurrency,
)


@pytest.mark.parametrize(
    "raw, expected", [("1", True), ("TRUE", True), ("off", False), ("no", False), ("", True)]
)
def test_booleans_are_read_strictly(raw: str, expected: bool) -> None:
    assert env_bool("FLAG", True, {"FLAG": raw}) is expected


def test_a_bad_boolean_stops_start_up_naming_the_variable() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"DJANGO_DEBUG='maybe' is not a boolean"):
        env_bool("DJANGO_DEBUG", False, {"DJANGO_DEBUG": "maybe"})


def test_a_bad_integer_names_the_variable() -> None:
    with pytest.raises(ImproperlyConfigured, match="WORKERS='two'"):
        env_int("WORKERS", 1, {"WORKERS": "two"})


def test_secrets_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    assert env_str("KEY", "default", {"KEY_FILE": str(secret)}) == "s3cret"


def test_a_secret_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"KEY_FILE=.*cannot be read"):
        env_str("KEY", "default", {"KEY_FILE": str(tmp_path / "missing")})


def test_value_and_file_together_are_ambiguous(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="not both"):
        env_str("KEY", "", {"KEY": "a", "KEY_FILE": str(tmp_path)})


def test_lists_split_on_commas() -> None:
    hosts = env_list("HOSTS", ["x"], {"HOSTS": "a.example, b.example,"})
    assert hosts == ["a.example", "b.example"]
    assert env_list("HOSTS", ["x"], {}) == ["x"]


# -- DATABASE_URL, read by dj-database-url ---------------------------------------------


def test_database_url_keeps_sslmode_and_other_options() -> None:
    url = (
        "postgres://lab:s%40cret%2F1@db.example.org:6432/labapp"
        "?sslmode=require&sslrootcert=/etc/ssl/rds.pem&connect_timeout=5"
    )
    database = env_database("DATABASE_URL", {"DATABASE_URL": url})
    assert database is not None
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["NAME"], database["USER"], database["PASSWORD"]) == (
        "labapp",
        "lab",
        "s@cret/1",
    )
    assert (database["HOST"], database["PORT"]) == ("db.example.org", "6432")
    assert database["OPTIONS"] == {
        "sslmode": "require",
        "sslrootcert": "/etc/ssl/rds.pem",
        "connect_timeout": 5,
    }
    assert database["CONN_MAX_AGE"] == 60
    assert database["CONN_HEALTH_CHECKS"] is True


def test_database_url_without_options_or_port() -> None:
    database = env_database("DATABASE_URL", {"DATABASE_URL": "postgresql://lab@postgres/labapp"})
    assert database is not None
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("postgres", "", "labapp")
    assert "OPTIONS" not in database


def test_database_url_unset_means_sqlite() -> None:
    assert env_database("DATABASE_URL", {}) is None
    assert env_database("DATABASE_URL", {"DATABASE_URL": "  "}) is None


def test_database_url_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "database-url"
    secret.write_text("postgres://lab:pw@db/labapp?sslmode=verify-full\n")
    database = env_database("DATABASE_URL", {"DATABASE_URL_FILE": str(secret)})
    assert database is not None
    assert database["PASSWORD"] == "pw"
    assert database["OPTIONS"] == {"sslmode": "verify-full"}


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://u:p@db/labapp", "must look like postgres://"),
        ("db.example.org/labapp", "must look like postgres://"),
        ("postgres://u:p@db:5432/", "names no database"),
        ("postgres://u:p@db:port/labapp", "cannot be read"),
    ],
)
def test_bad_database_urls_stop_start_up(url: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message) as raised:
        env_database("DATABASE_URL", {"DATABASE_URL": url})
    assert "p@db" not in str(raised.value)  # never the password


def test_the_settings_read_database_url_with_its_options() -> None:
    """The real settings module, in a process of its own, with sslmode in the URL."""
    import subprocess
    import sys

    from django.conf import settings

    script = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "labapp.settings",
            "DATABASE_URL": "postgres://u:p@db/labapp?sslmode=require&application_name=labapp",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '{"sslmode": "require", "application_name": "labapp"}'


# -- LABAPP_LOG_FORMAT ------------------------------------------------------------------


def test_log_format_follows_debug_unless_set() -> None:
    assert env_log_format({}) == "text"
    assert env_log_format({"DJANGO_DEBUG": "false"}) == "json"
    assert env_log_format({"DJANGO_DEBUG": "false", "LABAPP_LOG_FORMAT": "text"}) == "text"
    assert env_log_format({"LABAPP_LOG_FORMAT": "json"}) == "json"
    with pytest.raises(ImproperlyConfigured, match="must be text or json"):
        env_log_format({"LABAPP_LOG_FORMAT": "xml"})


def test_worker_sizes_default_to_two_and_six_per_core_with_the_slow_lane_capped():
    assert env_worker_concurrency(2, {}) == (4, 12)
    assert env_worker_concurrency(16, {}) == (32, 32)
    sizes = {"LABAPP_WORKER_CONCURRENCY": "3", "LABAPP_SLOW_WORKER_CONCURRENCY": "5"}
    assert env_worker_concurrency(2, sizes) == (3, 5)
