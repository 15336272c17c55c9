"""The embedded mail world flowtest runs against when no live account is
configured. The engine never imports this package; the CLI and tests do."""

from flowtest.sandbox.faults import CATALOGUE as FAULTS
from flowtest.sandbox.keys import Keyring
from flowtest.sandbox.world import World

__all__ = ["FAULTS", "Keyring", "World"]
