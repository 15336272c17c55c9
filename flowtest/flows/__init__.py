"""The legs: net/ and mail/ combined into results."""
