"""Pure functions over messages: no sockets, no clocks except those passed in."""
