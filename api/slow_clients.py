"""Deadlines for clients that connect and then send too little: stalled headers, stalled bodies.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive`` but has no limit on how long a
request's *headers* may take (a client that connects and sends nothing, or half a header, is held forever),
nor on a request *body* that stops arriving. Two guards fill the gap:

* :class:`GuardedH11Protocol`, uvicorn's h11 protocol with a header deadline: a connection that has not
  delivered a complete request head within REQUEST_HEADER_TIMEOUT_S of connecting (or of starting to send
  its next request) is closed. Used by ``python -m api.embedded``; for plain uvicorn pass
  ``--http api.slow_clients:GuardedH11Protocol`` (docker-compose and the Dockerfile do).
* :class:`BodyDeadlineMiddleware` (ASGI, added by ``create_app`` so it applies under any server): while the
  app is reading a request body, a pause longer than REQUEST_BODY_TIMEOUT_S answers 408 with
  ``Connection: close`` (the server then closes the socket) and tells the app the client disconnected, so
  upload handlers clean up their temp files.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("api.slow_clients")


class GuardedH11Protocol(H11Protocol):
    """H11Protocol that closes a connection whose request head does not arrive in time.

    ``header_timeout_s`` None (the default) reads REQUEST_HEADER_TIMEOUT_S from the settings;
    :func:`guarded_protocol` makes a subclass with an explicit value.
    """

    header_timeout_s: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        timeout = self.header_timeout_s
        if timeout is None:
            from persistence.settings import get_settings

            timeout = get_settings().request_header_timeout_s
        self._header_timeout = timeout
        self._header_timer: asyncio.TimerHandle | None = None

    def _awaiting_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self._header_timeout, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._arm_header_timer()  # a connection that never sends a byte is closed too

    def data_received(self, data: bytes) -> None:
        awaiting = self._awaiting_head()
        if awaiting:
            self._arm_header_timer()  # (the keep-alive timer stops at the first byte; this one does not)
        super().data_received(data)
        if not self._awaiting_head():
            self._disarm_header_timer()  # the request head is complete: the app (and the body deadline) own it

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self._awaiting_head() and not self.transport.is_closing():
            if self.client:
                log.warning("closing connection from %s:%d: no complete request head within %gs "
                            "(REQUEST_HEADER_TIMEOUT_S)", *self.client, self._header_timeout)
            self.transport.close()


def guarded_protocol(header_timeout_s: float) -> type[GuardedH11Protocol]:
    """A GuardedH11Protocol subclass with a fixed header deadline (for ``uvicorn.Config(http=...)``)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout_s": header_timeout_s})


class BodyDeadlineMiddleware:
    """Answer 408 (and close) when a request body stops arriving for ``idle_s`` seconds while the app reads it."""

    def __init__(self, app: ASGIApp, *, idle_s: float) -> None:
        self.app = app
        self.idle_s = idle_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        timed_out = False
        response_started = False

        async def guarded_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done:
                return await receive()  # after the body: waiting for a disconnect is legitimate, no deadline
            if timed_out:
                return {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), timeout=self.idle_s)
            except asyncio.TimeoutError:
                timed_out = True
                client = scope.get("client")
                log.warning("%s %s from %s: request body stalled for %gs (REQUEST_BODY_TIMEOUT_S); answering 408",
                            scope.get("method"), scope.get("path"), client, self.idle_s)
                if not response_started:
                    detail = (f'{{"detail":"the request body stopped arriving for {self.idle_s:g}s '
                              f'(REQUEST_BODY_TIMEOUT_S); send it again without pausing"}}').encode()
                    await send({"type": "http.response.start", "status": 408,
                                "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                            (b"content-length", str(len(detail)).encode())]})
                    await send({"type": "http.response.body", "body": detail})
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if timed_out:
                return  # the 408 went out already; the app's own answer to the "disconnect" is dropped
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, guarded_receive, guarded_send)
