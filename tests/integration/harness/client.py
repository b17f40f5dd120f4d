"""Plain HTTP requests through urllib, for readiness checks and JSON APIs. (RawConnection,
in rawhttp, speaks HTTP/1.1 by hand for what urllib hides.)"""

import json
import urllib.error
import urllib.request


def http_get(url, headers=None, timeout=5.0):
    """Returns (status, headers, body bytes); HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def http_json(url, headers=None):
    status, _, body = http_get(url, headers)
    return status, json.loads(body)


def call_json(url, method="GET", body=None, token=None, headers=None, raw=None, timeout=10):
    """(status, headers, parsed JSON or None) of one request: `body` is sent as JSON, or
    `raw` bytes as they are (both with Content-Type: application/json), `token` as a
    bearer token. HTTP errors are answers; a failed connection raises urllib.error.URLError
    or OSError."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, hdrs, payload = r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, payload = e.code, dict(e.headers.items()), e.read()
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = None
    return status, hdrs, parsed
