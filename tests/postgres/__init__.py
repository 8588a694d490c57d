"""PostgreSQL tests: every statement the program declares, run the way Vault runs it on a real server."""
