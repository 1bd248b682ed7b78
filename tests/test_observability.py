"""Observability of a baked service: metrics over many workers, Prometheus, alerts, dashboard, logs.

The static checks (promtool on the baked configuration, the dashboard's and Compose's wiring)
run in the fast suite. The rest installs the default variant once, serves it with two workers
and checks what an operator would see: exact request counts in ``/metrics`` whichever worker
answered, output that ``promtool check metrics`` accepts, a real Prometheus server scraping it,
a dashboard that queries only metrics the service exports, and one JSON log line per request.

promtool and prometheus come from the Debian package ``prometheus``; tests that need them are
skipped, saying so, where they are not installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import (
    Baked,
    Service,
    add_user,
    baked_with,
    free_port,
    install_project,
    run,
    shared_bake,
    start_service,
)

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
SECRET = "observability-test-secret-key-0123456789"
PASSWORD = "observability test password"
REQUESTS = 40
DEADLINE_S = 30.0
POLL_S = 0.1  # poll interval only: every wait below is bounded by a deadline

# The metric families the contract promises (section 5), as they appear in the text format.
CONTRACT_METRICS = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "http_requests_in_progress",
    "model_inference_duration_seconds_bucket",
    "model_predictions_total",
    "model_batch_size_bucket",
    "inference_rejected_total",
    "model_info",
}
# Series Prometheus makes itself for every target; a query may use them without the service.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

PROMQL_FUNCTIONS_AND_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian/Ubuntu: apt-get install prometheus)")
    return path


# --- PromQL: which metrics does an expression read? -------------------------------------------


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords and labels left out).

    Not a PromQL parser, but enough for dashboards and rules: label matchers, strings,
    ranges and ``by (...)`` groupings are removed first, then every identifier that is not a
    function call, a keyword or a number is a metric name.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables such as $__rate_interval
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("("):
            continue  # a function or an aggregation
        if match.group().lower() in PROMQL_FUNCTIONS_AND_KEYWORDS:
            continue
        if text[max(0, match.start() - 1)].isdigit():
            continue  # the exponent or unit of a number literal, such as 1e3 or 5m
        names.add(match.group())
    return names


def test_metric_names_finds_metrics_and_nothing_else() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(x_bucket{route!~"/a|b"}[5m])))'
        ' / sum(rate(y_total{job="$job"}[$__rate_interval])) > 0.5 and on (job) up == 0'
    )
    assert metric_names(expr) == {"x_bucket", "y_total", "up"}
    assert metric_names("label_values(model_info, job)") == {"model_info", "job"}


def exported_sample_names(text: str) -> set[str]:
    """Every sample name in Prometheus text output (histograms as _bucket, _sum, _count)."""
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def dashboard_expressions(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    """Panel title -> the PromQL of each of its targets."""
    return {
        panel["title"]: [target["expr"] for target in panel.get("targets", [])]
        for panel in dashboard["panels"]
    }


def rule_expressions(alerts: dict[str, Any]) -> dict[str, str]:
    """Alert or recorded name -> its PromQL, for every rule of every group."""
    return {
        rule.get("alert") or rule["record"]: rule["expr"]
        for group in alerts["groups"]
        for rule in group["rules"]
    }


def recorded_names(alerts: dict[str, Any]) -> set[str]:
    """Series the rules record: dashboards may query them, the service does not export them."""
    return {
        rule["record"] for group in alerts["groups"] for rule in group["rules"] if "record" in rule
    }


# --- static: the baked monitoring files -------------------------------------------------------


@pytest.fixture
def baked(run_dir: Path) -> Baked:
    return shared_bake(run_dir)  # the checks here only read it


def test_prometheus_config_loads_the_alert_rules(baked: Baked) -> None:
    out = run(
        [promtool(), "check", "config", "monitoring/prometheus.yml"],
        cwd=baked.path,
        what="promtool check config",
    )
    assert "1 rule files found" in out, out
    assert "7 rules found" in out, out


def test_alert_rules_pass_their_unit_tests(baked: Baked) -> None:
    out = run(
        [promtool(), "test", "rules", "monitoring/alerts.test.yml"],
        cwd=baked.path,
        what="promtool test rules",
    )
    assert "SUCCESS" in out, out


def test_alert_unit_tests_cover_every_alert(baked: Baked) -> None:
    rules = yaml.safe_load((baked.path / "monitoring/alerts.yml").read_text())
    alerts = set(rule_expressions(rules)) - recorded_names(rules)
    assert alerts == {
        "ServiceDown",
        "HighErrorRate",
        "HighLatencyP99",
        "InputDrift",
        "ModelVersionsRefused",
    }
    tests = yaml.safe_load((baked.path / "monitoring/alerts.test.yml").read_text())
    firing = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert firing == set(alerts), "every alert needs a unit test in which it fires"


def test_grafana_is_provisioned_with_the_datasource_and_dashboard(baked: Baked) -> None:
    compose = yaml.safe_load((baked.path / "docker-compose.yml").read_text())
    grafana_mounts = dict(
        volume.rsplit(":", 2)[:2] for volume in compose["services"]["grafana"]["volumes"]
    )
    prometheus_mounts = dict(
        volume.rsplit(":", 2)[:2] for volume in compose["services"]["prometheus"]["volumes"]
    )
    assert prometheus_mounts["./monitoring/alerts.yml"] == "/etc/prometheus/alerts.yml"

    provider_file = baked.path / "monitoring/grafana/provisioning/dashboards/service.yml"
    (provider,) = yaml.safe_load(provider_file.read_text())["providers"]
    assert grafana_mounts["./monitoring/grafana/dashboards"] == provider["options"]["path"]
    assert grafana_mounts["./monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"

    datasources = yaml.safe_load(
        (baked.path / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    uids = {source["uid"] for source in datasources}
    dashboard = json.loads((baked.path / "monitoring/grafana/dashboards/service.json").read_text())
    titles = {panel["title"] for panel in dashboard["panels"]}
    for wanted in (
        "Request rate",
        "Error rate",
        "Latency",
        "In flight",
        "Inference time",
        "Batch size",
        "Rejections",
        "Predicted classes",
        "Confidence",
        "Predicted values",
        "Input drift",
    ):
        assert wanted in titles, f"dashboard lacks a {wanted!r} panel"
    for panel in dashboard["panels"]:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids, panel["title"]
    latency = " ".join(dashboard_expressions(dashboard)["Latency"])
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}," in latency


def test_traces_are_wired_to_jaeger_and_linked_from_latency(bake: Callable[..., Baked]) -> None:
    baked = bake(use_opentelemetry=True)
    compose = yaml.safe_load((baked.path / "docker-compose.yml").read_text())
    app = compose["services"]["app"]["environment"]
    assert app["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert compose["services"]["jaeger"]["image"].startswith("jaegertracing/jaeger:")
    assert "--enable-feature=exemplar-storage" in compose["services"]["prometheus"]["command"]
    datasources = yaml.safe_load(
        (baked.path / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    by_uid = {source["uid"]: source for source in datasources}
    (link,) = by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert link == {"name": "trace_id", "datasourceUid": "jaeger"}
    assert by_uid["jaeger"]["url"] == "http://jaeger:16686"
    dashboard = json.loads((baked.path / "monitoring/grafana/dashboards/service.json").read_text())
    (latency,) = [p for p in dashboard["panels"] if p["title"] == "Latency"]
    assert all(target["exemplar"] for target in latency["targets"])


def test_without_prometheus_nothing_of_monitoring_is_left(bake: Callable[..., Baked]) -> None:
    baked = bake(use_prometheus=False)
    assert not (baked.path / "monitoring").exists()
    compose = yaml.safe_load((baked.path / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"app"}
    assert not {"prometheus-data", "grafana-data"} & set(compose.get("volumes") or {})
    assert "prometheus" not in (baked.path / "pyproject.toml").read_text().lower()


# --- slow: the default variant served with two workers ----------------------------------------


@dataclass
class Served:
    baked: Baked
    python: Path
    env: dict[str, str]
    service: Service
    multiproc_dir: Path
    headers: dict[str, str]


@pytest.fixture(scope="module")
def served(
    cookies_session: Any, run_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The default variant, installed once, serving with two workers and JSON logs at info."""
    baked = baked_with(cookies_session)
    python, install_env = install_project(run_dir, baked)
    multiproc_dir = tmp_path_factory.mktemp("prometheus-multiproc")
    env = {
        **install_env,
        "APP_SECRET_KEY": SECRET,
        "APP_LOG_LEVEL": "info",
        "APP_LOG_FORMAT": "json",
        "APP_DATABASE_URL": f"sqlite:///{baked.path / 'data' / 'auth.db'}",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
    }
    add_user(python, baked.path, env, "watcher", PASSWORD, "[default]")
    service = start_service(
        python, baked.path, env, "[default] serve --workers 2", "--workers", "2"
    )
    try:
        service.wait_ready()
        with service.client() as client:
            token = client.post("/token", data={"username": "watcher", "password": PASSWORD})
            assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        yield Served(baked, python, env, service, multiproc_dir, headers)
    finally:
        service.stop()


def scrape(service: Service) -> str:
    with service.client() as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def sample_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$")
    for line in text.splitlines():
        match = pattern.match(line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match.group(2))
    return total


def per_process_predict_counts(served: Served) -> dict[str, float]:
    """Answered /predict requests as each worker process recorded them in its own file."""
    script = """
import json, sys
from pathlib import Path
from prometheus_client.multiprocess import MultiProcessCollector

counts = {}
for path in sorted(Path(sys.argv[1]).glob("counter_*.db")):
    counts[path.name] = sum(
        sample.value
        for metric in MultiProcessCollector.merge([str(path)], accumulate=False)
        for sample in metric.samples
        if sample.name == "http_requests_total"
        and sample.labels.get("route") == "/predict"
        and sample.labels.get("status") == "200"
    )
print(json.dumps(counts))
"""
    out = run(
        [str(served.python), "-c", script, str(served.multiproc_dir)],
        cwd=served.baked.path,
        what="read the per-worker metric files",
        env=served.env,
    )
    counts: dict[str, float] = json.loads(out)
    return counts


def predict_over_fresh_connections(served: Served, count: int) -> None:
    """``count`` predictions, each on a new connection, eight at a time (so workers share)."""

    def one(_: int) -> int:
        with httpx.Client(base_url=served.service.url, timeout=30) as client:
            response = client.post(
                "/predict", json={"instances": [IRIS_ROW]}, headers=served.headers
            )
            return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(one, range(count)))
    assert statuses == [200] * count, statuses


@pytest.mark.slow
def test_every_worker_is_counted_exactly(served: Served) -> None:
    start = scrape(served.service)
    before = sample_value(start, "http_requests_total", route="/predict", status="200")
    setosa = sample_value(start, "model_predicted_class_total", **{"class": "setosa"})
    # IRIS_ROW's sepal length, 5.1, in the demo reference's deciles (edges 4.8, 5.0, 5.27, ...).
    short_sepals = sample_value(
        start, "model_input_bucket_total", feature="sepal_length", bucket="2"
    )
    sent = 0
    deadline = time.monotonic() + DEADLINE_S
    # Keep sending until both workers have answered some, so that the sum below proves
    # /metrics adds up the workers rather than reporting whichever one answered the scrape.
    while True:
        predict_over_fresh_connections(served, REQUESTS)
        sent += REQUESTS
        per_process = per_process_predict_counts(served)
        if sum(1 for value in per_process.values() if value > 0) >= 2:
            break
        assert time.monotonic() < deadline, f"one worker took every request: {per_process}"

    expected = before + sent
    while True:
        text = scrape(served.service)
        counted = sample_value(text, "http_requests_total", route="/predict", status="200")
        if counted == expected or time.monotonic() > deadline:
            break
        time.sleep(POLL_S)
    assert counted == expected, f"sent {sent} (+{before} before), /metrics says {counted}"
    assert sample_value(text, "model_predictions_total") >= sent
    # What the model was asked and answered, summed over the workers like the rest.
    assert sample_value(text, "model_predicted_class_total", **{"class": "setosa"}) == (
        setosa + sent
    )
    assert 'model_predicted_class_total{class="virginica"}' in text  # every class, from the start
    assert (
        sample_value(text, "model_input_bucket_total", feature="sepal_length", bucket="2")
        == short_sepals + sent
    )
    assert sample_value(
        text, "model_input_reference_share", feature="sepal_length", bucket="2"
    ) == pytest.approx(0.153333)
    assert sample_value(text, "http_request_duration_seconds_count", route="/predict") >= sent
    assert sum(per_process_predict_counts(served).values()) == expected


@pytest.mark.slow
def test_gauges_are_right_across_workers(served: Served) -> None:
    text = scrape(served.service)
    # Only the scrape itself is in flight; livesum adds the live workers' gauges.
    assert sample_value(text, "http_requests_in_progress") == 1, text
    info = [line for line in text.splitlines() if line.startswith("model_info{")]
    assert len(info) == 1, info
    assert info[0].endswith(" 1.0"), info
    assert 'framework="sklearn"' in info[0] and "pid=" not in info[0]
    for reason in ("queue_full", "timeout"):
        assert f'inference_rejected_total{{reason="{reason}"}}' in text, reason


def check_metrics(text: str) -> None:
    result = subprocess.run(
        [promtool(), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    problems = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not problems, f"promtool check metrics:\n{problems}"


@pytest.mark.slow
def test_multiprocess_metrics_pass_promtool(served: Served) -> None:
    check_metrics(scrape(served.service))


@pytest.mark.slow
def test_single_process_metrics_pass_promtool(served: Served, services: list[Service]) -> None:
    env = {k: v for k, v in served.env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    single = start_service(
        served.python, served.baked.path, env, "[default] serve --workers 1", "--workers", "1"
    )
    services.append(single)
    single.wait_ready()
    with single.client() as client:
        assert client.get("/no/such/page").status_code == 404
        assert client.post("/predict", json={"instances": [IRIS_ROW]}).status_code == 401
    text = scrape(single)
    assert "process_resident_memory_bytes" in text  # single-process: the default registry
    check_metrics(text)


@pytest.mark.slow
def test_dashboard_and_alerts_query_only_exported_metrics(served: Served) -> None:
    predict_over_fresh_connections(served, 2)
    exported = exported_sample_names(scrape(served.service))
    assert exported >= CONTRACT_METRICS, CONTRACT_METRICS - exported

    monitoring = served.baked.path / "monitoring"
    alerts = yaml.safe_load((monitoring / "alerts.yml").read_text())
    # The demo model is a classifier: a regressor's value histogram is checked by the baked
    # project's own tests (tests/test_model_metrics.py), with a regressor.
    known = exported | SYNTHETIC | recorded_names(alerts) | {"model_predicted_value_bucket"}
    dashboard = json.loads((monitoring / "grafana/dashboards/service.json").read_text())
    used: set[str] = set()
    for title, expressions in dashboard_expressions(dashboard).items():
        for expr in expressions:
            names = metric_names(expr)
            assert names, f"panel {title!r}: no metric in {expr!r}"
            unknown = names - known
            assert not unknown, f"panel {title!r} queries {unknown}, which /metrics lacks"
            used |= names
    for variable in dashboard["templating"]["list"]:
        names = metric_names(variable["definition"]) - {"job"}
        assert names <= exported, f"variable {variable['name']!r} queries {names - exported}"
    # Every promised family is on the dashboard somewhere.
    assert used >= CONTRACT_METRICS, CONTRACT_METRICS - used

    for alert, expr in rule_expressions(alerts).items():
        unknown = metric_names(expr) - exported - SYNTHETIC - recorded_names(alerts)
        assert not unknown, f"alert {alert} queries {unknown}, which /metrics lacks"


@pytest.mark.slow
def test_one_json_log_line_per_request_and_no_uvicorn_access_line(served: Served) -> None:
    request_id = f"observability-{uuid.uuid4().hex}"
    with served.service.client() as client:
        response = client.get("/health/live", headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id

    deadline = time.monotonic() + DEADLINE_S
    while True:
        lines = [
            line
            for line in served.service.log.read_text(encoding="utf-8").splitlines()
            if request_id in line
        ]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(POLL_S)
    assert len(lines) == 1, f"expected one log line for the request, got {lines}"
    entry = json.loads(lines[0])
    assert entry["method"] == "GET"
    assert entry["route"] == "/health/live"
    assert entry["status"] == 200
    assert entry["duration_ms"] >= 0
    assert entry["request_id"] == request_id
    output = served.service.log.read_text(encoding="utf-8")
    assert "HTTP/1.1" not in output, "uvicorn's own access log is on as well"
    for line in output.splitlines():
        json.loads(line)  # every line the service writes is one JSON object


# --- slow: a real Prometheus server scrapes the service ---------------------------------------


@pytest.fixture
def prometheus_server(served: Served, tmp_path: Path) -> Iterator[str]:
    """Prometheus with the baked configuration, pointed at the test's service, scraping every
    second; stopped by PID when the test ends."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (Debian/Ubuntu: apt-get install prometheus)")
    monitoring = served.baked.path / "monitoring"
    config = yaml.safe_load((monitoring / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(monitoring / name) for name in config["rule_files"]]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{served.service.port}"]}]
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))

    port = free_port()
    log = tmp_path / "prometheus.log"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.returncode not in (0, -15):
            print(log.read_text()[-4000:])


def query(api: httpx.Client, promql: str) -> list[dict[str, Any]]:
    response = api.get("/api/v1/query", params={"query": promql})
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


@pytest.mark.slow
def test_prometheus_scrapes_the_service(served: Served, prometheus_server: str) -> None:
    predict_over_fresh_connections(served, 5)
    job = served.baked.slug.replace("_", "-")
    selector = f'http_requests_total{{job="{job}", route="/predict", status="200"}}'
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=prometheus_server, timeout=10) as api:
        while True:
            try:
                up = query(api, "up")
                samples = query(api, selector)
            except httpx.HTTPError:
                up, samples = [], []
            # Both, from one query round: right after the first scrape one can lag the other.
            if (samples and up) or time.monotonic() > deadline:
                break
            time.sleep(POLL_S * 5)
        assert samples, f"Prometheus has not scraped {selector} within 60 s; up={up}"
        assert [float(s["value"][1]) for s in up] == [1.0], up
        scraped = sum(float(sample["value"][1]) for sample in samples)
        served_now = sample_value(
            scrape(served.service), "http_requests_total", route="/predict", status="200"
        )
        assert 5 <= scraped <= served_now

        # The drift rules run on the real series: a finite PSI per feature of the demo model.
        psi_selector = f'feature:model_input_psi:1h{{job="{job}"}}'
        deadline = time.monotonic() + 60
        while True:
            predict_over_fresh_connections(served, 2)
            psi = query(api, psi_selector)
            finite = {s["metric"]["feature"]: float(s["value"][1]) for s in psi}
            finite = {k: v for k, v in finite.items() if v == v}  # NaN until inputs increase
            if len(finite) == 4 or time.monotonic() > deadline:
                break
            time.sleep(POLL_S * 5)
        features = {"sepal_length", "sepal_width", "petal_length", "petal_width"}
        assert set(finite) == features, f"no PSI recorded within 60 s: {psi}"
        # Only setosa-like rows were sent: far from the training data's spread of species.
        assert all(value > 0.25 for value in finite.values()), finite

        rules = api.get("/api/v1/rules").json()["data"]["groups"]
        loaded = {rule["name"] for group in rules for rule in group["rules"]}
        assert loaded == {
            "ServiceDown",
            "HighErrorRate",
            "HighLatencyP99",
            "feature_bucket:model_input_share:ratio_1h",
            "feature:model_input_psi:1h",
            "InputDrift",
            "ModelVersionsRefused",
        }
        for rule in (r for group in rules for r in group["rules"]):
            assert rule["health"] in ("ok", "unknown"), rule
