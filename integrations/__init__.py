"""Outbound SCIM applications: configuration, credentials, extraction."""
