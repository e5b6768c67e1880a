from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from labapp.environment import env_bool, env_int, env_list, env_str


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
