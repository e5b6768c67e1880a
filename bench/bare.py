"""Bare kubectl beside the classroom (bench/classroom.py): the lab's commands run from
a shell with a learner's kubeconfig, workspace and discovery cache, but without
labapp, in the same minutes as the class, so that each command type gets a
like-for-like ratio. Also the burst run bare: every learner's apply at once.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from browser import kind_of

if TYPE_CHECKING:  # imported for real only after django.setup()
    from labapp.sandboxes.models import Sandbox

LAB = "pss-baseline"
BURST_APPLY = "kubectl apply -k assets/baseline-workload"
RESET_APPLY = "kubectl apply -k assets/privileged-workload"  # where the lab starts
PSS_LABELS = ("enforce", "warn", "audit")


@dataclass
class BareSample:
    kind: str
    first_byte_s: float
    done_s: float
    at: float


def niceness_of(line: str) -> int:
    """The CPU priority labapp gives this command (its lane's)."""
    from django.conf import settings

    from labapp.shell.lanes import Lane, command_lane
    from labapp.shell.parse import parse_command

    slow = command_lane(parse_command(line)) is Lane.SLOW
    return settings.SLOW_RUN_NICENESS if slow else 0


@dataclass
class BareKubectl:
    """The lab's commands run from a shell in this process, with one learner's
    kubeconfig, workspace and discovery cache: what that learner would get from
    kubectl without labapp. Each runs as labapp runs it: in a session of its own, at
    its lane's CPU priority. It goes through the lab's steps in order, as learners
    do, and puts its sandbox back where the lab starts between rounds. Each apply is
    also run once more at the default priority (`terminal`): what a learner typing it
    in a terminal of their own on this busy machine would get."""

    namespace: str
    env: dict[str, str]
    cwd: Path
    sequence: list[str]
    samples: list[BareSample] = field(default_factory=list)
    terminal: list[BareSample] = field(default_factory=list)

    @classmethod
    def for_learner(cls, username: str) -> BareKubectl:
        from django.contrib.auth.models import User

        from labapp.catalog.registry import get_lab
        from labapp.learning.services import lab_start
        from labapp.lib.placeholders import render
        from labapp.sandboxes.models import Sandbox

        user = User.objects.create_user(username)
        lab_start(user=user, lab_id=LAB, workshop=None)
        sandbox = Sandbox.objects.get(owner=user, lab_id=LAB)
        deadline = time.monotonic() + 600
        while sandbox.state != Sandbox.State.READY:
            if time.monotonic() > deadline or sandbox.state == Sandbox.State.FAILED:
                raise RuntimeError(f"bare kubectl's sandbox: {sandbox.status_message}")
            time.sleep(1)
            sandbox.refresh_from_db()
        env, workspace = learner_shell(sandbox)
        sequence = [
            render(command.run, sandbox.namespaces)
            for step in get_lab(LAB).steps
            for command in step.commands
            if not command.real_nodes_only
        ]
        bare = cls(sandbox.namespaces["assets"], env, workspace, sequence)
        bare.once(sequence[0], record=False)  # a warm discovery cache, as a pooled one is
        return bare

    def once(self, line: str, *, record: bool = True, niceness: int | None = None) -> BareSample:
        from labapp.shell.limits import lower_session_priority

        niceness = niceness_of(line) if niceness is None else niceness
        started = time.monotonic()
        process = subprocess.Popen(
            ["nice", "-n", str(niceness), "bash", "-c", line],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            # A terminal of its own, as labapp gives each command (its own session).
            start_new_session=True,
        )
        lower_session_priority(process.pid, niceness)
        assert process.stdout is not None
        process.stdout.read(1)
        first = time.monotonic() - started
        out, _ = process.communicate()
        done = time.monotonic() - started
        if process.returncode != 0:
            raise RuntimeError(f"bare {line!r} exited {process.returncode}: {out.decode()[:300]}")
        sample = BareSample(kind_of(line), first, done, started)
        if record:
            self.samples.append(sample)
        return sample

    def reset(self) -> None:
        """Back to where the lab starts (not timed): no Pod Security labels, the
        privileged workload applied."""
        from kubernetes import client as k8s

        from labapp.clusters.client import api_client
        from labapp.clusters.config import admin_kubeconfig

        labels = {f"pod-security.kubernetes.io/{mode}": None for mode in PSS_LABELS}
        core = k8s.CoreV1Api(api_client(admin_kubeconfig()))
        core.patch_namespace(self.namespace, {"metadata": {"labels": labels}})
        self.once(RESET_APPLY, record=False)

    def alongside(self, stop: threading.Event, think_s: tuple[float, float]) -> None:
        """Round after round of the lab's commands, paced like a learner."""
        while not stop.is_set():
            self.reset()
            for line in self.sequence:
                if stop.wait(random.uniform(*think_s)):
                    break
                self.once(line)
                if kind_of(line) == "apply -k":
                    self.terminal.append(self.once(line, record=False, niceness=0))
        self.once(BURST_APPLY, record=False)  # where the learners stand for the burst


def learner_shell(sandbox: Sandbox) -> tuple[dict[str, str], Path]:
    """A shell's environment and folder for bare kubectl to run as the sandbox's
    learner: their kubeconfig, workspace and discovery cache, with kubectl and yq."""
    from labapp.clusters.tools import default_tools
    from labapp.sandboxes.workspaces import sandbox_materialize

    sandbox_materialize(sandbox=sandbox)
    tools = default_tools()
    env = {
        "KUBECONFIG": str(sandbox.kubeconfig_path),
        "HOME": str(sandbox.workspace),
        "PATH": f"{Path(tools.kubectl).parent}:{Path(tools.yq).parent}:/usr/bin:/bin",
        "KUBECACHEDIR": str(sandbox.workspace / ".kube/cache"),
    }
    return env, sandbox.workspace


def learner_shells(slugs: list[str]) -> list[tuple[dict[str, str], Path]]:
    """Each learner's shell (learner_shell), for the burst run bare."""
    from labapp.sandboxes.models import Sandbox

    return [learner_shell(sandbox) for sandbox in Sandbox.objects.filter(slug__in=slugs)]


async def bare_burst(
    shells: list[tuple[dict[str, str], Path]], window_s: float
) -> tuple[list[float], list[str]]:
    """The same burst without labapp: each learner's apply, bare, at a random moment
    of the window; every one of them at once on the machine. Returns the times of
    those that succeeded and the errors of those that did not."""
    from labapp.shell.limits import lower_session_priority

    failures: list[str] = []

    async def one(env: dict[str, str], cwd: Path) -> float | None:
        await asyncio.sleep(random.uniform(0, window_s))
        started = time.monotonic()
        niceness = niceness_of(BURST_APPLY)
        process = await asyncio.create_subprocess_exec(
            *("nice", "-n", str(niceness), "bash", "-c", BURST_APPLY),
            env=env,
            cwd=cwd,
            start_new_session=True,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        lower_session_priority(process.pid, niceness)
        _, err = await process.communicate()
        if process.returncode != 0:
            failures.append(err.decode(errors="replace").strip()[-300:])
            return None
        return time.monotonic() - started

    times = await asyncio.gather(*(one(env, cwd) for env, cwd in shells))
    return [t for t in times if t is not None], failures
