"""The fleet of one command: what the manifest selects, proved and loaded from the server.

Between render and plan: ``session`` opens one command's context (manifest,
targets, keys, journal); ``pinning`` proves each key points where the manifest
says; ``load`` fetches live configs and renders desired documents into
``FleetItem``\\ s; ``shards`` splits a fleet by target key; ``keycheck`` is
``validate --check-keys``. May import manifest, render, engine and journal;
never plan, apply, rollback, run, report or commands.
"""
