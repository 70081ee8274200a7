"""The orchestration of plan, apply, resume and rollback: the one place a run is put together.

``lifecycle`` is the life of one run (lock, journal row, recorder, signals,
how it ends); ``items`` says where a run's items come from (the fleet, the
journal, snapshots); ``flows`` is what apply, resume and rollback decide
differently; ``signals`` is Ctrl-C and SIGTERM. May import every library
package; only ``commands`` imports it.
"""
