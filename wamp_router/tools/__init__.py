"""Command-line helpers for operators (credentials for the config file)."""
