"""One JSON object per log line, for log shippers; plain text stays for the console.

Django's LOGGING uses JsonFormatter; Celery's worker and beat follow LOGGING (see
labapp/celery.py); uvicorn reads UVICORN_LOG_CONFIG (`--log-config`), whose
formatters come from `uvicorn_formatter` and follow the same LABAPP_LOG_FORMAT.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from labapp.environment import env_log_format

UVICORN_LOG_CONFIG = Path(__file__).with_name("uvicorn_logging.json")

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Anything passed with `extra=` travels as its own field.
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class UvicornAccessJsonFormatter(JsonFormatter):
    """uvicorn's access lines, with the request's parts as fields of their own."""

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, http_version, status = args
            record.__dict__.update(
                client=client, method=method, path=path, http_version=http_version, status=status
            )
        return super().format(record)


def uvicorn_formatter(kind: str = "default") -> logging.Formatter:
    """A formatter for uvicorn's `--log-config` (UVICORN_LOG_CONFIG): JSON when
    LABAPP_LOG_FORMAT says json (as Django's LOGGING does), else uvicorn's own.
    uvicorn configures logging before it imports the app, and in its supervisor
    process, which never imports it: this reads the environment, not Django."""
    if env_log_format() == "json":
        return UvicornAccessJsonFormatter() if kind == "access" else JsonFormatter()
    from uvicorn.logging import AccessFormatter, DefaultFormatter

    if kind == "access":
        return AccessFormatter(
            fmt='%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'
        )
    return DefaultFormatter(fmt="%(levelprefix)s %(message)s")
