"""Writes that run beside the reads of an extraction: one thread, in order, on the reader's connection.

An extraction is two kinds of work on two machines: reading pages from the application
(HTTP and JSON, in this process) and storing them (mostly the database server's own work:
parsing rows, heap and index pages, WAL). Done one after the other, each waits for the
other. With a ``BackgroundWriter`` the reader hands each batch of rows to a thread and
reads on; the thread writes the batches in the order they came, in transactions of their
own, while the next pages arrive.

The thread uses the reader's own database connection (``inc_thread_sharing``), so it sees
and joins what the reader's transaction sees, test transactions included. The reader does
not touch the database while the writer holds it: everything goes through ``submit``, and
``close`` (or leaving the ``with`` block) waits for the last batch before the reader uses
the connection again. At most ``AHEAD`` batches wait, so memory stays bounded and a slow
database slows the reader down instead of piling rows up.

The thread runs only on PostgreSQL, and only with ``settings.EXTRACTION_BACKGROUND_WRITES``
on: SQLite writes in this process, under the same interpreter lock as the reads, so
nothing would overlap. Otherwise each batch is written at once, inside ``submit``.

The first error of a batch (a lost lease, a database error) stops the writer: the batches
after it are dropped, and the error is raised to the reader at its next ``submit`` or at
``close``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

AHEAD = 2  # batches handed over and not yet written, at most

Job = Callable[[], None]


class BackgroundWriter:
    """Run write jobs in order, on a thread beside the caller (PostgreSQL) or at once."""

    def __init__(self, *, using: str = DEFAULT_DB_ALIAS) -> None:
        self.using = using
        self.connection = connections[using]
        self.threaded = bool(self.connection.vendor == "postgresql" and settings.EXTRACTION_BACKGROUND_WRITES)
        self.error: BaseException | None = None
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=AHEAD)
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        if self.threaded:
            self.connection.ensure_connection()
            self.connection.inc_thread_sharing()
            self._thread = threading.Thread(target=self._work, name="extraction-writer", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close(raise_error=value is None)

    def submit(self, job: Job) -> None:
        """Write ``job`` after those before it; raises the error of an earlier one."""
        self._raise_pending()
        if not self.threaded:
            job()
            return
        self._jobs.put(job)  # waits while AHEAD jobs wait already

    def close(self, *, raise_error: bool = True) -> None:
        """Wait for every job handed over; with ``raise_error``, raise the first error of one."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join()
            self.connection.dec_thread_sharing()
        if raise_error:
            self._raise_pending()

    def _raise_pending(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def _work(self) -> None:
        connections[self.using] = self.connection  # this thread's handle is the reader's connection
        try:
            while (job := self._jobs.get()) is not None:
                if self.error is None:
                    try:
                        job()
                    except BaseException as exc:  # handed to the reader, which decides
                        self.error = exc
        finally:
            # The handle is the reader's: this thread must not close it on its way out.
            del connections[self.using]
