"""Registers flowtest's pytest plugin for this repository (unless the installed
package's pytest11 entry point already did)."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    import flowtest.pytest_plugin as plugin

    if not config.pluginmanager.is_registered(plugin):
        config.pluginmanager.register(plugin, "flowtest")
        plugin.pytest_configure(config)


def pytest_addoption(parser: pytest.Parser) -> None:
    import importlib.metadata

    # The entry point adds the options itself when the package is installed.
    names = {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}
    if "flowtest" not in names:
        from flowtest.pytest_plugin import pytest_addoption as add

        add(parser)
