"""Settings for labapp: one module, every value from the environment with a
development default, so `make up` works on a fresh machine with nothing set."""

from __future__ import annotations

from pathlib import Path

from labapp.lib.env import env_bool, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("LABAPP_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
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
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": env_str("LABAPP_SQLITE_PATH", str(VAR_DIR / "labapp.sqlite3")),
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

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

# Kubernetes. An empty LABAPP_KUBECONFIG means "the local control plane
# named LOCALCLUSTER_NAME", which `manage.py localcluster up` provides.
LOCALCLUSTER_HOME = Path(env_str("LABAPP_LOCALCLUSTER_HOME", str(VAR_DIR / "clusters")))
LOCALCLUSTER_NAME = env_str("LABAPP_LOCALCLUSTER_NAME", "default")
LOCALCLUSTER_CACHE = Path(
    env_str("LABAPP_LOCALCLUSTER_CACHE", str(Path.home() / ".cache" / "labapp" / "localcluster"))
)
KUBECONFIG = env_str("LABAPP_KUBECONFIG", "")

LAB_STEPS_DIR = Path(env_str("LABAPP_LAB_STEPS_DIR", str(BASE_DIR / "lab_steps")))

# Under uvicorn in development there is no collectstatic step: serve from the finders.
WHITENOISE_USE_FINDERS = DEBUG
