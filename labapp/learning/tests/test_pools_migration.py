"""Workshops made before warm pools existed get theirs on upgrade: the data
migration run for real, from the schema before it to the one after it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from labapp.catalog.registry import all_labs
from tests.fixtures.catalog import use_lab_root

BEFORE = [("learning", "0002_workshop_pools")]
AFTER = [("learning", "0003_pools_for_open_workshops")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def workshops_before_pools(labs: list[str]) -> dict[str, int]:
    """At the schema before the migration: a running workshop and an ended one."""
    now = timezone.now()
    workshop = migrate(BEFORE).get_model("learning", "Workshop")
    return {
        name: workshop.objects.create(
            title=name,
            join_code=name[:6].upper(),
            lab_ids=labs,
            starts_at=now - dt.timedelta(hours=1),
            ends_at=now + ends,
            capacity=9,
        ).id
        for name, ends in (("running", dt.timedelta(hours=1)), ("ended", -dt.timedelta(minutes=1)))
    }


@pytest.mark.django_db(transaction=True)
def test_open_workshops_from_before_pools_get_a_pool_per_known_lab(settings, tiny_lab):
    settings.POOL_WORKSHOP_PERCENT = 50
    try:
        made = workshops_before_pools([tiny_lab.id, "no-such-lab", tiny_lab.id])
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


@pytest.mark.django_db(transaction=True)
def test_labs_that_do_not_load_do_not_stop_the_upgrade(settings):
    """A malformed lab file must not block `migrate`: every listed lab gets a pool
    (filling skips a lab that is gone), and `manage.py check` names the problem."""
    use_lab_root(settings, Path(__file__).parents[2] / "catalog/tests/broken_labs")
    try:
        made = workshops_before_pools(["bad-yaml", "tiny"])
        new = migrate(AFTER)
        running = new.get_model("learning", "Workshop").objects.get(id=made["running"])
        assert sorted(p.lab_id for p in running.pools.all()) == ["bad-yaml", "tiny"]
    finally:
        all_labs.cache_clear()
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
