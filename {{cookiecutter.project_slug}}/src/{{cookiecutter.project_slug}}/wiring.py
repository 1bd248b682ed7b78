"""How optional parts plug into the app: an installer per feature, and their lifespans.

An installer adds its routes, middleware and exception handlers to the app when it is called,
and returns what it needs to run at start-up and shutdown (or None). ``main.py`` lists the
installers of the features this project has, in order: routes match in that order, each
middleware wraps the ones added before it, and lifespans start in that order and stop in reverse.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from .settings import Settings

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
Installer = Callable[[FastAPI, Settings], Lifespan | None]


def run_all(hooks: Sequence[Lifespan]) -> Lifespan:
    """One lifespan that starts ``hooks`` in order and stops them in reverse.

    A hook that fails to start stops those already started. ``hooks`` is read at start-up, so
    it may still be filled after the app is made.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for hook in hooks:
                await stack.enter_async_context(hook(app))
            yield

    return lifespan


def on_exit(stop: Callable[[], object]) -> Lifespan:
    """A lifespan that only calls ``stop`` at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            stop()

    return lifespan
