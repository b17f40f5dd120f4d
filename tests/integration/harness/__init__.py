"""Shared plumbing for the integration suites and the benchmarks, one module a concern:

  processes  the sandbox and its child processes (always stopped), free ports, waits
  client     plain HTTP requests (urllib)
  programs   Vigil's HTTP programs (echo, gateway, demo) on free ports
  peers      Prometheus, nginx, PostgreSQL, Redis, certificates (openssl)
  otlp       a scripted OTLP/HTTP receiver, OpenTelemetry's decoder, span readers
  sentry     a scripted Sentry receiver whose envelopes Sentry's own parser reads
  spotlight  Spotlight, Sentry's local receiver, as ./vigil up starts it
  tokens     JWTs made by hand (forged, unsigned, expired) and signed identity headers
  rawhttp    one HTTP/1.1 connection spoken by hand
  checks     problem+json, memory bounds, log lines and metric samples
  bodies     large bodies and their checksums
  topology   services/topology.json: the services, their ports, the gateway's routes
  platform   the whole platform (Platform)

Every name the suites use is importable from the package itself:

    from harness import Sandbox, start_echo, wait_for
"""

from .bodies import FNV_OFFSET, FNV_PRIME, PatternChecker, SparseBody, fnv1a64_hex
from .checks import (GENERATED_ID_RE, INTERNALS, REQUEST_ID_RE, SANITIZED, access_records,
                     assert_memory_below, assert_problem, log_records, metric_samples,
                     metric_sum)
from .client import call_json, http_get, http_json
from .otlp import (DECODER_DIR, HANG, Receiver, node_decode, node_decode_all, otlp_spans,
                   traces_file_spans)
from .peers import (NGINX_HTTP, Redis, make_certificate, start_nginx, start_postgres,
                    start_prometheus)
from .platform import INTERNAL_SECRET, SERVICE_BINARIES, Platform
from .processes import (ROOT, Process, Sandbox, binary, build_dir, can_connect, free_port,
                        free_ports, proc_status, read_peak_rss, wait_for, wait_ready)
from .programs import (DEMO_BINARY, ECHO_BINARY, GATEWAY_BINARY, Server, start_demo,
                       start_echo, start_gateway, start_http_program, write_gateway_config)
from .rawhttp import PeerClosed, RawConnection, Response, build_request
from .sentry import SentryReceiver
from .spotlight import Spotlight, spotlight_command, spotlight_unavailable

__all__ = [
    "FNV_OFFSET", "FNV_PRIME", "PatternChecker", "SparseBody", "fnv1a64_hex",
    "GENERATED_ID_RE", "INTERNALS", "REQUEST_ID_RE", "SANITIZED", "access_records",
    "assert_memory_below", "assert_problem", "log_records", "metric_samples",
    "metric_sum", "call_json", "http_get", "http_json", "DECODER_DIR", "HANG", "Receiver",
    "node_decode", "node_decode_all", "otlp_spans", "traces_file_spans", "NGINX_HTTP",
    "Redis", "make_certificate", "start_nginx", "start_postgres", "start_prometheus", "INTERNAL_SECRET",
    "SERVICE_BINARIES", "Platform", "ROOT", "Process", "Sandbox", "binary", "build_dir",
    "can_connect", "free_port", "free_ports", "proc_status", "read_peak_rss", "wait_for",
    "wait_ready", "DEMO_BINARY", "ECHO_BINARY", "GATEWAY_BINARY", "Server", "start_demo",
    "start_echo", "start_gateway", "start_http_program", "write_gateway_config",
    "PeerClosed", "RawConnection", "Response", "build_request", "SentryReceiver",
    "Spotlight", "spotlight_command", "spotlight_unavailable"
]
