"""Security headers on every response under the admin's URL, from a WSGI wrapper.

The wrapper sits around the app's ``wsgi_app``, so it sees each response
after all of Flask's work (the app's own ``after_request`` hooks and error
handlers included) and can keep what the app set: a header the app set
itself is left as it is, and a ``Content-Security-Policy`` of the app's own
gets ``frame-ancestors`` appended. A request outside the admin costs one
string comparison, not a Flask hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["FRAME_ANCESTORS", "SECURITY_HEADERS", "AdminHeaders"]

#: Sent with every admin response, the login and denied pages included: no
#: framing by another site (clickjacking of "Regenerate key" or "Delete"),
#: no content-type sniffing, no referrer with admin URLs to other sites.
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
FRAME_ANCESTORS = "frame-ancestors 'none'"
_CSP = "content-security-policy"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class AdminHeaders:
    """Wraps a WSGI app; adds :data:`SECURITY_HEADERS` and CSP ``frame-ancestors`` under ``prefix``.

    :param wsgi_app: the app's ``wsgi_app`` to wrap.
    :param prefix: the admin's URL (``/admin``), matched against the path as
        Flask reads it (below the script root).
    """

    def __init__(self, wsgi_app: WSGIApp, prefix: str) -> None:
        self.wsgi_app = wsgi_app
        self.prefix = prefix.rstrip("/")
        self.subtree = self.prefix + "/"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(self.subtree):  # the cheap test first: most requests
            path = "/" + path.lstrip("/")  # as Flask's request.path reads it
            if path != self.prefix and not path.startswith(self.subtree):
                return self.wsgi_app(environ, start_response)

        def start_secured(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            secure(headers)
            return start_response(status, headers, *exc_info)

        return self.wsgi_app(environ, start_secured)


def secure(headers: list[tuple[str, str]]) -> None:
    """Add the security headers to a WSGI header list, keeping what is there."""
    present = {name.lower(): index for index, (name, _) in enumerate(headers)}
    for name, value in SECURITY_HEADERS.items():
        if name.lower() not in present:
            headers.append((name, value))
    index = present.get(_CSP)
    if index is None:
        headers.append(("Content-Security-Policy", FRAME_ANCESTORS))
    elif "frame-ancestors" not in headers[index][1]:
        name, csp = headers[index]
        headers[index] = (name, f"{csp}; {FRAME_ANCESTORS}")
