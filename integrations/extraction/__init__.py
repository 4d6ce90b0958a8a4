"""Extraction: read every user, group and membership of an integration into the console.

``flow`` tells the story of a run (start, read page by page, find what changed, write,
link members, finish; its lease and its recovery); ``storage`` how what is read is
written, and why each trick is there; ``fingerprints`` and ``resources`` what is kept of
a resource read. What other apps use is here.
"""

from integrations.extraction.fingerprints import content_hash, fingerprint
from integrations.extraction.flow import (
    ExtractionRefused,
    LeaseLost,
    extraction_progress,
    extraction_run_cancel,
    extraction_run_execute,
    extraction_start,
    extractions_recover,
)
from integrations.extraction.resources import (
    GROUP_FIELDS,
    USER_FIELDS,
    department_and_title,
    stored_group_resource,
    target_user_fields,
    target_user_values,
)

__all__ = [
    "GROUP_FIELDS",
    "USER_FIELDS",
    "ExtractionRefused",
    "LeaseLost",
    "content_hash",
    "department_and_title",
    "extraction_progress",
    "extraction_run_cancel",
    "extraction_run_execute",
    "extraction_start",
    "extractions_recover",
    "fingerprint",
    "stored_group_resource",
    "target_user_fields",
    "target_user_values",
]
