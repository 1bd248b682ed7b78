"""Authentication of a served project, over real HTTP, with credentials made by its own CLI.

The jwt and api_key variants are baked and installed once each, their users and keys created
with ``python -m <slug> users|keys ...`` exactly as the baked README says, and every kind of bad
credential is sent to a running ``serve``. Each answer must be the contract's status (401 with
``WWW-Authenticate``, or 403) with a JSON body: never a 500, never a 200.

Bad tokens are forged here with ``hmac`` rather than PyJWT, so that the template's test suite
does not depend on the library under test. Each forgery differs from an accepted control token
in one thing only, and the control is checked first, so a 401 cannot come from a broken forger.

The PostgreSQL test runs the jwt variant against a real server from the Debian ``postgresql``
package, which the test initialises and starts on a free loopback port and stops by PID.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import hmac
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Baked, Service, baked_with, free_port, make_venv, run, start_service

pytestmark = pytest.mark.slow

SECRET = "auth-boot-secret-key-0123456789abcdef"
PASSWORD = "auth boot password"
PREDICT = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


@dataclass
class Project:
    """A baked, installed project and the settings its commands and service run with."""

    baked: Baked
    python: Path
    env: dict[str, str]

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """Run ``python -m <slug> ARGS`` with the project's settings; return its output."""
        return run(
            [str(self.python), "-m", self.baked.slug, *args],
            cwd=self.baked.path,
            what=f"[{self.baked.name}] {' '.join(args[:2])}",
            env={**os.environ, **self.env},
            input=stdin,
        )

    def sqlite_bytes(self) -> bytes:
        """Every byte of the SQLite database, including its write-ahead log."""
        files = sorted((self.baked.path / "data").glob("auth.db*"))
        return b"".join(path.read_bytes() for path in files)


@dataclass
class Served:
    project: Project
    service: Service
    keys: dict[str, str]


def serve(
    cookies_session: Any, context: dict[str, Any], setup: Callable[[Project], dict[str, str]]
) -> Iterator[Served]:
    """Bake and install ``context``, let ``setup`` create credentials, then serve until done."""
    baked = baked_with(cookies_session, **context)
    env = {
        "APP_SECRET_KEY": SECRET,
        "APP_LOG_LEVEL": "info",  # access logs on, to check that no credential reaches them
        "APP_DATABASE_URL": f"sqlite:///{baked.path / 'data' / 'auth.db'}",
        # Many failed logins are sent on purpose; the limiter has its own unit test.
        "APP_LOGIN_RATE_LIMIT": "1000/minute",
        # Without the user and key caches, so that disabling a user or revoking a key shows
        # on the next request.
        "APP_USER_CACHE_TTL_S": "0",
        "APP_KEY_CACHE_TTL_S": "0",
    }
    project = Project(baked, make_venv(baked.path, f"[{baked.name}]"), env)
    keys = setup(project)
    service = start_service(project.python, baked.path, env, f"[{baked.name}] serve")
    try:
        service.wait_ready()
        yield Served(project, service, keys)
    finally:
        service.stop()


def assert_401(response: httpx.Response, scheme: str, what: str) -> None:
    assert response.status_code == 401, f"{what}: {response.status_code} {response.text[:300]}"
    assert response.headers.get("www-authenticate", "").startswith(scheme), (
        f"{what}: WWW-Authenticate is {response.headers.get('www-authenticate')!r}"
    )
    assert response.json()["detail"], what


# --- auth=jwt ---------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(key: str = SECRET, alg: str = "HS256", drop: tuple[str, ...] = (), **claims: Any) -> str:
    """A JWT signed with ``key`` and ``alg`` (``none``: unsigned), with the service's claims."""
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": "alice",
        "scope": "predict",
        "iss": "iris-classifier",
        "aud": "iris-classifier",
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    for name in drop:
        del body[name]
    header = {"alg": alg, "typ": "JWT"}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(body).encode())}"
    if alg == "none":
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384}[alg]
    signature = hmac.new(key.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def tampered() -> str:
    head, body, signature = forge().split(".")
    return f"{head}.{body}.{('A' if signature[0] != 'A' else 'B') + signature[1:]}"


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "alg none": lambda: forge(alg="none"),
    "wrong key": lambda: forge(key="another-secret-key-0123456789abcdef"),
    "tampered signature": tampered,
    "expired": lambda: forge(exp=int(time.time()) - 300, iat=int(time.time()) - 1200),
    "no exp": lambda: forge(drop=("exp",)),
    "wrong issuer": lambda: forge(iss="someone-else"),
    "wrong audience": lambda: forge(aud="another-service"),
    "HS384 when HS256 is configured": lambda: forge(alg="HS384"),
    "unknown user": lambda: forge(sub="mallory"),
    "oversized": lambda: forge(padding="x" * 8000),
    "garbage": lambda: "not-a-token",
}

BAD_AUTHORIZATION: dict[str, bytes | None] = {
    "missing header": None,
    "basic scheme": b"Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()),
    "bearer without token": b"Bearer",
    "non-utf-8 bytes": b"Bearer \xff\xfe\x80\x81",
    "64 kB header": b"Bearer " + b"a.b." * 16_000,
}


@pytest.fixture(scope="module")
def jwt_served(cookies_session: Any) -> Iterator[Served]:
    def setup(project: Project) -> dict[str, str]:
        # As the baked README says: echo PASSWORD | python -m <slug> users add NAME --scope ...
        for name, scope in (("alice", "predict"), ("carol", "predict"), ("viewer", "admin")):
            out = project.cli("users", "add", name, "--scope", scope, stdin=PASSWORD + "\n")
            assert out.strip() == f"added user {name}", out
        return {}

    yield from serve(cookies_session, {}, setup)


def login(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/token", data={"username": name, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def table(output: str) -> dict[str, list[str]]:
    """The tab-separated lines of a ``list`` command, by their first column."""
    return {line.split("\t")[0]: line.split("\t") for line in output.splitlines()}


@pytest.mark.xdist_group("auth_boot_jwt")
class TestJwt:
    def test_control_tokens_are_accepted(self, jwt_served: Served) -> None:
        """The issued token and an unmodified forgery work, so the 401s below mean something."""
        with jwt_served.service.client() as client:
            issued = login(client, "alice")
            assert issued.status_code == 200, issued.text
            assert issued.json()["token_type"] == "bearer"
            for token in (issued.json()["access_token"], forge()):
                response = client.post("/predict", json=PREDICT, headers=bearer(token))
                assert response.status_code == 200, response.text

    @pytest.mark.parametrize("make_token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
    def test_bad_tokens_are_401(self, jwt_served: Served, make_token: Callable[[], str]) -> None:
        with jwt_served.service.client() as client:
            response = client.post("/predict", json=PREDICT, headers=bearer(make_token()))
        assert_401(response, "Bearer", "bad token")

    @pytest.mark.parametrize("value", BAD_AUTHORIZATION.values(), ids=BAD_AUTHORIZATION.keys())
    def test_bad_authorization_headers_are_401(
        self, jwt_served: Served, value: bytes | None
    ) -> None:
        headers = {} if value is None else {b"Authorization": value}
        with jwt_served.service.client() as client:
            response = client.post("/predict", json=PREDICT, headers=headers)
        assert_401(response, "Bearer", "bad Authorization header")

    @pytest.mark.parametrize(
        ("username", "password"),
        [
            ("alice", "wrong password"),
            ("nobody", PASSWORD),
            ("al\x00ice", PASSWORD),
            ("a" * 10_000, PASSWORD),
            ("alice' OR '1'='1", PASSWORD),
            ("ålice\u202e", PASSWORD),
        ],
        ids=["wrong password", "unknown user", "nul byte", "10k name", "sql quote", "unicode"],
    )
    def test_bad_logins_are_one_401(self, jwt_served: Served, username: str, password: str) -> None:
        with jwt_served.service.client() as client:
            response = login(client, username, password)
        assert_401(response, "Bearer", "bad login")
        assert response.json() == {"detail": "Incorrect username or password"}

    def test_missing_scope_is_403(self, jwt_served: Served) -> None:
        with jwt_served.service.client() as client:
            token = login(client, "viewer")
            assert token.status_code == 200, token.text
            headers = bearer(token.json()["access_token"])
            response = client.post("/predict", json=PREDICT, headers=headers)
            me = client.get("/users/me", headers=headers)
        assert response.status_code == 403, response.text
        assert response.json()["detail"]
        assert me.json() == {"name": "viewer", "scopes": ["admin"]}

    def test_disabled_user_is_locked_out(self, jwt_served: Served) -> None:
        with jwt_served.service.client() as client:
            token = login(client, "carol")
            assert token.status_code == 200, token.text
            headers = bearer(token.json()["access_token"])
            assert client.post("/predict", json=PREDICT, headers=headers).status_code == 200

            out = jwt_served.project.cli("users", "disable", "carol")
            assert out.strip() == "disabled user carol"
            response = client.post("/predict", json=PREDICT, headers=headers)
            relogin = login(client, "carol")
        assert_401(response, "Bearer", "the token of a disabled user")
        assert_401(relogin, "Bearer", "login of a disabled user")
        assert relogin.json() == {"detail": "Incorrect username or password"}

    def test_users_list(self, jwt_served: Served) -> None:
        project = jwt_served.project
        project.cli(
            "users", "add", "lister", "--scope", "predict", "--scope", "admin", stdin=PASSWORD
        )
        project.cli("users", "add", "gone", stdin=PASSWORD)
        project.cli("users", "disable", "gone")
        output = project.cli("users", "list")
        users = table(output)
        assert users["lister"][1:3] == ["admin predict", "active"], output
        assert users["gone"][1:3] == ["predict", "disabled"], output
        assert PASSWORD not in output

    def test_no_password_or_token_at_rest_or_in_logs(self, jwt_served: Served) -> None:
        with jwt_served.service.client() as client:
            token = login(client, "alice").json()["access_token"]
            assert client.get("/users/me", headers=bearer(token)).status_code == 200
            # A token in the query string is not accepted, nor may it reach the logs.
            assert client.get(f"/users/me?access_token={token}").status_code == 401
        stored = jwt_served.project.sqlite_bytes()
        assert b"$argon2id$" in stored, "the user table is not where this test looks"
        assert PASSWORD.encode() not in stored
        logs = jwt_served.service.log.read_bytes()
        assert b"/users/me" in logs, f"no access log to check:\n{jwt_served.service.output()}"
        assert PASSWORD.encode() not in logs
        assert token.split(".")[2].encode() not in logs


# --- auth=api_key -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_served(cookies_session: Any) -> Iterator[Served]:
    def setup(project: Project) -> dict[str, str]:
        # As the baked README says: KEY=$(python -m <slug> keys add NAME --scope predict)
        keys = {}
        for name, scope in (("client", "predict"), ("doomed", "predict"), ("ops", "admin")):
            keys[name] = project.cli("keys", "add", name, "--scope", scope).strip()
            assert keys[name].startswith("sk_") and "\n" not in keys[name], keys[name]
        return keys

    yield from serve(cookies_session, {"auth": "api_key"}, setup)


@pytest.mark.xdist_group("auth_boot_api_key")
class TestApiKey:
    def test_control_key_is_accepted(self, key_served: Served) -> None:
        headers = {"X-API-Key": key_served.keys["client"]}
        with key_served.service.client() as client:
            response = client.post("/predict", json=PREDICT, headers=headers)
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize(
        "where", ["missing", "empty", "garbage", "bearer", "non-utf-8", "oversized", "query string"]
    )
    def test_bad_keys_are_401(self, key_served: Served, where: str) -> None:
        key = key_served.keys["client"]
        url = "/predict"
        headers: dict[bytes, bytes] = {
            "missing": {},
            "empty": {b"X-API-Key": b""},
            "garbage": {b"X-API-Key": b"sk_" + b"x" * 43},
            "bearer": {b"Authorization": f"Bearer {key}".encode()},
            "non-utf-8": {b"X-API-Key": b"sk_\xff\xfe\x80"},
            "oversized": {b"X-API-Key": key.encode() * 200},
            "query string": {},
        }[where]
        if where == "query string":
            url = f"/predict?api_key={key}&X-API-Key={key}&key={key}"
        with key_served.service.client() as client:
            response = client.post(url, json=PREDICT, headers=headers)
        assert_401(response, "APIKey", where)

    def test_revoked_key_is_401(self, key_served: Served) -> None:
        headers = {"X-API-Key": key_served.keys["doomed"]}
        with key_served.service.client() as client:
            assert client.post("/predict", json=PREDICT, headers=headers).status_code == 200
            out = key_served.project.cli("keys", "revoke", "doomed")
            assert out.strip() == "revoked key doomed"
            response = client.post("/predict", json=PREDICT, headers=headers)
        assert_401(response, "APIKey", "revoked key")

    def test_missing_scope_is_403(self, key_served: Served) -> None:
        headers = {"X-API-Key": key_served.keys["ops"]}
        with key_served.service.client() as client:
            response = client.post("/predict", json=PREDICT, headers=headers)
        assert response.status_code == 403, response.text
        assert response.json()["detail"]

    def test_keys_list_shows_no_key(self, key_served: Served) -> None:
        output = key_served.project.cli("keys", "list")
        keys = table(output)
        client_key = key_served.keys["client"]
        assert keys["client"] == ["client", client_key[:7] + "...", "predict", "active"], output
        assert keys["ops"][2] == "admin", output
        for key in key_served.keys.values():
            assert key[3:] not in output

    def test_no_key_at_rest_or_in_logs(self, key_served: Served) -> None:
        key = key_served.keys["client"]
        with key_served.service.client() as client:
            assert client.post(f"/predict?api_key={key}", json=PREDICT).status_code == 401
        stored = key_served.project.sqlite_bytes()
        assert hashlib.sha256(key.encode()).hexdigest().encode() in stored, "no digest found"
        logs = key_served.service.log.read_bytes()
        assert b"/predict" in logs, f"no access log to check:\n{key_served.service.output()}"
        for secret in key_served.keys.values():
            assert secret[3:].encode() not in stored
            assert secret[3:].encode() not in logs


# --- auth=jwt on PostgreSQL -------------------------------------------------------------------


def postgres_bindir() -> Path | None:
    """The server binaries of the newest PostgreSQL that Debian's package installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    return Path(on_path).parent if on_path else None


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


@dataclass
class Postgres:
    """A throwaway PostgreSQL server on a loopback port, with database ``app`` of role ``app``."""

    bindir: Path
    process: subprocess.Popen[bytes]
    port: int
    password: str
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql://app:{self.password}@127.0.0.1:{self.port}/app"

    def psql(self, sql: str) -> str:
        return run(
            [str(self.bindir / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", self.url, "-c", sql],
            cwd=self.log.parent,
            what="psql",
        )

    def stop(self) -> None:
        """Fast shutdown by PID (SIGINT); SIGKILL if it has not exited within 30 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(
            "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/postgres); "
            "install the Debian package `postgresql`"
        )
    # The server refuses to run as root; as root, run it as the package's `postgres` user.
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="auth-boot-pg-"))
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            pytest.skip("running as root, and there is no `postgres` user to run the server as")
        as_user = [
            "setpriv",
            f"--reuid={account.pw_uid}",
            f"--regid={account.pw_gid}",
            "--init-groups",
        ]
        os.chown(base, account.pw_uid, account.pw_gid)
    superuser_password = secrets.token_hex(16)
    pwfile = base / "pwfile"
    pwfile.write_text(superuser_password + "\n")
    if as_user:
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    data = base / "data"
    env = {**os.environ, "HOME": str(base), "LC_ALL": "C.UTF-8"}
    run(
        [
            *as_user,
            str(bindir / "initdb"),
            "--pgdata",
            str(data),
            "--username=postgres",
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=peer",
            "--encoding=UTF8",
            "--no-sync",
        ],
        cwd=base,
        what="initdb",
        env=env,
    )
    port = free_port()
    log = base / "postgres.log"
    process = subprocess.Popen(
        [
            *as_user,  # setpriv execs the server, so this PID is the postmaster's
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={base}",
            "-c",
            "fsync=off",
        ],
        cwd=base,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Postgres(bindir, process, port, secrets.token_hex(16), log)
    try:
        admin = {**env, "PGPASSWORD": superuser_password}
        wait_for_postgres(server, admin)
        superuser = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        run(
            [
                str(bindir / "psql"),
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                superuser,
                "-c",
                f"CREATE ROLE app LOGIN PASSWORD '{server.password}'",
                "-c",
                "CREATE DATABASE app OWNER app",
            ],
            cwd=base,
            what="create role and database",
            env=admin,
        )
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def wait_for_postgres(server: Postgres, env: dict[str, str], deadline_s: float = 60) -> None:
    """Poll pg_isready until the server accepts connections."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        if server.process.poll() is not None:
            pytest.fail(f"postgres exited {server.process.returncode}:\n{server.log.read_text()}")
        ready = subprocess.run(
            [str(server.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(server.port)],
            env=env,
            check=False,
        )
        if ready.returncode == 0:
            return
        time.sleep(0.1)  # poll interval; the deadline decides
    pytest.fail(f"postgres not ready within {deadline_s}s:\n{server.log.read_text()}")


@pytest.mark.xdist_group("auth_boot_postgres")
def test_jwt_on_postgresql(
    cookies_session: Any, postgres: Postgres, services: list[Service]
) -> None:
    baked = baked_with(cookies_session)
    python = make_venv(baked.path, f"[{baked.name}] postgres")
    run(
        [
            sys.executable,
            "-m",
            "uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "-e",
            ".[dev,postgres]",
        ],
        cwd=baked.path,
        what="install the postgres extra",
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    env = {
        "APP_SECRET_KEY": SECRET,
        "APP_LOG_LEVEL": "warning",
        "APP_DATABASE_URL": postgres.url,
        "APP_USER_CACHE_TTL_S": "0",  # so that disabling the user takes effect at once
    }
    project = Project(baked, python, env)
    assert project.cli("users", "add", "alice", stdin=PASSWORD + "\n").strip() == "added user alice"
    assert table(project.cli("users", "list"))["alice"][1:3] == ["predict", "active"]

    service = start_service(python, baked.path, env, f"[{baked.name}] serve on postgres")
    services.append(service)
    service.wait_ready()
    with service.client() as client:
        token = login(client, "alice")
        assert token.status_code == 200, token.text
        headers = bearer(token.json()["access_token"])
        response = client.post("/predict", json=PREDICT, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == ["setosa"]
        # PostgreSQL refuses NUL in text; the service must not pass it on and fail with a 500.
        for name in ("al\x00ice", "a" * 10_000):
            assert_401(login(client, name), "Bearer", f"login as {name[:8]!r}")
        assert_401(login(client, "alice", "wrong password"), "Bearer", "wrong password")

        project.cli("users", "disable", "alice")
        assert_401(client.post("/predict", json=PREDICT, headers=headers), "Bearer", "disabled")

    stored = postgres.psql("SELECT name, password_hash, disabled FROM users")
    name, password_hash, disabled = stored.strip().split("|")
    assert (name, disabled) == ("alice", "t")
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored
