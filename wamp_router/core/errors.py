"""Error types that say who is at fault, and the WAMP error/close URIs.

- ``ProtocolViolation``: the peer broke the protocol; the session is aborted
  with ``wamp.error.protocol_violation`` and its transport closed.
- ``WampError``: an application-level failure answered with an ERROR message.
- Any other exception escaping the core is our bug: the adapter logs it and
  closes only the session that triggered it.
"""

from __future__ import annotations

from typing import Any

# Basic Profile error URIs
INVALID_URI = "wamp.error.invalid_uri"
NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
PROCEDURE_ALREADY_EXISTS = "wamp.error.procedure_already_exists"
NO_SUCH_REGISTRATION = "wamp.error.no_such_registration"
NO_SUCH_SUBSCRIPTION = "wamp.error.no_such_subscription"
INVALID_ARGUMENT = "wamp.error.invalid_argument"
CANCELED = "wamp.error.canceled"
PAYLOAD_SIZE_EXCEEDED = "wamp.error.payload_size_exceeded"
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
NOT_AUTHORIZED = "wamp.error.not_authorized"
AUTHORIZATION_FAILED = "wamp.error.authorization_failed"
NO_SUCH_REALM = "wamp.error.no_such_realm"
NO_SUCH_ROLE = "wamp.error.no_such_role"
NO_AUTH_METHOD = "wamp.error.no_auth_method"
AUTHENTICATION_FAILED = "wamp.error.authentication_failed"

# Close reasons
SYSTEM_SHUTDOWN = "wamp.close.system_shutdown"
CLOSE_REALM = "wamp.close.close_realm"
GOODBYE_AND_OUT = "wamp.close.goodbye_and_out"


class ProtocolViolation(Exception):
    """The peer sent something the protocol does not allow."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class WampError(Exception):
    """An error that is answered to the peer with an ERROR message."""

    def __init__(
        self,
        uri: str,
        message: str | None = None,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(uri, message)
        self.uri = uri
        if args is None and message is not None:
            args = [message]
        self.args_ = args
        self.kwargs = kwargs
