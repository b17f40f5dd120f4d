#!/usr/bin/env python3
"""Vigil's log console and log search, behind `./vigil up` and `./vigil logs`.

    logview.py console [--dir D] [--json | --text] NAME=PIPE ...
        Reads each service's output pipe, appends every line unchanged to D/NAME.jsonl
        (rotated by size) and shows the lines on the terminal, readable or raw.
    logview.py search [TRACE_ID] [--service S] [--level L] [--dir D] [--json | --text]
        Prints the lines of D/*.jsonl, rotated files included, that match.

Readable lines read: local time, level, service, the trace id's first 8 hex digits, the
message, then the request's key fields and the other attributes:

    13:05:10.123 INFO  auth     4bf92f35 request completed  POST /login 200 12.4ms

Standard library only: `./vigil` runs it with Debian's python3 and nothing else.
"""

import argparse
import collections
import datetime
import fcntl
import heapq
import json
import os
import re
import selectors
import signal
import sys
import threading
from pathlib import Path

LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")
# Shown in their own columns, or not at all: version and env are the same on every line of
# a service, and a request's spans and lines are found through its trace id.
COLUMN_KEYS = {"time", "level", "msg", "service", "version", "env", "trace_id", "span_id",
               "request_id"}
# Shown right after the message, in this order, without their names.
KEY_FIELDS = ("http.request.method", "http.route", "url.path", "http.response.status_code",
              "duration_ms", "error.type")

# The colours `./vigil up` has always given the services, so that they stay recognisable;
# another name gets one of the palette's by a stable hash of it.
SERVICE_COLORS = {"gateway": "36", "auth": "35", "catalog": "33", "orders": "32"}
PALETTE = ("34", "36", "35", "33", "32", "94", "96", "95")
LEVEL_COLORS = {"trace": "2", "debug": "2", "info": "", "warn": "1;33", "error": "1;31",
                "fatal": "1;37;41"}

READ_SIZE = 1 << 20
# Linux lets an unprivileged process grow a pipe to 1 MiB (/proc/sys/fs/pipe-max-size).
PIPE_SIZE = 1 << 20


def use_color(stream):
    """Colours on a terminal unless NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


class Formatter:
    """Turns one log line (bytes, without its newline) into one readable line of text."""

    def __init__(self, color):
        self.color = color

    def _paint(self, code, text):
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and code else text

    def service(self, name):
        code = SERVICE_COLORS.get(name) or PALETTE[sum(name.encode()) % len(PALETTE)]
        return self._paint(code, f"{name:<8}")

    @staticmethod
    def local_time(value):
        try:
            t = datetime.datetime.fromisoformat(value).astimezone()
        except (TypeError, ValueError):
            return f"{value!s:<12}"
        return f"{t:%H:%M:%S}.{t.microsecond // 1000:03d}"

    def _field(self, key, value):
        if key == "http.response.status_code" and isinstance(value, int):
            return self._paint("31" if value >= 500 else "33" if value >= 400 else "",
                               str(value))
        if key == "duration_ms" and isinstance(value, (int, float)):
            return f"{round(value, 2):g}ms"
        if key == "error.type":
            return self._paint("31", f"error.type={value}")
        return value if isinstance(value, str) else json.dumps(value)

    def format(self, service, raw):
        text = raw.decode("utf-8", "replace")
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            # Not a log line (a crash message on stderr, say): the text as it came, in the
            # message column.
            return f"{'':12} {'':5} {self.service(service)} {'':8} {text}"
        level = str(record.get("level", ""))
        level_code = LEVEL_COLORS.get(level, "")
        msg = str(record.get("msg", ""))
        if level in ("warn", "error", "fatal"):
            msg = self._paint("1", msg)
        trace = str(record.get("trace_id", ""))[:8]
        route = "http.route" in record
        fields = [self._field(k, record[k]) for k in KEY_FIELDS
                  if k in record and not (k == "url.path" and route)]
        fields += [self._paint("2", f"{k}={v if isinstance(v, str) else json.dumps(v)}")
                   for k, v in record.items() if k not in COLUMN_KEYS and k not in KEY_FIELDS]
        time = self.local_time(record["time"]) if "time" in record else ""
        line = (f"{time:<12} {self._paint(level_code, f'{level.upper():<5}')} "
                f"{self.service(service)} {self._paint('2', f'{trace:<8}')} {msg}")
        return line + "  " + " ".join(fields) if fields else line


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ---------------------------------------------------------------------------- console


class RotatingFile:
    """Appends bytes to `path`. Once the file would grow past `max_bytes` it is renamed
    `path.1` (`path.1` to `path.2`, ...; `path.<keep>` is dropped) at a line boundary, so
    that every file holds whole lines; a single line longer than `max_bytes` is kept whole."""

    def __init__(self, path, max_bytes, keep):
        self.path, self.max_bytes, self.keep = Path(path), max_bytes, keep
        self.file = open(path, "ab")
        self.size = self.file.tell()
        self.at_line_start = self.size == 0 or self._ends_with_newline()

    def _ends_with_newline(self):
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def _write(self, data):
        self.file.write(data)
        self.size += len(data)
        self.at_line_start = data.endswith(b"\n")

    def _rotate(self):
        self.file.close()
        for i in range(self.keep, 0, -1):
            older = Path(f"{self.path}.{i - 1}") if i > 1 else self.path
            if older.exists():
                os.replace(older, f"{self.path}.{i}")
        self.file = open(self.path, "wb")
        self.size = 0
        self.at_line_start = True

    def write(self, data):
        while data:
            room = max(self.max_bytes - self.size, 0)
            if len(data) <= room:
                self._write(data)
                break
            cut = data.rfind(b"\n", 0, room) + 1
            if cut:
                self._write(data[:cut])
            elif self.at_line_start and self.size:
                cut = 0  # the next line does not fit: it starts the next file
            else:
                cut = data.find(b"\n") + 1 or len(data)  # a line longer than the limit
                self._write(data[:cut])
                if not self.at_line_start:
                    break  # its end comes with the next read
            data = data[cut:]
            self._rotate()
        # Flushed at every read, so that `./vigil logs` finds a line as soon as it came.
        self.file.flush()

    def close(self):
        self.file.close()


class Display:
    """Shows lines on the terminal from its own thread, out of a bounded backlog.

    A terminal that falls behind (a flood, a paused or slow terminal) must never hold up
    the reading of the pipes, which would block or make the services drop lines: lines
    that find the backlog full are counted instead of queued, and one line in their place
    says how many were not shown and which file has them."""

    def __init__(self, fd, render, backlog, paths):
        self.fd, self.render, self.backlog, self.paths = fd, render, backlog, paths
        self.items = collections.deque()
        self.skipped = {}  # service -> lines not shown since the last notice
        self.cond = threading.Condition()
        self.closed = False
        self.broken = False
        self.writes = 0
        self.thread = threading.Thread(target=self._run, name="display", daemon=True)
        self.thread.start()

    def offer(self, service, data):
        """Queues the whole lines in `data` (ending with a newline) or counts them."""
        with self.cond:
            if self.broken:
                return
            room = self.backlog - len(self.items)
            if room <= 0:
                self.skipped[service] = self.skipped.get(service, 0) + data.count(b"\n")
                return
            self._flush_notice()
            lines = data.split(b"\n")[:-1]
            self.items.extend((service, line) for line in lines[:room])
            if len(lines) > room:
                self.skipped[service] = self.skipped.get(service, 0) + len(lines) - room
            self.cond.notify()

    def _flush_notice(self):
        if self.skipped:
            self.items.append((None, self.skipped))
            self.skipped = {}

    def _notice(self, skipped):
        return "".join(f"… {n:,} lines not shown (all in {self.paths[s]})\n"
                       for s, n in skipped.items())

    def _run(self):
        while True:
            with self.cond:
                while not self.items and not self.closed:
                    self.cond.wait()
                if not self.items:
                    return
                batch = list(self.items)
                self.items.clear()
            data = b"".join(self._notice(line).encode() if service is None
                            else self.render(service, line) for service, line in batch)
            try:
                write_all(self.fd, data)
            except OSError:
                # The terminal is gone (hung up, or the reader of a pipe exited): stop
                # showing; the files still get every line.
                with self.cond:
                    self.broken = True
                    self.items.clear()
                return
            self.writes += 1

    def close(self, patience=2.0):
        """Shows what is left, waiting while the terminal makes progress; gives up on one
        that made none for `patience` seconds (nothing more can be shown there)."""
        with self.cond:
            self._flush_notice()
            self.closed = True
            self.cond.notify()
        seen = -1
        while self.thread.is_alive() and self.writes != seen:
            seen = self.writes
            self.thread.join(patience)


class Stream:
    """One service's pipe: every byte to its file, whole lines to the display."""

    def __init__(self, name, path, logfile, display):
        self.name, self.logfile, self.display = name, logfile, display
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            # Room for a burst while this process writes to disk, in the pipe rather than
            # in the service's log queue, which drops lines when full.
            fcntl.fcntl(self.fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # not a pipe, or above this system's limit: the default size then
        self.partial = b""

    def read(self):
        """Takes what the pipe holds: True when it gave something, False when it has
        nothing now, None at its end (every writer closed it)."""
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return False
        if not data:
            return None
        self.logfile.write(data)
        end = data.rfind(b"\n") + 1
        if end:
            self.display.offer(self.name, self.partial + data[:end])
            self.partial = data[end:]
        else:
            self.partial += data
        return True

    def close(self):
        if self.partial:
            self.display.offer(self.name, self.partial + b"\n")
        os.close(self.fd)
        self.logfile.close()


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KMG]?)(i?B)?", text.strip(), re.IGNORECASE)
    if not m or int(m[1]) == 0:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a size: expected a positive number of bytes, optionally with "
            "K, M or G (KiB, MiB, GiB), e.g. 64M")
    return int(m[1]) << {"": 0, "K": 10, "M": 20, "G": 30}[m[2].upper()]


def parse_input(text):
    name, sep, path = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not path:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not NAME=PIPE (a service name of letters, digits, '.', '_' or '-', "
            "then the path of the pipe it writes to)")
    return name, path


def run_console(args):
    # Ctrl-C reaches every process of the terminal's group, this one too. It must outlive
    # the services to take their last lines: it ends when every pipe has closed, or at
    # SIGTERM once it has read what the pipes still hold (what `./vigil up` sends after
    # the services have exited).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, lambda *_: None)

    names = [name for name, _ in args.inputs]
    if len(set(names)) != len(names):
        fail(f"a service name is given twice: {' '.join(names)}")
    os.makedirs(args.dir, exist_ok=True)
    paths = {name: os.path.join(args.dir, f"{name}.jsonl") for name in names}
    raw = args.json or not (args.text or sys.stdout.isatty())
    formatter = Formatter(use_color(sys.stdout))
    render = ((lambda _, line: line + b"\n") if raw
              else (lambda service, line: (formatter.format(service, line) + "\n").encode()))
    display = Display(sys.stdout.fileno(), render, args.backlog, paths)

    streams = []
    selector = selectors.DefaultSelector()
    selector.register(wake_r, selectors.EVENT_READ)
    for name, path in args.inputs:
        try:
            logfile = RotatingFile(paths[name], args.max_bytes, args.keep)
        except OSError as e:
            fail(f"cannot write {paths[name]}: {e.strerror}")
        try:
            stream = Stream(name, path, logfile, display)
        except OSError as e:
            fail(f"cannot read {name}'s pipe {path}: {e.strerror}")
        streams.append(stream)
        selector.register(stream.fd, selectors.EVENT_READ, stream)

    open_streams = len(streams)
    stopping = False
    try:
        while open_streams and not stopping:
            for key, _ in selector.select():
                if key.data is None:
                    stopping = True
                elif key.data.read() is None:
                    selector.unregister(key.fd)
                    open_streams -= 1
        for stream in streams:
            while stream.read():
                pass
            stream.close()
    except OSError as e:  # the pipes are open, so this is the disk: full, or gone
        fail(f"cannot write the log files in {args.dir}: {e}")
    display.close()
    return 0


# ---------------------------------------------------------------------------- search


def log_files(directory, service):
    """The service's files, oldest first: NAME.jsonl.<keep> ... NAME.jsonl.1, NAME.jsonl."""
    rotated = []
    for path in Path(directory).glob(f"{service}.jsonl.*"):
        suffix = path.name[len(service) + len(".jsonl."):]
        if suffix.isdigit():
            rotated.append((int(suffix), path))
    current = Path(directory) / f"{service}.jsonl"
    return ([path for _, path in sorted(rotated, reverse=True)]
            + ([current] if current.exists() else []))


def matching_lines(service, files, trace, min_level):
    """Yields (time, service, line) for the lines of `files` that pass the filters, in file
    order. Lines that are not JSON have no trace or level: they pass only when neither is
    asked for, and sort with the line before them."""
    needle = trace.encode() if trace else None
    last_time = ""
    for path in files:
        with open(path, "rb") as f:
            for line in f:
                line = line.rstrip(b"\n")
                if needle and needle not in line:
                    continue  # most lines fail here, before being parsed
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    if not trace and min_level is None:
                        yield last_time, service, line
                    continue
                last_time = str(record.get("time", last_time))
                if trace and not str(record.get("trace_id", "")).lower().startswith(trace):
                    continue
                if min_level is not None:
                    level = record.get("level")
                    if level not in LEVELS or LEVELS.index(level) < min_level:
                        continue
                yield last_time, service, line


def run_search(args):
    directory = Path(args.dir)
    known = sorted({p.name.split(".jsonl")[0] for p in directory.glob("*.jsonl*")
                    if re.fullmatch(r".+\.jsonl(\.\d+)?", p.name)})
    if not known:
        fail(f"no log files in {directory} (./vigil up writes them there)")
    services = args.service or known
    for service in services:
        if service not in known:
            fail(f"no log files for service '{service}' in {directory} "
                 f"(there are: {', '.join(known)})")
    trace = None
    if args.trace_id is not None:
        if not re.fullmatch(r"[0-9a-fA-F]{1,32}", args.trace_id):
            fail(f"'{args.trace_id}' is not a trace id: expected 32 hex digits, or the "
                 "first few of them")
        trace = args.trace_id.lower()
    min_level = LEVELS.index(args.level) if args.level else None

    files = {s: log_files(directory, s) for s in services}
    # Each file holds one service's lines in the order they were written; merged by their
    # time, a trace reads in the order it happened across the services.
    merged = heapq.merge(*(matching_lines(s, files[s], trace, min_level) for s in services),
                         key=lambda item: item[0])
    raw = args.json or not (args.text or sys.stdout.isatty())
    formatter = Formatter(use_color(sys.stdout))
    out = sys.stdout.buffer
    found = 0
    try:
        for _, service, line in merged:
            out.write(line + b"\n" if raw else (formatter.format(service, line) + "\n").encode())
            found += 1
        out.flush()
    except BrokenPipeError:
        # The reader left (`| head`): not an error. Nothing more can be written there, and
        # Python's own flush at exit would fail again on the same pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if not found:
        count = sum(len(f) for f in files.values())
        print(f"logview: no line matches in the {count} log file(s) of "
              f"{', '.join(services)} in {directory}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------- main


def fail(message):
    print(f"logview: {message}", file=sys.stderr)
    sys.exit(2)


def add_output_flags(parser):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true",
                       help="the lines as they were written, one JSON object each (the "
                            "default when stdout is not a terminal)")
    group.add_argument("--text", action="store_true",
                       help="readable lines even when stdout is not a terminal (colours "
                            "only on a terminal, and not when NO_COLOR is set)")


def main(argv):
    parser = argparse.ArgumentParser(
        prog="logview.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Each command takes --help.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    console = commands.add_parser(
        "console", help="the console of ./vigil up",
        description="Reads the pipes the services write their log lines to, appends every "
                    "line unchanged to DIR/NAME.jsonl and shows the lines on the terminal. "
                    "A service never waits for it: when the terminal falls behind, lines "
                    "are left out of the display (one line says how many) but never out "
                    "of the files. Ends when every pipe has closed, or at SIGTERM after "
                    "reading what the pipes still hold; Ctrl-C (SIGINT) is ignored, so "
                    "that the services' last lines are kept when they stop.")
    console.add_argument("inputs", metavar="NAME=PIPE", nargs="+", type=parse_input,
                         help="a service name and the pipe (or file) it writes to")
    console.add_argument("--dir", default="build/run/logs",
                         help="where the log files go (default: %(default)s)")
    console.add_argument("--max-bytes", type=parse_size, default=64 << 20,
                         help="size at which a file is rotated: 4096, 512K, 64M, 1G "
                              "(default: 64M)")
    console.add_argument("--keep", type=int, default=3,
                         help="rotated files kept per service, NAME.jsonl.1 being the "
                              "newest (default: %(default)s)")
    console.add_argument("--backlog", type=int, default=1000,
                         help="lines waiting for the terminal beyond which lines are not "
                              "shown (default: %(default)s)")
    add_output_flags(console)

    search = commands.add_parser(
        "search", help="the lines of the log files that match, as ./vigil logs prints them",
        description="Prints the lines of DIR/*.jsonl and their rotated files, oldest to "
                    "newest and merged across services by time, that match every filter "
                    "given. Exits 1 when none does.")
    search.add_argument("trace_id", metavar="TRACE_ID", nargs="?",
                        help="the trace id, 32 hex digits or the first few of them")
    search.add_argument("--service", action="append", metavar="S",
                        help="only this service's lines (repeatable)")
    search.add_argument("--level", choices=LEVELS, metavar="L",
                        help=f"only lines at this level or above ({'|'.join(LEVELS)})")
    search.add_argument("--dir", default="build/run/logs",
                        help="where the log files are (default: %(default)s)")
    add_output_flags(search)

    args = parser.parse_args(argv)
    if args.command == "console":
        if args.keep < 0 or args.backlog < 1:
            fail("--keep must be 0 or more and --backlog 1 or more")
        return run_console(args)
    return run_search(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
