"""platformctl's I/O: the stack files and the project's program run under Pulumi's mock engine, git,
AWS, Kubernetes and Vault. Built on :mod:`platformctl.core`; imports nothing from
:mod:`platformctl.commands` (tests/test_import_graph.py)."""
