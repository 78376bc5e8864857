"""REST API tests: contract, isolation, OpenAPI and live-server runs."""
