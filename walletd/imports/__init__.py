"""Bringing existing members in from another loyalty system: files, dry runs and import jobs."""
