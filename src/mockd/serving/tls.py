"""TLS on both sides of mockd: the contexts its listeners serve with (a given certificate, or a throwaway
one made at start-up), the context its upstream client verifies with, and why a handshake failed.

Certificates are made with ``trustme`` (on top of ``cryptography``), never by hand.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from mockd.support.files import write_atomically
from mockd.support.runtime import LOOPBACK_NAMES

SELF_SIGNED_CA_FILE = "mockd-ca.pem"
SELF_SIGNED_NAMES = tuple(sorted(LOOPBACK_NAMES))

# OpenSSL's X509_V_ERR_* codes users meet, said the way they would search for them.
_VERIFY_REASONS = {
    18: "unknown CA (the upstream's certificate is self-signed)",
    19: "unknown CA (a self-signed certificate in the upstream's chain)",
    20: "unknown CA (unable to get the issuer's certificate)",
    21: "unknown CA (unable to verify the first certificate)",
    10: "certificate expired",
    9: "certificate not yet valid",
    62: "name mismatch",
}


class TlsError(Exception):
    """A certificate or key that cannot be used, phrased as the one line the user sees."""


@dataclass(frozen=True)
class UpstreamTls:
    """How the upstream client verifies and identifies itself: ``--upstream-ca``, ``--upstream-insecure``,
    ``--upstream-cert``/``--upstream-key`` (or the settings file's ``upstream:`` block)."""

    ca_file: Path | None = None
    insecure: bool = False
    cert_file: Path | None = None
    key_file: Path | None = None

    def context(self) -> ssl.SSLContext:
        """The system's trust store plus ``ca_file``; no verification at all when ``insecure``."""
        context = ssl.create_default_context()
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.ca_file is not None:
            try:
                context.load_verify_locations(cafile=str(self.ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise TlsError(f"cannot use --upstream-ca {self.ca_file}: {_reason(exc)}") from None
        if self.cert_file is not None:
            _load_chain(context, self.cert_file, self.key_file, "--upstream-cert")
        elif self.key_file is not None:
            raise TlsError("--upstream-key needs --upstream-cert")
        return context


def server_context(cert_file: Path, key_file: Path | None, flag: str) -> ssl.SSLContext:
    """A listener's context from a PEM certificate (chain) and its key (the key may be in the same file)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _load_chain(context, cert_file, key_file, flag)
    return context


def self_signed_context(directory: Path, hosts: tuple[str, ...] = ()) -> tuple[ssl.SSLContext, Path]:
    """A throwaway CA and a certificate it signs for ``localhost``, ``127.0.0.1``, ``::1`` (and ``hosts``);
    the CA's certificate is written to ``directory`` so clients can trust it. Returns the context and
    that file's path."""
    import trustme

    authority = trustme.CA(organization_name="mockd", organization_unit_name="self-signed for this run")
    names = list(dict.fromkeys([*SELF_SIGNED_NAMES, *(host for host in hosts if host not in ("0.0.0.0", "::"))]))
    leaf = authority.issue_cert(*names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    ca_path = write_atomically(directory / SELF_SIGNED_CA_FILE, [authority.cert_pem.bytes()])
    return context, ca_path


def _load_chain(context: ssl.SSLContext, cert_file: Path, key_file: Path | None, flag: str) -> None:
    try:
        context.load_cert_chain(str(cert_file), str(key_file) if key_file is not None else None)
    except (OSError, ssl.SSLError) as exc:
        key = f" with key {key_file}" if key_file is not None else ""
        raise TlsError(f"cannot use {flag} {cert_file}{key}: {_reason(exc)}") from None


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason.lower().replace("_", " ") if exc.reason else str(exc)
    return exc.strerror or str(exc)


def tls_failure(exc: BaseException) -> str | None:
    """Why a connection to the upstream failed its TLS handshake, in words; None when it was not TLS."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        error = exc.certificate_error
        if isinstance(error, ssl.SSLCertVerificationError):
            reason = _VERIFY_REASONS.get(error.verify_code, "")
            detail = error.verify_message or str(error)
            return f"TLS verification failed: {reason}: {detail}" if reason else f"TLS verification failed: {detail}"
        return f"TLS verification failed: {error}"
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return f"TLS handshake failed: {exc.os_error}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {_reason(exc)}"
    return None
