"""Blinker signals sent around every call.

Connect to them to feed metrics, error trackers or an audit log::

    from flask_rpcenable import signals

    @signals.call_failed.connect_via(app)
    def report(sender, method, params, exception, duration, **extra):
        sentry_sdk.capture_exception(exception)

Every signal is sent with the Flask app as sender and these keyword
arguments: ``method`` (the name called), ``version`` (``None`` for the default
namespace), ``params`` (the positional parameters, with authentication
arguments replaced by ``"***"``). ``call_finished`` adds ``result`` and
``duration`` (seconds); ``call_failed`` adds ``exception`` (what the
procedure raised, a :class:`~xmlrpc.client.Fault` included, or the
:class:`~flask_rpcenable.errors.RPCError` of a call refused before it ran,
which carries ``code`` and ``message``, also as ``faultCode`` and
``faultString``) and ``duration``.

They are sent for each ``system.multicall`` sub-call and for the multicall
itself. ``call_started`` comes once the method is found and its parameters
are bound (an unknown method or bad parameters only send ``call_failed``);
a request refused before parsing sends ``call_failed`` with method ``"-"``.
An exception in a ``call_finished`` or ``call_failed`` receiver is logged
and does not change the response.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent before a method runs (after the request was decoded).
call_started = _signals.signal("rpcenable.call-started")
#: Sent after a method returned a result.
call_finished = _signals.signal("rpcenable.call-finished")
#: Sent after a call ended in a fault or an exception.
call_failed = _signals.signal("rpcenable.call-failed")
