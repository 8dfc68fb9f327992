"""A loopback TCP proxy a test can freeze, cut or take down, in front of one Azurite endpoint.

It stands where the network would fail: `freeze()` stops forwarding (a process calling through
it hangs mid-request), `reset()` drops every connection and whatever it held, then forwards
again (a partition that killed the TCP sessions), `refuse()` / `restore()` stop and resume
listening on the same port (a host that is down), and `delay_s` adds latency to each chunk.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tools.azurite import free_port

CHUNK_BYTES = 65536


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.cut = False

    def close(self) -> None:
        for side in (self.client, self.upstream):
            try:
                side.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            side.close()


class TcpProxy:
    """Forwards `127.0.0.1:port` to `127.0.0.1:target_port`."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.delay_s = 0.0
        self._frozen = False
        self._links: list[_Link] = []
        self._changed = threading.Condition()
        self._listener: socket.socket | None = None

    def start(self) -> TcpProxy:
        """Listen and forward."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def freeze(self) -> None:
        """Stop forwarding in both directions; what arrives is held, unanswered."""
        with self._changed:
            self._frozen = True

    def reset(self) -> None:
        """Drop every connection with what it held, then forward new connections again."""
        with self._changed:
            links, self._links = self._links, []
            for link in links:
                link.cut = True
            self._frozen = False
            self._changed.notify_all()
        for link in links:
            link.close()

    def refuse(self) -> None:
        """Stop listening and drop every connection: connections are refused."""
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
            except OSError:
                pass
            listener.close()
        self.reset()

    def restore(self) -> None:
        """Listen again on the same port."""
        if self._listener is None:
            self.start()

    def stop(self) -> None:
        """Stop listening and drop everything."""
        self.refuse()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return  # the listener was closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for side in (client, upstream):  # forward each chunk as it comes, as a router would
                side.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(client, upstream)
            with self._changed:
                self._links.append(link)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(link, source, target), daemon=True
                ).start()

    def _pump(self, link: _Link, source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                data = source.recv(CHUNK_BYTES)
            except OSError:
                data = b""
            with self._changed:
                while self._frozen and not link.cut:
                    self._changed.wait()
                if link.cut or not data:
                    break
            if self.delay_s:
                time.sleep(self.delay_s)
            try:
                target.sendall(data)
            except OSError:
                break
        link.close()


ProxyFactory = Callable[[int], TcpProxy]


@pytest.fixture
def make_proxy() -> Iterator[ProxyFactory]:
    """`make_proxy(target_port)` starts a proxy; every one is stopped after the test."""
    started: list[TcpProxy] = []

    def make(target_port: int) -> TcpProxy:
        proxy = TcpProxy(target_port).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()
