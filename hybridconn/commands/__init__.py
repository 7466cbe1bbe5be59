"""Subcommands of the ``hybridconn`` console script (see :mod:`hybridconn.cli`)."""
