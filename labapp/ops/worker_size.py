"""`python -m labapp.ops.worker_size quick|slow` prints that lane's worker size, as
settings read it from this environment, for shell entry points (docker-compose.yml)."""

from __future__ import annotations

import sys

from labapp.environment import env_worker_concurrency, usable_cores


def main(argv: list[str]) -> int:
    lanes = ("quick", "slow")
    if len(argv) != 1 or argv[0] not in lanes:
        print("usage: python -m labapp.ops.worker_size quick|slow", file=sys.stderr)
        return 2
    sizes = env_worker_concurrency(usable_cores())
    print(sizes[lanes.index(argv[0])])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
