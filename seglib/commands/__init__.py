"""One module per ``python -m seglib`` command: ``HELP``, ``add_arguments``, ``run``."""
