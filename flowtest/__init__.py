"""flowtest: prove a personal domain's mail works end to end."""

__version__ = "0.1.0"
