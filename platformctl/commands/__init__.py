"""platformctl's commands, one module each (``<name>_command.py``: ``NAME``, ``HELP``,
``configure(parser)`` and ``run(args) -> exit code``), listed in :mod:`platformctl.__main__`."""
