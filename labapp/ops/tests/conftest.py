from __future__ import annotations

import pytest

from labapp.ops.probes import forget_shared_probes


@pytest.fixture(autouse=True)
def no_shared_readiness():
    """Each test's /readyz starts from no answer, not an earlier test's."""
    forget_shared_probes()
    yield
    forget_shared_probes()
