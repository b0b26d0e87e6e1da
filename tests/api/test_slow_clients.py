"""Slow and hostile clients against a REAL uvicorn server (a subprocess on a free port, the embedded server config):
stalled heads and bodies are closed after their deadlines, stalled uploads beyond MAX_CONCURRENT_UPLOADS are
refused before their body is read, /health keeps answering, form-field floods are refused without growing the
server, and no upload temp file is left behind."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from persistence.settings import PROJECT_ROOT, Settings
from service_helpers import make_settings, settings_env, wait_for

BOUNDARY = "----kdvideo-test-boundary"
SERVE = ("import uvicorn; from api.embedded import server_config; from persistence.settings import get_settings; "
         "uvicorn.Server(server_config(get_settings(), log_level='warning')).run()")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, settings: Settings, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.settings, self.proc, self.log = settings, proc, log
        self.url = f"http://127.0.0.1:{settings.port}"

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.settings.port), timeout=10)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def uploads(self) -> list[Path]:
        folder = self.settings.var_dir / "uploads"
        return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    servers: list[LiveServer] = []

    def start(**overrides: Any) -> LiveServer:
        settings = make_settings(tmp_path / f"var{len(servers)}", port=free_port(), **overrides)
        log = tmp_path / f"server{len(servers)}.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen([sys.executable, "-c", SERVE], cwd=PROJECT_ROOT, env=settings_env(settings),
                                    stdout=fh, stderr=subprocess.STDOUT)
        server = LiveServer(settings, proc, log)
        servers.append(server)

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"{server.url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=60, interval=0.2, what="the API server")
        return server

    yield start
    for server in servers:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def upload_head(body_len: int | None, path: str = "/predict") -> bytes:
    length = f"Content-Length: {body_len}\r\n" if body_len is not None else "Transfer-Encoding: chunked\r\n"
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"{length}\r\n").encode()


def file_part_start() -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.avi\"\r\n"
            f"Content-Type: video/avi\r\n\r\n").encode() + b"RIFF\x00\x00\x00\x00AVI " + b"\x00" * 4000


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data, time.monotonic() - started


def test_stalled_head_silent_connection_and_stalled_body_are_closed(serve: Any) -> None:
    server = serve(request_header_timeout_s=1.0, request_body_timeout_s=1.0)
    silent = server.connect()  # connects, sends nothing
    half_head = server.connect()
    half_head.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
    part = file_part_start()
    half_body = server.connect()
    half_body.sendall(upload_head(len(part) * 2) + part)  # announces twice what it sends
    gone = server.connect()  # disconnects mid-upload
    gone.sendall(upload_head(len(part) * 2) + part)
    wait_for(lambda: len(server.uploads()) == 2, timeout=5, interval=0.05, what="both uploads receiving")
    gone.close()

    for sock in (silent, half_head):
        data, took = read_until_closed(sock, timeout=10)
        assert data == b"" and took < 5, (data, took)  # closed after REQUEST_HEADER_TIMEOUT_S, not held forever
    data, took = read_until_closed(half_body, timeout=10)
    assert data.startswith(b"HTTP/1.1 408") and b"REQUEST_BODY_TIMEOUT_S" in data and took < 5, (data, took)
    assert b"connection: close" in data.lower()
    wait_for(lambda: not server.uploads(), timeout=5, interval=0.05, what="temp files removed")
    # a keep-alive connection that starts its next request and stalls is closed as well
    ka = server.connect()
    ka.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    time.sleep(0.3)
    ka.sendall(b"GET /health HTTP/1.1\r\nHo")
    data, took = read_until_closed(ka, timeout=10)
    assert data.count(b"HTTP/1.1 200") == 1 and took < 5
    for sock in (silent, half_head, half_body, ka):
        sock.close()
    assert not server.uploads()


def test_many_stalled_uploads_do_not_stop_health(serve: Any) -> None:
    """150 stalled clients (100 uploads stopped mid-body, 50 half heads): uploads beyond MAX_CONCURRENT_UPLOADS
    are refused at once (503, Retry-After, closed) without reading their body, /health answers throughout, and
    when the deadlines pass every connection is closed and no temp file is left."""
    server = serve(request_header_timeout_s=3.0, request_body_timeout_s=3.0, max_concurrent_uploads=4)
    part = file_part_start()
    uploads, heads = [], []
    for _ in range(100):
        sock = server.connect()
        sock.sendall(upload_head(len(part) * 10) + part)
        uploads.append(sock)
    for _ in range(50):
        sock = server.connect()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0")
        heads.append(sock)
    started = time.monotonic()
    health = httpx.get(f"{server.url}/health", timeout=5)
    assert health.status_code == 200 and time.monotonic() - started < 2
    assert len(server.uploads()) <= 4

    answers = [read_until_closed(sock, timeout=15)[0] for sock in uploads]
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
    timed_out = [a for a in answers if a.startswith(b"HTTP/1.1 408")]
    assert len(refused) == 96 and len(timed_out) == 4, [a[:40] for a in answers if a[:12] not in
                                                         (b"HTTP/1.1 503", b"HTTP/1.1 408")]
    assert all(b"retry-after: 5" in a.lower() and b"MAX_CONCURRENT_UPLOADS" in a for a in refused)
    assert all(read_until_closed(sock, timeout=10)[0] == b"" for sock in heads)
    for sock in uploads + heads:
        sock.close()
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
    wait_for(lambda: not server.uploads(), timeout=5, interval=0.05, what="temp files removed")


def _send_fields(server: LiveServer, *, fields: int, value_bytes: int, epilogue: int = 0,
                 with_file: bool = True) -> bytes:
    """A chunked multipart body of ``fields`` small unique-named fields (+ an epilogue of junk); the answer."""
    sock = server.connect()
    sock.sendall(upload_head(None))

    def chunk(data: bytes) -> None:
        sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    try:
        if with_file:
            chunk(file_part_start() + b"\r\n")
        batch = b""
        for i in range(fields):
            batch += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\n").encode() + \
                b"x" * value_bytes + b"\r\n"
            if len(batch) > 256 * 1024:
                chunk(batch)
                batch = b""
        chunk(batch + f"--{BOUNDARY}--\r\n".encode())
        for _ in range(epilogue // (256 * 1024)):
            chunk(b"e" * 256 * 1024)
        sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server refused and closed mid-body: that is the point
    data, _ = read_until_closed(sock, timeout=15)
    sock.close()
    return data


def test_form_field_flood_and_oversized_body_are_413_without_growth(serve: Any) -> None:
    server = serve(max_upload_mb=0.25)
    before = server.rss_kib()
    # 60 MiB of 1000-byte fields with unique names: refused at the 17th field, nothing kept
    answer = _send_fields(server, fields=60_000, value_bytes=1000)
    assert answer.startswith(b"HTTP/1.1 413") and b"more than 16 form fields" in answer, answer[:300]
    # few fields, but 8 MiB of junk after the closing boundary: the WHOLE body is capped
    answer = _send_fields(server, fields=2, value_bytes=10, epilogue=8 * 2**20)
    assert answer.startswith(b"HTTP/1.1 413") and b"request body is over" in answer, answer[:300]
    # one field over its size limit
    answer = _send_fields(server, fields=1, value_bytes=5000)
    assert answer.startswith(b"HTTP/1.1 422") and b"over 1024 bytes" in answer, answer[:300]
    grown_mib = (server.rss_kib() - before) / 1024
    assert grown_mib < 20, f"the API grew by {grown_mib:.0f} MiB"
    assert not server.uploads()
    # a well-formed small upload still gets through to validation (415: not a video), its temp file removed
    ok = _send_fields(server, fields=2, value_bytes=1, with_file=False)
    assert ok.startswith(b"HTTP/1.1 422") and b"missing form field 'file'" in ok, ok[:300]
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200 and not server.uploads()
