"""vigil-gateway serving HTTPS in front of vigil-echo, checked with the clients people use:
curl and `openssl s_client` (and Python's ssl for a connection held open). TLS 1.0 and 1.1
refused, 1.2 and 1.3 served, ALPN http/1.1, sessions resumed, a request through HTTPS
reaching the service; the certificate rotated on SIGHUP for new connections while open
ones go on, a bad file keeping the running certificate; the plain-HTTP listener's 308;
a client that never handshakes cut at the header timeout; garbage instead of a
ClientHello disturbing nobody; Strict-Transport-Security over HTTPS only. Certificates
are made by the `openssl` command in the sandbox."""

import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest

from harness import (GATEWAY_BINARY, RawConnection, Sandbox, binary, free_ports,
                     log_records, make_certificate, metric_sum, start_echo, start_gateway,
                     wait_for, write_gateway_config)

# Short, so that the handshake timeout is seen quickly; still far above a loopback
# handshake, even under the sanitizers.
HEADER_TIMEOUT_MS = 1500
FAILURES = "vigil_http_tls_handshake_failures_total"
HSTS = "max-age=63072000; includeSubDomains"


def s_client(port, *args, stdin=b"", timeout=20):
    """`openssl s_client` to 127.0.0.1:`port` with `args`; (exit code, its output)."""
    proc = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                          input=stdin, capture_output=True, timeout=timeout)
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace")


def curl(*args, timeout=20):
    """curl with `args`; (exit code, stdout, stderr)."""
    proc = subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=timeout)
    return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(
        errors="replace")


def trusting(cert):
    """A Python TLS client context that trusts `cert` alone."""
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = True
    return context


def tls_gateway(sandbox, echo, cert, key, name="gateway", env=None):
    full_env = {"VIGIL_TLS_CERT_FILE": str(cert), "VIGIL_TLS_KEY_FILE": str(key),
                "VIGIL_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT_MS), "VIGIL_LOG_LEVEL": "debug",
                "VIGIL_GATEWAY_AUTH": "false", "VIGIL_WORKERS": "2"}
    full_env.update(env or {})
    # /page: a route with a security-header block of its own (its page policy).
    routes = [{"prefix": "/echo", "upstream": echo.url, "strip_prefix": False},
              {"prefix": "/page", "upstream": echo.url + "/echo", "strip_prefix": True,
               "content_security_policy": "default-src 'self'"}]
    return start_gateway(sandbox, routes, env=full_env, name=name)


class HttpsGatewayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox(prefix="vigil-tls-")
        cls.addClassCleanup(cls.sandbox.close)
        cls.cert, cls.key = make_certificate(cls.sandbox.dir, "server", "vigil-tls-test", 0xA1)
        cls.echo = start_echo(cls.sandbox)
        cls.redirect_port = free_ports(1)[0]
        cls.gateway = tls_gateway(cls.sandbox, cls.echo, cls.cert, cls.key,
                                  env={"VIGIL_TLS_REDIRECT_PORT": str(cls.redirect_port)})
        cls.port = cls.gateway.port

    def https(self, target):
        return f"https://localhost:{self.port}{target}"

    def failures(self, reason):
        return metric_sum(self.gateway.admin, FAILURES, {"reason": reason})

    def assert_served(self):
        code, out, err = curl("--cacert", str(self.cert), self.https("/echo/still"))
        self.assertEqual(code, 0, err)
        self.assertIn('"target":"/echo/still"', out)

    # ---------------------------------------------------------------- versions and ALPN

    def test_tls_1_0_and_1_1_are_refused_by_the_server(self):
        before = self.failures("protocol_version")
        for version in ("-tls1", "-tls1_1"):
            # The client is allowed the old versions, so the refusal can only be the
            # server's: its protocol_version alert.
            code, out = s_client(self.port, version, "-cipher", "DEFAULT:@SECLEVEL=0")
            self.assertNotEqual(code, 0, out)
            self.assertIn("alert protocol version", out)
        wait_for(lambda: self.failures("protocol_version") >= before + 2,
                 what="two protocol_version failures counted")

    def test_tls_1_2_and_1_3_are_served_with_alpn_http_1_1(self):
        for version, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            code, out = s_client(self.port, version, "-alpn", "h2,http/1.1",
                                 "-CAfile", str(self.cert), "-verify_hostname", "localhost",
                                 "-verify_return_error")
            self.assertEqual(code, 0, out)
            self.assertIn(f"New, {name}, Cipher is", out)
            self.assertIn("ALPN protocol: http/1.1", out)
            self.assertIn("Verify return code: 0 (ok)", out)
        for low, high in (("--tlsv1.2", "1.2"), ("--tlsv1.3", "1.3")):
            code, out, err = curl("--cacert", str(self.cert), low, "--tls-max", high, "-v",
                                  "-o", os.devnull, self.https("/echo/v"))
            self.assertEqual(code, 0, err)
            self.assertIn(f"SSL connection using TLSv{high}", err)
            self.assertIn("ALPN: server accepted http/1.1", err)

    def test_alpn_without_http_1_1_is_refused(self):
        code, out = s_client(self.port, "-alpn", "h2")
        self.assertNotEqual(code, 0, out)
        self.assertIn("no application protocol", out)

    def test_tls_1_2_uses_the_intermediate_suites_only(self):
        code, out = s_client(self.port, "-tls1_2", "-cipher", "AES128-SHA:ECDHE-ECDSA-AES128-SHA")
        self.assertNotEqual(code, 0, out)
        self.assertIn("handshake failure", out)
        code, out = s_client(self.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305",
                             "-brief")
        self.assertEqual(code, 0, out)
        self.assertIn("Ciphersuite: ECDHE-ECDSA-CHACHA20-POLY1305", out)

    def test_sessions_resume(self):
        code, out = s_client(self.port, "-tls1_2", "-reconnect")
        self.assertEqual(code, 0, out)
        self.assertIn("Reused, TLSv1.2", out)
        # TLS 1.3 tickets come after the handshake: the first client waits for them.
        session = self.sandbox.dir / "session.pem"
        with subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{self.port}",
                               "-tls1_3", "-sess_out", str(session)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) as first:
            wait_for(lambda: session.exists() and session.stat().st_size > 0,
                     what="the TLS 1.3 session ticket")
            first.communicate(b"", timeout=20)
        code, out = s_client(self.port, "-tls1_3", "-sess_in", str(session))
        self.assertEqual(code, 0, out)
        self.assertIn("Reused, TLSv1.3", out)

    # ---------------------------------------------------------------- requests

    def test_a_request_through_https_reaches_the_service(self):
        code, out, err = curl("--cacert", str(self.cert), "-H", "X-Request-Id: tls-through",
                              "-w", "\n%{http_code} %{scheme}", self.https("/echo/hello?x=1"))
        self.assertEqual(code, 0, err)
        body, status = out.rsplit("\n", 1)
        self.assertEqual(status, "200 HTTPS")
        self.assertIn('"target":"/echo/hello?x=1"', body)
        # The service learns that the client spoke HTTPS.
        self.assertIn('"x-forwarded-proto":"https"', body)
        line = wait_for(lambda: [r for r in log_records(self.gateway.proc)
                                 if r.get("request_id") == "tls-through"],
                        what="the access line")[0]
        self.assertEqual(line.get("http.response.status_code"), 200)

    def test_a_kept_alive_connection_serves_several_requests(self):
        with RawConnection(self.port, tls=trusting(self.cert)) as conn:
            for i in range(3):
                res = conn.exchange("GET", f"/echo/k{i}", {"Host": "localhost"})
                self.assertEqual(res.status, 200, res)
                self.assertEqual(res.json()["target"], f"/echo/k{i}")
                # The security headers are written with the head over TLS as over TCP,
                # Strict-Transport-Security with them over TLS only.
                self.assertEqual(res.header("Strict-Transport-Security"), HSTS)
            # A refusal of the runtime's own, also with them.
            res = conn.exchange("GET", "/nowhere", {"Host": "localhost"})
            self.assertEqual(res.status, 404, res)
            self.assertEqual(res.header("X-Content-Type-Options"), "nosniff")
            self.assertEqual(res.header("Strict-Transport-Security"), HSTS)
            # A route with its own block chooses the TLS one too.
            res = conn.exchange("GET", "/page/p", {"Host": "localhost"})
            self.assertEqual(res.status, 200, res)
            self.assertEqual(res.json()["target"], "/echo/p")
            self.assertEqual(res.header("Content-Security-Policy"), "default-src 'self'")
            self.assertEqual(res.header_all("Strict-Transport-Security"), [HSTS])

    def test_the_plain_listener_redirects_with_308(self):
        with RawConnection(self.redirect_port) as conn:
            res = conn.exchange("GET", "/echo/r?y=1", {"Host": f"localhost:{self.redirect_port}"})
        self.assertEqual(res.status, 308, res)
        self.assertEqual(res.header("Location"), f"https://localhost:{self.port}/echo/r?y=1")
        self.assertEqual(res.header("X-Content-Type-Options"), "nosniff")
        # Plain HTTP: no Strict-Transport-Security (RFC 6797 section 7.2); the HTTPS answer
        # the client is sent to sets it.
        self.assertEqual(res.header_all("Strict-Transport-Security"), [])
        # curl follows it to the service.
        code, out, err = curl("-L", "--cacert", str(self.cert),
                              f"http://localhost:{self.redirect_port}/echo/followed")
        self.assertEqual(code, 0, err)
        self.assertIn('"target":"/echo/followed"', out)

    # ---------------------------------------------------------------- clients that misbehave

    def test_a_client_that_never_handshakes_is_cut_by_the_header_timeout(self):
        before = self.failures("timeout")
        with RawConnection(self.port, timeout=10) as silent, \
                RawConnection(self.port, timeout=10) as partial:
            partial.send(b"\x16\x03\x01\x02\x00")  # a ClientHello's record header, no more
            started = time.monotonic()
            for conn in (silent, partial):
                closed, seen = conn.wait_closed(HEADER_TIMEOUT_MS / 1000 + 5)
                self.assertTrue(closed, "the connection stayed open")
                self.assertEqual(seen, b"")
            self.assertGreaterEqual(time.monotonic() - started, HEADER_TIMEOUT_MS / 1000 * 0.8)
        wait_for(lambda: self.failures("timeout") >= before + 2, what="two timeouts counted")
        self.assert_served()

    def test_garbage_instead_of_a_client_hello_disturbs_no_one(self):
        before = self.failures("not_tls")
        results = []

        def served():
            code, out, err = curl("--cacert", str(self.cert), self.https("/echo/beside"))
            results.append((code, out, err))

        conns = [RawConnection(self.port, timeout=10) for _ in range(8)]
        try:
            clients = [threading.Thread(target=served) for _ in range(4)]
            for t in clients:
                t.start()
            for i, conn in enumerate(conns):
                garbage = (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" if i == 0
                           else os.urandom(64 + 512 * i))
                try:
                    conn.send(garbage)
                except OSError:
                    pass  # the server may have closed already
            for t in clients:
                t.join(30)
            for conn in conns:
                closed, _ = conn.wait_closed(10)
                self.assertTrue(closed)
        finally:
            for conn in conns:
                conn.close()
        self.assertEqual(len(results), 4)
        for code, out, err in results:
            self.assertEqual(code, 0, err)
            self.assertIn('"target":"/echo/beside"', out)
        wait_for(lambda: self.failures("not_tls") >= before + 1, what="not_tls counted")
        # Failed handshakes are the clients' doing: debug lines, never warn or error.
        records = log_records(self.gateway.proc)
        failed = [r for r in records if r.get("msg") == "TLS handshake failed"]
        self.assertTrue(failed)
        self.assertEqual({r["level"] for r in failed}, {"debug"})
        self.assertEqual([r for r in records if r.get("level") in ("error", "fatal")], [])
        self.assertTrue(self.gateway.alive())

    def test_a_connection_that_closes_at_once_is_no_failure(self):
        before = metric_sum(self.gateway.admin, FAILURES, {})
        for _ in range(5):
            socket.create_connection(("127.0.0.1", self.port)).close()
        # Load balancers' probes do this. Requests served afterwards on the same workers
        # (handed out in turn) give the probes' ends time to be seen first.
        for _ in range(4):
            self.assert_served()
        self.assertEqual(metric_sum(self.gateway.admin, FAILURES, {}), before)


class CertificateRotationTest(unittest.TestCase):
    """SIGHUP re-reads the files: new connections get the new certificate, open ones keep
    theirs, and files that cannot be used keep the running certificate."""

    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox(prefix="vigil-tls-rotation-")
        cls.addClassCleanup(cls.sandbox.close)
        d = cls.sandbox.dir
        cls.a = make_certificate(d, "a", "vigil-rotation-a", 0xA1)
        cls.b = make_certificate(d, "b", "vigil-rotation-b", 0xB2)
        cls.live_cert, cls.live_key = d / "live.crt", d / "live.key"
        cls.install(cls.a)
        cls.echo = start_echo(cls.sandbox)
        cls.gateway = tls_gateway(cls.sandbox, cls.echo, cls.live_cert, cls.live_key)
        cls.pid = cls.gateway.pid

    @classmethod
    def install(cls, pair):
        cls.live_cert.write_bytes(pair[0].read_bytes())
        cls.live_key.write_bytes(pair[1].read_bytes())

    def reload(self):
        """SIGHUP; returns the log line that says how it went."""
        def outcomes():
            return [r for r in log_records(self.gateway.proc)
                    if r.get("msg", "").startswith("TLS certificate")]
        seen = len(outcomes())
        os.kill(self.pid, signal.SIGHUP)
        return wait_for(lambda: outcomes()[seen:], what="the reload's log line")[0]

    def presented(self, cert):
        """(subject CN, serial) of the certificate a new connection gets, verified against
        `cert`."""
        with RawConnection(self.gateway.port, tls=trusting(cert)) as conn:
            peer = conn.sock.getpeercert()
            res = conn.exchange("GET", "/echo/who", {"Host": "localhost"})
            self.assertEqual(res.status, 200, res)
        subject = dict(item for rdn in peer["subject"] for item in rdn)
        return subject["commonName"], int(peer["serialNumber"], 16)

    def test_a_new_certificate_is_presented_to_new_connections_after_sighup(self):
        self.install(self.a)
        self.reload()
        self.assertEqual(self.presented(self.a[0]), ("vigil-rotation-a", 0xA1))
        held = RawConnection(self.gateway.port, tls=trusting(self.a[0]))
        try:
            self.assertEqual(held.exchange("GET", "/echo/1", {"Host": "localhost"}).status, 200)
            self.install(self.b)
            line = self.reload()
            self.assertEqual(line["msg"], "TLS certificate reloaded")
            self.assertEqual(line["tls.server.subject"], "CN=vigil-rotation-b")
            self.assertEqual(self.presented(self.b[0]), ("vigil-rotation-b", 0xB2))
            # The connection opened before goes on with its session and certificate.
            self.assertEqual(held.exchange("GET", "/echo/2", {"Host": "localhost"}).status, 200)
            self.assertEqual(int(held.sock.getpeercert()["serialNumber"], 16), 0xA1)
        finally:
            held.close()
        self.assertEqual(self.gateway.pid, self.pid)
        self.assertTrue(self.gateway.alive())

    def test_files_that_cannot_be_used_keep_the_running_certificate(self):
        self.install(self.b)
        self.reload()
        for broken in ((b"not a certificate\n", self.b[1].read_bytes()),
                       (self.b[0].read_bytes(), self.a[1].read_bytes())):
            self.live_cert.write_bytes(broken[0])
            self.live_key.write_bytes(broken[1])
            line = self.reload()
            self.assertEqual(line["level"], "warn")
            self.assertEqual(line["msg"], "TLS certificate not reloaded: keeping the running one")
            self.assertIn(str(self.live_cert), line["error"])
            self.assertEqual(self.presented(self.b[0]), ("vigil-rotation-b", 0xB2))
        self.assertTrue(self.gateway.alive())


class TlsStartupTest(unittest.TestCase):
    """Files that cannot be used stop the gateway at start, naming the variable and file."""

    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox(prefix="vigil-tls-start-")
        cls.addClassCleanup(cls.sandbox.close)
        cls.a = make_certificate(cls.sandbox.dir, "a", "a", 1)
        cls.b = make_certificate(cls.sandbox.dir, "b", "b", 2)
        cls.config = write_gateway_config(cls.sandbox, [])

    def start(self, env):
        ports = free_ports(2)
        full_env = dict(os.environ, VIGIL_PORT=str(ports[0]), VIGIL_ADMIN_PORT=str(ports[1]),
                        VIGIL_GATEWAY_AUTH="false", **env)
        return subprocess.run([binary(GATEWAY_BINARY), "--config", str(self.config)],
                              env=full_env, capture_output=True, text=True, timeout=30)

    def test_a_missing_certificate_file_stops_start_up(self):
        missing = self.sandbox.dir / "missing.crt"
        proc = self.start({"VIGIL_TLS_CERT_FILE": str(missing),
                           "VIGIL_TLS_KEY_FILE": str(self.a[1])})
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(f'VIGIL_TLS_CERT_FILE="{missing}" cannot be read', proc.stderr)

    def test_a_key_of_another_certificate_stops_start_up(self):
        proc = self.start({"VIGIL_TLS_CERT_FILE": str(self.a[0]),
                           "VIGIL_TLS_KEY_FILE": str(self.b[1])})
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(f'VIGIL_TLS_KEY_FILE="{self.b[1]}" does not match the certificate',
                      proc.stderr)

    def test_one_file_without_the_other_stops_start_up(self):
        proc = self.start({"VIGIL_TLS_CERT_FILE": str(self.a[0])})
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("VIGIL_TLS_KEY_FILE", proc.stderr)


if __name__ == "__main__":
    unittest.main()
