"""Extraction from a local SCIM server at 100k users, and the users tab at 1M rows (``python -m bench.extraction``)."""
