"""Reliability and security scenarios, one module per concern. Each scenario returns a
``common.Outcome``: figures to print and the problems found (none when everything held)."""
