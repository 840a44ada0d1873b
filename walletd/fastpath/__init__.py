"""Requests answered below Flask where a measurement shows Flask's share dominates (issue 14)."""
