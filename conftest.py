import pytest
from django.conf import settings

pytest_plugins = [
    "tests.fixtures.personas",
    "tests.fixtures.catalog",
    "tests.fixtures.cluster",
    "tests.fixtures.services",
    "tests.fixtures.browser",
]

# A test that uses any of these fixtures needs what the fast lane (`make
# test-fast`, `pytest -m "not cluster"`) has not: the local control plane or
# the binaries its build makes (yq), a Redis and Celery stack, or the browser.
# It is marked `cluster` here, so no test has to remember to say so.
NEEDS_CLUSTER = frozenset(
    {
        "local_cluster",  # the control plane (kubectl, toolchain and stack_env use it)
        "kubectl",
        "toolchain",
        "redis_server",
        "stack_env",
        "live_stack",
        "browser",
        "page",
        "yq_path",  # labapp/shell/tests: the yq the control-plane build makes
    }
)


# A test touches the database when pytest-django lets it (the django_db mark, or
# one of these fixtures), or when it starts processes that share the test database.
DATABASE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "admin_user",
        "admin_client",
        "django_user_model",
        "stack_env",
        "live_stack",
    }
)


def touches_the_database(item: pytest.Item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))
    return item.get_closest_marker("django_db") is not None or bool(fixtures & DATABASE_FIXTURES)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if NEEDS_CLUSTER.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)
        if touches_the_database(item):
            item.add_marker(pytest.mark.database)


def pytest_configure(config: pytest.Config) -> None:
    # Django's advice for faster tests: a cheap password hasher in the test process
    # (admin_user, admin_client). The servers and workers it starts keep the real one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
