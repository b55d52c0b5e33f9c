"""The `mynah` command line."""
