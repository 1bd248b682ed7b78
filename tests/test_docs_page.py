"""The baked project's documentation: its README, and /docs and /redoc in a real browser.

Every setting in .env.example has a row in the README's settings table, in every variant (fast).

For the pages (slow), a 200 for the HTML proves little: Swagger UI and ReDoc build the page in
the browser from /openapi.json and their JavaScript bundles, which the service serves from the
package itself. So a real browser loads each page over loopback (no other network exists here),
and the test reads the DOM it rendered and keeps a screenshot beside it for a human to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Baked, Service, make_venv, shared_bake, start_service
from tests.variants import SUPPORTED, variant_id

CHROMIUM = next(
    (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None
)
SECRET = "docs-page-test-secret-0123456789abcdef"
# An empty 1280x2000 page screenshots to about 12 kB; the rendered pages are 100 kB or more.
BLANK_PNG_BYTES = 40_000
# A page that loads a script or stylesheet from another host would not work offline.
EXTERNAL_ASSET = re.compile(r"""(?:src|href)=["']?(?:https?:)?//""", re.IGNORECASE)


def chromium(url: str, out: Path, profile: Path, *mode: str) -> str:
    """Run headless Chromium on ``url`` with ``mode`` flags; return its standard output.

    Chromium starts helper processes, so it gets its own process group, and the whole group is
    killed by PID if it overruns its deadline.
    """
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--window-size=1280,2000",
        *mode,
        url,
    ]
    log = out.with_suffix(".chromium.log")
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True
        )
        try:
            stdout, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"chromium did not finish {url} within 120 s\n{log.read_text()[-3000:]}")
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    assert process.returncode == 0, f"chromium exited {process.returncode} on {url}"
    return stdout


@pytest.fixture
def docs_service(bake: Callable[..., Baked], services: list[Service]) -> Service:
    """The default variant, installed and serving on a free loopback port."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    baked = bake()
    python = make_venv(baked.path, f"[{baked.name}]")
    env = {
        "APP_SECRET_KEY": SECRET,
        "APP_LOG_LEVEL": "warning",
        "APP_DATABASE_URL": f"sqlite:///{baked.path / 'data' / 'docs.db'}",
    }
    service = start_service(python, baked.path, env, f"[{baked.name}] serve")
    services.append(service)
    service.wait_ready()
    return service


# page -> (a mark that only the rendered page has, one per operation)
PAGES = {
    "docs": r'class="opblock-summary-path" data-path="(/[^"]*)"',
    "redoc": r'data-section-id="operation/([^"]+)"',
}


SETTING = re.compile(r"^(APP_[A-Z0-9_]+)=", re.MULTILINE)
TABLE_ROW = re.compile(r"^\| `(APP_[A-Z0-9_]+)` \|", re.MULTILINE)


@pytest.mark.parametrize("context", SUPPORTED, ids=[variant_id(v) for v in SUPPORTED])
def test_readme_documents_every_setting(context: dict[str, object], run_dir: Path) -> None:
    baked = shared_bake(run_dir, **context)
    listed = SETTING.findall((baked.path / ".env.example").read_text(encoding="utf-8"))
    documented = TABLE_ROW.findall((baked.path / "README.md").read_text(encoding="utf-8"))
    assert listed, f"[{baked.name}] no APP_ settings found in .env.example"
    assert documented == listed, (
        f"[{baked.name}] README settings table {documented} != .env.example {listed}"
    )


@pytest.mark.slow
def test_docs_pages_render_offline(docs_service: Service, tmp_path: Path) -> None:
    operations = _operations(docs_service)
    assert any(path == "/predict" for path, _ in operations), operations
    with docs_service.client() as client:
        for page in PAGES:
            html = client.get(f"/{page}")
            assert html.status_code == 200, f"/{page}: {html.status_code}"
            external = EXTERNAL_ASSET.search(html.text)
            assert external is None, f"/{page} loads from another host: {external.group()!r}"

    for page, operation in PAGES.items():
        url = f"{docs_service.url}/{page}"
        png = tmp_path / f"{page}.png"
        dom = chromium(url, png, tmp_path / f"profile-{page}", "--dump-dom")
        chromium(url, png, tmp_path / f"profile-{page}-shot", f"--screenshot={png}")

        rendered = re.findall(operation, dom)
        assert len(rendered) == len(operations), (
            f"/{page}: rendered {len(rendered)} operations {rendered}, "
            f"/openapi.json has {len(operations)}: {operations}"
        )
        assert "/predict" in dom, f"/{page}: '/predict' is not in the rendered page"
        assert png.stat().st_size > BLANK_PNG_BYTES, (
            f"/{page}: screenshot {png} is {png.stat().st_size} bytes, as small as a blank page"
        )


METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _operations(service: Service) -> list[tuple[str, str]]:
    """Every (path, method) that /openapi.json documents."""
    with service.client() as client:
        schema = client.get("/openapi.json").json()
    return [
        (path, method)
        for path, item in schema["paths"].items()
        for method in item
        if method in METHODS
    ]
