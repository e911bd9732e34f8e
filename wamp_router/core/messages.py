"""One class per WAMP message, with its wire format in the docstring.

Messages are slotted dataclasses built by the codec (``codec.parse``) or by
the router. They are values: never mutate one after construction; derive a
changed copy with ``dataclasses.replace``. (They are not ``frozen=True``
because a frozen dataclass costs ~5x more to construct, and these are built
on the hot path for every call and event.)

Payload fields ``args``/``kwargs`` are ``None`` when absent on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

Dict = dict[str, Any]
Args = list[Any] | None
Kwargs = dict[str, Any] | None


class Message:
    """Base of all WAMP messages; ``TYPE`` is the message code."""

    __slots__ = ()
    TYPE: ClassVar[int] = 0


@dataclass(slots=True)
class Hello(Message):
    """``[HELLO, Realm|uri, Details|dict]``"""

    TYPE: ClassVar[int] = 1
    realm: str
    details: Dict


@dataclass(slots=True)
class Welcome(Message):
    """``[WELCOME, Session|id, Details|dict]``"""

    TYPE: ClassVar[int] = 2
    session: int
    details: Dict


@dataclass(slots=True)
class Abort(Message):
    """``[ABORT, Details|dict, Reason|uri]``"""

    TYPE: ClassVar[int] = 3
    details: Dict
    reason: str


@dataclass(slots=True)
class Challenge(Message):
    """``[CHALLENGE, AuthMethod|string, Extra|dict]``"""

    TYPE: ClassVar[int] = 4
    method: str
    extra: Dict


@dataclass(slots=True)
class Authenticate(Message):
    """``[AUTHENTICATE, Signature|string, Extra|dict]``"""

    TYPE: ClassVar[int] = 5
    signature: str
    extra: Dict


@dataclass(slots=True)
class Goodbye(Message):
    """``[GOODBYE, Details|dict, Reason|uri]``"""

    TYPE: ClassVar[int] = 6
    details: Dict
    reason: str


@dataclass(slots=True)
class Error(Message):
    """``[ERROR, REQUEST.Type|int, REQUEST.Request|id, Details|dict, Error|uri, Arguments|list?, ArgumentsKw|dict?]``"""

    TYPE: ClassVar[int] = 8
    request_type: int
    request: int
    details: Dict
    error: str
    args: Args = None
    kwargs: Kwargs = None


@dataclass(slots=True)
class Publish(Message):
    """``[PUBLISH, Request|id, Options|dict, Topic|uri, Arguments|list?, ArgumentsKw|dict?]``"""

    TYPE: ClassVar[int] = 16
    request: int
    options: Dict
    topic: str
    args: Args = None
    kwargs: Kwargs = None


@dataclass(slots=True)
class Published(Message):
    """``[PUBLISHED, PUBLISH.Request|id, Publication|id]``"""

    TYPE: ClassVar[int] = 17
    request: int
    publication: int


@dataclass(slots=True)
class Subscribe(Message):
    """``[SUBSCRIBE, Request|id, Options|dict, Topic|uri]``"""

    TYPE: ClassVar[int] = 32
    request: int
    options: Dict
    topic: str


@dataclass(slots=True)
class Subscribed(Message):
    """``[SUBSCRIBED, SUBSCRIBE.Request|id, Subscription|id]``"""

    TYPE: ClassVar[int] = 33
    request: int
    subscription: int


@dataclass(slots=True)
class Unsubscribe(Message):
    """``[UNSUBSCRIBE, Request|id, SUBSCRIBED.Subscription|id]``"""

    TYPE: ClassVar[int] = 34
    request: int
    subscription: int


@dataclass(slots=True)
class Unsubscribed(Message):
    """``[UNSUBSCRIBED, UNSUBSCRIBE.Request|id, Details|dict?]``"""

    TYPE: ClassVar[int] = 35
    request: int
    details: Dict | None = None


@dataclass(slots=True)
class Event(Message):
    """``[EVENT, SUBSCRIBED.Subscription|id, PUBLISHED.Publication|id, Details|dict, Arguments|list?, ArgumentsKw|dict?]``"""

    TYPE: ClassVar[int] = 36
    subscription: int
    publication: int
    details: Dict
    args: Args = None
    kwargs: Kwargs = None


@dataclass(slots=True)
class Call(Message):
    """``[CALL, Request|id, Options|dict, Procedure|uri, Arguments|list?, ArgumentsKw|dict?]``"""

    TYPE: ClassVar[int] = 48
    request: int
    options: Dict
    procedure: str
    args: Args = None
    kwargs: Kwargs = None


@dataclass(slots=True)
class Cancel(Message):
    """``[CANCEL, CALL.Request|id, Options|dict]``"""

    TYPE: ClassVar[int] = 49
    request: int
    options: Dict


@dataclass(slots=True)
class Result(Message):
    """``[RESULT, CALL.Request|id, Details|dict, Arguments|list?, ArgumentsKw|dict?]``"""

    TYPE: ClassVar[int] = 50
    request: int
    details: Dict
    args: Args = None
    kwargs: Kwargs = None


@dataclass(slots=True)
class Register(Message):
    """``[REGISTER, Request|id, Options|dict, Procedure|uri]``"""

    TYPE: ClassVar[int] = 64
    request: int
    options: Dict
    procedure: str


@dataclass(slots=True)
class Registered(Message):
    """``[REGISTERED, REGISTER.Request|id, Registration|id]``"""

    TYPE: ClassVar[int] = 65
    request: int
    registration: int


@dataclass(slots=True)
class Unregister(Message):
    """``[UNREGISTER, Request|id, REGISTERED.Registration|id]``"""

    TYPE: ClassVar[int] = 66
    request: int
    registration: int


@dataclass(slots=True)
class Unregistered(Message):
    """``[UNREGISTERED, UNREGISTER.Request|id, Details|dict?]``"""

    TYPE: ClassVar[int] = 67
    request: int
    details: Dict | None = None


@dataclass(slots=True)
class Invocation(Message):
    """``[INVOCATION, Request|id, REGISTERED.Registration|id, Details|dict, Arguments|list?, ArgumentsKw|dict?]``"""

    TYPE: ClassVar[int] = 68
    request: int
    registration: int
    details: Dict
    args: Args = None
    kwargs: Kwargs = None


@dataclass(slots=True)
class Interrupt(Message):
    """``[INTERRUPT, INVOCATION.Request|id, Options|dict]``"""

    TYPE: ClassVar[int] = 69
    request: int
    options: Dict


@dataclass(slots=True)
class Yield(Message):
    """``[YIELD, INVOCATION.Request|id, Options|dict, Arguments|list?, ArgumentsKw|dict?]``"""

    TYPE: ClassVar[int] = 70
    request: int
    options: Dict
    args: Args = None
    kwargs: Kwargs = None


ALL_MESSAGES: tuple[type[Message], ...] = (
    Hello, Welcome, Abort, Challenge, Authenticate, Goodbye, Error,
    Publish, Published, Subscribe, Subscribed, Unsubscribe, Unsubscribed, Event,
    Call, Cancel, Result, Register, Registered, Unregister, Unregistered,
    Invocation, Interrupt, Yield,
)
BY_TYPE: dict[int, type[Message]] = {cls.TYPE: cls for cls in ALL_MESSAGES}
NAMES: dict[int, str] = {cls.TYPE: cls.__name__.upper() for cls in ALL_MESSAGES}
