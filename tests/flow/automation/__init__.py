"""Schedules, sensors, backfills, checks, freshness and alerts.

A package, so that its conftest does not shadow tests/conftest.py.
"""
