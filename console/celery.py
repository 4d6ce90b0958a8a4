"""The Celery app: the distributed engine for extraction and provisioning."""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutdown
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
# The embedded broker (sqla+sqlite://, the default) polls its table ten times a second, not once.
TRANSPORT_ALIASES["sqla"] = TRANSPORT_ALIASES["sqlalchemy"] = "console.core.broker:Transport"

app = Celery("console")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)
_stop_heartbeat = threading.Event()


def _beat_heartbeat(hostname: str) -> None:
    """Write this worker's heartbeat until it shuts down (for /readyz)."""
    from django.conf import settings
    from django.db import close_old_connections
    from django.utils import timezone

    from console.core.models import WorkerHeartbeat

    started = timezone.now()
    while not _stop_heartbeat.is_set():
        try:
            WorkerHeartbeat.objects.update_or_create(
                hostname=hostname,
                defaults={"last_seen_at": timezone.now()},
                create_defaults={"last_seen_at": timezone.now(), "started_at": started},
            )
        except Exception:
            logger.warning("worker heartbeat failed", exc_info=True)
        finally:
            close_old_connections()
        _stop_heartbeat.wait(settings.WORKER_HEARTBEAT_SECONDS)


@worker_ready.connect
def start_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    hostname = getattr(sender, "hostname", None) or socket.gethostname()
    _stop_heartbeat.clear()
    threading.Thread(target=_beat_heartbeat, args=(hostname,), name="console-heartbeat", daemon=True).start()


@worker_shutdown.connect
def stop_heartbeat(**kwargs: Any) -> None:
    _stop_heartbeat.set()


@worker_process_init.connect
def warm_up_process(**kwargs: Any) -> None:
    """Each pool process loads the SCIM client's TLS trust store and modules before its first task,
    so the first action it runs (an approval waiting to be carried out) does not wait for them."""
    from integrations.scim_client import warm_up

    warm_up()
