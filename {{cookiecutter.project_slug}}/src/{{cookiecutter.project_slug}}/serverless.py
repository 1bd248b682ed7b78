"""AWS Lambda entry point: API Gateway events, through Mangum, to the same app ``serve`` runs.

Lambda calls ``handler(event, context)`` once per request. The model loads once per Lambda
container, at cold start, not once per invocation: Mangum's own lifespan support starts and
stops the app around every event (and so would load the model every time), so Mangum runs
with ``lifespan="off"`` and the app's lifespan is started here, once, when Lambda imports
this module. The runner it starts lives on the event loop that Mangum runs each event on;
between events Lambda freezes the process, loop and all.

The image runs it with ``python -m awslambdaric <package>.serverless.handler`` (see
template.yaml). Settings come from the function's environment, as for ``serve``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from mangum import Mangum
from mangum.protocols import LifespanCycle
from mangum.types import LambdaContext, LambdaEvent

from .main import create_app


class LambdaHandler:
    """Mangum around ``app``, with the app's lifespan entered once, when this is made."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        # Mangum runs every event on the current event loop; this is the one for the process.
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.adapter = Mangum(app, lifespan="off")
        self.lifespan = LifespanCycle(app, "on")
        # Loads the model and warms it up; raises (a failed cold start) when it cannot.
        self.lifespan.__enter__()

    def __call__(self, event: LambdaEvent, context: LambdaContext) -> dict[str, Any]:
        return self.adapter(event, context)

    def close(self) -> None:
        """Run the app's shutdown and close the loop. Lambda never calls it; tests do."""
        try:
            self.lifespan.__exit__(None, None, None)
        finally:
            self.loop.close()
            asyncio.set_event_loop(None)


handler = LambdaHandler(create_app())
