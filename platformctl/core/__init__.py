"""platformctl's pure cores: decisions and views computed from values (a declaration, a spec, a stack's
config, text read by the caller); no file, network, cluster or AWS access. Imports nothing from
:mod:`platformctl.adapters` or :mod:`platformctl.commands` (tests/test_import_graph.py)."""
