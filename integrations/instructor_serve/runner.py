"""Running the app under uvicorn, with a SIGTERM that drains: new requests are answered 503, accepted
ones finish (for up to ``drain_seconds``), then the process ends."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

import uvicorn

from instructor_core.model.encoder import InstructorEncoder
from instructor_serve.app import ServerState, create_app
from instructor_serve.settings import ServeSettings, is_loopback

__all__ = ["serve"]

log = logging.getLogger("instructor_serve")


class _DrainingServer(uvicorn.Server):
    """uvicorn, whose first SIGTERM/SIGINT drains instead of closing the listener at once."""

    state: ServerState
    failed: str | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.state.draining:  # a second signal: stop now
            super().handle_exit(sig, frame)
            return
        self.state.draining = True
        print(
            f"instructor serve: draining: {self.state.in_flight} request(s) in flight finish (at most "
            f"{self.state.settings.drain_seconds:g} s), new ones are answered 503",
            file=sys.stderr,
            flush=True,
        )
        threading.Thread(target=self._drain, name="instructor-drain", daemon=True).start()

    def _drain(self) -> None:
        deadline = time.monotonic() + self.state.settings.drain_seconds
        while self.state.in_flight > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.should_exit = True


def serve(
    settings: ServeSettings,
    load: Callable[[], InstructorEncoder],
    *,
    model_label: str,
    log_level: str = "info",
) -> int:
    """Serve until SIGTERM or Ctrl-C (drained), or until the model fails to load.

    Returns:
        0 after a drained stop; 2 when the model failed to load (its reason printed in one line).
    """
    if not is_loopback(settings.host) and settings.api_key is None:
        print(
            f"instructor serve: warning: binding {settings.host} without --api-key: anyone who can reach this "
            "port can use the model",
            file=sys.stderr,
        )
    server: _DrainingServer | None = None

    def load_failed(reason: str) -> None:
        assert server is not None
        server.failed = reason
        server.should_exit = True

    app, state = create_app(settings, load, model_label=model_label, on_load_error=load_failed)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=max(1, int(settings.drain_seconds)),
        lifespan="on",
    )
    server = _DrainingServer(config)
    server.state = state
    logging.getLogger("instructor_serve").setLevel(log_level.upper())
    server.run()
    if server.failed is not None:
        print(f"instructor serve: error: {server.failed}", file=sys.stderr)
        return 2
    return 0
