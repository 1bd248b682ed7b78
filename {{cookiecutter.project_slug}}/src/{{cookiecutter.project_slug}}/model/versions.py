"""Model versions while serving: new ones checked before they serve, old ones kept for rollback.

A candidate (new bytes at the source) is loaded beside the serving version, in a thread, warmed
up and checked: the same signature (unless ``APP_MODEL_ALLOW_SIGNATURE_CHANGE``), the metadata
file's examples answered as written, output that fits. Only then does ``state.runner`` point
to it, in one assignment on the event loop: a request keeps the runner it started on, so none
fails. ``APP_MODEL_KEEP_VERSIONS`` versions stay loaded; one pushed out drains its queue before
its threads stop. Checks run one at a time, from polling, SIGHUP or the admin routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio.to_thread

from .base import ModelLoadError, ModelMetadata, Predictor
from .loader import load_fetched
from .runner import InferenceRunner
from .signature import Signature
from .sizing import BatchPlan
from .source import Fetched, Source, SourceError

if TYPE_CHECKING:
    from ..settings import Settings
    from ..state import ServiceState

logger = logging.getLogger(__name__)

Result = Literal["loaded", "refused", "failed", "unchanged"]
# Warms a loaded model up and checks its answers (service.warm_up); raises ModelLoadError.
Prepare = Callable[[Predictor, Path | None], BatchPlan]
MakeRunner = Callable[[Predictor, BatchPlan], InferenceRunner]


class VersionEvents(Protocol):
    """Told of what happens to versions (metrics, say)."""

    def version_serving(self, current: ModelMetadata, previous: ModelMetadata | None) -> None: ...

    def reload_done(self, result: str, seconds: float | None) -> None: ...


@dataclass
class Version:
    name: str
    sha256: str
    source: str
    token: str
    loaded_at: float
    runner: InferenceRunner

    def describe(self, serving: bool) -> dict[str, Any]:
        return {
            "version": self.name,
            "sha256": self.sha256,
            "source": self.source,
            "loaded_at": self.loaded_at,
            "serving": serving,
        }


@dataclass(frozen=True)
class Check:
    """What the last check found."""

    at: float
    result: Result
    version: str | None = None
    reason: str | None = None

    def describe(self) -> dict[str, Any]:
        found: dict[str, Any] = {"at": self.at, "result": self.result}
        if self.version is not None:
            found["version"] = self.version
        if self.reason is not None:
            found["reason"] = self.reason
        return found


class NoEarlierVersion(Exception):
    """Rollback asked for with only one version loaded."""


class Candidate:
    """A version loaded and checked, not yet serving."""

    def __init__(self, fetched: Fetched, predictor: Predictor, batching: BatchPlan) -> None:
        self.fetched = fetched
        self.predictor = predictor
        self.batching = batching


def signature_key(signature: Signature) -> tuple[Any, ...]:
    """What callers rely on: features (names, types, categories), task, classes, outputs."""
    features = tuple((f.name, f.type, f.categories, f.nullable) for f in signature.features)
    outputs = tuple((o.name, o.classes) for o in signature.outputs)
    return (features, signature.task, signature.classes, outputs, signature.probabilities)


def signature_change(old: Signature, new: Signature) -> str | None:
    """Where the candidate's signature differs from the serving one, in a few words."""
    if signature_key(old) == signature_key(new):
        return None
    if old.names != new.names:
        return f"its features {new.names} differ from the serving {old.names}"
    if old.classes != new.classes:
        return f"its classes {list(new.classes)} differ from the serving {list(old.classes)}"
    return "its signature (feature types, categories, task or outputs) differs"


class ModelVersions:
    """The loaded versions of the model, the serving one, and the checks for new ones."""

    def __init__(
        self,
        state: ServiceState,
        settings: Settings,
        source: Source,
        prepare: Prepare,
        make_runner: MakeRunner,
    ) -> None:
        self.state = state
        self.settings = settings
        self.source = source
        self.prepare = prepare
        self.make_runner = make_runner
        self.kept: list[Version] = []  # in the order they were loaded
        self.current: Version | None = None
        self.last_check: Check | None = None
        self.serving_since = 0.0
        self.events: VersionEvents | None = None
        self._token = ""  # the source's token when last checked
        self._refused = False  # ... and whether that check refused what was there
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- start and stop ---

    async def start(self) -> Version:
        """Load what the source has now; ModelLoadError stops the service's start-up."""
        started = time.perf_counter()
        token = await anyio.to_thread.run_sync(self.source.token)
        candidate = await anyio.to_thread.run_sync(self._load)
        version = await self._serve(candidate, token, started)
        return version

    async def close(self) -> None:
        """Stop every runner, each after the requests it holds (at shutdown)."""
        checks = list(self._tasks)
        for task in checks:
            task.cancel()
        await asyncio.gather(*checks, return_exceptions=True)
        # Before the runners stop: from here on a late request gets 503, not 500.
        self.state.runner = None
        retiring = list(self._retiring)
        for task in retiring:
            task.cancel()  # stop waiting: the runner drains what it holds, then stops
        await asyncio.gather(*retiring, return_exceptions=True)
        self.current = None
        kept, self.kept = self.kept, []
        for version in kept:
            await version.runner.__aexit__(None, None, None)

    # --- looking up ---

    def find(self, name: str) -> Version | None:
        return next((v for v in self.kept if v.name == name), None)

    def describe(self) -> dict[str, Any]:
        current = self.current
        return {
            "current": None if current is None else current.name,
            "versions": [v.describe(v is current) for v in self.kept],
            "last_check": None if self.last_check is None else self.last_check.describe(),
            "poll_s": self.settings.model_poll_s,
        }

    # --- checks ---

    async def check(self, *, polling: bool = False) -> Check:
        """Look at the source now; load, check and serve what is new there.

        Polling skips what it already saw (a refused version stays refused until the source
        changes again, and a rollback is not undone); asked for (SIGHUP, the admin route), a
        refused version is checked again.
        """
        async with self._lock:
            started = time.perf_counter()
            try:
                token = await anyio.to_thread.run_sync(self.source.token)
            except ModelLoadError as exc:
                return self._record("failed", reason=str(exc))
            if token == self._token and (polling or not self._refused):
                return self._record("unchanged", version=self._current_name, quiet=polling)
            try:
                candidate = await anyio.to_thread.run_sync(self._load)
            except SourceError as exc:
                return self._record("failed", reason=str(exc))
            except ModelLoadError as exc:
                return self._refuse(token, None, str(exc))
            except Exception as exc:  # a model this service cannot describe or run
                return self._refuse(token, None, f"{type(exc).__name__}: {exc}")
            name = candidate.predictor.metadata.version
            same = self.find(name)
            if same is not None and same.sha256 != candidate.fetched.sha256:
                reason = f"version {name} is already loaded with other bytes; name a new version"
                return self._refuse(token, name, reason)
            if same is not None:  # the same bytes again (touched, or published back)
                self._token, self._refused = token, False
                if same is self.current:
                    return self._record("unchanged", version=name)
                self._swap(same)
                return self._record("loaded", version=name)
            current = self.current
            if current is not None and not self.settings.model_allow_signature_change:
                old = current.runner.predictor.metadata.signature
                change = signature_change(old, candidate.predictor.metadata.signature)
                if change is not None:
                    reason = f"{change} (set APP_MODEL_ALLOW_SIGNATURE_CHANGE=true to allow it)"
                    return self._refuse(token, name, reason)
            await self._serve(candidate, token, started)
            return self._record("loaded", version=name, seconds=time.perf_counter() - started)

    async def rollback(self) -> tuple[Version, Version]:
        """Serve the version loaded before the current one again, with no download."""
        async with self._lock:
            current = self.current
            earlier = [v for v in self.kept if v is not current]
            if current is None or not earlier:
                raise NoEarlierVersion("no earlier version is loaded")
            target = earlier[-1]
            self._swap(target)
            logger.info(
                "model rolled back", extra={"version": target.name, "previous": current.name}
            )
            return target, current

    def _load(self) -> Candidate:
        """In a thread: fetch the source's bytes, load them and warm the model up."""
        fetched = self.source.fetch()
        predictor = load_fetched(fetched, self.settings.model_name, self.settings)
        batching = self.prepare(predictor, fetched.artifact)
        return Candidate(fetched, predictor, batching)

    async def _serve(self, candidate: Candidate, token: str, started: float) -> Version:
        """Start the candidate's runner and make it the current version."""
        runner = self.make_runner(candidate.predictor, candidate.batching)
        await runner.__aenter__()
        meta = candidate.predictor.metadata
        version = Version(
            meta.version,
            candidate.fetched.sha256,
            self.source.uri,
            token,
            time.time(),
            runner,
        )
        self.kept.append(version)
        self._token, self._refused = token, False
        self._swap(version)
        seconds = time.perf_counter() - started
        logger.info(
            "model version loaded",
            extra={"version": version.name, "sha256": version.sha256, "seconds": round(seconds, 3)},
        )
        while len(self.kept) > self.settings.model_keep_versions:
            oldest = next(v for v in self.kept if v is not self.current)
            self.kept.remove(oldest)
            self._retire(oldest.runner)
        return version

    def _swap(self, version: Version) -> None:
        previous, self.current = self.current, version
        self.state.runner = version.runner
        self.serving_since = time.time()
        observer = self.state.observer
        if observer is not None:
            observer.model_loaded(version.runner.predictor)
            observer.batching_chosen(version.runner.batching)
        if self.events is not None:
            before = None if previous is None else previous.runner.predictor.metadata
            self.events.version_serving(version.runner.predictor.metadata, before)

    def _retire(self, runner: InferenceRunner) -> None:
        """Stop a runner pushed out of the kept versions once the requests that hold it are
        done: those queued or running, and any that took it just before the swap (for up to
        the inference timeout)."""

        async def retire() -> None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(self.settings.inference_timeout_s)
            await runner.__aexit__(None, None, None)

        task = asyncio.get_running_loop().create_task(retire())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    @property
    def _current_name(self) -> str | None:
        return None if self.current is None else self.current.name

    def _refuse(self, token: str, name: str | None, reason: str) -> Check:
        self._token, self._refused = token, True
        return self._record("refused", version=name, reason=reason)

    def _record(
        self,
        result: Result,
        *,
        version: str | None = None,
        reason: str | None = None,
        seconds: float | None = None,
        quiet: bool = False,
    ) -> Check:
        check = Check(time.time(), result, version, reason)
        if quiet and self.last_check is not None and self.last_check.result != "failed":
            return self.last_check  # polling found nothing new: keep what the last one found
        self.last_check = check
        if result == "refused":
            extra = {"reason": reason} | ({"version": version} if version else {})
            logger.warning("model version refused", extra=extra)
        elif result == "failed":
            logger.warning("model source failed", extra={"reason": reason})
        if self.events is not None and result != "unchanged":
            self.events.reload_done(result, seconds)
        return check

    # --- triggers ---

    async def poll(self) -> None:
        """Check the source every ``APP_MODEL_POLL_S`` seconds, until cancelled."""
        interval = self.settings.model_poll_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check(polling=True)
            except Exception:  # keep polling whatever one check ran into
                logger.exception("model check failed")

    def check_soon(self) -> None:
        """Start a check without waiting for it (from a signal handler)."""
        task = asyncio.get_running_loop().create_task(self.check())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


@contextlib.contextmanager
def check_on_hangup(versions: ModelVersions) -> Iterator[None]:
    """SIGHUP asks for a check now, as the admin route does where there is one.

    Signal handlers can only be set from the main thread (which runs the event loop); elsewhere
    (a test client) this does nothing, as ``drain_on_signals`` in state.py.
    """
    hangup = getattr(signal, "SIGHUP", None)
    if hangup is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(hangup)

    def handler(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(versions.check_soon)

    signal.signal(hangup, handler)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(hangup, previous)
