"""Tier-2 tests: events, ledger, compactor, lineage and search."""
