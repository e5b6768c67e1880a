"""bench/web_cost.py's second server: labapp's settings with the request chain as it
was before SyncRequestChain, so the two are measured side by side in one run."""

from labapp.settings import *  # noqa: F403
from labapp.settings import MIDDLEWARE

MIDDLEWARE = [name for name in MIDDLEWARE if name != "labapp.middleware.SyncRequestChain"]
