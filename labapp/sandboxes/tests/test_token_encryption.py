"""The learner's kubeconfig, with its token, is encrypted at rest: the database
holds Fernet tokens, the code reads plaintext, and existing rows are encrypted
by the data migration."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from django.db import connection

from labapp.environment import env_str
from labapp.sandboxes.models import Sandbox

pytestmark = pytest.mark.django_db
TOKEN = "eyJhbGciOiJSUzI1NiJ9.the-learners-token.signature"
KUBECONFIG = f"apiVersion: v1\nkind: Config\nusers:\n- name: me\n  user:\n    token: {TOKEN}\n"
MIGRATION = importlib.import_module("labapp.sandboxes.migrations.0005_encrypt_learner_kubeconfig")


def stored(sandbox: Sandbox) -> str:
    """The column as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT learner_kubeconfig FROM sandboxes_sandbox WHERE id = %s", [sandbox.id]
        )
        return cursor.fetchone()[0]


def store_raw(sandbox: Sandbox, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sandboxes_sandbox SET learner_kubeconfig = %s WHERE id = %s",
            [value, sandbox.id],
        )


class SchemaEditor:
    """What the migration's reverse uses of a schema editor (a real one cannot
    open inside the test's transaction on SQLite)."""

    connection = connection

    def quote_name(self, name: str) -> str:
        return connection.ops.quote_name(name)


@pytest.fixture
def sandbox(learner) -> Sandbox:
    return Sandbox.objects.create(
        owner=learner,
        lab_id="tiny",
        slug="abc123",
        namespaces={"shop": "shop-abc123"},
        learner_kubeconfig=KUBECONFIG,
    )


def test_the_database_holds_no_token_and_the_code_reads_it_plainly(sandbox):
    raw = stored(sandbox)
    assert raw.startswith("gAAAAA") and TOKEN not in raw
    assert Sandbox.objects.get(id=sandbox.id).learner_kubeconfig == KUBECONFIG
    # A renewed token (an update, not a save) is encrypted too.
    renewed = KUBECONFIG.replace(TOKEN, "a-renewed-token")
    Sandbox.objects.filter(id=sandbox.id).update(learner_kubeconfig=renewed)
    assert "a-renewed-token" not in stored(sandbox)
    assert Sandbox.objects.get(id=sandbox.id).learner_kubeconfig == renewed


def test_a_dedicated_key_takes_over_and_old_values_still_read(sandbox, settings):
    settings.TOKEN_KEY = "a-dedicated-key-for-learner-tokens-0123456789"
    assert Sandbox.objects.get(id=sandbox.id).learner_kubeconfig == KUBECONFIG
    Sandbox.objects.get(id=sandbox.id).save()  # written again: under the dedicated key
    settings.SECRET_KEY = "the-secret-key-rotated-without-a-fallback-0123456789"
    assert Sandbox.objects.get(id=sandbox.id).learner_kubeconfig == KUBECONFIG


def test_a_value_no_key_opens_reads_empty_and_asks_for_a_new_token(sandbox, settings):
    settings.TOKEN_KEY = "some-other-deployments-key-0123456789abcdef"
    settings.SECRET_KEY = "and-another-secret-key-0123456789abcdefghijkl"
    lost = Sandbox.objects.get(id=sandbox.id)
    assert lost.learner_kubeconfig == ""
    assert lost.token_needs_refresh()


def test_the_key_may_come_from_a_file(tmp_path):
    key_file = tmp_path / "token.key"
    key_file.write_text("from-a-file-0123456789\n")
    environ = {"LABAPP_TOKEN_KEY_FILE": str(key_file)}
    assert env_str("LABAPP_TOKEN_KEY", "", environ) == "from-a-file-0123456789"


def test_the_data_migration_encrypts_plaintext_rows_and_can_undo_it(sandbox, another_learner):
    store_raw(sandbox, KUBECONFIG)  # as a row written before encryption
    empty = Sandbox.objects.create(owner=another_learner, lab_id="tiny", slug="def456")
    assert Sandbox.objects.get(id=sandbox.id).learner_kubeconfig == KUBECONFIG  # still reads
    MIGRATION.encrypt_existing(django_apps, None)
    raw = stored(sandbox)
    assert raw.startswith("gAAAAA") and TOKEN not in raw
    assert stored(empty) == ""
    assert Sandbox.objects.get(id=sandbox.id).learner_kubeconfig == KUBECONFIG
    MIGRATION.encrypt_existing(django_apps, None)  # twice does no harm
    assert Sandbox.objects.get(id=sandbox.id).learner_kubeconfig == KUBECONFIG
    MIGRATION.decrypt_existing(django_apps, SchemaEditor())
    assert stored(sandbox) == KUBECONFIG
