"""Where the model's bytes come from: a local file, S3, HTTP(S) or an MLflow registry alias.

``APP_MODEL_URI`` names the artifact; its metadata file and reference statistics are read from
beside it. A download lands in a cache folder named by the artifact's SHA-256, written through
a temporary file and ``os.replace``, so a reader never sees half a file. Each source also gives
a cheap ``token`` that changes when a new version is published there, for polling.

S3 and HTTP go through ``obstore``: one small wheel with no Python dependencies, maintained
(the Rust ``object_store`` of Apache Arrow), that reads the standard ``AWS_*`` variables
(``AWS_ENDPOINT_URL`` and the web-identity token of a Kubernetes service account included) and
retries with backoff. boto3 would add about 100 MB of botocore for two calls. The MLflow
registry's REST API needs only the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from . import signature
from .base import ModelLoadError
from .demo import DEMO_SIDECAR
from .loader import SUFFIX, demo_bytes
from .signature import Sidecar

if TYPE_CHECKING:
    from ..settings import Settings

# How long a store that does not answer is retried, with backoff, before the check fails.
RETRY_S = 30.0
REFERENCE_SUFFIX = ".reference.json"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
MLFLOW_TIMEOUT_S = 10.0


class SourceError(ModelLoadError):
    """The source did not give the bytes: unreachable, no such object, credentials refused.
    Nothing is known about the model; while serving, such a check ``failed``."""


@dataclass(frozen=True)
class Fetched:
    """An artifact's bytes, checked, with what lies beside it."""

    data: bytes
    sha256: str
    sidecar: Sidecar
    # A local copy of the artifact (the file itself, or the cached download); None: the demo.
    artifact: Path | None
    where: str


class Source(Protocol):
    """Where the artifact is published."""

    uri: str

    def token(self) -> str:
        """What changes when a new version is published (cheap: no download)."""
        ...

    def fetch(self) -> Fetched:
        """The artifact now there; ``ModelLoadError`` for bytes that are wrong, ``SourceError``
        when they cannot be had."""
        ...


def open_source(settings: Settings) -> Source:
    """The source that the settings name; a URI this service cannot read is refused here."""
    uri = settings.model_uri or (str(settings.model_path) if settings.model_path else "")
    expected = settings.model_sha256.lower()
    cache = settings.model_cache_dir or Path(tempfile.gettempdir()) / f"{__package__}-cache"
    cache = cache.expanduser()
    if not uri:
        return DemoSource()
    scheme = urllib.parse.urlsplit(uri).scheme
    if uri.startswith("models:/"):
        return AliasSource(uri, expected, cache)
    if scheme in ("", "file") or len(scheme) == 1:  # a path (C:\... too)
        path = Path(urllib.parse.urlsplit(uri).path if scheme == "file" else uri)
        source = FolderSource(uri, LocalFolder(path.parent), path.name, expected, None)
        source.setting = "APP_MODEL_URI" if settings.model_uri else "APP_MODEL_PATH"
        return source
    if scheme in ("s3", "http", "https"):
        folder, name = object_folder(uri)
        return FolderSource(uri, folder, name, expected, cache)
    raise ModelLoadError(
        f"APP_MODEL_URI {uri!r}: unknown scheme {scheme!r}; use a path, s3://, https:// "
        "or models:/<name>@<alias>"
    )


class DemoSource:
    """The demo model, built in: it never changes."""

    uri = "demo"

    def token(self) -> str:
        return "demo"

    def fetch(self) -> Fetched:
        data = demo_bytes()
        digest = hashlib.sha256(data).hexdigest()
        return Fetched(data, digest, DEMO_SIDECAR, None, "the demo model")


# --- folders: where an artifact and its sidecars lie -----------------------------------------


@dataclass(frozen=True)
class Blob:
    data: bytes
    size: int | None = None  # as the store states it
    md5: str | None = None  # an S3 single-part upload's ETag


class Folder(Protocol):
    where: str

    def get(self, name: str) -> Blob | None:
        """The object's bytes; None if there is no such object."""
        ...

    def tag(self, name: str) -> str:
        """What identifies the object's current contents ("" if it is missing)."""
        ...

    def names(self) -> list[str]:
        """The objects in this folder and one level below it."""
        ...


class LocalFolder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def get(self, name: str) -> Blob | None:
        try:
            return Blob((self.path / name).read_bytes())
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceError(f"cannot read {self.path / name}: {exc.strerror or exc}") from exc

    def tag(self, name: str) -> str:
        try:
            stat = (self.path / name).stat()
        except OSError:
            return ""
        return f"{stat.st_size}:{stat.st_mtime_ns}"

    def names(self) -> list[str]:
        if not self.path.is_dir():
            raise SourceError(f"no folder {self.path}")
        found = [*self.path.glob("*"), *self.path.glob("*/*")]
        return sorted(str(p.relative_to(self.path)) for p in found if p.is_file())


def _retry_config() -> Any:
    """obstore's own retries: with backoff, for at most ``RETRY_S``."""
    return {
        "max_retries": 10,
        "retry_timeout": timedelta(seconds=RETRY_S),
        "backoff": {
            "init_backoff": timedelta(milliseconds=200),
            "max_backoff": timedelta(seconds=5),
            "base": 2.0,
        },
    }


def object_folder(uri: str) -> tuple[ObjectFolder, str]:
    """The folder of an s3:// or http(s):// URI, and the artifact's name in it."""
    from obstore.store import HTTPStore, S3Store

    parts = urllib.parse.urlsplit(uri)
    path = PurePosixPath(parts.path)
    if not path.name or path.name == "/":
        raise ModelLoadError(f"APP_MODEL_URI {uri!r} names no file")
    store: Any
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ModelLoadError(f"APP_MODEL_URI {uri!r} names no bucket")
        # The bucket's region, endpoint and credentials come from the AWS_* variables.
        plain = os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://")
        store = S3Store(
            parts.netloc, retry_config=_retry_config(), client_options={"allow_http": plain}
        )
        prefix = str(path.parent).lstrip("/")
    else:
        base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, str(path.parent), "", ""))
        store = HTTPStore.from_url(
            base.rstrip("/"),
            retry_config=_retry_config(),
            client_options={"allow_http": parts.scheme == "http"},
        )
        prefix = ""
    folder_uri = uri[: uri.rindex(path.name)]
    return ObjectFolder(store, prefix, folder_uri, s3=parts.scheme == "s3"), path.name


class ObjectFolder:
    """A "folder" of an object store: a key prefix in S3, a base URL over HTTP."""

    def __init__(self, store: Any, prefix: str, where: str, *, s3: bool) -> None:
        self.store = store
        self.prefix = prefix.strip("/")
        self.where = where
        self.s3 = s3

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def get(self, name: str) -> Blob | None:
        import obstore

        try:
            result = obstore.get(self.store, self._key(name))
            data = bytes(result.bytes())
        except Exception as exc:
            if _missing(exc):
                return None
            raise SourceError(f"cannot read {self.where}{name}: {_one_line(exc)}") from exc
        meta = result.meta
        etag = (meta.get("e_tag") or "").strip('"')
        single_part = self.s3 and len(etag) == 32 and "-" not in etag
        return Blob(data, meta.get("size"), etag if single_part else None)

    def tag(self, name: str) -> str:
        import obstore

        try:
            meta = obstore.head(self.store, self._key(name))
        except Exception as exc:
            if _missing(exc):
                return ""
            raise SourceError(f"cannot reach {self.where}{name}: {_one_line(exc)}") from exc
        found = meta.get("version") or meta.get("e_tag") or str(meta.get("last_modified"))
        return f"{found}:{meta.get('size')}"

    def names(self) -> list[str]:
        import obstore

        if not self.s3:
            raise SourceError(f"cannot list {self.where} over HTTP; name the file itself")
        prefix = f"{self.prefix}/" if self.prefix else ""
        try:
            found = obstore.list(self.store, prefix or None).collect()
        except Exception as exc:
            raise SourceError(f"cannot list {self.where}: {_one_line(exc)}") from exc
        names = [str(meta["path"])[len(prefix) :] for meta in found]
        return sorted(name for name in names if name.count("/") <= 1)


def _missing(exc: Exception) -> bool:
    """obstore's NotFoundError is a FileNotFoundError."""
    return isinstance(exc, FileNotFoundError) or type(exc).__name__ == "NotFoundError"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --- a file in a folder ----------------------------------------------------------------------


class FolderSource:
    """An artifact by name in a folder, downloaded to ``cache`` unless the folder is local."""

    def __init__(
        self, uri: str, folder: Folder, name: str, expected: str, cache: Path | None
    ) -> None:
        self.uri = uri
        self.folder = folder
        self.name = name
        self.expected = expected
        self.cache = cache
        self.setting = "APP_MODEL_URI"  # the setting that names it, for messages

    def token(self) -> str:
        """The artifact's alone: publishing writes the metadata file first, the artifact last,
        so a change seen here finds both in place."""
        return self.folder.tag(self.name)

    def fetch(self) -> Fetched:
        where = f"{self.setting}={self.uri}"
        return fetch_from(self.folder, self.name, self.expected, self.cache, where)


def fetch_from(folder: Folder, name: str, expected: str, cache: Path | None, uri: str) -> Fetched:
    """The artifact ``name`` in ``folder`` and its sidecars, checked, cached when remote;
    ``uri`` as configured (``APP_MODEL_URI=...``), for messages."""
    where = f"{folder.where.rstrip('/')}/{name}" if folder.where else name
    if name.endswith(PICKLE_SUFFIXES):
        raise ModelLoadError(f"{where} is a pickle, which can run any code when loaded: refused")
    blob = folder.get(name)
    if blob is None:
        raise SourceError(f"no model at {where} (check {uri})")
    data = blob.data
    if blob.size is not None and blob.size != len(data):
        raise ModelLoadError(f"{where}: {len(data)} bytes arrived of {blob.size}: truncated")
    if blob.md5 is not None and hashlib.md5(data, usedforsecurity=False).hexdigest() != blob.md5:
        raise ModelLoadError(f"{where}: the bytes do not match the store's checksum (ETag)")
    digest = hashlib.sha256(data).hexdigest()
    if expected and digest != expected:
        raise ModelLoadError(
            f"{where}: SHA-256 is {digest}, APP_MODEL_SHA256 says {expected}: refused"
        )
    stem = PurePosixPath(name).stem
    sidecars = (f"{stem}{signature.SIDECAR_SUFFIX}", signature.SIDECAR_FALLBACK)
    if cache is None:  # a local folder: the file itself, with its sidecars beside it
        artifact = Path(folder.where) / name
    else:
        directory = cache / digest
        artifact = directory / PurePosixPath(name).name
        if not artifact.is_file():
            write_atomically(artifact, data)
        for side in (*sidecars, f"{stem}{REFERENCE_SUFFIX}"):
            found = folder.get(side)
            target = directory / PurePosixPath(side).name
            if found is not None:
                write_atomically(target, found.data)
            else:
                target.unlink(missing_ok=True)
    return Fetched(data, digest, signature.read_sidecar(artifact), artifact, where)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that no reader ever sees a part of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- an MLflow registry alias ----------------------------------------------------------------


class AliasSource:
    """``models:/<name>@<alias>``: the version behind an alias in an MLflow model registry,
    through its REST API (the tracking server named by ``MLFLOW_TRACKING_URI``)."""

    def __init__(self, uri: str, expected: str, cache: Path) -> None:
        name, at, alias = uri.removeprefix("models:/").partition("@")
        if not name or not at or not alias or "/" in alias:
            raise ModelLoadError(f"APP_MODEL_URI {uri!r}: write it as models:/<name>@<alias>")
        server = os.environ.get("MLFLOW_TRACKING_URI", "")
        if not server.startswith(("http://", "https://")):
            raise ModelLoadError(
                f"APP_MODEL_URI {uri!r} needs MLFLOW_TRACKING_URI, the registry's http(s) URL"
            )
        self.uri = uri
        self.model = name
        self.alias = alias
        self.server = server.rstrip("/")
        self.expected = expected
        self.cache = cache

    def _version(self) -> dict[str, Any]:
        query = urllib.parse.urlencode({"name": self.model, "alias": self.alias})
        found = self._call(f"/api/2.0/mlflow/registered-models/alias?{query}")
        version: dict[str, Any] = json.loads(found)["model_version"]
        return version

    def token(self) -> str:
        return str(self._version()["version"])

    def fetch(self) -> Fetched:
        version = self._version()
        number = str(version["version"])
        query = urllib.parse.urlencode({"name": self.model, "version": number})
        try:
            found = self._call(f"/api/2.0/mlflow/model-versions/get-download-uri?{query}")
            location = str(json.loads(found)["artifact_uri"])
        except SourceError:
            location = str(version.get("source") or "")
        folder = self._folder(location)
        names = folder.names()
        artifacts = [name for name in names if name.endswith(SUFFIX)]
        if len(artifacts) != 1:
            pickles = [name for name in names if name.endswith(PICKLE_SUFFIXES)]
            what = (
                f"only a pickle ({', '.join(pickles)}), which can run any code when loaded and "
                "is refused"
                if pickles and not artifacts
                else f"{len(artifacts)} files ending {SUFFIX}"
            )
            raise ModelLoadError(
                f"{self.uri} (version {number}, {location}) must hold one {SUFFIX} file; "
                f"it has {what}"
            )
        where = f"APP_MODEL_URI={self.uri}"
        return fetch_from(folder, artifacts[0], self.expected, self.cache, where)

    def _folder(self, location: str) -> Folder:
        if location.startswith("mlflow-artifacts:"):
            path = urllib.parse.urlsplit(location).path.strip("/")
            return MlflowArtifacts(self, path)
        scheme = urllib.parse.urlsplit(location).scheme
        if scheme == "s3":
            folder, _ = object_folder(location.rstrip("/") + "/-")
            return folder
        if scheme in ("", "file"):
            return LocalFolder(Path(urllib.parse.urlsplit(location).path))
        raise SourceError(f"{self.uri}: cannot read the version's artifacts at {location}")

    def _call(self, path: str) -> bytes:
        """GET ``path`` on the tracking server, retrying what may pass for ``RETRY_S``."""
        request = urllib.request.Request(self.server + path)  # noqa: S310 (http(s) checked)
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        elif user:
            secret = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}".encode()
            request.add_header("Authorization", "Basic " + base64.b64encode(secret).decode())
        deadline = time.monotonic() + RETRY_S
        pause = 0.2
        while True:
            try:
                with urllib.request.urlopen(request, timeout=MLFLOW_TIMEOUT_S) as answer:  # noqa: S310
                    body: bytes = answer.read()
                    return body
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    raise SourceError(
                        f"{self.uri}: the registry has no {path.split('?')[0]} for it (404)"
                    ) from None
                if exc.code in (401, 403):
                    raise SourceError(
                        f"{self.uri}: the registry refused the credentials ({exc.code})"
                    ) from None
                if exc.code < 500 and exc.code != 429:
                    raise SourceError(f"{self.uri}: the registry answered {exc.code}") from None
                reason = f"the registry answered {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                reason = f"cannot reach the registry at {self.server}: {_one_line(exc)}"
            if time.monotonic() + pause > deadline:
                raise SourceError(f"{self.uri}: {reason} (retried for {RETRY_S:.0f} s)")
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


class MlflowArtifacts:
    """A version's artifact folder, served by the tracking server itself (proxied artifacts)."""

    def __init__(self, source: AliasSource, path: str) -> None:
        self.source = source
        self.path = path
        self.where = f"mlflow-artifacts:/{path}"

    def get(self, name: str) -> Blob | None:
        quoted = urllib.parse.quote(f"{self.path}/{name}")
        try:
            return Blob(self.source._call(f"/api/2.0/mlflow-artifacts/artifacts/{quoted}"))
        except SourceError as exc:
            if "(404)" in str(exc):
                return None
            raise

    def tag(self, name: str) -> str:
        return ""

    def names(self) -> list[str]:
        found = self._list(self.path)
        names = [f["name"] for f in found if not f["is_dir"]]
        for folder in (f["name"] for f in found if f["is_dir"]):
            names += [f"{folder}/{f['name']}" for f in self._list(f"{self.path}/{folder}")]
        return names

    def _list(self, path: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"path": path})
        files = json.loads(self.source._call(f"/api/2.0/mlflow-artifacts/artifacts?{query}"))
        return [
            {"name": PurePosixPath(f["path"]).name, "is_dir": bool(f.get("is_dir"))}
            for f in files.get("files", [])
        ]
