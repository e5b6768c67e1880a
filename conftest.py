pytest_plugins = ["tests.fixtures.cluster", "tests.fixtures.services", "tests.fixtures.browser"]
