"""Segments, campaigns, automations and reports: the retention engine."""
