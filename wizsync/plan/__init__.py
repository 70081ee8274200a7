"""Plan: a server-side dry-run of every fleet item (``dryrun``), and plans that travel (``planfile``).

May import fleet, render, engine and report's data types; never apply,
rollback, run or commands.
"""
