"""TLS for listeners (``tls = { certificate, key, chain }``): the listener's
factory is wrapped in Twisted's memory-BIO TLS (pyOpenSSL, ``twisted[tls]``),
so TLS works the same over TCP (IPv4/IPv6) and Unix endpoints.

Protocol versions and ciphers are Twisted's ``CertificateOptions`` defaults
(TLS 1.2 and newer, no compression, server cipher preference). Certificate
files are read when the listener starts; a bad file stops the start with the
file's name and OpenSSL's reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..config.model import RedisTls, Tls

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class TlsSetupError(Exception):
    """A certificate, key or chain file could not be used."""


def server_options(tls: Tls) -> Any:
    from OpenSSL import crypto
    from twisted.internet import ssl

    try:
        key = crypto.load_privatekey(crypto.FILETYPE_PEM, Path(tls.key).read_bytes())
    except (OSError, crypto.Error) as exc:
        raise TlsSetupError(f"cannot use TLS key {tls.key}: {exc}") from exc
    certs: list[Any] = []
    for path in (tls.certificate, tls.chain):
        if path is None:
            continue
        try:
            found = _PEM_CERT.findall(Path(path).read_bytes())
            certs.extend(crypto.load_certificate(crypto.FILETYPE_PEM, pem) for pem in found)
        except (OSError, crypto.Error) as exc:
            raise TlsSetupError(f"cannot use TLS certificate {path}: {exc}") from exc
        if not found:
            raise TlsSetupError(f"no PEM certificate in {path}")
    try:
        return ssl.CertificateOptions(privateKey=key, certificate=certs[0],
                                      extraCertChain=certs[1:])
    except Exception as exc:  # e.g. the key does not belong to the certificate
        raise TlsSetupError(f"cannot use TLS certificate {tls.certificate} with key "
                            f"{tls.key}: {exc}") from exc


def wrap(factory: Any, tls: Tls | None) -> Any:
    """``factory`` itself without TLS, else a TLS server factory around it."""
    if tls is None:
        return factory
    from twisted.protocols.tls import TLSMemoryBIOFactory

    wrapper = TLSMemoryBIOFactory(server_options(tls), False, factory)
    wrapper.noisy = False
    return wrapper


def client_options(tls: RedisTls, hostname: str) -> Any:
    """TLS options for a connection to Redis (``rediss://``): the server's
    certificate must chain to ``tls.ca`` (or the system's trust store) and name
    ``hostname``; a client certificate when configured."""
    from OpenSSL import SSL, crypto
    from twisted.internet import ssl

    trust: Any = ssl.platformTrust()
    if tls.ca is not None:
        try:
            found = _PEM_CERT.findall(Path(tls.ca).read_bytes())
            roots = [ssl.Certificate.loadPEM(pem) for pem in found]
        except (OSError, SSL.Error, crypto.Error) as exc:
            raise TlsSetupError(f"cannot use Redis CA file {tls.ca}: {exc}") from exc
        if not roots:
            raise TlsSetupError(f"no PEM certificate in Redis CA file {tls.ca}")
        trust = ssl.trustRootFromCertificates(roots)
    client = None
    if tls.certificate is not None and tls.key is not None:
        try:
            client = ssl.PrivateCertificate.loadPEM(
                Path(tls.certificate).read_bytes() + b"\n" + Path(tls.key).read_bytes())
        except Exception as exc:  # unreadable, not PEM, or not that certificate's key
            raise TlsSetupError(f"cannot use Redis client certificate {tls.certificate} "
                                f"with key {tls.key}: {exc}") from exc
    try:
        return ssl.optionsForClientTLS(hostname, trustRoot=trust, clientCertificate=client)
    except Exception as exc:  # e.g. the key does not belong to the certificate
        what = (f"Redis client certificate {tls.certificate} with key {tls.key}"
                if client is not None else f"TLS to Redis at {hostname}")
        raise TlsSetupError(f"cannot use {what}: {exc}") from exc
