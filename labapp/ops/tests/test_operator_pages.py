"""Operator pages: /cluster/ is for staff; /readyz tells anyone its status alone,
and staff each dependency's state, never an address. Personas: an anonymous
visitor, the learner, and staff (pytest-django's admin user)."""

from __future__ import annotations

import pytest
from django.db import connection
from kubernetes.client.exceptions import ApiException

from labapp.clusters.client import ClusterUnreachable
from labapp.ops import probes
from labapp.ops.probes import Probe
from tests.fixtures.cluster import write_unreachable_kubeconfig
from tests.fixtures.personas import logged_in

pytestmark = pytest.mark.django_db

SECRET = "s3cret-redis-password"


@pytest.fixture
def everything_down(settings, tmp_path, unused_tcp_port) -> int:
    """Redis and the API server on a closed port; returns the port."""
    settings.REDIS_URL = f"redis://:{SECRET}@127.0.0.1:{unused_tcp_port}/0"
    settings.KUBECONFIG = str(write_unreachable_kubeconfig(tmp_path / "kc", unused_tcp_port))
    return unused_tcp_port


def assert_names_no_address(text: str, port: int) -> None:
    for leak in (str(port), "127.0.0.1", "://", SECRET, "kubeconfig", "/tmp"):
        assert leak not in text, leak


def test_the_cluster_page_is_refused_to_anyone_but_staff(client, learner, admin_client, settings):
    settings.KUBECONFIG = "/nonexistent/kubeconfig"
    anonymous = client.get("/cluster/")
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/accounts/login/?next=/cluster/"
    assert logged_in(learner).get("/cluster/").status_code == 403
    assert logged_in(learner).get("/cluster/", headers={"HX-Request": "true"}).status_code == 403
    staff = admin_client.get("/cluster/")
    assert staff.status_code == 503  # reached: the page names the missing kubeconfig
    assert "/nonexistent/kubeconfig" in staff.content.decode()


def test_anonymous_readyz_answers_with_its_status_alone(client, learner, everything_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    text = response.content.decode()
    assert_names_no_address(text, everything_down)
    for name in ("database", "redis", "cluster", "tracker", "sqlite", "postgres"):
        assert name not in text
    # A signed-in learner is no operator either.
    assert logged_in(learner).get("/readyz").json() == {"status": "unavailable"}


def test_anonymous_readyz_says_ok_when_ready(client, monkeypatch):
    ready = [Probe("database", True, "sqlite"), Probe("cluster", True, "v1.37.2")]
    monkeypatch.setattr(probes, "readiness", lambda: ready)
    monkeypatch.setattr(probes, "degradations", lambda: [])
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_others_share_one_answer_while_staff_ask_afresh(
    client, learner, admin_client, everything_down, monkeypatch, settings
):
    """An anonymous flood reaches the dependencies once per READYZ_SHARED_SECONDS.
    The probes are the real ones (against closed ports), counted as they run."""
    rounds: list[int] = []
    real = probes.readiness

    def counted() -> list[Probe]:
        rounds.append(1)
        return real()

    monkeypatch.setattr(probes, "readiness", counted)
    settings.READYZ_SHARED_SECONDS = 60
    for _ in range(5):
        assert client.get("/readyz").json() == {"status": "unavailable"}
    assert logged_in(learner).get("/readyz").status_code == 503
    assert len(rounds) == 1
    admin_client.get("/readyz")
    admin_client.get("/readyz")
    assert len(rounds) == 3  # staff: each a fresh round
    settings.READYZ_SHARED_SECONDS = 0  # an answer of any age is too old
    client.get("/readyz")
    assert len(rounds) == 4


def test_staff_see_each_dependency_without_an_address(admin_client, everything_down):
    response = admin_client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    checks = body["checks"]
    assert set(checks) == {"database", "redis", "cluster", "tracker"}
    assert checks["database"] == {"ok": True, "detail": connection.vendor}
    assert checks["redis"] == {"ok": False, "detail": "could not connect"}
    assert checks["cluster"] == {"ok": False, "detail": "the API server could not be reached"}
    # Redis is down, so the tracker's heartbeat cannot be read: it says why, and where not.
    assert checks["tracker"] == {
        "ok": False,
        "detail": "its heartbeat cannot be read (Redis could not connect)",
    }
    assert_names_no_address(response.content.decode(), everything_down)


def test_staff_see_a_missing_kubeconfig_without_its_path(admin_client, settings, tmp_path):
    settings.KUBECONFIG = str(tmp_path / "nope.yaml")
    detail = admin_client.get("/readyz").json()["checks"]["cluster"]["detail"]
    assert detail == "the admin kubeconfig does not exist"


@pytest.mark.parametrize(
    "cause, detail",
    [
        (ApiException(status=401, reason="Unauthorized"), "the API server answered HTTP 401"),
        (OSError("connecting to 10.1.2.3:6443: refused"), "the API server could not be reached"),
    ],
)
def test_the_cluster_probe_says_the_cause_not_the_server(monkeypatch, cause, detail):
    def unreachable(kubeconfig):
        raise ClusterUnreachable(f"https://10.1.2.3:6443: {cause}") from cause

    monkeypatch.setattr(probes, "cluster_summary", unreachable)
    assert probes.probe_cluster() == Probe("cluster", False, detail)


def test_a_kubeconfig_that_does_not_load_is_not_ready_rather_than_an_error(
    admin_client, settings, tmp_path
):
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters: [this is not a kubeconfig")
    settings.KUBECONFIG = str(broken)
    response = admin_client.get("/readyz")
    assert response.status_code == 503
    detail = response.json()["checks"]["cluster"]["detail"]
    assert detail.startswith("the cluster check failed (") and str(tmp_path) not in detail
