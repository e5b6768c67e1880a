"""Workers on several machines with no shared disk, as two hosts would run them.

Three Celery workers, each with a SANDBOX_HOME of its own: the provisioner
makes the sandbox, then a learner's commands alternate between host A and host
B (one of them runs at a time, so each command lands where the test says).
Each host makes the learner's workspace and kubeconfig from the database and
the lab files when it needs them, and the lab completes. uvicorn runs two
processes, so the page's live channel and the runs' streams are served by
whichever process takes them. The provisioner, which consumes only the
provisioning queue, runs at a lower CPU priority, and so does every process it
starts.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from labapp.learning.models import LabProgress, StepProgress
from labapp.learning.services import lab_start
from labapp.ops.devstack import RedisServer, Stack, free_port, kill_group
from labapp.runs.models import CommandRun
from labapp.sandboxes.models import Sandbox
from tests.fixtures.learners import HttpLearner, wait_until_ready
from tests.fixtures.services import use_broker
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@dataclass
class Hosts:
    stack: Stack
    url: str
    homes: dict[str, Path]
    running: subprocess.Popen | None = None

    def only(self, host: str) -> None:
        """Stop the command worker that runs, start host's: the next command is its."""
        if self.running is not None:
            self.stack.processes.remove(self.running)
            kill_group(self.running, 15)  # SIGTERM: a warm shutdown
        self.running = self.stack.start_worker(
            host,
            concurrency=2,
            queues="interactive,slow",  # both lanes of learners' commands
            LABAPP_SANDBOX_HOME=str(self.homes[host]),
        )


@pytest.fixture
def hosts(stack_env, tmp_path) -> Iterator[Hosts]:
    """A deployment of its own (its own Redis, so no other test's worker takes its
    tasks), sharing the test database and cluster; no worker shares a folder."""
    redis = RedisServer(free_port(), tmp_path)
    redis.start()
    before = settings.REDIS_URL
    settings.REDIS_URL = redis.url
    use_broker(redis.url)
    homes = {name: tmp_path / f"home-{name}" for name in ("provisioner", "a", "b")}
    stack = Stack({**stack_env, "REDIS_URL": redis.url}, tmp_path / "logs")
    try:
        stack.start_worker(
            "provisioner",
            concurrency=1,
            queues="provisioning",
            LABAPP_SANDBOX_HOME=str(homes["provisioner"]),
        )
        stack.start_tracker()
        port = free_port()
        stack.start_uvicorn(port, workers=2)
        yield Hosts(stack, f"http://127.0.0.1:{port}", homes)
    finally:
        stack.stop_all()
        redis.stop()
        settings.REDIS_URL = before
        use_broker(before)


def nice_of(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of stat: the nice value


def group_of(pid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _pgid(p) == pid]


def _pgid(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return None


def run_and_stream(who: HttpLearner, sandbox: Sandbox, command: str) -> CommandRun:
    posted = who.post(f"/sandboxes/{sandbox.slug}/runs/", {"command": command})
    assert posted.status_code == 202, posted.text
    found = re.search(r'id="run-(\d+)"', posted.text)
    assert found, posted.text
    run_id = int(found.group(1))
    events = []
    with who.client.stream("GET", f"/runs/{run_id}/stream/") as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
                if events[-1] == "done":
                    break
    assert "done" in events, events
    return CommandRun.objects.get(id=run_id)


class LiveChannel(threading.Thread):
    """The lab page's SSE channel, read as the browser does, on its own thread."""

    def __init__(self, who: HttpLearner, lab_id: str) -> None:
        super().__init__(daemon=True)
        self.who, self.lab_id = who, lab_id
        self.events: list[str] = []
        self.opened = threading.Event()
        self.client = httpx.Client(base_url=who.client.base_url, cookies=who.client.cookies)

    def run(self) -> None:
        try:
            with self.client.stream("GET", f"/labs/{self.lab_id}/events/", timeout=None) as sse:
                self.opened.set()
                for line in sse.iter_lines():
                    if line.startswith("event: "):
                        self.events.append(line.removeprefix("event: "))
        except httpx.HTTPError:
            pass  # closed by close()

    def close(self) -> None:
        """The learner closes the page."""
        self.client.close()


def test_runs_alternate_between_two_hosts_with_no_shared_disk_and_the_lab_completes(
    hosts, learner, tiny_lab
):
    progress: LabProgress = lab_start(user=learner, lab_id=tiny_lab.id)
    sandbox = wait_until_ready(Sandbox.objects.get(owner=learner, lab_id=tiny_lab.id))
    ns = sandbox.namespaces["shop"]
    ada = HttpLearner.login(learner, hosts.url)
    channel = LiveChannel(ada, tiny_lab.id)
    channel.start()
    assert channel.opened.wait(10)
    plan = [
        ("a", "kubectl apply -k shop/restricted"),
        ("b", "kubectl apply -k shop/configured"),
        ("a", f"kubectl -n {ns} delete pod --all"),
        ("b", f"kubectl -n {ns} get pod"),
    ]
    for host, command in plan:
        hosts.only(host)
        run = run_and_stream(ada, sandbox, command)
        assert run.state == CommandRun.State.SUCCEEDED, (command, run.stderr, run.error)
        assert run.worker.startswith(f"{host}@"), run.worker
    wait_for(
        lambda: progress.steps.filter(state=StepProgress.State.PASSED).count() == 3,
        timeout=60,
        what="every step to pass",
    )
    progress.refresh_from_db()
    assert progress.is_complete
    # Every host made its own copy: none was handed the files of another. The
    # provisioner ran the lab's setup (a workspace, admin credentials); hosts A
    # and B ran the learner's commands (a workspace, the learner's kubeconfig).
    kubeconfig = Sandbox.objects.get(id=sandbox.id).learner_kubeconfig
    for host in ("provisioner", "a", "b"):
        workspace = hosts.homes[host] / sandbox.slug / "workspace"
        assert (workspace / "shop" / "base" / "kustomization.yaml").is_file(), host
        assert (workspace / ".kube" / "cache" / "discovery").is_dir(), host
    for host in ("a", "b"):
        assert (hosts.homes[host] / sandbox.slug / "kubeconfig").read_text() == kubeconfig
    # Whichever uvicorn process served the channel heard every tick.
    wait_for(lambda: channel.events.count("progress") >= 3, timeout=30, what="three ticks")
    channel.close()


def test_the_provisioner_runs_at_a_lower_priority_than_the_command_workers(hosts):
    hosts.only("a")
    provisioner = next(p for p in hosts.stack.processes if "provisioning" in p.args)
    assert provisioner.pid in group_of(provisioner.pid)
    niced = [nice_of(pid) for pid in group_of(provisioner.pid)]
    assert len(niced) >= 2 and set(niced) == {settings.PROVISIONING_NICE}, niced  # its pool too
    assert hosts.running is not None
    assert {nice_of(pid) for pid in group_of(hosts.running.pid)} == {0}
