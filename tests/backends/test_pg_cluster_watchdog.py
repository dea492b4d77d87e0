"""The tests' throwaway PostgreSQL server stops by itself when the test process is killed.

``pg_ctl`` daemonizes the server: a test run killed by a timeout or SIGKILL used to leave it
running, listening on loopback, with its folder under /tmp (found on this machine after a killed
run).  ``PgCluster`` starts a watchdog that stops the server once its process is gone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pg_cluster import find_bindir

pytestmark = pytest.mark.skipif(find_bindir() is None, reason="no PostgreSQL server binaries on this machine "
                                "(.ci/run installs them)")

CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from pg_cluster import PgCluster
cluster = PgCluster(fsync=False).start()
print(cluster.port, cluster.root, flush=True)
sys.stdin.read()  # until killed
"""


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_killed_test_process_leaves_no_server_running() -> None:
    support = str(Path(__file__).resolve().parents[1] / "support")
    with subprocess.Popen([sys.executable, "-c", CHILD, support], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as child:
        try:
            port_text, root = (child.stdout.readline() if child.stdout else "").split()
            port = int(port_text)
            assert _listening(port) and Path(root).exists()
            os.kill(child.pid, signal.SIGKILL)  # no stop(), no atexit: what a timeout's kill does
            child.wait(timeout=10)
            deadline = time.monotonic() + 30
            while (_listening(port) or Path(root).exists()) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _listening(port), "the server still listens after its test process was killed"
            assert not Path(root).exists(), "the server's folder is still there"
        finally:
            if child.poll() is None:
                child.kill()
