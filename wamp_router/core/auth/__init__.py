"""Authentication methods. Each module offers a class with the interface of
``base.Authenticator``: ``start(hello, ctx)`` answers a HELLO with an
``Accept``, a ``Challenge`` (and keeps its pending state in the returned
object) or a ``Reject``; ``finish(pending, authenticate)`` checks the
AUTHENTICATE. Pure: time and randomness come in through ``AuthContext``.
"""
