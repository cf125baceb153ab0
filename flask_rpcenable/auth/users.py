"""API users: the :class:`BaseAPIUser` mixin, the built-in model and their keys.

An API user has a username, an API key (the shared secret of the HMAC
schemes), an ``active`` flag, ``last_login`` and ``created_at``. Keys are
generated here with :mod:`secrets` and stored encrypted with Fernet (from
the ``cryptography`` package), under a key derived from
``RPCENABLE_SECRET_KEY`` (or ``SECRET_KEY``). Old secrets listed in
``RPCENABLE_SECRET_KEY_FALLBACKS`` (or ``SECRET_KEY_FALLBACKS``) still
decrypt, so that the secret can be rotated; ``flask rpc users reencrypt``
then rewrites every stored key under the current secret.

An app picks its model with ``RPCENABLE_USER_MODEL`` (a class or a dotted
path); without it the built-in ``APIUser`` model (table
``rpcenable_api_user``) is defined on the extension's database.
"""

from __future__ import annotations

import base64
import datetime
import functools
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, current_app
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.utils import import_string

from ..db import once_per_db, utcnow

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

__all__ = [
    "API_USER_TABLE",
    "BaseAPIUser",
    "MissingSecretError",
    "api_user_model",
    "create_api_user",
    "decrypt_api_key",
    "decrypt_api_key_cached",
    "encrypt_api_key",
    "generate_api_key",
    "has_secret",
    "key_cipher",
    "resolve_user_model",
]

#: Table of the built-in model.
API_USER_TABLE = "rpcenable_api_user"
#: Longest username accepted (the column size, and a check at call time).
USERNAME_MAX = 255
_HKDF_INFO = b"flask-rpcenable api-key encryption v1"


#: Shortest key accepted from outside (``create_api_user(api_key=...)``).
IMPORTED_KEY_MIN = 16


def generate_api_key() -> str:
    """A new random API key: 43 characters of ``[A-Za-z0-9_-]`` (256 bits)."""
    return secrets.token_urlsafe(32)


# -- encryption at rest ------------------------------------------------------


def _fernet_for(secret: str | bytes) -> Fernet:
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(raw)
    return Fernet(base64.urlsafe_b64encode(derived))


class MissingSecretError(RuntimeError):
    """Neither ``RPCENABLE_SECRET_KEY`` nor ``SECRET_KEY`` is set, so keys cannot be encrypted."""


def has_secret(app: Flask) -> bool:
    """Whether ``app`` has a secret to encrypt API keys with."""
    return bool(app.config.get("RPCENABLE_SECRET_KEY") or app.config.get("SECRET_KEY"))


def _secrets_of(app: Flask) -> list[str | bytes]:
    primary = app.config.get("RPCENABLE_SECRET_KEY")
    if primary:
        fallbacks = app.config.get("RPCENABLE_SECRET_KEY_FALLBACKS") or ()
    else:
        primary = app.config.get("SECRET_KEY")
        fallbacks = app.config.get("SECRET_KEY_FALLBACKS") or ()
    if not primary:
        raise MissingSecretError(
            "flask-rpcenable encrypts API keys with RPCENABLE_SECRET_KEY or SECRET_KEY: "
            "set one of them (e.g. FLASK_SECRET_KEY in the environment with "
            "app.config.from_prefixed_env())."
        )
    if isinstance(fallbacks, (str, bytes)):
        fallbacks = [fallbacks]
    return [primary, *[f for f in fallbacks if f]]


#: Ciphers kept by :func:`key_cipher`, one per list of secrets (a few at most).
CIPHER_CACHE_SIZE = 16


def key_cipher(app: Flask | None = None) -> MultiFernet:
    """The :class:`~cryptography.fernet.MultiFernet` for API keys of ``app``.

    The first secret encrypts; all of them decrypt. It is built once per
    list of secrets (key derivation is the costly part), so again only when
    the configured secrets change.

    :raises MissingSecretError: when neither ``RPCENABLE_SECRET_KEY`` nor
        ``SECRET_KEY`` is set.
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return _cipher_for(tuple(_secrets_of(app)))


@functools.lru_cache(maxsize=CIPHER_CACHE_SIZE)
def _cipher_for(secret_list: tuple[str | bytes, ...]) -> MultiFernet:
    return MultiFernet([_fernet_for(secret) for secret in secret_list])


def encrypt_api_key(api_key: str, app: Flask | None = None) -> str:
    """Encrypt an API key for storage."""
    return key_cipher(app).encrypt(api_key.encode()).decode("ascii")


def decrypt_api_key(token: str, app: Flask | None = None) -> str:
    """Decrypt a stored API key.

    :raises RuntimeError: when no configured secret decrypts it (the secret
        changed without the old one in the fallbacks).
    """
    return _decrypt_with(key_cipher(app), token)


def _decrypt_with(cipher: MultiFernet, token: str) -> str:
    try:
        return cipher.decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise RuntimeError(
            "An API key could not be decrypted: RPCENABLE_SECRET_KEY (or SECRET_KEY) changed "
            "and the old secret is not in RPCENABLE_SECRET_KEY_FALLBACKS."
        ) from None


#: Decrypted keys kept by :func:`decrypt_api_key_cached` (least recently used go first).
KEY_CACHE_SIZE = 1024


def decrypt_api_key_cached(token: str, app: Flask | None = None) -> str:
    """:func:`decrypt_api_key`, remembering the last :data:`KEY_CACHE_SIZE` answers.

    An entry is found only by the stored token itself *and* the app's
    secrets as configured now: a key that was changed or re-encrypted is a
    new token (Fernet tokens carry a random IV), so it is decrypted afresh,
    and once a secret is rotated or dropped from the fallbacks nothing
    decrypted under the old list is found again. Failures are not kept.
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return _decrypt_under(tuple(_secrets_of(app)), token)


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def _decrypt_under(secret_list: tuple[str | bytes, ...], token: str) -> str:
    """The key in ``token``, decrypted with the cipher of ``secret_list`` (failures not kept)."""
    return _decrypt_with(_cipher_for(secret_list), token)


# -- the model ---------------------------------------------------------------


class BaseAPIUser:
    """Mixin for an API user model; mix it into a Flask-SQLAlchemy model.

    ::

        class Partner(BaseAPIUser, db.Model):
            __tablename__ = "partner"
            contact_email: Mapped[str | None]

    and set ``RPCENABLE_USER_MODEL = "myapp.models.Partner"`` (or the class).
    The mixin brings ``id``, ``username`` (unique), ``api_key_encrypted``,
    ``active``, ``last_login`` and ``created_at``; a model may override
    ``id`` with its own primary key. The plain key is never an attribute:
    read it with :meth:`get_api_key`, change it with :meth:`set_api_key` or
    :meth:`regenerate_api_key`.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(
        sa.String(USERNAME_MAX), unique=True, nullable=False, index=True
    )
    api_key_encrypted: Mapped[str] = mapped_column(sa.String(512), nullable=False, default="")
    active: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True, index=True)
    last_login: Mapped[datetime.datetime | None] = mapped_column(
        sa.DateTime(timezone=True), nullable=True
    )
    created_at: Mapped[datetime.datetime] = mapped_column(
        sa.DateTime(timezone=True), nullable=False, default=utcnow
    )

    def set_api_key(self, api_key: str) -> None:
        """Store ``api_key`` (encrypted) as this user's key."""
        self.api_key_encrypted = encrypt_api_key(api_key)

    def get_api_key(self) -> str:
        """This user's key, decrypted. Never log or display it."""
        return decrypt_api_key(self.api_key_encrypted)

    def regenerate_api_key(self) -> str:
        """Give this user a new random key and return it (show it once)."""
        api_key = generate_api_key()
        self.set_api_key(api_key)
        return api_key

    def __str__(self) -> str:
        return str(self.username)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.username!r} active={self.active}>"


@once_per_db
def api_user_model(db: SQLAlchemy) -> type:
    """The built-in ``APIUser`` model on ``db``, defined once per ``db``."""

    class APIUser(BaseAPIUser, db.Model):  # type: ignore[name-defined,misc]
        """An API user of flask-rpcenable (the built-in model)."""

        __tablename__ = API_USER_TABLE

    return APIUser


def resolve_user_model(spec: Any, db: SQLAlchemy | None = None) -> type:
    """Turn ``RPCENABLE_USER_MODEL`` (or ``user_model=``) into a model class.

    :param spec: a class, a dotted path (``"pkg.module.Class"`` or
        ``"pkg.module:Class"``), or ``None`` for the built-in model on ``db``.
    :raises RuntimeError: when the path does not import or the class lacks
        the :class:`BaseAPIUser` interface.
    """
    if spec is None:
        if db is None:
            raise RuntimeError("the built-in API user model needs a Flask-SQLAlchemy object")
        return api_user_model(db)
    model = spec
    if isinstance(spec, str):
        try:
            model = import_string(spec.replace(":", "."))
        except ImportError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise RuntimeError(
                f"the API user model {spec!r} cannot be imported ({reason})"
            ) from None
    missing = [
        name
        for name in ("username", "active", "last_login", "get_api_key", "set_api_key")
        if not hasattr(model, name)
    ]
    if not isinstance(model, type) or missing:
        raise RuntimeError(
            f"API user model {spec!r} must be a model class using BaseAPIUser "
            f"(missing: {', '.join(missing) or 'not a class'})"
        )
    return model


def create_api_user(
    db: SQLAlchemy,
    model: type,
    username: str,
    *,
    active: bool = True,
    api_key: str | None = None,
) -> tuple[Any, str]:
    """Create and commit an API user with a fresh key.

    :param api_key: an existing key to keep (for users moved from
        django-rpcenable, whose clients already hold their keys); at least
        16 characters. By default a new random key is generated.
    :returns: ``(user, api_key)``; the key is shown once and not kept in clear.
    :raises ValueError: when the username is empty, too long or taken, or the
        given key is too short.
    """
    if api_key is not None and len(api_key) < IMPORTED_KEY_MIN:
        raise ValueError(f"an imported API key has at least {IMPORTED_KEY_MIN} characters")
    username = username.strip()
    if not username or len(username) > USERNAME_MAX:
        raise ValueError(f"a username has 1 to {USERNAME_MAX} characters")
    exists = db.session.execute(
        sa.select(model.id).where(model.username == username)  # type: ignore[attr-defined]
    ).first()
    if exists is not None:
        raise ValueError(f"API user {username!r} already exists")
    user = model(username=username, active=active)
    if api_key is None:
        api_key = user.regenerate_api_key()
    else:
        user.set_api_key(api_key)
    db.session.add(user)
    db.session.commit()
    return user, api_key


def reencrypt_keys(db: SQLAlchemy, model: type, batch: int = 500) -> int:
    """Rewrite every stored key under the current secret; return how many.

    Use it after moving the old secret to ``RPCENABLE_SECRET_KEY_FALLBACKS``.
    """
    cipher = key_cipher()
    count = 0
    last_id: Any = None
    while True:
        query = sa.select(model).order_by(model.id).limit(batch)  # type: ignore[attr-defined]
        if last_id is not None:
            query = query.where(model.id > last_id)  # type: ignore[attr-defined]
        users: Sequence[Any] = db.session.execute(query).scalars().all()
        if not users:
            break
        for user in users:
            if user.api_key_encrypted:
                try:
                    token = cipher.rotate(user.api_key_encrypted.encode("ascii"))
                except InvalidToken:
                    db.session.rollback()
                    raise RuntimeError(
                        f"The key of API user {user.username!r} cannot be decrypted with "
                        "the current secret or its fallbacks."
                    ) from None
                user.api_key_encrypted = token.decode("ascii")
                count += 1
            last_id = user.id
        db.session.commit()
    return count
