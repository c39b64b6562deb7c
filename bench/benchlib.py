"""Helpers every bench script shares: logging, ports, bounded waits, process facts."""

import os
import socket
import subprocess
import sys
import time
import urllib.request


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n):
    """n distinct free ports (each held until all are chosen, so none is handed out twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def log_tail(path, lines=20):
    """The last lines of a receiver's log, for the report of a failed start."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


def wait_until(what, predicate, timeout=60.0, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # not up yet
            last = e
        time.sleep(interval)
    raise RuntimeError(f"timed out waiting for {what} (last: {last!r})")


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def vm_hwm_kib(pid):
    """Peak resident memory of the process so far (KiB), or None."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def cpu_seconds(pid):
    """User + system CPU the process has used so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sync_disk():
    subprocess.run(["sync"], check=True)


def stop(proc, sig_timeout=30):
    """SIGTERM, then SIGKILL after `sig_timeout` s; always reaped. A server run under strace
    is signalled itself (ending strace would detach it and leave it running)."""
    if proc is None:
        return
    if proc.poll() is None and getattr(proc, "args", [None])[0] == "strace":
        # Terminating strace would detach it and leave the traced server running: end the
        # server (strace's child), and strace exits with it.
        try:
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                for child in f.read().split():
                    os.kill(int(child), 15)
            proc.wait(timeout=sig_timeout)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=sig_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
