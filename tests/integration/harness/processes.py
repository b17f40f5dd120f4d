"""Child processes that are always stopped, the sandbox they run in, free ports, and
readiness polling with deadlines.

Every wait here polls a condition with a deadline; nothing sleeps in the hope that a
process is ready."""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# SIGTERM (a CI runner's or `timeout`'s) unwinds like Ctrl-C, and the sandboxes still open
# when the interpreter exits are closed (see Sandbox), so the child processes are stopped
# instead of being left running. A handler the importing program set itself is kept.
if (threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL):
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def build_dir():
    """Where the programs are built: $VIGIL_BUILD_DIR (CTest sets it), else build/release.
    Read at each call, so that a program may set it after importing the harness."""
    return Path(os.environ.get("VIGIL_BUILD_DIR", ROOT / "build" / "release"))


def binary(relative):
    path = build_dir() / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is not built; run ./vigil build")
    return str(path)


def free_ports(n):
    """`n` distinct free loopback ports (held together while choosing, so they differ)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            sockets.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port():
    return free_ports(1)[0]


def can_connect(port, host="127.0.0.1", timeout=1.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _poll(condition, timeout, interval, what, check=None):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        if check is not None:
            check()
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # the condition may fail until the peer is up
            last_error = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


def wait_for(condition, timeout=20.0, interval=0.05, what="condition"):
    """Polls `condition` until it returns a truthy value, which is returned."""
    return _poll(condition, timeout, interval, what)


def wait_ready(proc, condition, what, timeout=20.0, interval=0.05):
    """Like wait_for, but gives up at once (with the program's output) when `proc`, a
    Process, exits."""
    def check():
        if proc.proc.poll() is not None:
            raise AssertionError(f"{proc.name} exited with {proc.proc.returncode} while "
                                 f"waiting for {what}; output:\n{proc.output()[-4000:]}")
    _poll(condition, timeout, interval, what, check)


def proc_status(pid, key):
    """A number field of /proc/<pid>/status ("VmRSS", "VmHWM" in KiB, "Threads"), or
    None when the process or the field is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def read_peak_rss(pid):
    """The process' peak resident set size (VmHWM) in bytes."""
    kib = proc_status(pid, "VmHWM")
    if kib is None:
        raise AssertionError(f"no VmHWM in /proc/{pid}/status")
    return kib * 1024


# util-linux's setpriv sets the parent-death signal and then executes the program (same
# PID): a child started from the main thread gets SIGTERM when this interpreter dies,
# even by SIGKILL, which no handler or atexit sees. Not from other threads, since the
# signal follows the thread that started the child.
_SETPRIV = shutil.which("setpriv")


def _with_parent_death_signal(argv):
    if _SETPRIV is None or threading.current_thread() is not threading.main_thread():
        return list(argv)
    return [_SETPRIV, "--pdeathsig", "TERM", "--", *argv]


class Process:
    """A child process whose output (stdout and stderr) goes to <workdir>/<name>.log;
    stopped by PID on stop(). `env` is added to this interpreter's environment, or is the
    whole environment when `inherit_env` is false. With `new_session` it runs in its own
    session, so a Ctrl-C at the terminal reaches only this interpreter, which then stops
    it."""

    def __init__(self, argv, workdir, name, env=None, inherit_env=True, new_session=False):
        self.name = name
        self.log_path = Path(workdir) / f"{name}.log"
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ) if inherit_env else {}
        full_env.update(env or {})
        try:
            self.proc = subprocess.Popen(_with_parent_death_signal(argv), stdout=self._log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=full_env, cwd=workdir,
                                         start_new_session=new_session)
        except OSError:
            self._log.close()
            raise

    @property
    def pid(self):
        return self.proc.pid

    def output(self):
        return self.log_path.read_text(errors="replace")

    def lines(self):
        return self.output().splitlines()

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends `sig`, waits, and returns the exit code (killing it after `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class Sandbox:
    """A temporary directory plus the processes started in it, all cleaned up: by close(),
    or at interpreter exit for one still open (a run interrupted by Ctrl-C or SIGTERM skips
    unittest's tearDown). The directory is kept when `keep` is true, or when it is None
    and VIGIL_KEEP_TEST_DIRS is set. `new_sessions`: every process gets its own session
    (see Process)."""

    _open = set()

    def __init__(self, prefix="vigil-it-", keep=None, new_sessions=False):
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.processes = []
        self.keep = bool(os.environ.get("VIGIL_KEEP_TEST_DIRS")) if keep is None else keep
        self.new_sessions = new_sessions
        Sandbox._open.add(self)

    def start(self, argv, name, env=None, inherit_env=True):
        # A crash report stays in the sandbox (a program restarted under the same name
        # delivers it), not in the machine's /tmp.
        env = {"VIGIL_SENTRY_OUTBOX": str(self.dir / "crashes" / name), **(env or {})}
        p = Process(argv, self.dir, name, env, inherit_env, self.new_sessions)
        self.processes.append(p)
        return p

    def close(self):
        if self not in Sandbox._open:
            return
        Sandbox._open.discard(self)
        for p in reversed(self.processes):
            p.stop(getattr(p, "stop_signal", signal.SIGTERM))
        if self.keep:
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


@atexit.register
def _close_open_sandboxes():
    for sandbox in list(Sandbox._open):
        sandbox.close()
