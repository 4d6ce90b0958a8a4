"""``manage.py runconsole``: web, a Celery worker and beat, together, in the foreground.

Ctrl-C (or SIGTERM) stops all three and waits for them; if one dies, the others are
stopped too, so the console never runs half-started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the web server, a worker and beat in the foreground until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("CONSOLE_BIND", "127.0.0.1:8000"))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
        parser.add_argument("--worker-concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "2")))

    def handle(self, *args: Any, bind: str, web_workers: int, worker_concurrency: int, **options: Any) -> None:
        python = sys.executable
        data_dir = str(settings.DATA_DIR)
        commands = {
            "web": [
                python,
                "-m",
                "gunicorn",
                "console.wsgi:application",
                "--bind",
                bind,
                "--workers",
                str(web_workers),
                "--access-logfile",
                "-",
                "--graceful-timeout",
                "10",
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "console",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(worker_concurrency),
                "--hostname",
                "worker@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "console",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                os.path.join(data_dir, "celerybeat-schedule"),
            ],
        }
        processes: dict[str, subprocess.Popen[bytes]] = {}
        stopping = False

        def stop(signum: int = signal.SIGTERM, frame: Any = None) -> None:
            nonlocal stopping
            if stopping:
                return
            stopping = True
            self.stdout.write("Stopping web, worker and beat…")
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, command in commands.items():
            # Children get their own process group, so one Ctrl-C reaches them only through us
            # and they shut down in order rather than all at once mid-write.
            processes[name] = subprocess.Popen(command, start_new_session=True)
        self.stdout.write(self.style.SUCCESS(f"Lifecycle Console is running on http://{bind}/ (Ctrl-C stops it)"))
        exit_code = 0
        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with {process.returncode}; stopping the others.")
                        exit_code = process.returncode or 1
                        stop()
                        break
                time.sleep(0.5)
        finally:
            deadline = time.monotonic() + 30
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.stdout.write("Stopped.")
        if exit_code:
            sys.exit(exit_code)
