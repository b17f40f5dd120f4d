"""One client TCP connection speaking HTTP/1.1 by hand (RawConnection), for what urllib
hides: keep-alive, pipelining, malformed requests, slow clients, and seeing exactly when
the server answers or closes."""

import json
import select
import socket
import time


class PeerClosed(Exception):
    """The server closed the connection before a complete response."""


class Response:
    def __init__(self, status, reason, headers, body, elapsed):
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] in wire order
        self.body = body
        self.elapsed = elapsed  # seconds from the request's last byte sent to the end

    def header(self, name):
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return (f"<{self.status} {self.reason} {self.headers} "
                f"{self.body[:300] if self.body is not None else None!r}>")


def build_request(method, target, headers=None, body=None, chunked=False, host=True):
    """The bytes of one request. `headers` is a dict or a list of pairs; Content-Length
    or chunked framing is added for `body` (bytes, or a list of chunks when chunked)."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in pairs}
    if host and "host" not in names:
        pairs.insert(0, ("Host", "127.0.0.1"))
    payload = b""
    if chunked:
        pairs.append(("Transfer-Encoding", "chunked"))
        pieces = [body] if isinstance(body, (bytes, bytearray)) else list(body or [])
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
    elif body is not None:
        if "content-length" not in names:
            pairs.append(("Content-Length", str(len(body))))
        payload = bytes(body)
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in pairs)
    return head.encode("latin-1") + b"\r\n" + payload


class RawConnection:
    """One client TCP connection speaking HTTP/1.1 by hand, for what urllib hides:
    keep-alive, pipelining, malformed requests, slow clients, and seeing exactly when
    the server answers or closes. With `tls` (an ssl.SSLContext) it speaks HTTPS, naming
    the server `server_hostname` for verification."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, tls=None,
                 server_hostname="localhost"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=server_hostname)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.sent_at = time.monotonic()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)
        self.sent_at = time.monotonic()

    def request(self, method, target, headers=None, body=None, chunked=False):
        self.send(build_request(method, target, headers, body, chunked))

    def exchange(self, method, target, headers=None, body=None, chunked=False, sink=None):
        self.request(method, target, headers, body, chunked)
        return self.read_response(method, sink=sink)

    def _fill(self, size=1 << 16):
        if self.eof:
            return False
        try:
            data = self.sock.recv(size)
        except ConnectionResetError:
            data = b""  # what arrived before the reset is still in self.buf
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _readline(self, limit=1 << 20):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > limit:
                raise AssertionError("response line too long")
            if not self._fill():
                raise PeerClosed(f"closed mid-line after {bytes(self.buf[:200])!r}")

    def _read_exact(self, n, sink):
        while n > 0:
            if not self.buf and not self._fill(1 << 20):
                raise PeerClosed(f"closed with {n} body bytes missing")
            take = min(n, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            n -= take

    def read_response(self, method="GET", sink=None):
        """Reads one response. The body is kept, or passed piecewise to `sink` (and
        then Response.body is None). Raises PeerClosed if the server closes first."""
        while True:
            line = self._readline()
            if not line.strip() and not self.buf and self.eof:
                raise PeerClosed("closed before a status line")
            parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise AssertionError(f"bad status line {line!r}")
            status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
            headers = []
            while True:
                h = self._readline().decode("latin-1").rstrip("\r\n")
                if not h:
                    break
                name, _, value = h.partition(":")
                headers.append((name.strip(), value.strip()))
            if 100 <= status < 200:
                continue
            break
        kept = []
        out = sink or kept.append
        te = ",".join(v for k, v in headers if k.lower() == "transfer-encoding").lower()
        cl = [v for k, v in headers if k.lower() == "content-length"]
        if method == "HEAD" or status in (204, 304):
            pass
        elif "chunked" in te:
            while True:
                size_line = self._readline().split(b";")[0].strip()
                size = int(size_line, 16)
                if size == 0:
                    while self._readline().strip():
                        pass  # trailers
                    break
                self._read_exact(size, out)
                if self._readline().strip():
                    raise AssertionError("chunk not followed by CRLF")
        elif cl:
            self._read_exact(int(cl[0]), out)
        else:
            while self.buf or self._fill(1 << 20):
                out(bytes(self.buf))
                self.buf.clear()
        body = None if sink else b"".join(kept)
        return Response(status, reason, headers, body, time.monotonic() - self.sent_at)

    def readable(self, timeout):
        """True when the server sent something (or closed) within `timeout` seconds."""
        if self.buf or self.eof:
            return True
        ready, _, _ = select.select([self.sock], [], [], timeout)
        return bool(ready)

    def wait_closed(self, timeout):
        """Waits up to `timeout` s for the server to close; returns (closed, bytes seen).
        A reset counts as closed."""
        deadline = time.monotonic() + timeout
        seen = bytearray(self.buf)
        self.buf.clear()
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, bytes(seen)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return False, bytes(seen)
            except ConnectionResetError:
                self.eof = True
                break
            finally:
                self.sock.settimeout(self.timeout)
            if not data:
                self.eof = True
            seen += data
        return True, bytes(seen)
