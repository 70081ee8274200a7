"""One module per ``wizsync`` command; each is registered in ``wizsync/cli.py``."""
