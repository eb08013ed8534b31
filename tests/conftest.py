"""Shared pytest configuration."""

pytest_plugins = ["tests.storage", "tests.browser", "tests.console_site"]
