"""Learners' kubeconfigs (with their tokens) are encrypted at rest: the field
becomes an EncryptedTextField, and the rows written before are encrypted."""

from django.db import migrations

import labapp.sandboxes.fields


def encrypt_existing(apps, schema_editor):
    Sandbox = apps.get_model("sandboxes", "Sandbox")
    # The field reads plaintext as it is and writes it encrypted.
    for sandbox in Sandbox.objects.exclude(learner_kubeconfig="").only("id", "learner_kubeconfig"):
        sandbox.save(update_fields=["learner_kubeconfig"])


def decrypt_existing(apps, schema_editor):
    Sandbox = apps.get_model("sandboxes", "Sandbox")
    table = schema_editor.quote_name(Sandbox._meta.db_table)
    with schema_editor.connection.cursor() as cursor:
        for sandbox in Sandbox.objects.exclude(learner_kubeconfig="").only(
            "id", "learner_kubeconfig"
        ):
            cursor.execute(
                f"UPDATE {table} SET learner_kubeconfig = %s WHERE id = %s",
                [sandbox.learner_kubeconfig, sandbox.id],
            )


class Migration(migrations.Migration):
    dependencies = [
        ("sandboxes", "0004_pools"),
    ]

    operations = [
        migrations.AlterField(
            model_name="sandbox",
            name="learner_kubeconfig",
            field=labapp.sandboxes.fields.EncryptedTextField(blank=True),
        ),
        migrations.RunPython(encrypt_existing, decrypt_existing),
    ]
