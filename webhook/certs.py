"""The webhook's certificates: one CA that the API server trusts (the caBundle) and a short-lived serving certificate.

Lessons from Flyte's own webhook shape this module. Certificates that silently expired after a year caused
outages, and the fix — 99-year self-signed certificates — meant they were never rotated. Each replica generating
its own CA produced `x509: certificate signed by unknown authority`. So keyguard keeps one CA per installation,
created once (never by a replica at start-up), and separates the two lifetimes:

- the serving certificate lives 90 days (cert-manager's default duration) and rotating it is routine: a new key
  signed by the same CA, picked up by every replica without a restart (`webhook.server.tls`);
- the CA lives 5 years: long enough that changing the caBundle is a rare, planned event, short enough that its
  key — the one secret that can mint a certificate the API server trusts — is not valid forever and the roll-over
  below is practised within a cluster's life. `inspect` warns 180 days ahead.

A CA roll-over must never fail an admission, so it takes three steps, each safe on its own:

1. `rotate_ca`: a new CA; `ca.crt` becomes the bundle *new + old*. Publish it as the caBundle and let it reach every
   API server. Replicas still serve the old certificate, which the bundle still trusts.
2. `rotate`: a serving certificate signed by the new CA; publish the Secret and let every replica reload it.
3. `drop_old_ca`: `ca.crt` keeps only the CA that signs the serving certificate; publish it as the caBundle.

All files are written atomically (temporary file + rename) and keys are readable by the owner only.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from webhook.certificate_layout import (
    CA_CERT,
    CA_KEY,
    CA_WARN_DAYS,
    DEFAULT_CA_DAYS,
    DEFAULT_SERVING_DAYS,
    RENEW_BEFORE_DAYS,
    TLS_CERT,
    TLS_KEY,
)
from webhook.errors import UsageError
from webhook.files import read_file, write_atomic

BACKDATE = timedelta(hours=1)  # tolerate clock skew between the machine that signs and the API servers

_DNS_NAME = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.I)

PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """Where the four files of a certificate directory live (the names of a cert-manager TLS Secret's keys)."""

    ca_cert: Path
    ca_key: Path
    tls_cert: Path
    tls_key: Path

    @classmethod
    def in_directory(cls, directory: Path) -> CertificateFiles:
        return cls(directory / CA_CERT, directory / CA_KEY, directory / TLS_CERT, directory / TLS_KEY)


@dataclass(frozen=True, slots=True)
class CertificateSummary:
    """What an admin needs to know about one certificate (never its key)."""

    subject: str
    issuer: str
    serial: str
    sha256: str
    not_before: datetime
    not_after: datetime
    days_left: int
    is_ca: bool
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "sha256": self.sha256,
            "notBefore": self.not_before.isoformat(),
            "notAfter": self.not_after.isoformat(),
            "daysLeft": self.days_left,
            "isCA": self.is_ca,
            "dnsNames": list(self.dns_names),
            "ipAddresses": list(self.ip_addresses),
        }


@dataclass(frozen=True, slots=True)
class Inspection:
    """The state of a serving certificate and the CA bundle that must trust it.

    `problems` break admissions now (exit 1 in `keyguard certs inspect`); `warnings` will if nobody acts.
    """

    serving: CertificateSummary
    authorities: tuple[CertificateSummary, ...]
    signed_by: int | None  # index in `authorities` of the CA that issued the serving certificate
    trust_error: str | None  # None: a client trusting the bundle accepts the serving certificate
    key_matches: bool | None  # None: no private key was given
    problems: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def trusted(self) -> bool:
        return self.trust_error is None

    @property
    def not_after(self) -> datetime:
        return self.serving.not_after

    @property
    def days_left(self) -> int:
        return self.serving.days_left

    def to_dict(self) -> dict[str, Any]:
        return {
            "servingCertificate": self.serving.to_dict(),
            "caCertificates": [ca.to_dict() for ca in self.authorities],
            "signedBy": self.signed_by,
            "trusted": self.trusted,
            "trustError": self.trust_error,
            "keyMatches": self.key_matches,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }


# --- parsing -------------------------------------------------------------------------------------------------


def load_certificates(pem: bytes, *, source: str) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle; a UsageError naming `source` when there is none or one is damaged."""
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise UsageError(f"{source}: not a PEM certificate (or a damaged one)") from None
    return certificates


def load_private_key(pem: bytes, *, source: str) -> PrivateKey:
    """An unencrypted PEM EC private key. The error never quotes the file's content."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise UsageError(f"{source}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UsageError(f"{source}: keyguard signs with ECDSA keys; this is a {type(key).__name__}")
    return key


def key_matches(key_pem: bytes, certificate: x509.Certificate) -> bool:
    """Whether the private key in `key_pem` (any algorithm) belongs to `certificate`."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    return _public_der(key.public_key()) == _public_der(certificate.public_key())


def _public_der(public_key: Any) -> bytes:
    der: bytes = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


# --- verification and inspection --------------------------------------------------------------------------------


def verify_chain(
    ca_bundle_pem: bytes, cert_pem: bytes, *, server_name: str | None = None, now: datetime | None = None
) -> str | None:
    """None when a client trusting `ca_bundle_pem` accepts `cert_pem` for `server_name`, else the reason.

    This is the check the API server makes with the webhook configuration's caBundle (`server_name` defaults to the
    certificate's first SAN, i.e. only the chain and validity are checked). Bundles and certificates can come from
    files, a Secret or a webhook configuration alike.
    """
    authorities = load_certificates(ca_bundle_pem, source="CA bundle")
    leaf, *intermediates = load_certificates(cert_pem, source="serving certificate")
    return _verify(authorities, leaf, intermediates, server_name=server_name, now=now or datetime.now(UTC))


def _verify(
    authorities: Sequence[x509.Certificate],
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    *,
    server_name: str | None,
    now: datetime,
) -> str | None:
    dns_names, ip_addresses = _sans(leaf)
    name = server_name or next(iter(dns_names + ip_addresses), None)
    if name is None:
        return "the serving certificate has no DNS or IP subject alternative name"
    try:
        subject: x509.DNSName | x509.IPAddress = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        subject = x509.DNSName(name)
    verifier = PolicyBuilder().store(Store(list(authorities))).time(now).build_server_verifier(subject)
    try:
        verifier.verify(leaf, list(intermediates))
    except VerificationError as error:
        return str(error).split(" (encountered processing")[0]
    return None


def _issuer_index(authorities: Sequence[x509.Certificate], leaf: x509.Certificate) -> int | None:
    for index, authority in enumerate(authorities):
        try:
            leaf.verify_directly_issued_by(authority)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return index
    return None


def _sans(certificate: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    return tuple(san.get_values_for_type(x509.DNSName)), tuple(
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    )


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def summarize(certificate: x509.Certificate, *, now: datetime | None = None) -> CertificateSummary:
    now = now or datetime.now(UTC)
    dns_names, ip_addresses = _sans(certificate)
    return CertificateSummary(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        serial=format(certificate.serial_number, "x"),
        sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        days_left=(certificate.not_valid_after_utc - now) // timedelta(days=1),
        is_ca=_is_ca(certificate),
        dns_names=dns_names,
        ip_addresses=ip_addresses,
    )


def inspect_pem(
    cert_pem: bytes,
    ca_bundle_pem: bytes,
    *,
    key_pem: bytes | None = None,
    server_name: str | None = None,
    now: datetime | None = None,
    sources: tuple[str, str] = ("serving certificate", "CA bundle"),
) -> Inspection:
    """Inspect a serving certificate (with its key, when given) against a CA bundle, all as PEM bytes.

    `sources` name the certificate and the bundle in errors (file paths, or "Secret keyguard/keyguard-tls").
    """
    now = now or datetime.now(UTC)
    leaf, *intermediates = load_certificates(cert_pem, source=sources[0])
    authorities = load_certificates(ca_bundle_pem, source=sources[1])
    serving = summarize(leaf, now=now)
    trust_error = _verify(authorities, leaf, intermediates, server_name=server_name, now=now)
    matches = None if key_pem is None else key_matches(key_pem, leaf)
    summaries = tuple(summarize(authority, now=now) for authority in authorities)
    signed_by = _issuer_index(authorities, intermediates[-1] if intermediates else leaf)
    problems, warnings = _assess(serving, summaries, signed_by, trust_error, matches, now=now)
    return Inspection(serving, summaries, signed_by, trust_error, matches, problems, warnings)


def _assess(
    serving: CertificateSummary,
    authorities: Sequence[CertificateSummary],
    signed_by: int | None,
    trust_error: str | None,
    matches: bool | None,
    *,
    now: datetime,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    problems: list[str] = []
    warnings: list[str] = []
    if serving.not_after <= now:
        problems.append(f"the serving certificate expired on {serving.not_after:%Y-%m-%d}")
    elif serving.not_before > now:
        problems.append(f"the serving certificate is not valid before {serving.not_before:%Y-%m-%d %H:%M}Z")
    elif serving.days_left < RENEW_BEFORE_DAYS:
        warnings.append(f"the serving certificate expires in {serving.days_left} days: rotate it")
    if trust_error is not None and serving.not_before <= now < serving.not_after:
        problems.append(f"the CA bundle does not verify the serving certificate: {trust_error}")
    if matches is False:
        problems.append("the private key does not belong to the serving certificate")
    if signed_by is not None:
        issuer = authorities[signed_by]
        if 0 <= issuer.days_left < CA_WARN_DAYS:
            warnings.append(f"the CA expires in {issuer.days_left} days: start a CA roll-over (rotate --ca)")
    unused = len(authorities) - 1
    if signed_by is not None and unused:
        warnings.append(
            f"{unused} CA(s) in the bundle did not sign the serving certificate: once every replica serves it, "
            "drop them (rotate --drop-old-ca)"
        )
    return tuple(problems), tuple(warnings)


def inspect(directory: Path, *, server_name: str | None = None, now: datetime | None = None) -> Inspection:
    """Inspect `tls.crt` against `ca.crt` in `directory` (and `tls.key` when it is there)."""
    files = CertificateFiles.in_directory(directory)
    cert_pem, ca_pem = read_file(files.tls_cert), read_file(files.ca_cert)
    key_pem = read_file(files.tls_key) if files.tls_key.exists() else None
    sources = (str(files.tls_cert), str(files.ca_cert))
    return inspect_pem(cert_pem, ca_pem, key_pem=key_pem, server_name=server_name, now=now, sources=sources)


# --- issuing ---------------------------------------------------------------------------------------------------


def _new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _issue_ca(key: PrivateKey, *, days: int, now: datetime) -> x509.Certificate:
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    # A distinct name per CA keeps the two members of a roll-over bundle apart in every tool's output.
    common_name = f"keyguard CA {now:%Y-%m-%d} {ski.digest[:4].hex()}"
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "keyguard"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )


def _issue_serving(
    key: PrivateKey,
    ca: x509.Certificate,
    ca_key: PrivateKey,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    days: int,
    now: datetime,
) -> x509.Certificate:
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    common_name = (list(dns_names) + list(ip_addresses))[0]
    # Never outlive the CA: a certificate the bundle can no longer verify is useless.
    not_after = min(now + timedelta(days=days), ca.not_valid_after_utc)
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _check_names(dns_names: Sequence[str], ip_addresses: Sequence[str]) -> None:
    if not dns_names and not ip_addresses:
        raise UsageError("a serving certificate needs at least one DNS name or IP address")
    for name in dns_names:
        if len(name) > 253 or not _DNS_NAME.fullmatch(name):
            raise UsageError(f"{name!r}: not a DNS name")
    for ip in ip_addresses:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise UsageError(f"{ip!r}: not an IP address") from None


def _check_days(days: int) -> None:
    if days < 1:
        raise UsageError(f"a certificate must be valid for at least 1 day, not {days}")


# --- files -----------------------------------------------------------------------------------------------------


def _cert_pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(certificate.public_bytes(serialization.Encoding.PEM) for certificate in certificates)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_certificate(path: Path, *certificates: x509.Certificate) -> None:
    write_atomic(path, _cert_pem(*certificates), mode=0o644)


def _write_key(path: Path, key: PrivateKey) -> None:
    write_atomic(path, _key_pem(key), mode=0o600)


def _signing_ca(files: CertificateFiles) -> tuple[list[x509.Certificate], x509.Certificate, PrivateKey]:
    """The CA bundle, and the CA certificate and key that sign (the bundle member matching `ca.key`)."""
    bundle = load_certificates(read_file(files.ca_cert), source=str(files.ca_cert))
    ca_key = load_private_key(read_file(files.ca_key), source=str(files.ca_key))
    public = _public_der(ca_key.public_key())
    for ca in bundle:
        if _public_der(ca.public_key()) == public:
            return bundle, ca, ca_key
    raise UsageError(f"{files.ca_key}: matches no certificate in {files.ca_cert}")


def generate(
    out_dir: Path,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = (),
    *,
    ca_days: int = DEFAULT_CA_DAYS,
    serving_days: int = DEFAULT_SERVING_DAYS,
    overwrite: bool = False,
    now: datetime | None = None,
) -> CertificateFiles:
    """Create a CA and a serving certificate for `dns_names`/`ip_addresses` in `out_dir`.

    Refuses to replace an existing CA unless `overwrite`: a second CA is exactly the "signed by unknown authority"
    outage; an existing directory wants `rotate`.
    """
    _check_names(dns_names, ip_addresses)
    _check_days(ca_days)
    _check_days(serving_days)
    files = CertificateFiles.in_directory(out_dir)
    existing = [path for path in (files.ca_cert, files.ca_key, files.tls_cert, files.tls_key) if path.exists()]
    if existing and not overwrite:
        raise UsageError(f"{existing[0]}: already exists; rotate instead (or force a new CA)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{out_dir}: cannot create: {error.strerror or type(error).__name__}") from None
    now = now or datetime.now(UTC)
    ca_key, serving_key = _new_key(), _new_key()
    ca = _issue_ca(ca_key, days=ca_days, now=now)
    serving = _issue_serving(
        serving_key, ca, ca_key, dns_names=dns_names, ip_addresses=ip_addresses, days=serving_days, now=now
    )
    _write_key(files.ca_key, ca_key)
    _write_certificate(files.ca_cert, ca)
    _write_key(files.tls_key, serving_key)
    _write_certificate(files.tls_cert, serving)
    return files


def rotate(
    directory: Path,
    *,
    dns_names: Sequence[str] | None = None,
    ip_addresses: Sequence[str] | None = None,
    days: int = DEFAULT_SERVING_DAYS,
    now: datetime | None = None,
) -> CertificateFiles:
    """A new serving key and certificate signed by the current CA (the one `ca.key` belongs to).

    The SANs of the current serving certificate are kept unless given. The certificate never outlives the CA.
    """
    _check_days(days)
    files = CertificateFiles.in_directory(directory)
    now = now or datetime.now(UTC)
    _, ca, ca_key = _signing_ca(files)
    if ca.not_valid_after_utc <= now:
        raise UsageError(f"{files.ca_cert}: the signing CA expired on {ca.not_valid_after_utc:%Y-%m-%d}; roll it over")
    if dns_names is None or ip_addresses is None:
        old = load_certificates(read_file(files.tls_cert), source=str(files.tls_cert))[0]
        old_dns, old_ips = _sans(old)
        dns_names = old_dns if dns_names is None else dns_names
        ip_addresses = old_ips if ip_addresses is None else ip_addresses
    _check_names(dns_names, ip_addresses)
    key = _new_key()
    certificate = _issue_serving(key, ca, ca_key, dns_names=dns_names, ip_addresses=ip_addresses, days=days, now=now)
    _write_key(files.tls_key, key)
    _write_certificate(files.tls_cert, certificate)
    return files


def rotate_ca(directory: Path, *, days: int = DEFAULT_CA_DAYS, now: datetime | None = None) -> CertificateFiles:
    """Step 1 of a CA roll-over: a new CA signs from now on; `ca.crt` becomes the bundle new + every current CA.

    The serving certificate is left alone, so replicas keep serving a certificate the new bundle still trusts.
    """
    _check_days(days)
    files = CertificateFiles.in_directory(directory)
    bundle, _, _ = _signing_ca(files)
    key = _new_key()
    ca = _issue_ca(key, days=days, now=now or datetime.now(UTC))
    # Bundle first: if the key write never happens, the old key still matches a bundle member.
    _write_certificate(files.ca_cert, ca, *bundle)
    _write_key(files.ca_key, key)
    return files


def drop_old_ca(directory: Path) -> int:
    """Step 3 of a CA roll-over: keep in `ca.crt` only the CA that signs both `tls.crt` and future certificates.

    Refuses while `tls.crt` is still signed by an older CA (rotate the serving certificate first). Returns how many
    CAs were dropped.
    """
    files = CertificateFiles.in_directory(directory)
    bundle, ca, _ = _signing_ca(files)
    leaf = load_certificates(read_file(files.tls_cert), source=str(files.tls_cert))[0]
    if _issuer_index([ca], leaf) is None:
        raise UsageError(
            f"{files.tls_cert}: still signed by an older CA; rotate the serving certificate and let every replica "
            "load it before dropping the old CA"
        )
    if len(bundle) > 1:
        _write_certificate(files.ca_cert, ca)
    return len(bundle) - 1
