"""``python -m godel``: the same as the ``godel`` command (``godel up`` starts ``godel serve`` this way)."""

import importlib

# By module name: mypy checks cli/ as its own package, not as godel.cli.
importlib.import_module("godel.cli.main").main()
