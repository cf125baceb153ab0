"""Stateless HMAC authentication: the ``@rpc.auth`` marker and the verifier.

Two schemes are accepted (see ``docs/auth.rst``):

- **v1**, compatible with django-rpcenable: the first four parameters of the
  call are ``nonce, timestamp, username, signature``.
- **v2**: an ``Authorization: RPCEnable-HMAC-SHA256 ...`` header whose
  signature also covers the HTTP method, the path and the SHA-256 of the
  body; it is checked on the raw bytes before the XML is parsed.

Checks run in this order: shapes (nonce -> 401, timestamp -> 403, username
-> 406), the time window ``RPCENABLE_AUTH_WINDOW`` both ways (403), the
active user and the HMAC compared in constant time (406 for an unknown user,
an inactive user and a wrong signature alike), and only then the nonce is
recorded with an atomic ``add`` in a shared cache (402 when it was already
there). ``last_login`` is set with a single ``UPDATE``, at most once a
minute per user (see ``auth/lookup.py``). The user is read from the database on
every request (unless the app opts into ``RPCENABLE_AUTH_USER_CACHE_SECONDS``, see
``auth/usercache.py``); decrypted keys are cached, by stored token and secrets.

Within one HTTP request (a multicall, a JSON-RPC batch) a user name that
failed the signature check fails at once (406) for the rest of it, as does
every call once ``MAX_FAILED_PER_REQUEST`` names failed, and a nonce seen
before is 402 at once: no user lookup or key decryption for them. A user
found in the request is read once for all of its calls, as a v2 header is
verified once for all of them; a later call of the request whose signature
does not match that row reads it again before it fails.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlalchemy.orm.attributes import instance_state

from ..calls import AuthResult, CallContext, Params
from ..errors import (
    AUTH_BAD_NONCE,
    AUTH_BAD_TIMESTAMP,
    AUTH_FAILED,
    AUTH_NONCE_USED,
    SYSTEM_ERROR,
    RPCError,
)
from ..params import V1_AUTH_PARAMS
from ..redact import REDACTED
from ..registry import Procedure
from .lookup import FoundUser, LastLoginStamper, UserLookup
from .marker import is_sql_criterion
from .signing import (
    NONCE_RE,
    KeyedMacs,
    message_v1,
    parse_authorization_v2,
    string_to_sign_v2,
)
from .users import (
    KEY_CACHE_SIZE,
    USERNAME_MAX,
    encrypt_api_key,
    generate_api_key,
    has_secret,
    resolve_user_model,
)
from .users import (
    decrypt_api_key_cached as decrypt_api_key,  # one name for the step, cached or not
)

if TYPE_CHECKING:
    from ..state import RPCState
    from .nonces import NonceStore

__all__ = ["HMACAuthenticator"]

#: Failed user names per request after which every authentication in it is refused.
MAX_FAILED_PER_REQUEST = 3
_REQUEST_KEY = "_rpcenable_auth_seen"
_TIMESTAMP_RE = re.compile(r"[0-9]{1,15}")
_MAX_SIGNATURE = 256

MSG_FAILED = "Authentication failed"
MSG_NONCE = (
    "Authentication failed: malformed nonce (16 to 128 characters of A-Z, a-z, 0-9, '_' and '-')"
)
MSG_MISSING = (
    "Authentication required: pass nonce, timestamp, username and signature as the first "
    "four parameters (scheme v1) or send an 'Authorization: RPCEnable-HMAC-SHA256' header "
    "(scheme v2)"
)
MSG_TIMESTAMP = "Authentication failed: the timestamp must be an integer (Unix seconds)"
MSG_WINDOW = (
    "Authentication failed: the timestamp is more than {window} s away from the server's "
    "clock; check the client's clock"
)
MSG_REPLAY = "Authentication failed: this nonce was already used"
MSG_UNCONFIGURED = "System error: authentication is not set up on this server"
MSG_V1_OFF = (
    "Authentication required: this server accepts only scheme v2 (an 'Authorization: "
    "RPCEnable-HMAC-SHA256' header)"
)
MSG_OTHER_MODEL = (
    "Authentication failed: this method authenticates another kind of user; use scheme v1"
)

HELP_V1 = (
    "scheme v1 (pass nonce, timestamp, username and signature as the first four parameters)"
)
HELP_V2 = "scheme v2 (an 'Authorization: RPCEnable-HMAC-SHA256' header)"


@dataclass
class _RequestAuth:
    """What one request's authentications have seen so far.

    Its failed ``(user model, user name)`` pairs, its ``(user name, nonce)``
    pairs, and the users found, by ``(user model, user name)``.
    """

    failed: set[tuple[type, str]] = field(default_factory=set)
    nonces: set[tuple[str, str]] = field(default_factory=set)
    found: dict[tuple[type, str], FoundUser] = field(default_factory=dict)


class HMACAuthenticator:
    """Verifies both HMAC schemes for one app (the dispatcher's authenticator).

    :param state: the extension's per-app state (db, models).
    :param window: accepted clock difference in seconds, both ways.
    :param schemes: the enabled schemes, ``("v1", "v2")`` or a part of it.
    :param nonces: where nonces are recorded.
    :param user_model: the API user model of methods that name none.
    :param user_cache_seconds: how long a looked-up user row may be reused
        (``RPCENABLE_AUTH_USER_CACHE_SECONDS``; 0, the default: never).
    """

    def __init__(
        self,
        state: RPCState,
        *,
        window: int,
        schemes: Sequence[str],
        nonces: NonceStore,
        user_model: type,
        user_cache_seconds: float = 0.0,
    ) -> None:
        self.state = state
        self.user_cache_seconds = user_cache_seconds
        self.window = window
        self.schemes = tuple(schemes)
        self.nonces = nonces
        self.user_model = user_model
        self._models: dict[Any, type] = {}
        self._lookups: dict[type, UserLookup] = {}
        self._stamper = LastLoginStamper()
        self._dummy: dict[int, str] = {}
        #: HMACs keyed with decrypted keys (found only through a key itself).
        self._macs = KeyedMacs(KEY_CACHE_SIZE)
        parts = [HELP_V1 if s == "v1" else HELP_V2 for s in self.schemes]
        self.help_text = "Requires authentication: " + " or ".join(parts) + "."

    @property
    def auth_param_names(self) -> Sequence[str]:
        """The v1 auth parameters while v1 is enabled, else nothing."""
        return V1_AUTH_PARAMS if "v1" in self.schemes else ()

    # -- the protocol ----------------------------------------------------------

    def verify_request(self, ctx: CallContext) -> AuthResult | None:
        """Verify a scheme-v2 ``Authorization`` header on the raw request.

        :returns: ``None`` without such a header (or with v2 disabled).
        :raises RPCError: 401/402/403/406 when the header is there but wrong.
        """
        if "v2" not in self.schemes:
            return None
        value = ctx.headers.get("Authorization")
        if not value:
            return None
        try:
            fields = parse_authorization_v2(value)
        except ValueError as exc:
            raise RPCError(AUTH_BAD_NONCE, f"Authentication failed: {exc}") from None
        if fields is None:
            return None
        nonce, timestamp, username = fields["nonce"], fields["timestamp"], fields["username"]
        self._check_shapes(nonce, timestamp, username)
        body_hash = hashlib.sha256(ctx.body).hexdigest()
        message = string_to_sign_v2(
            ctx.http_method, ctx.path, body_hash, nonce, timestamp, username
        )
        user = self._verify_once(
            nonce, self.user_model, username, fields["signature"], message.encode()
        )
        self._finish(self.user_model, user, username, nonce)
        return AuthResult(user=user, username=username, params=[])

    def authenticate(self, procedure: Procedure, params: Params, ctx: CallContext) -> AuthResult:
        """Authenticate one call of a guarded procedure.

        :raises RPCError: 401/402/403/406 when it fails.
        """
        options: dict[str, Any] = procedure.auth or {}
        model = self._model_for(options)
        if ctx.verified is not None:
            user = ctx.verified.user
            if not isinstance(user, model):
                raise RPCError(AUTH_FAILED, MSG_OTHER_MODEL)
            if not self._passes_filter(model, user, options.get("user_filter")):
                raise RPCError(AUTH_FAILED, MSG_FAILED)
            return AuthResult(user=user, username=ctx.verified.username, params=params)
        if "v1" not in self.schemes:
            raise RPCError(AUTH_FAILED, MSG_V1_OFF)
        if isinstance(params, dict):  # by name: the four are members
            if not all(name in params for name in V1_AUTH_PARAMS):
                raise RPCError(AUTH_BAD_NONCE, MSG_MISSING)
            nonce, timestamp, username, signature = (params[n] for n in V1_AUTH_PARAMS)
            rest: Params = {k: v for k, v in params.items() if k not in V1_AUTH_PARAMS}
        else:
            if len(params) < len(V1_AUTH_PARAMS):
                raise RPCError(AUTH_BAD_NONCE, MSG_MISSING)
            nonce, timestamp, username, signature = params[:4]
            rest = list(params[4:])
        if isinstance(timestamp, bool):
            raise RPCError(AUTH_BAD_TIMESTAMP, MSG_TIMESTAMP)
        if isinstance(timestamp, int):
            timestamp = str(timestamp)
        self._check_shapes(nonce, timestamp, username)
        user = self._verify_once(
            nonce, model, username, signature, message_v1(nonce, timestamp, username)
        )
        if not self._passes_filter(model, user, options.get("user_filter")):
            raise RPCError(AUTH_FAILED, MSG_FAILED)
        self._finish(model, user, username, nonce)
        return AuthResult(user=user, username=username, params=rest)

    def redact(self, params: Params, ctx: CallContext) -> Params:
        """The params with the four v1 auth arguments replaced by ``"***"`` (unless
        verified by a v2 header; even with v1 off: a legacy client may send them)."""
        if ctx.verified is not None:
            return params
        if isinstance(params, dict):
            return {k: REDACTED if k in V1_AUTH_PARAMS else v for k, v in params.items()}
        count = min(len(params), len(V1_AUTH_PARAMS))
        return [REDACTED] * count + list(params[count:])

    # -- steps -----------------------------------------------------------------

    def _check_shapes(self, nonce: Any, timestamp: Any, username: Any) -> None:
        if not isinstance(nonce, str) or not NONCE_RE.fullmatch(nonce):
            raise RPCError(AUTH_BAD_NONCE, MSG_NONCE)
        if not isinstance(timestamp, str) or not _TIMESTAMP_RE.fullmatch(timestamp):
            raise RPCError(AUTH_BAD_TIMESTAMP, MSG_TIMESTAMP)
        if not isinstance(username, str) or not 0 < len(username) <= USERNAME_MAX:
            raise RPCError(AUTH_FAILED, MSG_FAILED)
        if abs(time.time() - int(timestamp)) > self.window:
            raise RPCError(AUTH_BAD_TIMESTAMP, MSG_WINDOW.format(window=self.window))

    def _verify_once(
        self, nonce: str, model: type, username: str, signature: Any, message: bytes
    ) -> Any:
        """:meth:`_verify`, unless this request already failed for these credentials."""
        seen: _RequestAuth | None = g.get(_REQUEST_KEY)
        if seen is None:
            seen = _RequestAuth()
            setattr(g, _REQUEST_KEY, seen)
        if (username, nonce) in seen.nonces:
            raise RPCError(AUTH_NONCE_USED, MSG_REPLAY)
        if (model, username) in seen.failed or len(seen.failed) >= MAX_FAILED_PER_REQUEST:
            raise RPCError(AUTH_FAILED, MSG_FAILED)
        try:
            user = self._verify(model, username, signature, message, seen.found)
        except RPCError as error:
            if error.code == AUTH_FAILED:
                seen.failed.add((model, username))
            raise
        seen.nonces.add((username, nonce))
        return user

    def _verify(
        self,
        model: type,
        username: str,
        signature: Any,
        message: bytes,
        found_in_request: dict[tuple[type, str], FoundUser],
    ) -> Any:
        """The active user whose key signed ``message`` as ``signature``, or fault 406.

        An unknown or inactive user costs the same work as a known one (a
        decryption and an HMAC with a throwaway key), and every failure has
        the same code and message. A user found earlier in the request
        (``found_in_request``) is not read again unless the signature does
        not match it.
        """
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if not has_secret(app):
            app.logger.error(
                "flask-rpcenable: an authenticated call was refused because no secret is "
                "set: set SECRET_KEY or RPCENABLE_SECRET_KEY"
            )
            raise RPCError(SYSTEM_ERROR, MSG_UNCONFIGURED)
        lookup = self._lookup(model)
        found = found_in_request.get((model, username)) or lookup.find(username)
        matches = self._signed_by(app, found, username, signature, message)
        if not matches and found is not None and found.remembered:
            # The remembered row may hold a key changed since: read it again.
            found = lookup.find(username, fresh=True)
            matches = self._signed_by(app, found, username, signature, message)
        if found is None or not matches:
            raise RPCError(AUTH_FAILED, MSG_FAILED)
        if not found.remembered:
            found = replace(found, remembered=True)
        found_in_request[(model, username)] = found
        return lookup.instance(found)

    def _signed_by(
        self,
        app: Flask,
        found: FoundUser | None,
        username: str,
        signature: Any,
        message: bytes,
    ) -> bool:
        """Whether ``signature`` is the HMAC-SHA256 of ``message`` under the key of ``found``.

        Without a user, a throwaway key does the same work (and fails).
        """
        token = found.token if found is not None else self._dummy_token()
        try:
            api_key = decrypt_api_key(token, app)
        except RuntimeError:
            app.logger.error(
                "flask-rpcenable: the API key of user %r cannot be decrypted with the "
                "configured secrets; set RPCENABLE_SECRET_KEY_FALLBACKS or rotate the key",
                username,
            )
            raise RPCError(AUTH_FAILED, MSG_FAILED) from None
        expected = self._macs.hexdigest(api_key, message).encode()
        given = signature.encode("utf-8", "replace") if isinstance(signature, str) else b""
        if len(given) > _MAX_SIGNATURE:
            given = b""
        return hmac.compare_digest(expected, given)

    def _finish(self, model: type, user: Any, username: str, nonce: str) -> None:
        """Record the nonce (402 if seen) and stamp ``last_login`` (at most once a minute)."""
        if not self.nonces.add(username, nonce):
            raise RPCError(AUTH_NONCE_USED, MSG_REPLAY)
        identity = instance_state(user).identity or ()
        if not self._stamper.due(model, identity):
            return
        # One UPDATE in a transaction of its own, through the library's own
        # pool: the app's db.session (and whatever it holds) is not touched.
        try:
            self._stamper.stamp(self.state.db, model, user, f"last_login of {username!r}")
        except sa.exc.SQLAlchemyError:
            current_app.logger.warning(
                "flask-rpcenable: could not update last_login of API user %r",
                username,
                exc_info=True,
            )

    def _lookup(self, model: type) -> UserLookup:
        lookup = self._lookups.get(model)
        if lookup is None:
            lookup = UserLookup(self.state.db, model, self.user_cache_seconds)
            self._lookups[model] = lookup
        return lookup

    def _passes_filter(self, model: type, user: Any, user_filter: Any) -> bool:
        if user_filter is None:
            return True
        if isinstance(user_filter, tuple) or is_sql_criterion(user_filter):
            criteria: Iterable[Any] = (
                user_filter if isinstance(user_filter, tuple) else (user_filter,)
            )
            query = sa.select(model.id).where(  # type: ignore[attr-defined]
                model.id == user.id,  # type: ignore[attr-defined]
                *criteria,
            )
            return self.state.db.session.execute(query).first() is not None
        return bool(user_filter(user))

    def _model_for(self, options: dict[str, Any]) -> type:
        spec = options.get("user_model")
        if spec is None:
            return self.user_model
        model = self._models.get(spec)
        if model is None:
            model = resolve_user_model(spec, self.state.db)
            self._models[spec] = model
        return model

    def _dummy_token(self) -> str:
        """A key encrypted under the current secret, for unknown users."""
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        token = self._dummy.get(id(app))
        if token is None:
            token = encrypt_api_key(generate_api_key(), app)
            self._dummy[id(app)] = token
        return token
