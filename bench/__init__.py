"""Benchmarks, each a script that prints Markdown tables: ``python bench/<name>.py``.

A package so that one script can reuse another's code (``bench.history``).
"""
