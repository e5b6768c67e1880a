"""Start, find and stop the control-plane processes, by pid.

A pid file alone is not proof: pids are reused. A process counts as ours
only while its command line starts with the binary we launched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Popen handles of children this process started, so they can be reaped and
# never linger as zombies that look alive to /proc.
_children: dict[int, subprocess.Popen[bytes]] = {}


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Go listeners set SO_REUSEADDR, so a port in TIME_WAIT is usable to them.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def ports_lock() -> Iterator[None]:
    """One machine-wide lock around choosing ports and starting what binds them."""
    path = Path(tempfile.gettempdir()) / "labapp-localcluster-ports.lock"
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def pick_ports(
    wanted: dict[str, int], keep: set[str], hosts: dict[str, str] | None = None
) -> dict[str, int]:
    """Each key gets its wanted port if free (or kept), else a free ephemeral one.

    A key listed in `hosts` is probed on that address (the API server's bind
    address), the others on 127.0.0.1. Chosen sockets stay bound until all are
    picked, so two keys can never receive the same ephemeral port.
    """
    hosts = hosts or {}
    chosen: dict[str, int] = {}
    held: list[socket.socket] = []
    try:
        for key, port in wanted.items():
            host = hosts.get(key, "127.0.0.1")
            if key in keep or (port not in chosen.values() and port_is_free(port, host)):
                chosen[key] = port
                continue
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sock.bind((host, 0))
            held.append(sock)
            chosen[key] = sock.getsockname()[1]
    finally:
        for sock in held:
            sock.close()
    return chosen


@dataclass(frozen=True)
class Recorded:
    """What a pid file holds: the pid and the binary it ran, so a process
    from older binaries (a pin change) is still recognised, and stopped."""

    pid: int
    binary: Path
    # A digest of what it was started with (flags, certificates); None from older
    # pid files, which are taken as current.
    config: str | None = None


def spawn(
    argv: list[str],
    *,
    log_path: Path,
    pid_path: Path,
    cwd: Path,
    env: dict[str, str],
    config: str | None = None,
) -> Recorded:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n--- started {time.strftime('%Y-%m-%dT%H:%M:%S')} ---\n".encode())
        log.flush()
        # A new session: the process outlives `manage.py localcluster up`
        # and a Ctrl-C in that terminal does not reach it.
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    _children[child.pid] = child
    recorded = Recorded(child.pid, Path(argv[0]), config)
    pid_path.write_text(
        json.dumps({"pid": recorded.pid, "binary": str(recorded.binary), "config": config})
    )
    return recorded


def read_pid(pid_path: Path) -> Recorded | None:
    try:
        data = json.loads(pid_path.read_text())
        config = data.get("config")
        return Recorded(
            int(data["pid"]), Path(data["binary"]), config if isinstance(config, str) else None
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(pid_path: Path) -> Recorded | None:
    """The recorded process, if it is still alive and still ours."""
    recorded = read_pid(pid_path)
    if recorded and is_running(recorded.pid, recorded.binary):
        return recorded
    return None


def is_running(pid: int, binary: Path) -> bool:
    child = _children.get(pid)
    if child is not None:
        # Our own child: waitpid is authoritative, and reaps it if it exited.
        return child.poll() is None
    # A process from an earlier `up`: trust /proc, but only for our binary.
    # cmdline reads empty for an instant while a process execs or its memory
    # map is busy, so an empty read is retried rather than taken as "not ours".
    for _ in range(20):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
        except (OSError, IndexError):
            return False
        if state in ("Z", "X"):
            return False
        if argv0:
            return argv0 == os.fsencode(binary)
        time.sleep(0.01)
    return False


def stop(pid: int, binary: Path, timeout: float = 15.0) -> None:
    if not is_running(pid, binary):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(pid, binary):
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while is_running(pid, binary):
            time.sleep(0.05)
    child = _children.pop(pid, None)
    if child is not None:
        child.wait()


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def http_ok(url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            status: int = response.status
            return status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (for leak checks)."""
    needle = os.fsencode(text)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state not in ("Z", "X"):
                    found.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return found


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on, from /proc."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    except OSError:
        return set()
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address_hex, port_hex = local.split(":")
            raw = bytes.fromhex(address_hex)
            # /proc prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add((socket.inet_ntop(family, words), int(port_hex, 16)))
    return found
