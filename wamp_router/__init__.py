"""wamp_router: a WAMP v2 router on Twisted."""
