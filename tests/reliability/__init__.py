"""Reliability tests: disconnect storms, double-bridge properties, hostile input, fault
injection and a soak (``python -m tests.reliability.report [--soak]`` writes
``docs/reliability.md`` from their figures)."""
