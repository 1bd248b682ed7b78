"""Model versions: new ones checked before they serve, old ones kept, rollback, polling.

Real files and real models, trained here on the iris data that scikit-learn ships.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import http.server
import json
import logging
import pickle
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.model.base import ModelLoadError
from {{ cookiecutter.project_slug }}.model.loader import SUFFIX, export
from {{ cookiecutter.project_slug }}.model.versions import (
    Check,
    ModelVersions,
    NoEarlierVersion,
    check_on_hangup,
)

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROW = [5.1, 3.5, 1.4, 0.2]


def train(c: float = 1.0, n_features: int = 4) -> bytes:
    """An iris classifier on the first ``n_features`` measurements, as this service's artifact."""
    iris = load_iris()
    labels = iris.target_names[iris.target]
    model = LogisticRegression(C=c, max_iter=1000).fit(iris.data[:, :n_features], labels)
    return export(model)


def publish(
    artifact: Path, data: bytes, version: str, n_features: int = 4, **metadata: Any
) -> None:
    """Put a version in place as a deploy pipeline would: metadata first, then the artifact
    (each written whole, then renamed)."""
    sidecar = {"version": version, "features": FEATURES[:n_features], **metadata}
    for path, content in (
        (artifact.with_suffix(".json"), json.dumps(sidecar).encode()),
        (artifact, data),
    ):
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(content)
        temporary.replace(path)


def wait_for(condition: Callable[[], bool], deadline_s: float = 20) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.02)


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "models" / f"iris{SUFFIX}"
    path.parent.mkdir()
    publish(path, train(1.0), "v1")
    return path


@pytest.fixture
def serve(make_settings: Any, artifact: Path) -> Iterator[Callable[..., TestClient]]:
    """A started service on ``artifact``, with extra settings."""
    clients: list[TestClient] = []

    def start(**settings: Any) -> TestClient:
        values = {"model_path": artifact, "model_cache_dir": artifact.parent / "cache"}
        client = TestClient(create_app(make_settings(**values | settings)))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def versions_of(client: TestClient) -> ModelVersions:
    versions = client.app.state.service.versions  # type: ignore[attr-defined]
    assert isinstance(versions, ModelVersions)
    return versions


def reload(client: TestClient) -> Check:
    """Check the source now, as SIGHUP does."""
    check: Check = client.portal.call(versions_of(client).check)  # type: ignore[union-attr]
    return check


def predicted_version(client: TestClient, headers: dict[str, str]) -> str:
    response = client.post("/predict", json={"instances": [ROW]}, headers=headers)
    assert response.status_code == 200, response.text
    version: str = response.json()["model_version"]
    assert response.headers["X-Model-Version"] == version
    return version


def test_a_new_version_serves_and_the_old_one_stays_loaded(
    serve: Callable[..., TestClient], artifact: Path, auth_headers: dict[str, str]
) -> None:
    client = serve()
    assert predicted_version(client, auth_headers) == "v1"
    publish(artifact, train(0.5), "v2")
    check = reload(client)
    assert (check.result, check.version) == ("loaded", "v2")
    assert predicted_version(client, auth_headers) == "v2"
    described = versions_of(client).describe()
    assert described["current"] == "v2"
    assert [(v["version"], v["serving"]) for v in described["versions"]] == [
        ("v1", False),
        ("v2", True),
    ]
    assert reload(client).result == "unchanged"


def test_rollback_needs_no_download_and_polling_does_not_undo_it(
    serve: Callable[..., TestClient],
    artifact: Path,
    auth_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = serve(model_poll_s=0.05)
    publish(artifact, train(0.5), "v2")
    wait_for(lambda: predicted_version(client, auth_headers) == "v2")
    versions = versions_of(client)
    looks, fetches = watch(versions, monkeypatch)
    current, previous = client.portal.call(versions.rollback)  # type: ignore[union-attr]
    assert (current.name, previous.name) == ("v1", "v2")
    assert predicted_version(client, auth_headers) == "v1"
    seen = len(looks)
    wait_for(lambda: len(looks) >= seen + 3)  # polling looked at the source three more times
    assert predicted_version(client, auth_headers) == "v1"
    assert fetches == []


def test_polling_picks_up_a_changed_file(
    serve: Callable[..., TestClient], artifact: Path, auth_headers: dict[str, str]
) -> None:
    client = serve(model_poll_s=0.05)
    publish(artifact, train(0.5), "v2")
    wait_for(lambda: predicted_version(client, auth_headers) == "v2")
    assert versions_of(client).last_check is not None


def watch(versions: ModelVersions, monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """Count how often the source is looked at (its token) and read (fetched) from now on."""
    looks: list[int] = []
    fetches: list[int] = []
    for name, calls in (("token", looks), ("fetch", fetches)):
        call = getattr(versions.source, name)

        def counted(call: Callable[[], Any] = call, calls: list[int] = calls) -> Any:
            calls.append(1)
            return call()

        monkeypatch.setattr(versions.source, name, counted)
    return looks, fetches


def pickled(artifact: Path) -> None:
    artifact.write_bytes(pickle.dumps({"not": "a model"}))


def truncated(artifact: Path) -> None:
    data = train(0.5)
    publish(artifact, data[: len(data) // 2], "v2")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda a: publish(a, train(1.0, 3), "v2", n_features=3), "features"),
        (
            lambda a: publish(a, train(0.5), "v2", examples=[{"instance": ROW, "prediction": "x"}]),
            "should be answered",
        ),
        (lambda a: publish(a, train(0.5), "v1"), "already loaded with other bytes"),
        (lambda a: publish(a, train(0.5), "v2", colour="blue"), "metadata"),
        (truncated, ""),
        (pickled, "pickle"),
    ],
    ids=["other-features", "failing-example", "reused-name", "bad-metadata", "truncated", "pickle"],
)
def test_a_candidate_that_fails_a_check_is_refused_and_the_old_version_serves(
    serve: Callable[..., TestClient],
    artifact: Path,
    auth_headers: dict[str, str],
    change: Callable[[Path], None],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = serve()
    change(artifact)
    with caplog.at_level(logging.WARNING):
        check = reload(client)
    assert check.result == "refused"
    assert reason in (check.reason or "")
    assert [r for r in caplog.records if r.getMessage() == "model version refused"]
    assert predicted_version(client, auth_headers) == "v1"
    assert [v.name for v in versions_of(client).kept] == ["v1"]


def test_a_digest_mismatch_is_refused(
    serve: Callable[..., TestClient], artifact: Path, auth_headers: dict[str, str]
) -> None:
    client = serve(model_sha256=hashlib.sha256(artifact.read_bytes()).hexdigest())
    publish(artifact, train(0.5), "v2")
    check = reload(client)
    assert check.result == "refused"
    assert "APP_MODEL_SHA256" in (check.reason or "")
    assert predicted_version(client, auth_headers) == "v1"


def test_polling_does_not_load_a_refused_version_again(
    serve: Callable[..., TestClient], artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = serve(model_poll_s=0.05)
    publish(artifact, train(1.0, 3), "v2", n_features=3)
    versions = versions_of(client)
    wait_for(lambda: versions.last_check is not None and versions.last_check.result == "refused")
    looks, fetches = watch(versions, monkeypatch)
    wait_for(lambda: len(looks) >= 3)
    assert fetches == []


def test_a_signature_change_serves_when_allowed(
    serve: Callable[..., TestClient], artifact: Path, auth_headers: dict[str, str]
) -> None:
    client = serve(model_allow_signature_change=True)
    before = client.get("/openapi.json").json()
    publish(artifact, train(1.0, 3), "v2", n_features=3)
    assert reload(client).result == "loaded"
    after = client.get("/openapi.json").json()
    assert "petal_width" in json.dumps(before)
    assert "petal_width" not in json.dumps(after)  # the document follows the new signature
    schemes = [doc.get("components", {}).get("securitySchemes") for doc in (before, after)]
    assert schemes[0] == schemes[1]
    response = client.post("/predict", json={"instances": [ROW[:3]]}, headers=auth_headers)
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == "v2"


def test_one_kept_version_leaves_nothing_to_roll_back_to(
    serve: Callable[..., TestClient], artifact: Path, auth_headers: dict[str, str]
) -> None:
    client = serve(model_keep_versions=1)
    publish(artifact, train(0.5), "v2")
    assert reload(client).result == "loaded"
    versions = versions_of(client)
    assert [v.name for v in versions.kept] == ["v2"]
    with pytest.raises(NoEarlierVersion):
        client.portal.call(versions.rollback)  # type: ignore[union-attr]
    assert predicted_version(client, auth_headers) == "v2"


def test_a_missing_file_is_a_failed_check_not_a_refusal(
    serve: Callable[..., TestClient], artifact: Path, auth_headers: dict[str, str]
) -> None:
    client = serve()
    artifact.unlink()
    check = reload(client)
    assert check.result == "failed"
    assert predicted_version(client, auth_headers) == "v1"


@pytest.mark.parametrize(
    ("uri", "said"),
    [
        ("ftp://example.invalid/model", "unknown scheme"),
        ("models:/iris", "models:/<name>@<alias>"),
        ("s3://", "names no file"),
        ("missing/model.bin", "no model at"),
    ],
)
def test_a_bad_uri_stops_start_up_with_one_line(
    make_settings: Any, tmp_path: Path, uri: str, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(model_uri=uri, model_cache_dir=tmp_path / "cache")
    with (
        caplog.at_level(logging.ERROR),
        pytest.raises(ModelLoadError, match=said),
        TestClient(create_app(settings)),
    ):
        pass
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1
    assert lines[0].startswith("cannot load the model: ")
    assert "\n" not in lines[0]


def test_sighup_asks_for_a_check() -> None:
    class Versions:
        checks = 0

        def check_soon(self) -> None:
            self.checks += 1

    versions = Versions()

    async def main() -> None:
        with check_on_hangup(versions):  # type: ignore[arg-type]
            signal.raise_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while versions.checks == 0:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)

    asyncio.run(main())
    assert versions.checks == 1


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on a loopback port, serving a folder: its URL and the folder."""
    root = tmp_path / "web"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_a_model_over_http_is_cached_by_digest_with_its_metadata(
    make_settings: Any, web: tuple[str, Path], tmp_path: Path, auth_headers: dict[str, str]
) -> None:
    url, root = web
    artifact = root / "models" / f"iris{SUFFIX}"
    artifact.parent.mkdir()
    publish(artifact, train(1.0), "web-1")
    cache = tmp_path / "cache"
    settings = make_settings(model_uri=f"{url}/models/iris{SUFFIX}", model_cache_dir=cache)
    with TestClient(create_app(settings)) as client:
        assert predicted_version(client, auth_headers) == "web-1"
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert {p.name for p in (cache / digest).iterdir()} == {f"iris{SUFFIX}", "iris.json"}


@pytest.mark.parametrize(
    ("name", "sha256", "said"),
    [("nothing-here.bin", "", "no model at"), (f"iris{SUFFIX}", "0" * 64, "APP_MODEL_SHA256")],
)
def test_a_missing_object_or_a_digest_mismatch_over_http_stops_start_up(
    make_settings: Any, web: tuple[str, Path], tmp_path: Path, name: str, sha256: str, said: str
) -> None:
    url, root = web
    publish(root / f"iris{SUFFIX}", train(1.0), "web-1")
    settings = make_settings(
        model_uri=f"{url}/{name}", model_sha256=sha256, model_cache_dir=tmp_path / "cache"
    )
    with pytest.raises(ModelLoadError, match=said), TestClient(create_app(settings)):
        pass


class Registry(http.server.BaseHTTPRequestHandler):
    """The few routes of an MLflow tracking server's REST API that an alias takes: the alias,
    the version's artifact location, and its proxied artifacts (files under ``root``/<version>)."""

    root: ClassVar[Path]
    alias: ClassVar[dict[str, str]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        api = "/api/2.0/mlflow"
        if url.path == f"{api}/registered-models/alias":
            version = self.alias.get(f"{query['name']}@{query['alias']}")
            if version is None:
                return self.answer(404, b'{"error_code": "RESOURCE_DOES_NOT_EXIST"}')
            found = {"model_version": {"name": query["name"], "version": version}}
            return self.answer(200, json.dumps(found).encode())
        if url.path == f"{api}/model-versions/get-download-uri":
            uri = f"mlflow-artifacts:/0/{query['version']}/artifacts"
            return self.answer(200, json.dumps({"artifact_uri": uri}).encode())
        artifacts = "/api/2.0/mlflow-artifacts/artifacts"
        if url.path == artifacts:
            folder = self.root / query["path"].split("/")[1]
            files = [{"path": p.name, "is_dir": p.is_dir()} for p in sorted(folder.iterdir())]
            return self.answer(200, json.dumps({"files": files}).encode())
        parts = urllib.parse.unquote(url.path.removeprefix(artifacts + "/")).split("/")
        path = self.root / parts[1] / "/".join(parts[3:])
        if not path.is_file():
            return self.answer(404, b"{}")
        return self.answer(200, path.read_bytes())

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Registry]]:
    """A registry on a loopback port, named by MLFLOW_TRACKING_URI; versions go in its root."""

    class Handler(Registry):
        root = tmp_path / "registry"
        alias: ClassVar[dict[str, str]] = {}

    Handler.root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.server_address[1]}")
    yield Handler
    server.shutdown()
    server.server_close()


def test_an_mlflow_alias_serves_the_version_behind_it_and_never_a_pickle(
    make_settings: Any, registry: type[Registry], tmp_path: Path, auth_headers: dict[str, str]
) -> None:
    for number, c in (("1", 1.0), ("2", 0.5)):
        (registry.root / number).mkdir()
        publish(registry.root / number / f"iris{SUFFIX}", train(c), f"churn-{number}")
    (registry.root / "3").mkdir()
    (registry.root / "3" / "model.pkl").write_bytes(pickle.dumps({"not": "a model"}))
    registry.alias["iris@champion"] = "1"
    settings = make_settings(model_uri="models:/iris@champion", model_cache_dir=tmp_path / "c")
    with TestClient(create_app(settings)) as client:
        assert predicted_version(client, auth_headers) == "churn-1"
        assert reload(client).result == "unchanged"
        registry.alias["iris@champion"] = "2"
        assert reload(client).result == "loaded"
        assert predicted_version(client, auth_headers) == "churn-2"
        registry.alias["iris@champion"] = "3"
        check = reload(client)
        assert check.result == "refused"
        assert "pickle" in (check.reason or "")
        assert predicted_version(client, auth_headers) == "churn-2"


def test_model_path_and_model_uri_together_are_refused(make_settings: Any, artifact: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        make_settings(model_path=artifact, model_uri=str(artifact))


def test_a_model_uri_path_serves_like_model_path(
    make_settings: Any, artifact: Path, auth_headers: dict[str, str]
) -> None:
    settings = make_settings(model_uri=str(artifact))
    with TestClient(create_app(settings)) as client:
        assert predicted_version(client, auth_headers) == "v1"
{%- if cookiecutter.auth != "none" %}


def test_admin_routes_need_the_admin_scope(
    serve: Callable[..., TestClient], credentials: Callable[..., dict[str, str]]
) -> None:
    client = serve()
    predict_only = credentials("predict")
    for method, path in (
        ("GET", "/admin/model"),
        ("POST", "/admin/model/reload"),
        ("POST", "/admin/model/rollback"),
    ):
        assert client.request(method, path).status_code == 401
        assert client.request(method, path, headers=predict_only).status_code == 403


def test_admin_routes_reload_show_and_roll_back(
    serve: Callable[..., TestClient],
    artifact: Path,
    credentials: Callable[..., dict[str, str]],
) -> None:
    client = serve()
    admin = credentials("admin")
    response = client.post("/admin/model/rollback", headers=admin)
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "no earlier version is loaded"},
    )
    publish(artifact, train(1.0, 3), "v2", n_features=3)
    response = client.post("/admin/model/reload", headers=admin)
    assert response.status_code == 409
    assert response.json()["result"] == "refused"
    assert "features" in response.json()["detail"]
    publish(artifact, train(0.5), "v3")
    response = client.post("/admin/model/reload", headers=admin)
    assert response.status_code == 200, response.text
    assert (response.json()["result"], response.json()["current"]) == ("loaded", "v3")
    shown = client.get("/admin/model", headers=admin).json()
    assert shown["current"] == "v3"
    assert shown["last_check"]["result"] == "loaded"
    assert [v["version"] for v in shown["versions"]] == ["v1", "v3"]
    assert shown["poll_s"] == 0
    response = client.post("/admin/model/rollback", headers=admin)
    assert response.json() == {"current": "v1", "previous": "v3"}
{%- endif %}
