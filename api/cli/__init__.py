"""Command-line tools that talk to the API or its database: ``python -m api.cli.tokens``, ``python -m api.cli.experiments``."""
