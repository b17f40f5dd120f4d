"""The log console of `./vigil up` and the search of `./vigil logs` (tools/logview.py).

The console is fed through named pipes, as `./vigil up` feeds it; a pseudo-terminal that
nobody reads stands for a terminal that cannot keep up."""

import errno
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
from pathlib import Path

from harness import wait_for

ROOT = Path(__file__).resolve().parents[2]
LOGVIEW = str(ROOT / "tools" / "logview.py")
VIGIL = str(ROOT / "vigil")
ANSI = re.compile(r"\x1b\[[0-9;]*m")

TRACE_A = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_B = "4bf92f35aaaaaaaaaaaaaaaaaaaaaaaa"  # the same first 8 hex digits as TRACE_A

# A writer as fast as a service's log thread: batches of lines in one write each.
WRITER = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
batch = []
for i in range(int(sys.argv[2])):
    batch.append('{"time":"2026-11-22T13:05:%02d.%06dZ","level":"info","msg":"request completed",'
                 '"service":"gateway","version":"0.3.0","env":"dev","trace_id":"%032x",'
                 '"http.request.method":"GET","http.route":"/items/{id}",'
                 '"http.response.status_code":200,"duration_ms":0.5,"seq":%d}\n'
                 % (i // 1000000, i % 1000000, i, i))
    if len(batch) == 64:
        os.write(fd, "".join(batch).encode())
        batch = []
os.write(fd, "".join(batch).encode())
"""


def record(time, level, msg, trace=None, **fields):
    line = {"time": f"2026-11-22T13:05:{time}Z", "level": level, "msg": msg,
            "service": "x", "version": "0.3.0", "env": "dev"}
    if trace:
        line.update(trace_id=trace, span_id="00f067aa0ba902b7", request_id="01JD")
    line.update(fields)
    return json.dumps(line, separators=(",", ":"))


def read_until_closed(fd, into):
    """Reads a pty's master side until every holder of its other side has closed it."""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError as e:
            if e.errno == errno.EIO:
                return
            raise
        if not data:
            return
        into.append(data)


class ConsoleCase(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="vigil-it-"))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.logs = self.dir / "logs"

    def start_console(self, services, *flags, stdout, env=None):
        """Starts the console on one named pipe per service; returns it and, per service,
        a descriptor open for writing on its pipe (its end is the console's end)."""
        pipe_dir = Path(tempfile.mkdtemp(dir=self.dir))
        self.pipes = {name: pipe_dir / name for name in services}
        for path in self.pipes.values():
            os.mkfifo(path)
        full_env = dict(os.environ, TZ="UTC")
        full_env.pop("NO_COLOR", None)
        full_env.update(env or {})
        self.stderr_path = self.dir / "console.stderr"
        with open(self.stderr_path, "wb") as stderr:
            console = subprocess.Popen(
                [sys.executable, LOGVIEW, "console", "--dir", str(self.logs), *flags,
                 *(f"{name}={path}" for name, path in self.pipes.items())],
                stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=full_env)
        self.addCleanup(lambda: console.poll() is None and (console.kill(), console.wait()))
        # Opening a pipe without a reader fails (ENXIO) instead of blocking: this also
        # waits for the console to have opened them.
        writers = {name: wait_for(lambda p=path: os.open(p, os.O_WRONLY | os.O_NONBLOCK),
                                  what=f"the console to open {path}")
                   for name, path in self.pipes.items()}
        for fd in writers.values():
            os.set_blocking(fd, True)
        return console, writers

    def finish(self, console, writers):
        for fd in writers.values():
            os.close(fd)
        self.assertEqual(console.wait(timeout=20), 0, self.stderr_path.read_text())

    def run_console(self, lines_by_service, *flags):
        """Feeds each service's lines through the console, its stdout a file (not a
        terminal); returns what it printed."""
        out_path = self.dir / "console.out"
        with open(out_path, "wb") as out:
            console, writers = self.start_console(list(lines_by_service), *flags, stdout=out)
        for name, lines in lines_by_service.items():
            os.write(writers[name], "".join(line + "\n" for line in lines).encode())
        self.finish(console, writers)
        return out_path.read_text()


class FloodTest(ConsoleCase):
    LINES = 200_000
    MAX_BYTES = 256 * 1024

    def test_every_line_reaches_the_files_in_order_while_the_terminal_is_stuck(self):
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        console, writers = self.start_console(
            ["gateway"], "--max-bytes", "256K", "--keep", "1000", "--backlog", "500",
            stdout=slave)
        os.close(slave)

        # Nobody reads the terminal yet: the writer finishes only if the console keeps
        # reading its pipe all the same.
        subprocess.run([sys.executable, "-c", WRITER, str(self.pipes["gateway"]),
                        str(self.LINES)], check=True, timeout=60)

        def files():
            rotated = sorted(self.logs.glob("gateway.jsonl.*"),
                             key=lambda p: int(p.suffix[1:]), reverse=True)
            return rotated + [self.logs / "gateway.jsonl"]

        def line_count():
            return sum(p.read_bytes().count(b"\n") for p in files()) == self.LINES

        wait_for(line_count, timeout=20, interval=0.1, what="every line in the files")
        self.assertIsNone(console.poll(), "the console ended while its pipe was open")
        paths = files()
        self.assertGreater(len(paths), 20, "the files were not rotated at 256 KiB")
        for path in paths[:-1]:
            data = path.read_bytes()
            self.assertLessEqual(len(data), self.MAX_BYTES, path.name)
            self.assertTrue(data.endswith(b"\n"), f"{path.name} ends inside a line")
        seqs = [json.loads(line)["seq"]
                for path in paths for line in path.read_bytes().splitlines()]
        self.assertEqual(seqs, list(range(self.LINES)))

        # The terminal is read again: what it shows plus what it says it left out is
        # every line, and what it shows is in order.
        shown = []
        reader = threading.Thread(target=read_until_closed, args=(master, shown))
        reader.start()
        self.finish(console, writers)
        reader.join(20)
        text = ANSI.sub("", b"".join(shown).decode())
        shown_seqs = [int(m) for m in re.findall(r" seq=(\d+)", text)]
        notices = re.findall(r"… ([\d,]+) lines not shown \(all in (.+?)\)", text)
        self.assertTrue(notices, "a flood into a stuck terminal skipped nothing")
        self.assertEqual({path for _, path in notices}, {str(self.logs / "gateway.jsonl")})
        self.assertEqual(shown_seqs, sorted(shown_seqs))
        self.assertEqual(len(shown_seqs) + sum(int(n.replace(",", "")) for n, _ in notices),
                         self.LINES)

    def test_rotation_keeps_the_newest_files(self):
        lines = [record(f"10.{i:06d}", "info", f"line {i:03d} " + "x" * 60) for i in range(100)]
        self.run_console({"auth": lines}, "--max-bytes", "1K", "--keep", "2")
        names = sorted(p.name for p in self.logs.iterdir())
        self.assertEqual(names, ["auth.jsonl", "auth.jsonl.1", "auth.jsonl.2"])
        kept = "".join((self.logs / n).read_text()
                       for n in ("auth.jsonl.2", "auth.jsonl.1", "auth.jsonl")).splitlines()
        self.assertEqual(kept, lines[-len(kept):])


class FormatTest(ConsoleCase):
    ACCESS = record("10.123456", "info", "request completed", TRACE_A,
                    **{"http.request.method": "POST", "url.path": "/api/auth/login",
                       "http.response.status_code": 200, "duration_ms": 12.4,
                       "client.address": "127.0.0.1", "http.route": "/api/auth/*"})
    NOT_FOUND = record("11.000001", "warn", "request completed", TRACE_B,
                       **{"http.request.method": "GET", "url.path": "/nope",
                          "http.response.status_code": 404, "duration_ms": 0.123456})
    FAILED = record("12.5", "error", "upstream failed",
                    **{"error.type": "timeout", "server.address": "127.0.0.1:8081",
                       "attempt": 2})
    CRASH = "terminate called without an active exception"
    LINES = [ACCESS, NOT_FOUND, FAILED, CRASH]

    def test_readable_lines_off_a_terminal_have_no_colour(self):
        out = self.run_console({"gateway": self.LINES}, "--text")
        self.assertEqual(out.splitlines(), [
            "13:05:10.123 INFO  gateway  4bf92f35 request completed  "
            "POST /api/auth/* 200 12.4ms client.address=127.0.0.1",
            "13:05:11.000 WARN  gateway  4bf92f35 request completed  GET /nope 404 0.12ms",
            "13:05:12.500 ERROR gateway           upstream failed  "
            "error.type=timeout server.address=127.0.0.1:8081 attempt=2",
            "                   gateway           " + self.CRASH,
        ])
        self.assertEqual((self.logs / "gateway.jsonl").read_text().splitlines(), self.LINES)

    def test_raw_lines_off_a_terminal_or_with_json(self):
        self.assertEqual(self.run_console({"gateway": self.LINES}).splitlines(), self.LINES)
        self.assertEqual(self.run_console({"gateway": self.LINES}, "--json").splitlines(),
                         self.LINES)
        # A second run appends to the files of the first.
        self.assertEqual((self.logs / "gateway.jsonl").read_text().splitlines(),
                         self.LINES * 2)

    def test_colours_on_a_terminal(self):
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        console, writers = self.start_console(["gateway", "auth"], stdout=slave)
        os.close(slave)
        os.write(writers["gateway"], (self.FAILED + "\n").encode())
        os.write(writers["auth"], (self.NOT_FOUND + "\n").encode())
        shown = []
        reader = threading.Thread(target=read_until_closed, args=(master, shown))
        reader.start()
        self.finish(console, writers)
        reader.join(20)
        text = b"".join(shown).decode()
        self.assertIn("\x1b[1;31mERROR\x1b[0m", text)  # errors stand out: bold red
        self.assertIn("\x1b[1;33mWARN \x1b[0m", text)
        self.assertIn("\x1b[36mgateway \x1b[0m", text)
        self.assertIn("\x1b[35mauth    \x1b[0m", text)
        self.assertIn("\x1b[33m404\x1b[0m", text)
        self.assertIn("\x1b[1mupstream failed\x1b[0m", text)


class SearchTest(unittest.TestCase):
    """./vigil logs over a rotated set of two services."""

    FILES = {  # oldest first within each service
        "gateway.jsonl.2": [
            record("01.000000", "info", "g1", TRACE_A),
            record("02.000000", "warn", "g2", TRACE_B),
        ],
        "gateway.jsonl.1": [
            record("04.000000", "error", "g3", TRACE_A),
            "not a JSON line",
        ],
        "gateway.jsonl": [
            record("06.000000", "info", "g4"),
            record("07.000000", "debug", "g5", TRACE_A),
        ],
        "auth.jsonl.1": [
            record("03.000000", "info", "a1", TRACE_A),
        ],
        "auth.jsonl": [
            record("05.000000", "warn", "a2", TRACE_B),
            record("08.000000", "fatal", "a3"),
        ],
    }

    @classmethod
    def setUpClass(cls):
        cls.dir = Path(tempfile.mkdtemp(prefix="vigil-it-"))
        for name, lines in cls.FILES.items():
            (cls.dir / name).write_text("".join(line + "\n" for line in lines))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def logs(self, *args):
        env = dict(os.environ, VIGIL_LOG_DIR=str(self.dir), VIGIL_SKIP_INSTALL="1", TZ="UTC")
        return subprocess.run([VIGIL, "logs", *args], capture_output=True, text=True,
                              env=env, timeout=30)

    def msgs(self, *args):
        result = self.logs(*args, "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        return [json.loads(line)["msg"] for line in result.stdout.splitlines()]

    def test_a_trace_by_prefix_across_services_and_rotated_files_in_time_order(self):
        self.assertEqual(self.msgs(TRACE_A), ["g1", "a1", "g3", "g5"])
        self.assertEqual(self.msgs("4bf92f357"), ["g1", "a1", "g3", "g5"])
        self.assertEqual(self.msgs("4BF92F35"), ["g1", "g2", "a1", "g3", "a2", "g5"])

    def test_service_and_level(self):
        self.assertEqual(self.msgs("--service", "auth"), ["a1", "a2", "a3"])
        self.assertEqual(self.msgs("--level", "warn"), ["g2", "g3", "a2", "a3"])
        self.assertEqual(self.msgs("4bf92f35", "--service", "gateway", "--level", "warn"),
                         ["g2", "g3"])

    def test_lines_that_are_not_json_come_only_without_a_trace_or_level(self):
        result = self.logs("--service", "gateway", "--json")
        self.assertIn("not a JSON line", result.stdout.splitlines())
        self.assertNotIn("not a JSON line", self.logs("--level", "trace").stdout)

    def test_readable_with_text(self):
        result = self.logs(TRACE_A, "--level", "error", "--text")
        self.assertEqual(result.stdout, "13:05:04.000 ERROR gateway  4bf92f35 g3\n")

    def test_errors(self):
        none = self.logs("0123456789abcdef")
        self.assertEqual(none.returncode, 1)
        self.assertIn("no line matches", none.stderr)
        bad = self.logs("not-hex")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("'not-hex' is not a trace id", bad.stderr)
        unknown = self.logs("--service", "billing")
        self.assertEqual(unknown.returncode, 2)
        self.assertIn("no log files for service 'billing'", unknown.stderr)
        self.assertIn("there are: auth, gateway", unknown.stderr)


if __name__ == "__main__":
    unittest.main()
