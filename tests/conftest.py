"""Shared pytest set-up: fixtures live in tests/fixtures, one module per real service."""

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.s3",
    "tests.fixtures.media",
    "tests.fakes.fixtures",
]
