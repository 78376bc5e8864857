"""Maintenance across domains: garbage collection of what no retained version names."""
