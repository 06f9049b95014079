"""Serve the current certificate from memory and pick up a rotated one without a restart.

The serving certificate lives 90 days and is rotated by replacing the files: cert-manager or `keyguard certs`
update the Secret, and the kubelet swaps the mounted directory by renaming a symlink. Like controller-runtime's
`certwatcher`, keyguard re-reads the files on a poll, compares the bytes (mtimes lie across symlink swaps), and
swaps only to a pair that loads and matches. A half-written or broken pair never takes the server down: the old
certificate keeps being served and the failure is counted. The kubelet itself takes a minute or more to update a
mounted Secret, so a 10 s poll adds nothing a file watch would save.

Python's `ssl` cannot change the certificate of a listening context atomically, so the context handed to uvicorn
has an SNI callback that moves each new connection onto the newest inner context before the certificate is
chosen. The callback runs for every handshake, with or without SNI. Established connections are untouched.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn

from webhook import certs
from webhook.errors import CertificateReloadError, UsageError

# Forward-secret AEAD suites for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults), as Mozilla's "intermediate".
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def server_context() -> ssl.SSLContext:
    """A server-side context: TLS 1.2 or newer, forward-secret AEAD ciphers, no client certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.verify_mode = ssl.CERT_NONE
    return context


class CertificateReloader:
    """The serving certificate: one SSLContext for the server, the newest valid pair behind it.

    `reload_if_changed()` is cheap (two small reads) and meant to be called every few seconds from the event loop;
    it returns True when a new pair is in use, False when the files changed but cannot be used, None otherwise.
    """

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.reloads = 0
        self.errors = 0
        self.last_error: str | None = None
        snapshot = self._read()
        self.context = server_context()
        self._not_after = self._load_into(self.context, snapshot)
        self.context.sni_callback = self._select_context
        self._current = self.context
        self._snapshot = snapshot
        self._rejected: tuple[bytes, bytes] | str | None = None

    @property
    def not_after(self) -> datetime:
        """When the certificate being served expires."""
        return self._not_after

    @property
    def expired(self) -> bool:
        return self._not_after <= datetime.now(UTC)

    def _select_context(self, ssl_object: ssl.SSLObject | ssl.SSLSocket, _server_name: str | None, _: Any) -> None:
        if self._current is not self.context:
            ssl_object.context = self._current

    def _read(self) -> tuple[bytes, bytes]:
        try:
            return self.cert_file.read_bytes(), self.key_file.read_bytes()
        except OSError as error:
            name = error.filename or self.cert_file
            raise CertificateReloadError(f"{name}: cannot read: {error.strerror or type(error).__name__}") from None

    def _load_into(self, context: ssl.SSLContext, snapshot: tuple[bytes, bytes]) -> datetime:
        """Check the pair read in `snapshot`, load the files into `context`, and return the leaf's notAfter."""
        cert_pem, key_pem = snapshot
        try:
            leaf = certs.load_certificates(cert_pem, source=str(self.cert_file))[0]
            matches = certs.key_matches(key_pem, leaf)
        except UsageError as error:  # the certificate code's own refusal, for files it was handed
            raise CertificateReloadError(str(error)) from None
        if not matches:
            raise CertificateReloadError(f"{self.key_file}: not the private key of {self.cert_file}")
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except ssl.SSLError as error:
            raise CertificateReloadError(f"{self.cert_file}: cannot load: {error.reason or error.strerror}") from None
        except OSError as error:
            raise CertificateReloadError(
                f"{self.cert_file}: cannot load: {error.strerror or type(error).__name__}"
            ) from None
        return leaf.not_valid_after_utc

    def reload_if_changed(self) -> bool | None:
        """Swap to the files' certificate if their bytes changed and the pair is usable; see the class docstring."""
        try:
            snapshot = self._read()
        except CertificateReloadError as error:
            return self._reject(str(error))
        if snapshot == self._snapshot:
            self._rejected = self.last_error = None
            return None
        context = server_context()
        try:
            not_after = self._load_into(context, snapshot)
        except CertificateReloadError as error:
            return None if self._changing(snapshot) else self._reject(str(error), snapshot)
        if self._changing(snapshot):
            return None
        self._current, self._snapshot, self._not_after = context, snapshot, not_after
        self._rejected, self.last_error = None, None
        self.reloads += 1
        return True

    def _changing(self, snapshot: tuple[bytes, bytes]) -> bool:
        """Whether the files no longer hold `snapshot` (a writer is at work): look again at the next poll."""
        try:
            return self._read() != snapshot
        except CertificateReloadError:
            return True

    def _reject(self, message: str, snapshot: tuple[bytes, bytes] | None = None) -> bool | None:
        """Count a failure once per bad pair (or per read error), not at every poll."""
        seen = snapshot if snapshot is not None else message
        if seen == self._rejected:
            return None
        self._rejected, self.last_error = seen, message
        self.errors += 1
        return False


def uvicorn_config(app: Any, *, host: str, port: int, reloader: CertificateReloader, **kwargs: Any) -> uvicorn.Config:
    """A uvicorn Config that serves TLS through `reloader`'s context, so rotations need no restart."""
    return uvicorn.Config(
        app, host=host, port=port, ssl_context_factory=lambda _config, _default: reloader.context, **kwargs
    )
