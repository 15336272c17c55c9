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


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files that hold a ``slow`` test run first, each file's tests in their
    order: under ``make test``'s workers (``--dist loadfile``) the long
    files are then handed out at the start, not left for one worker at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
