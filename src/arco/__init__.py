"""Arco: a file-native lakehouse catalog and asset orchestrator.

Importing ``arco`` is cheap; the catalog, API and CLI live in subpackages that
are imported on use.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
