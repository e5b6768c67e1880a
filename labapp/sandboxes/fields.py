"""The learner's kubeconfig (it embeds their token) is encrypted at rest.

Fernet (AES-128-CBC with HMAC-SHA256) from `cryptography`, with a key derived
by HKDF from LABAPP_TOKEN_KEY when it is set, else from SECRET_KEY. Values
encrypted under SECRET_KEY or one of SECRET_KEY_FALLBACKS still decrypt after
a dedicated LABAPP_TOKEN_KEY is introduced or the secret key rotates; each is
re-encrypted under the current key when next written (the token is renewed
every few hours anyway). Every machine running workers needs the same key.

A value that cannot be decrypted (the key changed) reads as empty, so the
sandbox gets a fresh token on its next run instead of failing; plaintext left
from before encryption reads as it is until the data migration encrypts it.
"""

from __future__ import annotations

import base64
import functools
import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

log = logging.getLogger(__name__)
# Every Fernet token starts with its version byte 0x80, base64-encoded.
_FERNET_PREFIX = "gAAAAA"
_INFO = b"labapp: learner kubeconfig"


def _derive(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


@functools.lru_cache(maxsize=4)
def _fernet_for(secrets: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_derive(secret) for secret in secrets])


def token_fernet() -> MultiFernet:
    """The first key encrypts; every key decrypts."""
    secrets = [settings.TOKEN_KEY] if settings.TOKEN_KEY else []
    for key in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS):
        secrets.append(key if isinstance(key, str) else key.decode())
    return _fernet_for(tuple(dict.fromkeys(secrets)))


def encrypt(text: str) -> str:
    return token_fernet().encrypt(text.encode()).decode() if text else ""


def decrypt(stored: str) -> str:
    if not stored.startswith(_FERNET_PREFIX):
        return stored  # plaintext from before encryption (see the data migration)
    try:
        return token_fernet().decrypt(stored.encode()).decode()
    except InvalidToken:
        log.warning("a learner kubeconfig cannot be decrypted with the current keys")
        return ""


class EncryptedTextField(models.TextField):
    """Text kept encrypted in the database and plain in Python. Lookups on it
    cannot match (each encryption differs), except the empty string."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return value if value is None else decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return value if value is None else encrypt(value)
