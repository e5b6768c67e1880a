"""Finding a learner's processes on this machine, for tests that kill or cancel them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Process:
    pid: int
    uid: int


def processes_with(fragment: str) -> list[Process]:
    """Live (not zombie) processes whose command line contains `fragment`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (entry / "status").read_text()
        except OSError:
            continue  # it ended meanwhile
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fragment in cmdline and not fields["State"].strip().startswith("Z"):
            found.append(Process(int(entry.name), int(fields["Uid"].split()[0])))
    return found
