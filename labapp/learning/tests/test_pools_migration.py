"""Workshops made before warm pools existed get theirs on upgrade: the data
migration run for real, from the schema before it to the one after it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("learning", "0002_workshop_pools")]
AFTER = [("learning", "0003_pools_for_open_workshops")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_open_workshops_from_before_pools_get_a_pool_per_known_lab(settings, tiny_lab):
    settings.POOL_WORKSHOP_PERCENT = 50
    now = timezone.now()
    try:
        old = migrate(BEFORE)
        workshop = old.get_model("learning", "Workshop")
        made = {
            name: workshop.objects.create(
                title=name,
                join_code=name[:6].upper(),
                lab_ids=labs,
                starts_at=now - dt.timedelta(hours=1),
                ends_at=now + ends,
                capacity=9,
            ).id
            for name, labs, ends in (
                ("running", [tiny_lab.id, "no-such-lab", tiny_lab.id], dt.timedelta(hours=1)),
                ("ended", [tiny_lab.id], -dt.timedelta(minutes=1)),
            )
        }
        new = migrate(AFTER)
        workshops = new.get_model("learning", "Workshop").objects
        running = workshops.get(id=made["running"])
        (pool,) = running.pools.all()  # one per lab, and none for a lab that is gone
        assert (pool.lab_id, pool.size, pool.capacity) == (tiny_lab.id, 5, 9)
        assert (pool.starts_at, pool.ends_at) == (running.starts_at, running.ends_at)
        assert not pool.standing
        assert not workshops.get(id=made["ended"]).pools.exists()
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
