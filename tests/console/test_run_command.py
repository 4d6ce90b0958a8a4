"""The run command starts web, worker and beat together, and Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import subprocess_env

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.worker
@pytest.mark.usefixtures("transactional_db")
def test_runconsole_serves_becomes_ready_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "runconsole.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "runconsole",
            "--bind",
            f"127.0.0.1:{port}",
            "--web-workers",
            "1",
            "--worker-concurrency",
            "1",
        ],
        cwd=ROOT,
        env=subprocess_env(WORKER_HEARTBEAT_SECONDS="1"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        output = (tmp_path / "runconsole.log").read_text(errors="replace")
        assert ready is not None, output[-3000:]
        assert ready.status_code == 200, output[-3000:]
        assert "celery beat" in output.lower()
        assert "ready." in output
        # What a terminal's Ctrl-C does: SIGINT to the whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=45) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
    output = (tmp_path / "runconsole.log").read_text(errors="replace")
    assert "Stopped." in output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
