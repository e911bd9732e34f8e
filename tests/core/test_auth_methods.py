"""WAMP-Cryptosign, WAMP-SCRAM and hashed tickets against static principals,
driven through the pure core (Harness): right and wrong credentials, unknown
principals, channel binding refused, WELCOME details; plus the spec's test
vectors (Cryptosign signatures, RFC 7677 SCRAM-SHA-256)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from tests.helpers import ROLES, Harness
from wamp_router.config.loader import load_config_text
from wamp_router.core.auth import cryptosign, scram
from wamp_router.core.auth.ticket import hash_ticket, parse_ticket_hash, ticket_matches
from wamp_router.core.messages import Abort, Authenticate, Challenge, Hello, Welcome

from .auth_helpers import (
    PRIVATE_1,
    PRIVATE_2,
    PRIVATE_3,
    STATIC_CONFIG,
    cryptosign_signature,
    public_key,
    scram_proof,
)

FAILED = "wamp.error.authentication_failed"

# the spec's test vectors without channel binding: (private key, challenge, signature)
VECTORS = [
    (PRIVATE_1, "ff" * 32,
     "b32675b221f08593213737bef8240e7c15228b07028e19595294678c90d11c0cae80a357331bfc5cc9fb71"
     "081464e6e75013517c2cf067ad566a6b7b728e5d03" + "ff" * 32),
    (PRIVATE_2, "b26c1f87c13fc1da14997f1b5a71995dff8fbe0a62fae8473c7bdbd05bfb607d",
     "d4209ad10d5aff6bfbc009d7e924795de138a63515efc7afc6b01b7fe5201372190374886a70207b042294"
     "af5bd64ce725cd8dceb344e6d11c09d1aaaf4d660fb26c1f87c13fc1da14997f1b5a71995dff8fbe0a62fa"
     "e8473c7bdbd05bfb607d"),
    (PRIVATE_3, "b05e6b8ad4d69abf74aa3be3c0ee40ae07d66e1895b9ab09285a2f1192d562d2",
     "7beb282184baadd08f166f16dd683b39cab53816ed81e6955def951cb2ddad1ec184e206746fd82bda075a"
     "f03711d3d5658fc84a76196b0fa8d1ebc92ef9f30bb05e6b8ad4d69abf74aa3be3c0ee40ae07d66e1895b9"
     "ab09285a2f1192d562d2"),
]


@pytest.fixture
def h() -> Harness:
    return Harness(load_config_text(STATIC_CONFIG, "<test>"))


def hello(h: Harness, conn: int, method: str, authid: str | None = None,
          **authextra: object) -> list:
    details: dict[str, object] = {"roles": ROLES, "authmethods": [method]}
    if authid is not None:
        details["authid"] = authid
    if authextra:
        details["authextra"] = authextra
    return h.send(conn, Hello("realm2", details))


# ------------------------------------------------------------------ cryptosign


@pytest.mark.parametrize(("private", "challenge", "signature"), VECTORS)
def test_cryptosign_spec_vectors(private: str, challenge: str, signature: str) -> None:
    assert cryptosign_signature(private, challenge) == signature
    assert cryptosign.verify(public_key(private), challenge, signature)
    assert not cryptosign.verify(public_key(PRIVATE_3 if private != PRIVATE_3 else PRIVATE_1),
                                 challenge, signature)
    assert not cryptosign.verify(public_key(private), challenge, signature[:128])  # no challenge
    tampered = signature[:10] + ("0" if signature[10] != "0" else "1") + signature[11:]
    assert not cryptosign.verify(public_key(private), challenge, tampered)


@pytest.mark.parametrize("private", [PRIVATE_1, PRIVATE_2])
@pytest.mark.parametrize("authid", [None, "carol"])
def test_cryptosign_join(h: Harness, private: str, authid: str | None) -> None:
    conn = h.connect()
    [ch] = hello(h, conn, "cryptosign", authid, pubkey=public_key(private), channel_binding=None)
    assert isinstance(ch, Challenge) and ch.method == "cryptosign"
    assert set(ch.extra) == {"challenge", "channel_binding"} and ch.extra["channel_binding"] is None
    assert len(bytes.fromhex(ch.extra["challenge"])) == 32
    [welcome] = h.send(conn, Authenticate(cryptosign_signature(private, ch.extra["challenge"]),
                                          {}))
    assert isinstance(welcome, Welcome)
    d = welcome.details
    assert (d["authid"], d["authrole"], d["authmethod"], d["authprovider"]) == (
        "carol", "user", "cryptosign", "static")


@pytest.mark.parametrize("case", ["unknown key", "wrong key", "other challenge", "authid",
                                  "short"])
def test_cryptosign_rejected(h: Harness, case: str) -> None:
    conn = h.connect()
    announced = public_key(PRIVATE_3 if case == "unknown key" else PRIVATE_1)
    authid = "mallory" if case == "authid" else None
    [ch] = hello(h, conn, "cryptosign", authid, pubkey=announced)
    assert isinstance(ch, Challenge)  # an unknown key is challenged like a known one
    challenge = ch.extra["challenge"]
    signer = PRIVATE_2 if case == "wrong key" else (PRIVATE_3 if case == "unknown key"
                                                    else PRIVATE_1)
    if case == "other challenge":
        challenge = "00" * 32
    signature = cryptosign_signature(signer, challenge)
    if case == "short":
        signature = signature[:128]
    [abort] = h.send(conn, Authenticate(signature, {}))
    assert isinstance(abort, Abort) and abort.reason == FAILED


@pytest.mark.parametrize(("extra", "fragment"), [
    ({"pubkey": "abc"}, "64 hex digits"),
    ({}, "authextra.pubkey"),
    ({"pubkey": public_key(PRIVATE_1), "channel_binding": "tls-unique"}, "channel binding"),
])
def test_cryptosign_bad_hello(h: Harness, extra: dict[str, object], fragment: str) -> None:
    conn = h.connect()
    [abort] = hello(h, conn, "cryptosign", None, **extra)
    assert isinstance(abort, Abort) and abort.reason == FAILED
    assert fragment in abort.details["message"]


# ----------------------------------------------------------------------- SCRAM


def test_scram_rfc7677_vector() -> None:
    """RFC 7677's SCRAM-SHA-256 example (the same proof and verifier as the spec's
    example messages): PBKDF2 with the decoded salt, c=biws."""
    salt = "W22ZaJ0SNY7soEsUEjb6gQ=="
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", base64.b64decode(salt), 4096, 32)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    cred = scram.Credential("pbkdf2", salt, 4096, None, hashlib.sha256(client_key).digest(),
                            hmac.new(salted, b"Server Key", hashlib.sha256).digest())
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    message = scram.auth_message("user", "rOprNGfwEbeRWgbNEkqO", nonce, salt, 4096)
    assert scram.client_proof_valid(cred, message, "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    assert not scram.client_proof_valid(cred, message, base64.b64encode(b"x" * 32).decode())
    assert scram.server_signature(cred, message) == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_scram_escapes_authid() -> None:
    assert scram.escape("a=b,c") == "a=3Db=2Cc"


@pytest.mark.parametrize(("authid", "password", "kdf"), [
    ("dave", "dave-password", "pbkdf2"), ("erin", "erin-password", "argon2id13")])
def test_scram_join(h: Harness, authid: str, password: str, kdf: str) -> None:
    conn = h.connect()
    client_nonce = base64.b64encode(b"client-nonce-123").decode()
    [ch] = hello(h, conn, "wamp-scram", authid, nonce=client_nonce)
    assert isinstance(ch, Challenge) and ch.method == "wamp-scram"
    assert ch.extra["kdf"] == kdf and ch.extra["nonce"].startswith(client_nonce)
    assert (ch.extra["memory"] is None) == (kdf == "pbkdf2")
    proof, verifier = scram_proof(password, authid, client_nonce, ch.extra)
    [welcome] = h.send(conn, Authenticate(proof, {"nonce": ch.extra["nonce"],
                                                  "channel_binding": None}))
    assert isinstance(welcome, Welcome)
    d = welcome.details
    assert (d["authid"], d["authrole"], d["authmethod"], d["authprovider"]) == (
        authid, "user", "wamp-scram", "static")
    assert d["authextra"] == {"verifier": verifier}


@pytest.mark.parametrize("case", ["password", "nonce", "unknown", "garbage"])
def test_scram_rejected(h: Harness, case: str) -> None:
    conn = h.connect()
    authid = "nobody" if case == "unknown" else "dave"
    client_nonce = base64.b64encode(b"n" * 16).decode()
    [ch] = hello(h, conn, "wamp-scram", authid, nonce=client_nonce)
    assert isinstance(ch, Challenge)
    password = "wrong" if case == "password" else "dave-password"
    proof, _ = scram_proof(password, authid, client_nonce, ch.extra)
    nonce = ch.extra["nonce"] + ("x" if case == "nonce" else "")
    if case == "garbage":
        proof = "not base64!"
    [abort] = h.send(conn, Authenticate(proof, {"nonce": nonce}))
    assert isinstance(abort, Abort) and abort.reason == FAILED


def test_scram_unknown_authid_gets_a_stable_mock_salt(h: Harness) -> None:
    salts = []
    for _ in range(2):
        conn = h.connect()
        [ch] = hello(h, conn, "wamp-scram", "ghost", nonce="bm9uY2U=")
        salts.append(ch.extra["salt"])
        assert ch.extra["kdf"] in ("pbkdf2", "argon2id13")
    other = h.connect()
    [ch] = hello(h, other, "wamp-scram", "phantom", nonce="bm9uY2U=")
    assert salts[0] == salts[1] != ch.extra["salt"]


@pytest.mark.parametrize(("authid", "extra", "fragment"), [
    (None, {"nonce": "bm9uY2U="}, "authid"),
    ("dave", {}, "nonce"),
    ("dave", {"nonce": "bm9uY2U=", "channel_binding": "tls-unique"}, "channel binding"),
])
def test_scram_bad_hello(h: Harness, authid: str | None, extra: dict[str, object],
                         fragment: str) -> None:
    conn = h.connect()
    [abort] = hello(h, conn, "wamp-scram", authid, **extra)
    assert isinstance(abort, Abort) and fragment in abort.details["message"]


# ------------------------------------------------------------------- tickets


def test_ticket_hash_format() -> None:
    encoded = hash_ticket("t0ps3cret", b"0123456789abcdef", 1000)
    assert encoded.startswith("pbkdf2-sha256$1000$")
    assert ticket_matches("t0ps3cret", encoded) and not ticket_matches("t0ps3cre", encoded)
    assert isinstance(parse_ticket_hash("sha1$1$a$b"), str)
    assert isinstance(parse_ticket_hash("pbkdf2-sha256$x$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA=="),
                      str)


@pytest.mark.parametrize(("authid", "ticket", "ok"), [
    ("hashed", "hashed-ticket", True), ("hashed", "wrong", False), ("nobody", "x", False),
    ("alice", "secret123", True)])
def test_hashed_ticket(h: Harness, authid: str, ticket: str, ok: bool) -> None:
    conn = h.connect()
    [ch] = hello(h, conn, "ticket", authid)
    assert isinstance(ch, Challenge)
    [answer] = h.send(conn, Authenticate(ticket, {}))
    assert isinstance(answer, Welcome if ok else Abort)
