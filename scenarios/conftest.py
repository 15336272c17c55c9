"""The user's checks run under flowtest's plugin (registered in the root conftest)."""
