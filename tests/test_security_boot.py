"""Security and resilience of a served project over real connections: TLS, mutual TLS, quotas
on Redis, and a worker killed under load.

Certificates are made by the test with the ``openssl`` command (a throw-away CA, a server
certificate for 127.0.0.1 and client certificates). Quotas are checked against a real
``redis-server`` (Debian package) that the test starts on a free loopback port. Every process
is started on a free loopback port and stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Baked, Service, baked_with, free_port, make_venv, start_service

pytestmark = pytest.mark.slow

PREDICT = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
# The smallest dependency set: no auth, no metrics, no OIP.
PLAIN = {"auth": "none", "use_prometheus": False, "use_open_inference_protocol": False}


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def issue(folder: Path, name: str, ca: str, extensions: str) -> None:
    """``name``.pem and ``name``.key, a P-256 certificate signed by the CA ``ca``."""
    (folder / f"{name}.ext").write_text(extensions, encoding="utf-8")
    subject = ["-subj", f"/CN={name}"]
    openssl("req", *EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr", *subject, cwd=folder)
    signer = ["-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial", "-days", "1"]
    out = ["-out", f"{name}.pem", "-extfile", f"{name}.ext"]
    openssl("x509", "-req", "-in", f"{name}.csr", *signer, *out, cwd=folder)


def make_ca(folder: Path, name: str) -> None:
    files = ["-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "1"]
    openssl("req", "-x509", *EC_KEY, *files, "-subj", f"/CN={name}", cwd=folder)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command (Debian package openssl)")
    folder = tmp_path_factory.mktemp("certs")
    make_ca(folder, "ca")
    make_ca(folder, "other-ca")
    issue(folder, "server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    issue(folder, "client", "ca", "extendedKeyUsage=clientAuth\n")
    issue(folder, "stranger", "other-ca", "extendedKeyUsage=clientAuth\n")
    return folder


@pytest.fixture(scope="module")
def plain_project(cookies_session: Any) -> tuple[Baked, Path]:
    baked = baked_with(cookies_session, **PLAIN)
    return baked, make_venv(baked.path, f"[{baked.name}]")


def tls_context(certs: Path, client: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    if client is not None:
        context.load_cert_chain(certs / f"{client}.pem", certs / f"{client}.key")
    return context


def https(service: Service) -> str:
    return f"https://127.0.0.1:{service.port}"


def wait_ready_tls(service: Service, context: ssl.SSLContext, deadline_s: float = 120) -> None:
    started = time.monotonic()
    with httpx.Client(base_url=https(service), verify=context, timeout=10) as client:
        while time.monotonic() - started < deadline_s:
            if service.process.poll() is not None:
                pytest.fail(
                    f"{service.what}: exited {service.process.returncode}\n{service.output()}"
                )
            try:
                if client.get("/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # poll interval, not synchronisation: the deadline decides
    pytest.fail(f"{service.what}: not ready over TLS within {deadline_s}s\n{service.output()}")


def start_tls(
    plain_project: tuple[Baked, Path], services: list[Service], env: dict[str, str]
) -> Service:
    baked, python = plain_project
    service = start_service(python, baked.path, env, f"[{baked.name}] serve over TLS")
    services.append(service)
    return service


def test_https_with_a_real_handshake_and_no_plain_http(
    plain_project: tuple[Baked, Path], certs: Path, services: list[Service]
) -> None:
    env = {
        "APP_SSL_CERTFILE": str(certs / "server.pem"),
        "APP_SSL_KEYFILE": str(certs / "server.key"),
    }
    service = start_tls(plain_project, services, env)
    wait_ready_tls(service, tls_context(certs))
    with httpx.Client(base_url=https(service), verify=tls_context(certs), timeout=30) as client:
        response = client.post("/predict", json=PREDICT)
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == ["setosa"]
        tls = response.extensions["network_stream"].get_extra_info("ssl_object")
        assert tls is not None and tls.version() in {"TLSv1.2", "TLSv1.3"}, tls
        assert tls.getpeercert()["subject"] == ((("commonName", "server"),),)
    # A client that does not trust the CA refuses the server.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{https(service)}/health/live", verify=ssl.create_default_context())
    # Plain HTTP on the TLS port gets no answer.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{service.url}/health/live", timeout=10)
    assert service.process.poll() is None, service.output()


def test_mutual_tls_refuses_clients_without_a_trusted_certificate(
    plain_project: tuple[Baked, Path], certs: Path, services: list[Service]
) -> None:
    env = {
        "APP_SSL_CERTFILE": str(certs / "server.pem"),
        "APP_SSL_KEYFILE": str(certs / "server.key"),
        "APP_SSL_CA_CERTS": str(certs / "ca.pem"),
    }
    service = start_tls(plain_project, services, env)
    wait_ready_tls(service, tls_context(certs, "client"))
    with httpx.Client(verify=tls_context(certs, "client"), timeout=30) as client:
        response = client.post(f"{https(service)}/predict", json=PREDICT)
        assert response.status_code == 200, response.text
    for who, context in {
        "no certificate": tls_context(certs),
        "a certificate from another CA": tls_context(certs, "stranger"),
    }.items():
        # Under TLS 1.3 the server's refusal arrives after the client's handshake: on the read.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{https(service)}/health/live", verify=context, timeout=10)
            pytest.fail(f"a client with {who} was answered")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{service.url}/health/live", timeout=10)
    assert service.process.poll() is None, service.output()


def test_tls_settings_that_cannot_work_stop_the_service(
    plain_project: tuple[Baked, Path], certs: Path, services: list[Service]
) -> None:
    for env, words in [
        ({"APP_SSL_KEYFILE": str(certs / "server.key")}, "APP_SSL_CERTFILE"),
        ({"APP_SSL_CERTFILE": str(certs / "missing.pem")}, "APP_SSL_CERTFILE: no file"),
    ]:
        service = start_tls(plain_project, services, env)
        assert service.process.wait(timeout=60) == 2, service.output()
        assert words in service.output(), service.output()


# --- Quotas over a real Redis -------------------------------------------------------------------

QUOTA = 20  # per hour: a window edge inside the test is all but impossible, and harmless


@dataclass
class Redis:
    url: str
    process: subprocess.Popen[bytes]


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    """A real ``redis-server`` on a free loopback port, stopped by PID."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server (Debian package redis-server)")
    port = free_port()
    config = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [binary, *config, "--dir", str(tmp_path)],
        stdout=(tmp_path / "redis.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert process.poll() is None, (tmp_path / "redis.log").read_text()
            time.sleep(0.05)  # poll interval, not synchronisation: the deadline decides
        else:
            pytest.fail("redis-server did not listen within 30 s")
        yield Redis(f"redis://127.0.0.1:{port}/0", process)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def predict_statuses(service: Service, count: int, limit: int = QUOTA) -> list[int]:
    """``count`` predictions, each on a new connection so that the workers share them."""
    statuses = []
    for _ in range(count):
        with service.client() as client:
            response = client.post("/predict", json=PREDICT)
        if response.status_code == 429:
            assert response.json()["detail"], response.text
            assert response.headers["ratelimit-limit"] == str(limit)
            assert response.headers["ratelimit-remaining"] == "0"
            assert 1 <= int(response.headers["retry-after"]) <= 3600
        statuses.append(response.status_code)
    return statuses


def worker_pids(service: Service) -> set[int]:
    """The uvicorn worker processes of a ``--workers N`` service (children of its PID)."""
    children = Path(f"/proc/{service.process.pid}/task/{service.process.pid}/children")
    pids = {int(pid) for pid in children.read_text().split()}
    # Not multiprocessing's resource tracker, also a child.
    return {pid for pid in pids if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}


def test_one_quota_for_two_workers_and_two_services_on_redis(
    plain_project: tuple[Baked, Path], redis: Redis, services: list[Service]
) -> None:
    baked, python = plain_project
    env = {"APP_RATE_LIMIT": f"{QUOTA}/hour", "APP_RATE_LIMIT_STORAGE": redis.url}
    two_workers = start_service(
        python, baked.path, env, f"[{baked.name}] 2 workers", "--workers", "2"
    )
    services.append(two_workers)
    other = start_service(python, baked.path, env, f"[{baked.name}] second service")
    services.append(other)
    two_workers.wait_ready()
    other.wait_ready()
    assert len(worker_pids(two_workers)) == 2, "expected two worker processes"

    # Every request comes from 127.0.0.1 (no auth: the quota is per client address).
    statuses = predict_statuses(two_workers, 15) + predict_statuses(other, 15)
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) == QUOTA, f"{statuses.count(200)} served for a quota of {QUOTA}"
    assert statuses[:QUOTA] == [200] * QUOTA, statuses


def test_redis_going_down_fails_open(
    plain_project: tuple[Baked, Path], redis: Redis, services: list[Service]
) -> None:
    baked, python = plain_project
    env = {"APP_RATE_LIMIT": "2/hour", "APP_RATE_LIMIT_STORAGE": redis.url}
    service = start_service(python, baked.path, env, f"[{baked.name}] quota on redis")
    services.append(service)
    service.wait_ready()
    assert predict_statuses(service, 3, limit=2) == [200, 200, 429]
    stop(redis.process)  # Redis goes away while the service runs
    with service.client() as client:
        statuses = [client.post("/predict", json=PREDICT).status_code for _ in range(5)]
        assert statuses == [200] * 5, f"with Redis down: {statuses}"
        assert client.get("/health/ready").status_code == 200
    assert "quota storage unreachable" in service.output()


# --- Crash survival -------------------------------------------------------------------------------

METERED = {"auth": "none", "use_prometheus": True, "use_open_inference_protocol": False}


@dataclass
class Load:
    """Prediction requests from a few threads, each on a new connection, until stopped."""

    url: str
    ok: int = 0
    failed: int = 0
    other: int = 0
    stopping: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def total(self) -> int:
        return self.ok + self.failed + self.other

    def run(self, max_requests: int) -> None:
        for _ in range(max_requests):
            if self.stopping:
                return
            try:
                with httpx.Client(base_url=self.url, timeout=30) as client:
                    status = client.post("/predict", json=PREDICT).status_code
            except httpx.TransportError:
                status = 0
            with self.lock:
                if status == 200:
                    self.ok += 1
                elif status == 0:
                    self.failed += 1
                else:
                    self.other += 1


def wait_for(condition: Any, deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {deadline_s}s: {what}")
        time.sleep(0.05)  # poll interval, not synchronisation: the deadline decides


def test_a_killed_worker_is_replaced_while_the_service_keeps_answering(
    cookies_session: Any, services: list[Service]
) -> None:
    baked = baked_with(cookies_session, **METERED)
    python = make_venv(baked.path, f"[{baked.name}]")
    service = start_service(python, baked.path, {}, f"[{baked.name}] 2 workers", "--workers", "2")
    services.append(service)
    service.wait_ready()
    wait_for(lambda: len(worker_pids(service)) == 2, 60, "two workers")
    before = worker_pids(service)

    load = Load(service.url)
    threads = [threading.Thread(target=load.run, args=(2000,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    ready_statuses: list[int] = []
    try:
        wait_for(lambda: load.ok >= 50, 60, "50 predictions under load")
        victim = min(before)
        os.kill(victim, signal.SIGKILL)

        def replaced() -> bool:
            with httpx.Client(base_url=service.url, timeout=10) as client:
                try:
                    ready_statuses.append(client.get("/health/ready").status_code)
                except httpx.TransportError:
                    ready_statuses.append(0)
            workers = worker_pids(service)
            return len(workers) == 2 and victim not in workers

        wait_for(replaced, 60, "the killed worker replaced")
        # Keep the load on for another 100 requests with the new worker in place.
        target = load.total + 100
        wait_for(lambda: load.total >= target, 120, "100 more requests after the restart")
    finally:
        load.stopping = True
        for thread in threads:
            thread.join(timeout=60)
    total = load.total
    print(f"\ncrash survival: {total} requests, {load.failed} failed, {load.other} not 200")
    # Only requests in flight on the killed worker may fail: at most one per load thread.
    assert load.failed <= len(threads), f"{load.failed} of {total} failed"
    assert load.other == 0, f"{load.other} answers were not 200"
    assert ready_statuses and all(status in (200, 0) for status in ready_statuses), ready_statuses
    assert ready_statuses.count(0) <= 1, ready_statuses
    with service.client() as client:
        assert client.get("/health/ready").status_code == 200
        metrics = client.get("/metrics").text
    # Every prediction is counted once, the killed worker's included: /metrics still aggregates.
    route = 'http_requests_total{method="POST",route="/predict",status="200"}'
    counted = sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(route)
    )
    assert load.ok <= counted <= load.ok + load.failed, (counted, load.ok, load.failed)
    assert service.process.poll() is None, service.output()
