"""Certificates and `keyguard certs`: what gets issued, rotation, the CA roll-over steps, inspection, and errors.

The properties asserted are the ones a Kubernetes API server (Go crypto/x509) and an admin depend on: SANs,
serverAuth, CA constraints, lifetimes, key file permissions, and that nothing ever prints a private key.
"""

from __future__ import annotations

import base64
import ipaddress
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from webhook import certs, cli
from webhook.errors import UsageError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def load(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def extension(certificate: x509.Certificate, kind: type[Any]) -> Any:
    return certificate.extensions.get_extension_for_class(kind)


@pytest.fixture
def cert_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "certs"
    certs.generate(directory, ["keyguard.keyguard-system.svc", "localhost"], ["127.0.0.1"], now=NOW)
    return directory


def test_generate_issues_a_ca_and_a_serving_certificate_the_api_server_accepts(cert_dir: Path) -> None:
    [ca], [serving] = load(cert_dir / "ca.crt"), load(cert_dir / "tls.crt")
    ca_constraints = extension(ca, x509.BasicConstraints)
    assert (ca_constraints.critical, ca_constraints.value.ca, ca_constraints.value.path_length) == (True, True, 0)
    assert extension(ca, x509.KeyUsage).value.key_cert_sign
    assert extension(serving, x509.BasicConstraints).value.ca is False
    assert not extension(serving, x509.KeyUsage).value.key_cert_sign
    assert list(extension(serving, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = extension(serving, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["keyguard.keyguard-system.svc", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    authority_key_id = extension(serving, x509.AuthorityKeyIdentifier).value.key_identifier
    assert authority_key_id == extension(ca, x509.SubjectKeyIdentifier).value.digest
    assert [certificate.public_key().curve.name for certificate in (ca, serving)] == ["secp256r1", "secp256r1"]
    serving.verify_directly_issued_by(ca)


@pytest.mark.parametrize("server_name", ["keyguard.keyguard-system.svc", "localhost", "127.0.0.1"])
def test_the_ca_verifies_the_serving_certificate_for_every_name(cert_dir: Path, server_name: str) -> None:
    ca_pem, cert_pem = (cert_dir / "ca.crt").read_bytes(), (cert_dir / "tls.crt").read_bytes()
    assert certs.verify_chain(ca_pem, cert_pem, server_name=server_name, now=NOW) is None


@pytest.mark.parametrize(("name", "days"), [("ca.crt", certs.DEFAULT_CA_DAYS), ("tls.crt", certs.DEFAULT_SERVING_DAYS)])
def test_lifetimes_start_an_hour_early_for_clock_skew(cert_dir: Path, name: str, days: int) -> None:
    [certificate] = load(cert_dir / name)
    assert certificate.not_valid_before_utc == NOW - timedelta(hours=1)
    assert certificate.not_valid_after_utc == NOW + timedelta(days=days)


@pytest.mark.parametrize(
    ("name", "mode"), [("ca.key", 0o600), ("tls.key", 0o600), ("ca.crt", 0o644), ("tls.crt", 0o644)]
)
def test_keys_are_readable_by_the_owner_only(cert_dir: Path, name: str, mode: int) -> None:
    assert stat.S_IMODE((cert_dir / name).stat().st_mode) == mode


def test_no_temporary_files_are_left_behind(cert_dir: Path) -> None:
    certs.rotate(cert_dir)
    certs.rotate_ca(cert_dir)
    assert sorted(path.name for path in cert_dir.iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]


def test_generate_refuses_to_replace_a_ca_unless_forced(cert_dir: Path) -> None:
    ca_before = (cert_dir / "ca.crt").read_bytes()
    with pytest.raises(UsageError, match=r"ca\.crt: already exists; rotate instead"):
        certs.generate(cert_dir, ["localhost"])
    assert (cert_dir / "ca.crt").read_bytes() == ca_before
    certs.generate(cert_dir, ["localhost"], overwrite=True)
    assert (cert_dir / "ca.crt").read_bytes() != ca_before


@pytest.mark.parametrize(
    ("dns", "ips", "days", "message"),
    [
        ([], [], 90, "needs at least one DNS name or IP address"),
        (["bad_name.svc"], [], 90, "'bad_name.svc': not a DNS name"),
        (["-leading.svc"], [], 90, "not a DNS name"),
        ([], ["10.0.0.300"], 90, "'10.0.0.300': not an IP address"),
        (["localhost"], [], 0, "valid for at least 1 day, not 0"),
    ],
)
def test_generate_rejects_bad_input(tmp_path: Path, dns: list[str], ips: list[str], days: int, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        certs.generate(tmp_path / "out", dns, ips, serving_days=days)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("dns", "ips", "expected_dns", "expected_ips"),
    [
        (None, None, ["keyguard.keyguard-system.svc", "localhost"], ["127.0.0.1"]),
        (["keyguard.other.svc"], None, ["keyguard.other.svc"], ["127.0.0.1"]),
        (None, ["10.0.0.7", "::1"], ["keyguard.keyguard-system.svc", "localhost"], ["10.0.0.7", "::1"]),
    ],
)
def test_rotate_issues_a_new_key_from_the_same_ca_and_keeps_unchanged_names(
    cert_dir: Path, dns: list[str] | None, ips: list[str] | None, expected_dns: list[str], expected_ips: list[str]
) -> None:
    old_key, old_ca = (cert_dir / "tls.key").read_bytes(), (cert_dir / "ca.crt").read_bytes()
    certs.rotate(cert_dir, dns_names=dns, ip_addresses=ips)
    inspection = certs.inspect(cert_dir)
    assert (cert_dir / "tls.key").read_bytes() != old_key
    assert (cert_dir / "ca.crt").read_bytes() == old_ca
    assert (inspection.problems, inspection.key_matches, inspection.signed_by) == ((), True, 0)
    assert (list(inspection.serving.dns_names), list(inspection.serving.ip_addresses)) == (expected_dns, expected_ips)


def test_a_serving_certificate_never_outlives_its_ca(tmp_path: Path) -> None:
    certs.generate(tmp_path, ["localhost"], ca_days=60, now=NOW)
    certs.rotate(tmp_path, now=NOW + timedelta(days=10))
    inspection = certs.inspect(tmp_path, now=NOW + timedelta(days=10))
    assert inspection.not_after == inspection.authorities[0].not_after
    assert "the CA expires in 50 days: start a CA roll-over (rotate --ca)" in inspection.warnings


def test_rotate_refuses_a_ca_key_that_matches_no_ca_in_the_bundle(cert_dir: Path) -> None:
    certs.generate(cert_dir.parent / "other", ["localhost"])
    (cert_dir / "ca.key").write_bytes((cert_dir.parent / "other" / "ca.key").read_bytes())
    with pytest.raises(UsageError, match=r"ca\.key: matches no certificate in .*ca\.crt"):
        certs.rotate(cert_dir)


def test_rotate_refuses_an_expired_ca(tmp_path: Path) -> None:
    certs.generate(tmp_path, ["localhost"], ca_days=30, serving_days=10, now=NOW)
    with pytest.raises(UsageError, match="the signing CA expired on 2026-03-31; roll it over"):
        certs.rotate(tmp_path, now=NOW + timedelta(days=31))


def test_ca_rollover_steps_keep_the_bundle_trusting_every_certificate_in_service(cert_dir: Path) -> None:
    first_bundle, first_serving = (cert_dir / "ca.crt").read_bytes(), (cert_dir / "tls.crt").read_bytes()

    certs.rotate_ca(cert_dir, now=NOW)
    both = (cert_dir / "ca.crt").read_bytes()
    assert len(load(cert_dir / "ca.crt")) == 2
    assert certs.verify_chain(both, first_serving, now=NOW) is None
    with pytest.raises(UsageError, match="still signed by an older CA; rotate the serving certificate"):
        certs.drop_old_ca(cert_dir)

    certs.rotate(cert_dir, now=NOW)
    second_serving = (cert_dir / "tls.crt").read_bytes()
    assert [certs.verify_chain(both, serving, now=NOW) for serving in (first_serving, second_serving)] == [None, None]
    assert certs.verify_chain(first_bundle, second_serving, now=NOW) is not None
    assert any("drop them (rotate --drop-old-ca)" in warning for warning in certs.inspect(cert_dir, now=NOW).warnings)

    assert certs.drop_old_ca(cert_dir) == 1
    assert certs.drop_old_ca(cert_dir) == 0
    final = certs.inspect(cert_dir, now=NOW)
    assert (len(final.authorities), final.signed_by, final.problems, final.warnings) == (1, 0, (), ())
    assert certs.verify_chain((cert_dir / "ca.crt").read_bytes(), first_serving, now=NOW) is not None


def other_ca(directory: Path) -> None:
    certs.generate(directory.parent / "other", ["localhost"], now=NOW)
    (directory / "ca.crt").write_bytes((directory.parent / "other" / "ca.crt").read_bytes())


def other_key(directory: Path) -> None:
    certs.generate(directory.parent / "other", ["localhost"], now=NOW)
    (directory / "tls.key").write_bytes((directory.parent / "other" / "tls.key").read_bytes())


def unchanged(directory: Path) -> None:
    assert directory.exists()


@pytest.mark.parametrize(
    ("change", "days_later", "problem", "warning"),
    [
        (unchanged, 0, None, None),
        (unchanged, -1, "the serving certificate is not valid before 2026-03-01 11:00Z", None),
        (unchanged, 75, None, "the serving certificate expires in 15 days: rotate it"),
        (unchanged, 91, "the serving certificate expired on 2026-05-30", None),
        (other_ca, 0, "the CA bundle does not verify the serving certificate", None),
        (other_key, 0, "the private key does not belong to the serving certificate", None),
    ],
)
def test_inspect_reports_what_would_fail_admissions(
    cert_dir: Path, change: Callable[[Path], None], days_later: int, problem: str | None, warning: str | None
) -> None:
    change(cert_dir)
    inspection = certs.inspect(cert_dir, now=NOW + timedelta(days=days_later))
    assert [found[: len(problem or "")] for found in inspection.problems] == ([] if problem is None else [problem])
    assert list(inspection.warnings) == ([] if warning is None else [warning])
    assert inspection.days_left == 90 - days_later


def test_verify_chain_checks_a_ca_bundle_from_a_webhook_configuration_for_the_service_name(cert_dir: Path) -> None:
    ca_bundle = base64.b64decode(base64.b64encode((cert_dir / "ca.crt").read_bytes()))  # clientConfig.caBundle
    serving = (cert_dir / "tls.crt").read_bytes()  # data["tls.crt"] of the Secret, decoded
    assert certs.verify_chain(ca_bundle, serving, server_name="keyguard.keyguard-system.svc", now=NOW) is None
    reason = certs.verify_chain(ca_bundle, serving, server_name="keyguard.other.svc", now=NOW)
    assert reason is not None
    assert reason.startswith("validation failed")


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda d: certs.inspect(d / "missing"), "missing/tls.crt: cannot read: No such file or directory"),
        (lambda d: certs.rotate(d / "missing"), "missing/ca.crt: cannot read: No such file or directory"),
        (lambda d: certs.verify_chain(b"not pem", b""), "CA bundle: not a PEM certificate"),
    ],
)
def test_unreadable_input_is_a_usage_error_naming_the_file(tmp_path: Path, action: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        action(tmp_path)


@pytest.mark.parametrize(
    ("target", "action"),
    [("ca.key", certs.rotate), ("tls.crt", certs.rotate), ("tls.crt", certs.inspect), ("ca.crt", certs.inspect)],
)
def test_a_damaged_file_names_the_file_and_never_quotes_it(
    cert_dir: Path, target: str, action: Callable[[Path], object]
) -> None:
    secret = (cert_dir / target).read_bytes()
    (cert_dir / target).write_bytes(secret[: len(secret) // 2])
    with pytest.raises(UsageError) as caught:
        action(cert_dir)
    assert str(caught.value).startswith(f"{cert_dir / target}: not ")
    assert secret[30:60].decode() not in str(caught.value)


# --- keyguard certs ------------------------------------------------------------------------------------------


@pytest.fixture
def keyguard(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """`keyguard ARGS...` through the real entry point (only the certs command registered): code, stdout, stderr."""
    monkeypatch.setattr(cli, "COMMANDS", ("certs",))

    def invoke(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_make_run_generates_dev_certificates_and_inspect_is_clean(
    tmp_path: Path, keyguard: Callable[..., tuple[int, str, str]]
) -> None:
    out_dir = str(tmp_path / "certs" / "dev")
    code, out, _ = keyguard("certs", "generate", "--out", out_dir, "--dns", "localhost", "--ip", "127.0.0.1")
    assert code == 0
    assert f"serve with --tls-cert {out_dir}/tls.crt --tls-key {out_dir}/tls.key" in out
    code, out, _ = keyguard("certs", "inspect", "--dir", out_dir)
    assert code == 0
    assert "  names              localhost, 127.0.0.1\n" in out
    assert "  trusted            yes\n" in out
    code, out, _ = keyguard("certs", "inspect", "--dir", out_dir, "--output", "json")
    report = orjson.loads(out)
    assert (code, report["trusted"], report["keyMatches"], report["problems"]) == (0, True, True, [])
    assert report["servingCertificate"]["daysLeft"] == 89


def test_rotate_walks_through_the_ca_rollover(tmp_path: Path, keyguard: Callable[..., tuple[int, str, str]]) -> None:
    directory = str(tmp_path)
    keyguard("certs", "generate", "--out", directory, "--dns", "localhost")
    steps = [
        (["--ca"], "step 1 of 3: new CA in"),
        ([], "step 2 of 3: once every replica serves it"),
        (["--drop-old-ca"], "step 3 of 3: dropped 1 old CA; publish"),
        (["--drop-old-ca"], "nothing to drop"),
        ([], "new serving key and certificate"),
    ]
    for options, expected in steps:
        code, out, err = keyguard("certs", "rotate", "--dir", directory, *options)
        assert (code, err) == (0, "")
        assert expected in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["certs", "inspect", "--dir", "{dir}/none"], "none/tls.crt: cannot read: No such file or directory"),
        (["certs", "rotate", "--dir", "{dir}", "--ca", "--dns", "x.svc"], "--dns and --ip apply to the serving"),
        (["certs", "generate", "--out", "{dir}", "--dns", "localhost"], "ca.crt: already exists"),
        (["certs", "generate", "--out", "{dir}/new", "--ip", "localhost"], "'localhost': not an IP address"),
        (["certs", "rotate", "--dir", "{dir}", "--days", "0"], "at least 1 day"),
    ],
)
def test_usage_errors_exit_2_with_the_file_and_reason(
    cert_dir: Path, keyguard: Callable[..., tuple[int, str, str]], args: list[str], message: str
) -> None:
    code, _, err = keyguard(*(arg.format(dir=cert_dir) for arg in args))
    assert code == 2
    assert err.startswith("keyguard certs: ")
    assert message in err
    assert "Traceback" not in err


def test_inspect_exits_1_on_a_problem(cert_dir: Path, keyguard: Callable[..., tuple[int, str, str]]) -> None:
    other_key(cert_dir)
    code, out, _ = keyguard("certs", "inspect", "--dir", str(cert_dir))
    assert code == 1
    assert "  private key        DOES NOT MATCH\n" in out
    assert "problem: the private key does not belong to the serving certificate" in out


def test_no_command_output_contains_a_private_key(
    tmp_path: Path, keyguard: Callable[..., tuple[int, str, str]]
) -> None:
    directory = str(tmp_path)
    outputs = [
        keyguard("certs", "generate", "--out", directory, "--dns", "localhost"),
        keyguard("certs", "rotate", "--dir", directory, "--ca"),
        keyguard("certs", "rotate", "--dir", directory),
        keyguard("certs", "inspect", "--dir", directory, "--output", "json"),
    ]
    keys = [(tmp_path / name).read_text().splitlines()[1] for name in ("ca.key", "tls.key")]
    printed = "".join(out + err for _, out, err in outputs)
    assert "PRIVATE KEY" not in printed
    assert not any(line in printed for line in keys), "a private key line reached the output"
