"""The Lambda entry point, invoked in-process with API Gateway's own event payloads.

Each test sends an event as API Gateway would, for an HTTP API (payload format 2.0, what
template.yaml deploys) and for a REST API (format 1.0), through ``serverless.handler``, and
checks the response Lambda hands back: status, headers and JSON body. The handler is imported
once for the module, as Lambda imports it once per container; the model must load only then.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any
{%- if cookiecutter.auth == "jwt" %}
from urllib.parse import urlencode
{%- endif %}

import pytest
from mangum import Mangum
from mangum.types import LambdaCognitoIdentity, LambdaMobileClientContext

from {{ cookiecutter.project_slug }} import main
from {{ cookiecutter.project_slug }}.model import versions
from {{ cookiecutter.project_slug }}.model.base import Predictor
from {{ cookiecutter.project_slug }}.model.loader import load_fetched

from .conftest import IRIS_ROW
{%- if cookiecutter.auth == "oidc" %}
from .identity_provider import AUDIENCE, IdentityProvider
{%- endif %}

MODULE = "{{ cookiecutter.project_slug }}.serverless"
NAME = "{{ cookiecutter.project_slug.replace('_', '-') }}"
{%- if cookiecutter.auth == "jwt" %}
PASSWORD = "correct horse battery staple"
SECRET = "lambda-test-secret-key-0123456789abcdef"
{%- endif %}
Event = dict[str, Any]


def http_api_event(
    method: str, path: str, headers: dict[str, str] | None = None, body: str | None = None
) -> Event:
    """An API Gateway HTTP API event, payload format version 2.0 (as AWS documents it)."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "accept": "application/json",
            "content-length": str(len(body or "")),
            "host": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
            "user-agent": "curl/8.5.0",
            "x-amzn-trace-id": "Root=1-65f0a1b2-0123456789abcdef01234567",
            "x-forwarded-for": "192.0.2.10",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
            **(headers or {}),
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abcdef1234",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "UZ9t5gV9joEEMxA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "12/Mar/2024:19:03:58 +0000",
            "timeEpoch": 1710270238390,
        },
        **({"body": body} if body is not None else {}),
        "isBase64Encoded": False,
    }


def rest_api_event(
    method: str, path: str, headers: dict[str, str] | None = None, body: str | None = None
) -> Event:
    """An API Gateway REST API proxy event, payload format version 1.0 (as AWS documents it)."""
    all_headers = {
        "Accept": "application/json",
        "Host": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
        "User-Agent": "curl/8.5.0",
        "X-Amzn-Trace-Id": "Root=1-65f0a1b2-0123456789abcdef01234567",
        "X-Forwarded-For": "192.0.2.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        **(headers or {}),
    }
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abcdef1234",
            "extendedRequestId": "UZ9t5gV9joEEMxA=",
            "httpMethod": method,
            "identity": {"sourceIp": "192.0.2.10", "userAgent": "curl/8.5.0"},
            "path": f"/prod{path}",
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTime": "12/Mar/2024:19:03:58 +0000",
            "requestTimeEpoch": 1710270238390,
            "resourceId": "abc123",
            "resourcePath": "/{proxy+}",
            "stage": "prod",
        },
        "body": body,
        "isBase64Encoded": False,
    }


EVENTS: dict[str, Callable[..., Event]] = {"http-api-v2": http_api_event, "rest-v1": rest_api_event}


@dataclass
class Context:
    """What Lambda passes as ``context``; the handler only hands it on."""

    function_name: str = NAME
    function_version: str = "$LATEST"
    invoked_function_arn: str = f"arn:aws:lambda:eu-west-1:123456789012:function:{NAME}"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    log_group_name: str = f"/aws/lambda/{NAME}"
    log_stream_name: str = "2024/03/12/[$LATEST]0123456789abcdef0123456789abcdef"
    identity: LambdaCognitoIdentity | None = None
    client_context: LambdaMobileClientContext | None = None

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class Lambda:
    """The imported entry point, and how many times the model was loaded."""

    def __init__(self, module: ModuleType, loads: list[str]) -> None:
        self.module = module
        self.loads = loads

    def invoke(self, event: Event) -> tuple[int, dict[str, str], Any]:
        """Invoke the handler; return status, headers (lower-case names) and the JSON body."""
        response: dict[str, Any] = self.module.handler(event, Context())
        assert response["isBase64Encoded"] is False, response
        headers = {name.lower(): value for name, value in response["headers"].items()}
        return response["statusCode"], headers, json.loads(response["body"])


{%- if cookiecutter.auth == "oidc" %}


@pytest.fixture(scope="module")
def identity_provider() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    yield provider
    provider.close()
{%- endif %}


@pytest.fixture(scope="module")
{%- if cookiecutter.auth == "oidc" %}
def function(
    tmp_path_factory: pytest.TempPathFactory, identity_provider: IdentityProvider
) -> Iterator[Lambda]:
{%- else %}
def function(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lambda]:
{%- endif %}
    """The entry point as Lambda imports it: settings from the environment, the model loaded
    at import. Every model load is counted; the app is shut down when the module ends."""
    loads: list[str] = []

    def counted(*args: Any) -> Predictor:
        loads.append("load")
        return load_fetched(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("APP_LOG_LEVEL", "warning")
{%- if cookiecutter.auth == "oidc" %}
        patch.setenv("APP_OIDC_ISSUER", identity_provider.issuer)
        patch.setenv("APP_OIDC_AUDIENCE", AUDIENCE)
{%- elif cookiecutter.auth != "none" %}
        data = tmp_path_factory.mktemp("lambda")
        patch.setenv("APP_DATABASE_URL", f"sqlite:///{data / 'app.db'}")
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
        patch.setenv("APP_SECRET_KEY", SECRET)
{%- endif %}
        patch.setattr(versions, "load_fetched", counted)
        sys.modules.pop(MODULE, None)
        module = importlib.import_module(MODULE)
        try:
            yield Lambda(module, loads)
        finally:
            module.handler.close()
            sys.modules.pop(MODULE, None)


@pytest.fixture(scope="module")
def credentials(function: Lambda{% if cookiecutter.auth == "oidc" %}, identity_provider: IdentityProvider{% endif %}) -> dict[str, str]:
    """Headers with the predict scope, obtained as a client would."""
{%- if cookiecutter.auth == "jwt" %}
    function.module.handler.app.state.auth.users.add("alice", PASSWORD, ["predict"])
    form = urlencode({"username": "alice", "password": PASSWORD})
    form_type = {"content-type": "application/x-www-form-urlencoded"}
    status, _, body = function.invoke(http_api_event("POST", "/token", form_type, form))
    assert status == 200, body
    return {"authorization": f"Bearer {body['access_token']}"}
{%- elif cookiecutter.auth == "api_key" %}
    key: str = function.module.handler.app.state.auth.keys.add("lambda-client", ["predict"])
    return {"x-api-key": key}
{%- elif cookiecutter.auth == "oidc" %}
    return {"authorization": f"Bearer {identity_provider.token()}"}
{%- else %}
    return {}
{%- endif %}


@pytest.fixture(params=list(EVENTS), ids=list(EVENTS))
def make_event(request: pytest.FixtureRequest) -> Callable[..., Event]:
    maker: Callable[..., Event] = EVENTS[request.param]
    return maker


JSON = {"content-type": "application/json"}


def test_health_live(function: Lambda, make_event: Callable[..., Event]) -> None:
    status, headers, body = function.invoke(make_event("GET", "/health/live"))
    assert (status, body) == (200, {"status": "ok"})
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"], headers


def test_ready_after_cold_start(function: Lambda, make_event: Callable[..., Event]) -> None:
    status, _, body = function.invoke(make_event("GET", "/health/ready"))
    assert (status, body) == (200, {"status": "ok"})


def test_model(
    function: Lambda, credentials: dict[str, str], make_event: Callable[..., Event]
) -> None:
    status, headers, body = function.invoke(make_event("GET", "/model", credentials))
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    assert body["name"] == NAME


def test_predict(
    function: Lambda, credentials: dict[str, str], make_event: Callable[..., Event]
) -> None:
    request = json.dumps({"instances": [IRIS_ROW]})
    status, headers, body = function.invoke(
        make_event("POST", "/predict", {**credentials, **JSON}, request)
    )
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    assert body["predictions"] == ["setosa"]


def test_request_id_is_kept(function: Lambda, make_event: Callable[..., Event]) -> None:
    _, headers, _ = function.invoke(
        make_event("GET", "/health/live", {"x-request-id": "lambda-test-1"})
    )
    assert headers["x-request-id"] == "lambda-test-1"


{%- if cookiecutter.auth != "none" %}


def test_predict_needs_credentials(function: Lambda, make_event: Callable[..., Event]) -> None:
    request = json.dumps({"instances": [IRIS_ROW]})
    status, headers, body = function.invoke(make_event("POST", "/predict", JSON, request))
    assert status == 401, body
    assert "www-authenticate" in headers
    assert "detail" in body
{%- endif %}


def test_bad_request_is_422(
    function: Lambda, credentials: dict[str, str], make_event: Callable[..., Event]
) -> None:
    request = json.dumps({"instances": [[1.0, "many"]]})
    status, headers, body = function.invoke(
        make_event("POST", "/predict", {**credentials, **JSON}, request)
    )
    assert status == 422, body
    assert headers["content-type"] == "application/json"
    assert body["detail"], body


def test_unknown_route_is_404(function: Lambda, make_event: Callable[..., Event]) -> None:
    status, headers, body = function.invoke(make_event("GET", "/no/such/route"))
    assert status == 404, body
    assert headers["content-type"] == "application/json"
    assert body == {"detail": "Not Found"}


def test_the_model_loads_once(function: Lambda, credentials: dict[str, str]) -> None:
    """Lambda keeps a container for many events: the model loaded at import, never again."""
    request = json.dumps({"instances": [IRIS_ROW]})
    for make_event in EVENTS.values():
        for _ in range(2):
            status, _, _ = function.invoke(
                make_event("POST", "/predict", {**credentials, **JSON}, request)
            )
            assert status == 200
    assert function.loads == ["load"]
    assert function.module.handler.app.state.service.ready


def test_mangums_own_lifespan_would_load_per_event(function: Lambda) -> None:
    """Why the handler runs the lifespan itself: with Mangum's ``lifespan="auto"`` a fresh app
    loads its model on every event (and the counter above would have seen it)."""
    before = len(function.loads)
    per_event = Mangum(main.create_app(), lifespan="auto")
    for _ in range(2):
        response = per_event(http_api_event("GET", "/health/live"), Context())
        assert response["statusCode"] == 200, response
    assert len(function.loads) == before + 2
