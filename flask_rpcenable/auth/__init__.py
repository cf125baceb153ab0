"""Authentication: ``@rpc.auth``, HMAC verification, the replay cache, API users.

- ``config``: the settings;
- ``verifier``: :func:`mark_auth` and :class:`HMACAuthenticator` (schemes v1 and v2);
- ``lookup``, ``prepared``, ``usercache``: the per-call database work;
- ``nonces``: the replay cache;
- ``signing``: what clients compute (signatures, auth arguments, headers);
- ``users``: the API user model and key encryption;
- ``cli``: ``flask rpc users ...``.

:func:`init_app` sets the component up for one :class:`~flask_rpcenable.state.RPCState`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, request

from ..cli import rpc_cli
from ..state import before_request_until_done
from .cli import users_group
from .config import AuthSettings
from .marker import mark_auth
from .nonces import (
    NonceStore,
    backend_of,
    refuse_null_cache,
    resolve_cache,
    warn_about_backend,
)
from .users import has_secret, resolve_user_model
from .verifier import HMACAuthenticator

if TYPE_CHECKING:
    from ..state import RPCState

__all__ = ["HMACAuthenticator", "init_app", "mark_auth"]


def init_app(app: Flask, state: RPCState) -> None:
    """Set the component up: settings, cache, user model, authenticator, CLI, admin.

    :raises RuntimeError: on an invalid setting, a NullCache, or a user model
        that cannot be imported.
    """
    settings = AuthSettings.from_app(app)
    cache = resolve_cache(app, state)
    backend = backend_of(app, cache)
    refuse_null_cache(backend)
    _warn_when_serving(app, state, backend)
    if state.cache is None:
        state.cache = cache
    model = resolve_user_model(app.config["RPCENABLE_USER_MODEL"], state.db)
    state.models.APIUser = model
    state.dispatcher.authenticator = HMACAuthenticator(
        state,
        window=settings.window,
        schemes=settings.schemes,
        nonces=NonceStore(backend, timeout=2 * settings.window),
        user_model=model,
        user_cache_seconds=settings.user_cache_seconds,
    )
    if state.primary:
        rpc_cli.add_command(users_group)


def _warn_when_serving(app: Flask, state: RPCState, backend: Any) -> None:
    """Give the setup warnings that matter only to an app with authenticated methods.

    The missing secret is said at once (``init_app``); the replay-cache
    warnings wait for the first request to this endpoint, so that ``flask
    --help`` and other commands stay quiet.
    """
    if state.registry.has_auth() and not has_secret(app):
        app.logger.warning(
            "flask-rpcenable: authenticated methods need a secret to encrypt API keys with: "
            "set SECRET_KEY (or RPCENABLE_SECRET_KEY), e.g. FLASK_SECRET_KEY in the "
            "environment with app.config.from_prefixed_env()."
        )

    def check_on_first_request() -> bool:
        if request.blueprint != state.blueprint_name:
            return False
        if state.registry.has_auth():
            warn_about_backend(app, backend)
        return True

    # Once the warning is given, the hook is gone: later requests pay nothing.
    before_request_until_done(app, check_on_first_request)
