"""Workshops made before warm pools existed have none: give each workshop that has
not ended yet the pools `workshop create` would have given it (one per lab, sized
from its capacity). Labs no longer in the catalog get none."""

import math

from django.conf import settings
from django.db import migrations
from django.utils import timezone


def give_open_workshops_their_pools(apps, schema_editor):
    from labapp.catalog.loader import LabInvalid
    from labapp.catalog.registry import all_labs

    workshop_model = apps.get_model("learning", "Workshop")
    pool_model = apps.get_model("sandboxes", "SandboxPool")
    workshops = list(workshop_model.objects.filter(ends_at__gt=timezone.now(), pools=None))
    if not workshops:
        return  # a new install, or nothing open: the labs need not even load
    try:
        known = set(all_labs())
    except LabInvalid:
        # The labs do not load now (`manage.py check` names why); the upgrade goes
        # on. Every listed lab gets its pool, and filling skips a lab that is gone.
        known = {lab_id for workshop in workshops for lab_id in workshop.lab_ids}
    for workshop in workshops:
        # As workshop_pool_size says (a migration keeps its own copy of the rule).
        size = math.ceil(workshop.capacity * settings.POOL_WORKSHOP_PERCENT / 100)
        if size == 0:
            continue
        for lab_id in dict.fromkeys(workshop.lab_ids):
            if lab_id not in known:
                continue
            workshop.pools.add(
                pool_model.objects.create(
                    lab_id=lab_id,
                    title=f"{workshop.title} ({workshop.join_code})",
                    size=size,
                    capacity=workshop.capacity,
                    starts_at=workshop.starts_at,
                    ends_at=workshop.ends_at,
                )
            )


class Migration(migrations.Migration):
    dependencies = [
        ("learning", "0002_workshop_pools"),
    ]

    operations = [
        # Backwards there is nothing to undo: the pools are closed with their workshop.
        migrations.RunPython(give_open_workshops_their_pools, migrations.RunPython.noop),
    ]
