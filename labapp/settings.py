"""Settings for labapp: one module, every value from the environment with a
development default, so `make up` works on a fresh machine with nothing set."""

from __future__ import annotations

import ipaddress
import re
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from labapp.environment import (
    env_bool,
    env_database,
    env_int,
    env_list,
    env_log_format,
    env_str,
    env_worker_concurrency,
    usable_cores,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("LABAPP_VAR_DIR", str(BASE_DIR / "var")))

# The pytest process itself (not the servers and workers its end-to-end tests start).
TESTING = "pytest" in sys.modules

DEBUG = env_bool("DJANGO_DEBUG", True)
_DEV_SECRET = "dev-only-insecure-key-change-me"
SECRET_KEY = env_str("DJANGO_SECRET_KEY", _DEV_SECRET)
if not DEBUG and SECRET_KEY == _DEV_SECRET:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set when DJANGO_DEBUG is false"
    )
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "labapp.clusters",
    "labapp.catalog",
    "labapp.sandboxes",
    "labapp.runs",
    "labapp.learning",
    "labapp.instructor",
    "labapp.ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Innermost and sync-only, so that every middleware above runs in one thread
    # under ASGI instead of hopping to one per step (labapp/middleware.py).
    "labapp.middleware.SyncRequestChain",
]

ROOT_URLCONF = "labapp.urls"
ASGI_APPLICATION = "labapp.asgi.application"
WSGI_APPLICATION = "labapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "labapp.instructor.context_processors.roles",
            ],
        },
    },
]

# SQLite by default; DATABASE_URL=postgres://... for PostgreSQL.
DATABASES = {
    "default": env_database("DATABASE_URL")
    or {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": env_str("LABAPP_SQLITE_PATH", str(VAR_DIR / "labapp.sqlite3")),
        # The web process and the workers share the file: WAL lets readers and
        # one writer overlap, and IMMEDIATE takes the write lock up front.
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        # A file, not :memory:, so a real worker and server can share the test DB.
        "TEST": {"NAME": env_str("LABAPP_TEST_SQLITE_PATH", str(VAR_DIR / "test.sqlite3"))},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGIN_URL = "login"

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# The image collects static files at build time, outside its state volume (a volume
# would keep the first image's files across upgrades).
STATIC_ROOT = Path(env_str("LABAPP_STATIC_ROOT", str(VAR_DIR / "staticfiles")))

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

# One cache shared by every web process: rate limits count there. The pytest process
# keeps its own in-memory cache (no Redis needed for unit tests); the servers its
# end-to-end tests start use Redis like production.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "labapp",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}
if TESTING:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery. acks_late + reject_on_worker_lost: a run whose worker dies is handed
# back, and the run service then ends it as "worker lost" (never re-runs it).
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("LABAPP_VISIBILITY_TIMEOUT", 300)}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "interactive"
# Learners' commands go to one queue per lane (labapp.shell.lanes), each with its own
# worker, so a get never waits for a slot behind applies and rollouts.
RUN_LANE_QUEUES = {"quick": "interactive", "slow": "slow"}
CELERY_TASK_ROUTES = {
    "labapp.learning.tasks.*": {"queue": "interactive"},
    "labapp.runs.tasks.*": {"queue": "interactive"},
    "labapp.sandboxes.tasks.*": {"queue": "provisioning"},
}
# Processes, for `manage.py runlab` and docker-compose.yml. A learner's command spends
# its time in kubectl, so the quick lane's worker runs two processes per core. Eight per
# core in one shared worker was measured too (bench/results/classroom-c16.json): a class
# of 100 saw its gets' median fall from 1.3 to 0.5 s, but the pages slowed (sandbox
# ready p95 0.3 to 1.5 s) and a class of 200 lost two connections. uvicorn: one per core.
# The slow lane's commands run at a lower priority and mostly wait, so it gets six
# processes per core (12 on 2 cores: bench/results/classroom-nice10.json; at 4, a class of
# 100 queued its applies for 14 s at the median), at most 32 (each takes ~100 MiB).
_CORES = usable_cores()
WORKER_CONCURRENCY, SLOW_WORKER_CONCURRENCY = env_worker_concurrency(_CORES)
# Niceness of the processes of a slow command (an apply, a rollout): when the machine is
# busy, pages and quick commands go first. Each command runs in a session of its own,
# and where the kernel shares CPU by session (autogroup), a session's niceness sets its
# weight: at 10, a dozen applies together outweighed one get; at 19 they weigh about a
# fifth of it. A class of 100 saw a get's first byte at 194/471 ms (p50/p95), against
# 218/740 and 306/1,137 in two runs at 10, and its applies stayed within 1.27x of bare
# kubectl's (bench/results/classroom-nice19-100.json). From 40 to 60 learners the two
# niceness values are within the runs' own noise (bench/README.md).
SLOW_RUN_NICENESS = env_int("LABAPP_SLOW_RUN_NICENESS", 19)
WEB_WORKERS = env_int("LABAPP_WEB_WORKERS", _CORES)
# A worker that consumes only the provisioning queue raises its niceness by this
# much (0: not at all), so provisioning never competes with clicks for the CPU.
PROVISIONING_NICE = env_int("LABAPP_PROVISIONING_NICE", 10)
# Every periodic job, in one place.
CELERY_BEAT_SCHEDULE = {
    "reap-stuck-runs": {"task": "labapp.runs.tasks.reap_runs", "schedule": 10.0},
    "redo-stalled-sandboxes": {
        "task": "labapp.sandboxes.tasks.redo_stalled_sandboxes",
        "schedule": 15.0,
    },
    "expire-sandboxes": {"task": "labapp.sandboxes.tasks.expire_sandboxes", "schedule": 60.0},
    # Teardowns that could not reach the cluster (their namespaces still exist).
    "retry-sandbox-teardowns": {
        "task": "labapp.sandboxes.tasks.retry_sandbox_teardowns",
        "schedule": 60.0,
    },
    # Warm pools: standing pools per lab, recycling, closing ended ones, refilling.
    "tend-pools": {"task": "labapp.sandboxes.tasks.tend_pools", "schedule": 15.0},
}
# Beat touches a heartbeat file on every tick (at least every BEAT_MAX_LOOP_INTERVAL
# seconds); `manage.py beat_status` fails once it is older than BEAT_HEARTBEAT_MAX_AGE.
CELERY_BEAT_SCHEDULER = "labapp.ops.beat:HeartbeatScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 30
BEAT_HEARTBEAT_FILE = Path(env_str("LABAPP_BEAT_HEARTBEAT_FILE", str(VAR_DIR / "beat.heartbeat")))
BEAT_HEARTBEAT_MAX_AGE = env_int("LABAPP_BEAT_HEARTBEAT_MAX_AGE", 120)

# Commands: how long one may run, how much output it may keep.
RUN_TIMEOUT_SECONDS = env_int("LABAPP_RUN_TIMEOUT_SECONDS", 60)
RUN_OUTPUT_CAP_BYTES = env_int("LABAPP_RUN_OUTPUT_CAP_BYTES", 256_000)
# A queued run no worker has taken after this long is failed, naming the cause.
RUN_QUEUE_DEADLINE_SECONDS = env_int("LABAPP_RUN_QUEUE_DEADLINE_SECONDS", 120)
# A running run not finished by timeout + grace has lost its worker.
RUN_DEADLINE_GRACE_SECONDS = env_int("LABAPP_RUN_DEADLINE_GRACE_SECONDS", 30)
RUN_STREAM_TTL_SECONDS = 3600
# Commands one sandbox may have queued or running at once; the next is refused.
RUN_IN_FLIGHT_PER_SANDBOX = env_int("LABAPP_RUN_IN_FLIGHT_PER_SANDBOX", 3)


def _env_rate(name: str, default: str) -> str:
    """A django-ratelimit rate: a count per period, e.g. 30/m or 300/10m."""
    rate = env_str(name, default).strip()
    if not re.fullmatch(r"[1-9]\d*/([1-9]\d*)?[smhd]", rate):
        raise ImproperlyConfigured(f"{name}={rate!r} is not a rate such as 30/m or 300/10m.")
    return rate


# Rate limits (django-ratelimit, counted in CACHES). Per signed-in user they are
# tight; per client address generous, because a classroom of 100 may share one NAT
# address. Off in the pytest process unless a test turns them on (a process-wide
# count would leak from test to test). Behind a reverse proxy, uvicorn must be told
# to trust its X-Forwarded-For (FORWARDED_ALLOW_IPS), or everyone shares its address.
RATELIMIT_ENABLE = env_bool("LABAPP_RATELIMITS", not TESTING)
# A cache that cannot count must not lock a classroom out.
RATELIMIT_FAIL_OPEN = True
_RATE_DEFAULTS = {
    # action: (per user, per address)
    "begin": ("20/h", "300/h"),  # starting a lab makes a sandbox
    "join": ("20/10m", "300/10m"),  # also bounds guessing join codes
    "run": ("30/m", "1500/m"),
    "reset": ("10/h", "300/h"),  # a reset rebuilds the sandbox
    "reveal": ("30/m", "1500/m"),  # hints and solutions
    "check": ("12/m", "600/m"),  # "Check again" asks the cluster
}
RATELIMITS = {
    action: {
        "user": _env_rate(f"LABAPP_RATELIMIT_{action.upper()}_USER", per_user),
        "ip": _env_rate(f"LABAPP_RATELIMIT_{action.upper()}_IP", per_ip),
    }
    for action, (per_user, per_ip) in _RATE_DEFAULTS.items()
}

SANDBOX_HOME = Path(env_str("LABAPP_SANDBOX_HOME", str(VAR_DIR / "sandboxes")))
SANDBOX_TOKEN_SECONDS = env_int("LABAPP_SANDBOX_TOKEN_SECONDS", 4 * 3600)
# The key learners' kubeconfigs (their tokens) are encrypted with in the database;
# empty: derived from SECRET_KEY. Any long random string; also LABAPP_TOKEN_KEY_FILE.
# Every machine running workers needs the same one.
TOKEN_KEY = env_str("LABAPP_TOKEN_KEY", "")
# A sandbox outside a workshop expires after this long without a run or a visit
# to its lab page (a workshop's sandboxes live as long as the workshop says).
SELF_PACED_IDLE_MINUTES = env_int("LABAPP_SELF_PACED_IDLE_MINUTES", 120)

# Warm pools (labapp/sandboxes/pools.py). A workshop keeps this percentage of its
# capacity provisioned per lab, from POOL_LEAD_MINUTES before it starts until it ends;
# each self-paced lab keeps POOL_SELF_PACED_SIZE ready (0: no standing pools). At
# most POOL_CONCURRENCY pooled sandboxes provision at once, on the provisioning
# queue, so a learner's own sandbox never waits behind a pool's. Unclaimed sandboxes
# older than POOL_MAX_AGE_MINUTES are torn down and replaced.
POOL_WORKSHOP_PERCENT = env_int("LABAPP_POOL_WORKSHOP_PERCENT", 100)
POOL_LEAD_MINUTES = env_int("LABAPP_POOL_LEAD_MINUTES", 60)
POOL_SELF_PACED_SIZE = env_int("LABAPP_POOL_SELF_PACED_SIZE", 2)
POOL_CONCURRENCY = env_int("LABAPP_POOL_CONCURRENCY", 1)
POOL_MAX_AGE_MINUTES = env_int("LABAPP_POOL_MAX_AGE_MINUTES", 720)
for _name, _value in {
    "LABAPP_POOL_WORKSHOP_PERCENT": POOL_WORKSHOP_PERCENT,
    "LABAPP_POOL_LEAD_MINUTES": POOL_LEAD_MINUTES,
    "LABAPP_POOL_SELF_PACED_SIZE": POOL_SELF_PACED_SIZE,
    "LABAPP_POOL_CONCURRENCY": POOL_CONCURRENCY,
    "LABAPP_POOL_MAX_AGE_MINUTES": POOL_MAX_AGE_MINUTES,
}.items():
    if _value < 0:
        raise ImproperlyConfigured(f"{_name}={_value} must not be negative.")
# How old an answer /readyz may give to anyone but staff (seconds): a load balancer's
# probes, or a flood of anonymous requests, then reach the cluster once per period.
READYZ_SHARED_SECONDS = env_int("LABAPP_READYZ_SHARED_SECONDS", 5)
# Where learners reach this site, for the join links `manage.py workshop` prints.
PUBLIC_URL = env_str("LABAPP_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

# Kubernetes. An empty LABAPP_KUBECONFIG means "the local control plane
# named LOCALCLUSTER_NAME", which `manage.py localcluster up` provides.
LOCALCLUSTER_HOME = Path(env_str("LABAPP_LOCALCLUSTER_HOME", str(VAR_DIR / "clusters")))
LOCALCLUSTER_NAME = env_str("LABAPP_LOCALCLUSTER_NAME", "default")
LOCALCLUSTER_CACHE = Path(
    env_str("LABAPP_LOCALCLUSTER_CACHE", str(Path.home() / ".cache" / "labapp" / "localcluster"))
)
# Made absolute here: learners' commands run in their workspaces, not in this directory.
KUBECONFIG = env_str("LABAPP_KUBECONFIG", "")
if KUBECONFIG:
    KUBECONFIG = str(Path(KUBECONFIG).expanduser().absolute())
# The local control plane's API server listens on LOCALCLUSTER_BIND (loopback unless
# told otherwise: compose says 0.0.0.0 inside its own container), and its certificate
# carries LOCALCLUSTER_SANS besides the usual names (compose: the service name). Apps
# on another machine or container reach it by LOCALCLUSTER_HOST, one of those names
# (empty: loopback), through the kubeconfig `up` writes for that name.
LOCALCLUSTER_BIND = env_str("LABAPP_LOCALCLUSTER_BIND", "127.0.0.1").strip()
try:
    ipaddress.ip_address(LOCALCLUSTER_BIND)
except ValueError:
    raise ImproperlyConfigured(
        f"LABAPP_LOCALCLUSTER_BIND={LOCALCLUSTER_BIND!r} is not an IP address "
        "(127.0.0.1, or 0.0.0.0 for every interface)"
    ) from None
LOCALCLUSTER_SANS = env_list("LABAPP_LOCALCLUSTER_SANS", [])
LOCALCLUSTER_HOST = env_str("LABAPP_LOCALCLUSTER_HOST", "").strip()

LAB_STEPS_DIR = Path(env_str("LABAPP_LAB_STEPS_DIR", str(BASE_DIR / "lab_steps")))

# Under uvicorn in development there is no collectstatic step: serve from the finders.
WHITENOISE_USE_FINDERS = DEBUG

# Production: behind TLS. Each can be turned off for a plain-HTTP trial.
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# Celery (labapp/celery.py) and uvicorn (labapp/ops/uvicorn_logging.json) follow it too.
LOG_FORMAT = env_log_format()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "labapp.ops.jsonlog.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LABAPP_LOG_LEVEL", "INFO")},
}

# Labs that run privileged pods are refused on clusters with real nodes unless
# the operator opts in: on KWOK no container runs, elsewhere one would.
ALLOW_PRIVILEGED_LABS = env_bool("LABAPP_ALLOW_PRIVILEGED_LABS", False)
