"""The embedded broker: kombu's SQLAlchemy transport (a table in SQLite), polled more often.

Its channel looks for messages once a second by default, so on the embedded default every
action, extraction and lifecycle pass waited up to a second before a worker took it (the
leavers' benchmark measured 8.5 s of queueing at ten leavers a second). The interval is
the transport's own attribute; the transport's options all go to ``create_engine``, so it
cannot be given there. ``console.celery`` makes this the transport of ``sqla+`` URLs.
"""

from __future__ import annotations

import os

from kombu.transport.sqlalchemy import Transport as SqlAlchemyTransport


class Transport(SqlAlchemyTransport):
    polling_interval = float(os.environ.get("EMBEDDED_BROKER_POLL_SECONDS") or 0.1)
