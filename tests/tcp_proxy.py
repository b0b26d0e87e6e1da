"""A TCP proxy the fault tests control: put it between a client (API, worker) and a real server
(PostgreSQL, Redis), then cut and restore the link without touching the shared server.

``cut("reset")`` drops every open connection and refuses new ones (the server looks down);
``cut("blackhole")`` keeps connections open but forwards nothing, so clients hang until their own
timeouts (a network partition). ``restore()`` makes it forward again; connections cut in either
mode stay dead, so clients must reconnect as they would after a real outage.
"""

from __future__ import annotations

import select
import socket
import threading
from typing import Literal

Mode = Literal["reset", "blackhole"]


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server((listen_host, 0))
        self._listener.settimeout(0.2)
        self.host, self.port = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._held: list[socket.socket] = []  # accepted while blackholed: never answered
        self._mode: Mode | None = None
        self._closed = threading.Event()
        self.connections = 0
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ control
    @property
    def is_cut(self) -> bool:
        return self._mode is not None

    def cut(self, mode: Mode = "reset") -> None:
        with self._lock:
            self._mode = mode
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            if mode == "reset":
                _close(a, rst=True)
                _close(b, rst=True)
            else:  # blackhole: the client keeps a socket that never answers
                with self._lock:
                    self._held.append(a)
                _close(b)

    def restore(self) -> None:
        with self._lock:
            self._mode = None
            held, self._held = self._held, []
        for s in held:
            _close(s, rst=True)

    def close(self) -> None:
        self._closed.set()
        self.cut("reset")
        self.restore()
        self._listener.close()
        self._thread.join(timeout=2)

    def __enter__(self) -> "TcpProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing
    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            with self._lock:
                mode = self._mode
            if mode == "reset":
                _close(client, rst=True)
                continue
            if mode == "blackhole":
                with self._lock:
                    self._held.append(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client, rst=True)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._pairs.append((client, upstream))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._closed.is_set():
                with self._lock:
                    live = (a, b) in self._pairs
                if not live:
                    return
                ready, _, _ = select.select([a, b], [], [], 0.2)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        raise ConnectionError("closed")
                    peers[src].sendall(data)
        except (OSError, ValueError, ConnectionError):
            pass
        finally:
            with self._lock:
                live = (a, b) in self._pairs
                if live:
                    self._pairs.remove((a, b))
            if live:  # a normal close from either side; cut() closes its own
                _close(a)
                _close(b)


def _close(s: socket.socket, *, rst: bool = False) -> None:
    try:
        if rst:  # SO_LINGER 0: the peer sees a reset, as when a server dies
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    except OSError:
        pass
