"""The errors a query fails with, each with its problem code (and HTTP status in the API)."""

from __future__ import annotations

from arco.core.errors import ArcoError, InvalidArgumentError


class QueryRejectedError(InvalidArgumentError):
    """The query is not allowed: not a single SELECT, too long, or it tried to leave the sandbox."""

    code = "query-rejected"


class QueryTimeoutError(ArcoError):
    """The query ran longer than its time limit and was interrupted (HTTP 422)."""

    code = "query-timeout"


class QueryTooLargeError(ArcoError):
    """The result has more rows or bytes than allowed, or the query needs more memory (HTTP 413)."""

    code = "query-too-large"


class QueryError(InvalidArgumentError):
    """DuckDB refused or failed the query (syntax, unknown table or column, types...)."""

    code = "query-error"
