"""use_opentelemetry served for real: spans exported over OTLP/HTTP to a receiver on loopback.

The receiver is this test's own HTTP server on a thread, which decodes what the service sends
with the OTLP protobuf definitions (``opentelemetry-proto``), as a collector would. Covered: one
``POST /predict`` with micro-batching on and a caller's ``traceparent`` arrives as one span tree
in the caller's trace (the server span named after the route, ``auth``, ``inference`` with the
queue, the batch and the model call); the request's JSON log line carries the trace and span
ids; with ``OTEL_SDK_DISABLED=true`` nothing is exported, not even at shutdown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import Baked, Service, add_user, baked_with, install_project, start_service
from tests.variants import DEFAULTS

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tracing_boot")]

CONTEXT = {"use_opentelemetry": True}
PASSWORD = "tracing test password"
PREDICT = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.9, 3.1, 5.7, 2.3]]}
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
DEADLINE_S = 30.0


class Receiver:
    """An OTLP/HTTP trace receiver: ``POST /v1/traces`` with an ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.exports: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.paths.append(self.path)
                receiver.exports.append(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[Span]:
        return [
            span
            for export in list(self.exports)
            for resource in export.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def service_names(self) -> set[str]:
        return {
            attribute.value.string_value
            for export in list(self.exports)
            for resource in export.resource_spans
            for attribute in resource.resource.attributes
            if attribute.key == "service.name"
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@dataclass
class Installed:
    baked: Baked
    python: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def installed(cookies_session: Any, run_dir: Path) -> Installed:
    baked = baked_with(cookies_session, **{**DEFAULTS, **CONTEXT})
    python, env = install_project(run_dir / "venvs", baked)
    env = {
        **env,
        "APP_SECRET_KEY": "tracing-test-secret-key-0123456789abcdef",
        "APP_DATABASE_URL": f"sqlite:///{baked.path / 'data' / 'auth.db'}",
        "APP_LOG_LEVEL": "info",
        "APP_LOG_FORMAT": "json",
        "APP_MAX_BATCH_SIZE": "8",
        "OTEL_SERVICE_NAME": "boot-test",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    add_user(python, baked.path, env, "tracer", PASSWORD, "[tracing]")
    return Installed(baked, python, env)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


def serve(installed: Installed, services: list[Service], **env: str) -> Service:
    service = start_service(
        installed.python, installed.baked.path, {**installed.env, **env}, "[tracing] serve"
    )
    services.append(service)
    service.wait_ready()
    return service


def token(service: Service) -> dict[str, str]:
    with service.client() as client:
        answer = client.post("/token", data={"username": "tracer", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def attributes(span: Span) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attribute in span.attributes:
        value = attribute.value
        values[attribute.key] = (
            value.string_value if value.HasField("string_value") else (value.int_value)
        )
    return values


def test_one_predict_is_one_span_tree_in_the_callers_trace(
    installed: Installed, services: list[Service], receiver: Receiver
) -> None:
    service = serve(installed, services, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
    headers = {
        **token(service),
        "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
        "X-Request-ID": "traced-request-1",
    }
    with service.client() as client:
        assert client.post("/predict", json=PREDICT, headers=headers).status_code == 200

    trace_id = bytes.fromhex(CALLER_TRACE)
    deadline = time.monotonic() + DEADLINE_S
    while True:
        mine = [s for s in receiver.spans() if s.trace_id == trace_id]
        if any(s.name == "model.predict" for s in mine) and any(
            s.kind == Span.SPAN_KIND_SERVER for s in mine
        ):
            break
        assert time.monotonic() < deadline, f"no trace exported: {[s.name for s in mine]}"
        time.sleep(0.1)  # poll interval; the deadline decides
    assert set(receiver.paths) == {"/v1/traces"}
    assert receiver.service_names() >= {"boot-test"}

    by_id = {s.span_id: s for s in mine}
    (server,) = [s for s in mine if s.kind == Span.SPAN_KIND_SERVER]
    assert server.name == "POST /predict"
    assert server.parent_span_id == bytes.fromhex(CALLER_SPAN)
    assert attributes(server)["http.route"] == "/predict"

    def parent_name(span: Span) -> str:
        return by_id[span.parent_span_id].name

    named = {s.name: s for s in mine}
    assert parent_name(named["auth"]) == "POST /predict"
    assert parent_name(named["inference"]) == "POST /predict"
    assert parent_name(named["inference.queue"]) == "inference"
    assert parent_name(named["inference.batch"]) == "inference"
    assert parent_name(named["model.predict"]) == "inference.batch"
    assert attributes(named["inference.batch"]) == {"batch.rows": 2, "batch.requests": 1}
    model = attributes(named["model.predict"])
    assert model["model.version"] == "iris-1" and model["rows"] == 2
    assert (
        named["model.predict"].start_time_unix_nano >= named["inference.batch"].start_time_unix_nano
    )
    assert named["model.predict"].end_time_unix_nano <= named["inference.batch"].end_time_unix_nano

    # The access log line of that request names the same trace and the server span.
    lines = [line for line in service.output().splitlines() if "traced-request-1" in line]
    assert lines, service.output()
    assert f'"trace_id": "{CALLER_TRACE}"' in lines[-1]
    assert f'"span_id": "{server.span_id.hex()}"' in lines[-1]


def test_otel_sdk_disabled_exports_nothing(
    installed: Installed, services: list[Service], receiver: Receiver
) -> None:
    service = serve(
        installed,
        services,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SDK_DISABLED="true",
    )
    headers = {**token(service), "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
    with service.client() as client:
        for _ in range(3):
            assert client.post("/predict", json=PREDICT, headers=headers).status_code == 200
    assert service.stop() == 0  # a clean shutdown flushes whatever spans there were
    assert receiver.exports == []
    assert "trace_id" not in service.output()
