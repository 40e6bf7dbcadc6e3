"""A file server on 127.0.0.1 for the recipes' download tests: Range requests, dropped connections, corrupted
bytes, on demand. Nothing is downloaded from outside."""

from __future__ import annotations

import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    """Serves {name: bytes} on 127.0.0.1 with HTTP Range support (bytes=N- only), recording each request.
    drop_after[name] = n: the first response for name sends its headers but only n bytes, then hangs up.
    bad_first[name] = k: the first k responses for name have corrupted bytes. ignore_range: always answer 200."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests = dict(files), []
        self.drop_after: dict[str, int] = {}
        self.bad_first: dict[str, int] = {}
        self.ignore_range = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                served = sum(r["name"] == name for r in server.requests)
                server.requests.append({"name": name, "range": self.headers.get("Range")})
                if name not in server.files:
                    self.send_error(404)
                    return
                data = server.files[name]
                if served < server.bad_first.get(name, 0):
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and not server.ignore_range:
                    start = int(match[1])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if served == 0 and name in server.drop_after:
                    self.wfile.write(body[: server.drop_after[name]])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/resources/12"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests_for(self, name: str) -> list[dict]:
        return [r for r in self.requests if r["name"] == name]
