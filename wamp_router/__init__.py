"""wamp_router: a WAMP v2 router on Twisted."""

__version__ = "0.1.0"
