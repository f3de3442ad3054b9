# SPDX-License-Identifier: ISC
"""sd_notify: READY, STATUS, WATCHDOG cadence, RELOADING+MONOTONIC_USEC then
READY on SIGHUP, STOPPING on SIGTERM; on a path socket and an abstract one.

The daemon's only source points at a closed loopback port, so it stays up
retrying: no API server is needed to watch the service-manager protocol.
"""
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from tests.integration.harness import BIN, closed_port


def write_conf(d):
    path = os.path.join(d, "agentsyncd.conf")
    with open(path, "w") as f:
        f.write(f"""[agentsyncd]
database = {d}/mirror.db
log_level = debug

[source cotool]
type = cotool
base_url = http://127.0.0.1:{closed_port()}
token_env = COTOOL_API_KEY
poll_interval = 1s
backoff_initial = 5s
""")
    return path


class Notify:
    def __init__(self, addr):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(addr)
        self.msgs = []     # (monotonic time, {key: value})

    def wait_for(self, key, value=None, timeout=10.0):
        """Messages until one has key (=value); returns that message."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                break
            fields = dict(line.split("=", 1) for line in
                          data.decode().splitlines() if "=" in line)
            self.msgs.append((time.monotonic(), fields))
            if key in fields and (value is None or fields[key] == value):
                return fields
        raise AssertionError(f"no {key}={value} within {timeout}s; got "
                             f"{[m for _, m in self.msgs][-10:]}")

    def close(self):
        self.sock.close()


class NotifyTest(unittest.TestCase):
    def run_daemon(self, notify_env):
        d = tempfile.mkdtemp(prefix="agentsyncd-notify-")
        conf = write_conf(d)
        env = dict(os.environ, COTOOL_API_KEY="notify-test-key-0001",
                   NOTIFY_SOCKET=notify_env, WATCHDOG_USEC="1000000")
        env.pop("JOURNAL_STREAM", None)
        err = open(os.path.join(d, "stderr"), "w+")
        proc = subprocess.Popen([BIN, "-c", conf], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        self.addCleanup(self.reap, proc, err)
        return proc, err

    @staticmethod
    def reap(proc, err):
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        err.close()

    def protocol(self, n, proc):
        ready = n.wait_for("READY", "1")
        self.assertIn("STATUS", ready)      # STATUS comes with READY
        # Watchdog: WATCHDOG_USEC=1s -> a ping every 0.5 s.
        t0 = time.monotonic()
        pings = 0
        while time.monotonic() - t0 < 2.6:
            n.wait_for("WATCHDOG", "1", timeout=2.0)
            pings += 1
        self.assertGreaterEqual(pings, 4)
        self.assertLessEqual(pings, 7)
        # STATUS names the source and keeps being current.
        st = n.wait_for("STATUS", timeout=8.0)
        self.assertIn("cotool", st["STATUS"])
        # Reload: RELOADING=1 with MONOTONIC_USEC, then READY=1.
        before = time.clock_gettime(time.CLOCK_MONOTONIC)
        proc.send_signal(signal.SIGHUP)
        rel = n.wait_for("RELOADING", "1")
        after = time.clock_gettime(time.CLOCK_MONOTONIC)
        usec = int(rel["MONOTONIC_USEC"])
        self.assertGreaterEqual(usec, int(before * 1e6) - 1000)
        self.assertLessEqual(usec, int(after * 1e6) + 1000)
        n.wait_for("READY", "1")
        # Stop: STOPPING=1, exit 0 within 5 s.
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        n.wait_for("STOPPING", "1")
        self.assertEqual(proc.wait(timeout=5), 0)
        self.assertLess(time.monotonic() - t0, 5.0)

    def test_path_socket(self):
        d = tempfile.mkdtemp(prefix="agentsyncd-sock-")
        path = os.path.join(d, "notify")
        n = Notify(path)
        self.addCleanup(n.close)
        proc, _ = self.run_daemon(path)
        self.protocol(n, proc)

    def test_abstract_socket(self):
        name = f"agentsyncd-test-{os.getpid()}-{time.monotonic_ns()}"
        n = Notify("\0" + name)
        self.addCleanup(n.close)
        proc, _ = self.run_daemon("@" + name)
        self.protocol(n, proc)

    def test_silent_without_notify_socket(self):
        d = tempfile.mkdtemp(prefix="agentsyncd-nonotify-")
        conf = write_conf(d)
        env = dict(os.environ, COTOOL_API_KEY="notify-test-key-0002")
        env.pop("NOTIFY_SOCKET", None)
        proc = subprocess.Popen([BIN, "-c", conf], env=env,
                                stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=5), 0)


if __name__ == "__main__":
    unittest.main()
