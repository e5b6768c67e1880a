"""`python -m labapp.ops.healthcheck [URL]`: the web container's health check.

GET /healthz as the site's own clients do, so a production profile does not turn it
away: the Host header is one DJANGO_ALLOWED_HOSTS allows (127.0.0.1 is seldom among
them), and X-Forwarded-Proto says https as the TLS proxy would (else the HTTPS
redirect answers 301). Exit 0 on 200, else 1 with the reason.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from labapp.environment import env_list

DEFAULT_URL = "http://127.0.0.1:8000/healthz"


def host_for(allowed: list[str]) -> str:
    """A Host header that ALLOWED_HOSTS accepts."""
    for entry in allowed:
        host = entry.strip()
        if host == "*":
            return "localhost"
        if host:
            return host.removeprefix(".")  # ".example.org" allows example.org itself
    return "localhost"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else DEFAULT_URL
    host = host_for(env_list("DJANGO_ALLOWED_HOSTS", ["localhost"]))
    request = urllib.request.Request(url, headers={"Host": host, "X-Forwarded-Proto": "https"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status: int = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status} (Host: {host})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
