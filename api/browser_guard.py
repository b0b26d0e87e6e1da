"""Browser attacks on an API without ambient credentials: DNS rebinding and cross-site state changes.

A page on any site can make the visitor's browser send requests to the API (a form POST needs no CORS
preflight), and with DNS rebinding it can even read the answers under its own host name. Two checks, in every
mode, before any route runs:

* **Host**: the ``Host`` header must be one the server answers to (``Settings.trusted_hosts``: ALLOWED_HOSTS,
  by default the loopback names on a loopback HOST) -> otherwise 400. Same matching as Starlette's
  TrustedHostMiddleware ('*' any, '*.example.com' subdomains), answered in JSON saying what to configure.
* **Origin**: POST/PUT/PATCH/DELETE whose ``Origin`` (or, without one, ``Referer``) is neither the server's own
  origin (the Host it was addressed to) nor in ALLOWED_ORIGINS -> 403. Requests carrying neither header (curl,
  the CLIs, scripts) are not browser form posts and pass; the dashboard's fetches are same-origin.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("api.browser_guard")

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def split_host(value: str) -> tuple[str, int | None]:
    """'Example.com:8000' -> ('example.com', 8000); '[::1]:80' -> ('::1', 80); a bad port -> ('', None)."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    if not port:
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        return "", None
    return host, int(port)


def host_allowed(host: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if pattern == "*" or host == pattern:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


def request_origin(headers: dict[str, str]) -> str | None:
    """The Origin header, else the origin part of Referer; None when the request carries neither."""
    origin = headers.get("origin")
    if origin is not None:
        return origin.strip()
    referer = headers.get("referer")
    if referer is None:
        return None
    parts = urlsplit(referer.strip())
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "null"


def same_origin(origin: str, host_header: str) -> bool:
    """Whether ``origin`` (scheme://host[:port]) names the host and port this request was sent to."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return False
    host, host_port = split_host(host_header)
    default = DEFAULT_PORTS[parts.scheme]
    return bool(host) and parts.hostname.lower() == host and (port or default) == (host_port or default)


class BrowserGuard:
    """ASGI middleware: the Host and Origin checks above, for HTTP requests (the app has no websockets)."""

    def __init__(self, app: ASGIApp, *, trusted_hosts: list[str], allowed_origins: list[str]) -> None:
        self.app = app
        self.trusted_hosts = trusted_hosts
        self.allowed_origins = {o.rstrip("/").lower() for o in allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host_header = headers.get("host", "")
        host, _ = split_host(host_header)
        allowed = host_allowed(host, self.trusted_hosts) if host else "*" in self.trusted_hosts
        if not allowed:
            log.warning("refused Host %r (allowed: %s)", host_header[:100], self.trusted_hosts)
            await _reply(send, 400, f"this server does not answer to the host name {host_header[:100]!r}; if that is "
                                    "how clients reach it, add it to ALLOWED_HOSTS on the server")
            return
        if scope["method"] in STATE_CHANGING:
            origin = request_origin(headers)
            if origin is not None and not same_origin(origin, host_header) \
                    and origin.rstrip("/").lower() not in self.allowed_origins:
                log.warning("refused cross-site %s %s from origin %r", scope["method"], scope["path"], origin[:200])
                await _reply(send, 403, f"cross-site request refused: a page from {origin[:100]!r} may not "
                                        f"{scope['method']} to this server; to allow that site, add its origin to "
                                        "ALLOWED_ORIGINS on the server")
                return
        await self.app(scope, receive, send)


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
