"""A TCP relay on 127.0.0.1 that can cut a service off: store outages for tests and benchmarks.

Put it in front of moto's S3 server (point the connection's ``endpoint_url`` at :attr:`Relay.url`)
and call :meth:`Relay.down`: open connections are cut and new ones are accepted and then never
answered, as in a network partition, so clients see both "connection lost" and timeouts.
:meth:`Relay.up` restores service. ``bytes_per_second`` caps each connection's bandwidth in each
direction (a slow link) and ``latency`` delays each request (a far one); the relay counts requests,
bytes each way and the most connections busy at once, so a benchmark can show what a client did.
The relay only listens on 127.0.0.1 and only forwards to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

_CHUNK = 64 * 1024


class Relay:
    """Forward ``127.0.0.1:<port>`` to ``127.0.0.1:<target_port>`` (a context manager).

    :param target_port: the port of the service on 127.0.0.1.
    :param bytes_per_second: bandwidth cap per connection and direction (``None``: no cap).
    :param latency: seconds added before each request is forwarded (the first bytes a client sends
        on a connection, or after the service answered on it).
    """

    def __init__(
        self, target_port: int, *, bytes_per_second: float | None = None, latency: float = 0.0
    ) -> None:
        self.target = ("127.0.0.1", target_port)
        self.bytes_per_second = bytes_per_second
        self.latency = latency
        self.requests = 0
        self.bytes_up = 0  # client to service
        self.bytes_down = 0
        self.busy = 0
        self.peak_busy = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._up = threading.Event()
        self._up.set()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        self.connections = 0
        self.held = 0
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def down(self) -> None:
        """Cut every open connection; hold new ones open without answering until :meth:`up`."""
        self._up.clear()
        self._close_open()

    def up(self) -> None:
        """Serve again; connections held while down are closed (clients reconnect)."""
        self._close_open()
        self._up.set()

    def close(self) -> None:
        self._closed = True
        self._up.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._close_open()

    def _close_open(self) -> None:
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _track(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._open.update(sockets)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._track(client)
            if not self._up.is_set():
                self.held += 1  # accepted, never answered: the client's read timeout must end it
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                with contextlib.suppress(OSError):
                    client.close()
                continue
            upstream.settimeout(None)
            self._track(upstream)
            state = {"answered": True}  # a connection's next client bytes start a request
            for source, sink, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(source, sink, up, state), daemon=True).start()

    def reset_counters(self) -> None:
        with self._lock:
            self.requests = self.bytes_up = self.bytes_down = 0
            self.peak_busy = self.busy

    def _pump(self, source: socket.socket, sink: socket.socket, up: bool, state: dict[str, bool]) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                with self._lock:
                    if up and state["answered"]:  # a new request on this connection
                        state["answered"] = False
                        self.requests += 1
                        self.busy += 1
                        self.peak_busy = max(self.peak_busy, self.busy)
                        new_request = True
                    else:
                        new_request = False
                    if not up and not state["answered"]:
                        state["answered"] = True
                        self.busy -= 1
                    if up:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
                if new_request and self.latency:
                    time.sleep(self.latency)
                began = time.monotonic()
                sink.sendall(data)
                if self.bytes_per_second:
                    time.sleep(max(0.0, len(data) / self.bytes_per_second - (time.monotonic() - began)))
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
