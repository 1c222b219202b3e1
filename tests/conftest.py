"""Fixtures shared by every test layer. Service fixtures (real Redis and PostgreSQL started by the harness)
live in tests/integration/services.py."""

pytest_plugins = ["tests.integration.services"]
