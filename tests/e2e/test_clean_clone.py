"""From a clean clone: `make up` in the background, then a scripted learner
completes the Baseline lab over plain HTTP and SSE, with no browser.

This is the README's promise, tested: nothing here is set up by the test
suite except free ports, so the clone installs, builds and boots by itself
(the Go build and pip downloads come from this machine's caches).
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
from functools import partial
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from labapp.clusters.localcluster.processes import pids_mentioning
from labapp.ops.devstack import free_port
from labapp.ops.waiting import wait_for

pytestmark = pytest.mark.cluster

COMMAND = re.compile(
    r'name="command" value="([^"]*)"><input type="hidden" name="step" '
    r'value="([^"]*)"'
)


@pytest.fixture
def clone(tmp_path) -> Path:
    target = tmp_path / "labapp"
    subprocess.run(["git", "clone", "-q", str(settings.BASE_DIR), str(target)], check=True)
    return target


def step_passed(client: httpx.Client, step: str) -> bool:
    page = client.get("/labs/pss-baseline/").text
    return re.search(rf'class="step step-passed[^"]*" id="step-{step}"', page) is not None


def sse_done(client: httpx.Client, run_id: str) -> dict:
    with client.stream("GET", f"/runs/{run_id}/stream/?format=json") as response:
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "done":
                return json.loads(line[6:])
    raise AssertionError(f"run {run_id}: the stream ended without `done`")


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_make_up_from_a_clean_clone_serves_a_learner_through_the_baseline_lab(clone):
    port, redis_port = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    for leaked in (
        "DJANGO_SETTINGS_MODULE",
        "LABAPP_KUBECONFIG",
        "LABAPP_SQLITE_PATH",
        "DATABASE_URL",
        "DJANGO_ALLOW_ASYNC_UNSAFE",
    ):
        env.pop(leaked, None)
    log = clone / "make-up.log"
    with open(log, "wb") as out:
        make = subprocess.Popen(
            ["make", "up"],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Ctrl-C in a terminal: a suite started in the background (`make test &`)
            # passes SIGINT down ignored, and `make up` would never hear the stop.
            preexec_fn=_interruptible,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: make.poll() is None and _answers(f"{base}/healthz"),
            timeout=600,
            interval=2,
            what=f"`make up` to serve (see {log})",
        )
        learner = httpx.Client(base_url=base, timeout=60, follow_redirects=True)
        learner.get("/")
        csrf = learner.cookies["csrftoken"]
        started = learner.post(
            "/labs/pss-baseline/begin/", data={"name": "Scripted"}, headers={"X-CSRFToken": csrf}
        )
        assert started.status_code == 200
        csrf = learner.cookies["csrftoken"]  # rotated at login
        wait_for(
            lambda: "sandbox-ready" in learner.get("/labs/pss-baseline/sandbox/").text,
            timeout=120,
            what="the sandbox",
        )
        page = learner.get("/labs/pss-baseline/").text
        slug = re.search(r'action="/sandboxes/([a-z0-9]+)/runs/"', page).group(1)
        outputs = []
        steps = COMMAND.findall(page)
        for index, (command, step) in enumerate(steps):
            command = html.unescape(command)
            if " exec " in command:
                continue  # needs real containers; the lab says so
            posted = learner.post(
                f"/sandboxes/{slug}/runs/",
                data={"command": command, "step": step},
                headers={"X-CSRFToken": csrf, "HX-Request": "true"},
            )
            assert posted.status_code == 202, posted.text
            run_id = re.search(r'id="run-(\d+)"', posted.text).group(1)
            done = sse_done(learner, run_id)
            assert done["state"] == "succeeded", (command, done)
            outputs.append(learner.get(f"/runs/{run_id}/").text)
            if index + 1 == len(steps) or steps[index + 1][1] != step:
                # As a learner reads on: the next step once this one has ticked.
                wait_for(
                    partial(step_passed, learner, step), timeout=60, what=f"step {step} to pass"
                )

        # The tracker ticks the last step a moment after its run ends.
        def complete() -> str | None:
            text = learner.get("/labs/pss-baseline/").text
            return text if 'data-testid="progress">100%' in text else None

        final = wait_for(complete, timeout=60, what="the lab to be complete")
        assert "✓ Lab complete" in final
        assert any("violate the new PodSecurity enforce level" in html.unescape(o) for o in outputs)
    finally:
        os.killpg(make.pid, signal.SIGINT)
        make.wait(timeout=60)
        subprocess.run(
            [str(clone / ".venv/bin/python"), "manage.py", "localcluster", "down"],
            cwd=clone,
            capture_output=True,
        )
    assert pids_mentioning(str(clone)) == []


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
