"""Hot-reloading TLS, over real TLS on 127.0.0.1: uvicorn serving through `CertificateReloader`, httpx clients.

What an admin would notice: a rotated certificate is presented by the next handshake without a restart and
without a failed request; a broken or half-written pair never replaces a working one; old TLS is refused; and a
CA roll-over done in the documented order never fails a client that trusts the published bundle.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import uvloop
from cryptography import x509

from webhook import certs
from webhook.errors import CertificateReloadError
from webhook.server.tls import CertificateReloader, uvicorn_config

LOOPS = ["asyncio", "uvloop"]


def run(loop: str, scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run on the event loop under test: keyguard serves on uvloop, tests and `make run` may use asyncio."""
    factory = uvloop.new_event_loop if loop == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(scenario())


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


@contextlib.asynccontextmanager
async def serving(reloader: CertificateReloader) -> AsyncIterator[int]:
    """A uvicorn server on a free 127.0.0.1 port, configured exactly as `keyguard serve` configures TLS."""
    config = uvicorn_config(
        hello, host="127.0.0.1", port=0, reloader=reloader, lifespan="off", log_level="error", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.005)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


def client_context(ca_pem: bytes) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca_pem.decode())


async def presented(port: int, ca_pem: bytes) -> bytes:
    """One HTTPS request on a new connection; the DER certificate the server presented in that handshake."""
    async with httpx.AsyncClient(verify=client_context(ca_pem)) as client:
        response = await client.get(f"https://127.0.0.1:{port}/")
        ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
        assert (response.status_code, response.text) == (200, "ok")
        der: bytes = ssl_object.getpeercert(binary_form=True)
        return der


def der_of(cert_file: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert_file.read_text())


def not_after_of(cert_file: Path) -> datetime:
    return x509.load_pem_x509_certificate(cert_file.read_bytes()).not_valid_after_utc


class MountedSecret:
    """A directory laid out like a Secret volume: files are symlinks into `..data`, which the kubelet swaps."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generation = 0

    def publish(self, source: Path) -> None:
        self.generation += 1
        version = self.root / f"..2026_01_01_00_00_{self.generation:02d}"
        version.mkdir(parents=True)
        for name in (certs.TLS_CERT, certs.TLS_KEY):
            shutil.copy2(source / name, version / name)
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(Path("..data") / name)
        previous = (self.root / "..data").resolve() if (self.root / "..data").exists() else None
        (self.root / "..data_tmp").symlink_to(version.name)
        os.replace(self.root / "..data_tmp", self.root / "..data")
        if previous is not None:
            shutil.rmtree(previous)


@pytest.fixture
def cert_dir(tmp_path: Path) -> Path:
    certs.generate(tmp_path / "certs", ["localhost"], ["127.0.0.1"])
    return tmp_path / "certs"


def rotate_in_place(cert_dir: Path, mount: MountedSecret) -> Path:
    certs.rotate(cert_dir)
    return cert_dir


def rotate_by_symlink_swap(cert_dir: Path, mount: MountedSecret) -> Path:
    certs.rotate(cert_dir)
    mount.publish(cert_dir)
    return mount.root


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("rotation", [rotate_in_place, rotate_by_symlink_swap])
def test_next_handshake_presents_the_rotated_certificate_and_no_request_fails(
    cert_dir: Path, tmp_path: Path, loop: str, rotation: Callable[[Path, MountedSecret], Path]
) -> None:
    mount = MountedSecret(tmp_path / "mounted")
    mount.publish(cert_dir)
    served = cert_dir if rotation is rotate_in_place else mount.root
    reloader = CertificateReloader(served / certs.TLS_CERT, served / certs.TLS_KEY)
    ca_pem = (cert_dir / certs.CA_CERT).read_bytes()
    old_der = der_of(cert_dir / certs.TLS_CERT)

    async def scenario() -> None:
        async with serving(reloader) as port:
            seen: list[bytes] = []
            failures: list[str] = []
            stop = asyncio.Event()

            async def traffic() -> None:
                while not stop.is_set():
                    try:
                        seen.append(await presented(port, ca_pem))
                    except (httpx.HTTPError, ssl.SSLError) as error:
                        failures.append(type(error).__name__)

            async def handshakes(count: int) -> None:
                target = len(seen) + count
                while len(seen) < target:
                    await asyncio.sleep(0.002)

            clients = asyncio.create_task(traffic())
            await asyncio.wait_for(handshakes(2), timeout=5)
            rotated = rotation(cert_dir, mount)
            assert await presented(port, ca_pem) == old_der, "a rotation is picked up by a reload, not before"
            assert reloader.reload_if_changed() is True
            new_der = der_of(rotated / certs.TLS_CERT)
            assert await presented(port, ca_pem) == new_der
            assert reloader.reload_if_changed() is None, "unchanged bytes are not a reload"
            await asyncio.wait_for(handshakes(2), timeout=5)
            stop.set()
            await clients
            assert failures == []
            assert (seen[0], seen[-1]) == (old_der, new_der)
            assert reloader.not_after == not_after_of(rotated / certs.TLS_CERT)

    run(loop, scenario)
    assert (reloader.reloads, reloader.errors) == (1, 0)


def truncate_certificate(directory: Path) -> None:
    data = (directory / certs.TLS_CERT).read_bytes()
    (directory / certs.TLS_CERT).write_bytes(data[: len(data) // 2])


def key_of_another_certificate(directory: Path) -> None:
    other = directory.parent / "other"
    certs.generate(other, ["localhost"])
    shutil.copy(other / certs.TLS_KEY, directory / certs.TLS_KEY)


def certificate_without_key(directory: Path) -> None:
    (directory / certs.TLS_KEY).unlink()


def empty_certificate(directory: Path) -> None:
    (directory / certs.TLS_CERT).write_bytes(b"")


def new_certificate_before_its_key(directory: Path) -> None:
    """A writer that has replaced tls.crt but not yet tls.key (what a non-atomic copy looks like mid-way)."""
    key = (directory / certs.TLS_KEY).read_bytes()
    certs.rotate(directory)
    (directory / certs.TLS_KEY).write_bytes(key)


@pytest.mark.parametrize(
    "damage",
    [
        truncate_certificate,
        key_of_another_certificate,
        certificate_without_key,
        empty_certificate,
        new_certificate_before_its_key,
    ],
)
def test_an_unusable_new_pair_keeps_the_old_certificate_and_counts_one_error(
    cert_dir: Path, damage: Callable[[Path], None]
) -> None:
    reloader = CertificateReloader(cert_dir / certs.TLS_CERT, cert_dir / certs.TLS_KEY)
    ca_pem = (cert_dir / certs.CA_CERT).read_bytes()
    old_der, old_not_after = der_of(cert_dir / certs.TLS_CERT), reloader.not_after

    async def scenario() -> None:
        async with serving(reloader) as port:
            damage(cert_dir)
            assert reloader.reload_if_changed() is False
            assert await presented(port, ca_pem) == old_der
            assert reloader.not_after == old_not_after
            assert reloader.reload_if_changed() is None, "the same bad pair is reported once, not at every poll"
            certs.rotate(cert_dir, dns_names=["localhost"], ip_addresses=["127.0.0.1"])
            assert reloader.reload_if_changed() is True
            assert await presented(port, ca_pem) == der_of(cert_dir / certs.TLS_CERT)

    run("uvloop", scenario)
    assert (reloader.reloads, reloader.errors) == (1, 1)
    assert reloader.last_error is None
    assert reloader.not_after == not_after_of(cert_dir / certs.TLS_CERT)


def test_last_error_names_the_file_and_the_reason(cert_dir: Path) -> None:
    reloader = CertificateReloader(cert_dir / certs.TLS_CERT, cert_dir / certs.TLS_KEY)
    key_of_another_certificate(cert_dir)
    assert reloader.reload_if_changed() is False
    assert reloader.last_error == f"{cert_dir / certs.TLS_KEY}: not the private key of {cert_dir / certs.TLS_CERT}"
    assert "PRIVATE KEY" not in reloader.last_error


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
@pytest.mark.parametrize(
    ("version", "accepted"),
    [(ssl.TLSVersion.TLSv1_1, False), (ssl.TLSVersion.TLSv1_2, True), (ssl.TLSVersion.TLSv1_3, True)],
)
def test_tls_below_1_2_is_refused_by_the_server(cert_dir: Path, version: ssl.TLSVersion, accepted: bool) -> None:
    reloader = CertificateReloader(cert_dir / certs.TLS_CERT, cert_dir / certs.TLS_KEY)
    context = client_context((cert_dir / certs.CA_CERT).read_bytes())
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1, so the refusal is the server's
    context.minimum_version = context.maximum_version = version

    async def handshake(port: int) -> str:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
        except ssl.SSLError as error:
            return str(error.reason)
        except ConnectionResetError:
            return "reset"
        negotiated = str(writer.get_extra_info("ssl_object").version())
        writer.close()
        await writer.wait_closed()
        return negotiated

    async def scenario() -> None:
        async with serving(reloader) as port:
            outcome = await handshake(port)
            if accepted:
                assert outcome == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
            else:
                # Python's TLS transports drop the connection instead of flushing the alert; either way the
                # client did send its hello (a local refusal would be NO_PROTOCOLS_AVAILABLE).
                assert outcome in {"TLSV1_ALERT_PROTOCOL_VERSION", "reset"}

    run("uvloop", scenario)


def test_a_ca_rollover_in_the_documented_order_never_fails_a_client(cert_dir: Path) -> None:
    reloader = CertificateReloader(cert_dir / certs.TLS_CERT, cert_dir / certs.TLS_KEY)

    def bundle() -> bytes:
        return (cert_dir / certs.CA_CERT).read_bytes()

    async def scenario() -> None:
        async with serving(reloader) as port:
            old_bundle = bundle()
            certs.rotate_ca(cert_dir)  # step 1: publish new + old; API servers may hold either bundle
            both = bundle()
            assert reloader.reload_if_changed() is None
            for trusted in (old_bundle, both):
                await presented(port, trusted)
            certs.rotate(cert_dir)  # step 2: replicas move to the new CA's certificate, one by one
            await presented(port, both)  # a replica that has not reloaded yet
            assert reloader.reload_if_changed() is True
            await presented(port, both)
            with pytest.raises(httpx.ConnectError):
                await presented(port, old_bundle)  # why the bundle must be published before step 2
            assert certs.drop_old_ca(cert_dir) == 1  # step 3: publish the new CA alone
            for trusted in (both, bundle()):
                await presented(port, trusted)

    run("uvloop", scenario)
    assert (reloader.reloads, reloader.errors) == (1, 0)


@pytest.mark.parametrize(("age_days", "expired"), [(0, False), (89, False), (91, True)])
def test_expired_reports_a_served_certificate_past_not_after(tmp_path: Path, age_days: int, expired: bool) -> None:
    issued = datetime.now(UTC) - timedelta(days=age_days)
    certs.generate(tmp_path, ["localhost"], serving_days=90, now=issued)
    reloader = CertificateReloader(tmp_path / certs.TLS_CERT, tmp_path / certs.TLS_KEY)
    assert reloader.expired is expired
    assert reloader.not_after == issued.replace(microsecond=0) + timedelta(days=90)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (certificate_without_key, "tls.key: cannot read: No such file or directory"),
        (empty_certificate, "tls.crt: not a PEM certificate"),
        (key_of_another_certificate, "tls.key: not the private key of"),
    ],
)
def test_an_unusable_pair_at_start_is_refused_naming_the_file(
    cert_dir: Path, damage: Callable[[Path], None], message: str
) -> None:
    damage(cert_dir)
    with pytest.raises(CertificateReloadError, match=message):
        CertificateReloader(cert_dir / certs.TLS_CERT, cert_dir / certs.TLS_KEY)
