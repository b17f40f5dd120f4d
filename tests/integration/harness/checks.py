"""What the suites check and read back: problem+json responses, memory bounds, the JSON
log lines a program wrote and the samples of a metrics exposition."""

import json
import os
import re

from .client import http_get

# Set by CTest when the programs were built with ASan+UBSan (the asan-integration preset):
# their shadow memory and the allocator's quarantine make memory bounds meaningless there,
# so those bounds are not checked; everything else is.
SANITIZED = os.environ.get("VIGIL_SANITIZED") == "1"


def assert_memory_below(test, used, bound, message):
    """test.assertLess(used, bound), unless the programs run under the sanitizers."""
    if not SANITIZED:
        test.assertLess(used, bound, message)


def log_records(proc):
    """Every JSON object line the process wrote (a line still being written is skipped)."""
    records = []
    for line in proc.lines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
    return records


def access_records(proc):
    return [r for r in log_records(proc) if r.get("msg") == "request completed"]


def metric_samples(text, name):
    """[(labels dict, value)] of every sample named exactly `name` in a text exposition."""
    samples = []
    # Label values may hold braces ("/items/{id}"), so the label set is matched pair by pair.
    pattern = (r"^" + re.escape(name) + r'(?:\{((?:\w+="(?:[^"\\]|\\.)*",?)*)\})? (\S+)')
    for match in re.finditer(pattern, text, re.M):
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1) or ""))
        samples.append((labels, float(match.group(2))))
    return samples


def metric_sum(admin_url, name, labels):
    """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
    _, _, body = http_get(admin_url + "/metrics")
    return sum(v for got, v in metric_samples(body.decode(), name)
               if all(got.get(k) == want for k, want in labels.items()))


REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
GENERATED_ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")  # a ULID, Crockford base32
# Words that would mean a response leaks how the server is built.
INTERNALS = ("boost", "beast", "asio", "std::", ".cpp", ".hpp", "exception", "what()",
             "errno", "terminate", "stack")


def assert_problem(test, response, status):
    """`response` is an RFC 9457 problem with `status`, carrying the request id of its
    X-Request-Id header and a trace id, and nothing about the server's internals. Every
    deviation is listed in one failure."""
    test.assertEqual(response.status, status, response)
    wrong = []
    content_type = response.header("Content-Type") or ""
    if not content_type.startswith("application/problem+json"):
        wrong.append(f"Content-Type is {content_type!r}")
    request_id = response.header("X-Request-Id")
    if request_id is None or not REQUEST_ID_RE.match(request_id):
        wrong.append(f"X-Request-Id header is {request_id!r}")
    try:
        problem = response.json()
    except ValueError:
        raise AssertionError(f"not JSON: {response}")
    for key in ("type", "title", "status", "detail", "request_id", "trace_id"):
        if key not in problem:
            wrong.append(f"no {key!r}")
    if problem.get("status") != status:
        wrong.append(f"status member is {problem.get('status')!r}")
    for key in ("type", "title"):
        if not isinstance(problem.get(key), str) or not problem.get(key):
            wrong.append(f"{key} is {problem.get(key)!r}")
    if "detail" in problem and not isinstance(problem["detail"], str):
        wrong.append(f"detail is {problem['detail']!r}")
    if "request_id" in problem and problem["request_id"] != request_id:
        wrong.append(f"request_id member {problem['request_id']!r} differs from the "
                     f"X-Request-Id header {request_id!r}")
    trace_id = problem.get("trace_id")
    if "trace_id" in problem and (not isinstance(trace_id, str)
                                  or not re.match(r"^[0-9a-f]{32}$", trace_id)
                                  or trace_id == "0" * 32):
        wrong.append(f"trace_id is {trace_id!r}")
    text = response.body.decode(errors="replace").lower()
    wrong += [f"internal detail {w!r}" for w in INTERNALS if w in text]
    if wrong:
        raise AssertionError(f"problem+json {status}: " + "; ".join(wrong) + f"\n{response}")
    return problem
