"""A TCP relay on 127.0.0.1 for the browser tests: a client talks to a server through it, and cut() drops every
connection at once, as a server that crashes or a network that fails would (the client sees no close frame)."""

from __future__ import annotations

import socket
import threading


class Relay:
    """Forwards each connection to 127.0.0.1:`target_port`; `url` is the relay's http://127.0.0.1:PORT."""

    def __init__(self, target_port: int):
        self.target_port, self.sockets, self.cut_off = target_port, [], False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)  # the accept loop looks at cut_off this often
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while not self.cut_off:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            upstream.settimeout(None)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()
        self.listener.close()

    @staticmethod
    def pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:  # the other side was cut
            pass
        finally:
            sink.close()

    def cut(self) -> None:
        """Drop every connection (and take no more), without a WebSocket close frame or an HTTP answer."""
        self.cut_off = True
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes the pumps blocked in recv on it
            except OSError:
                pass
            s.close()
