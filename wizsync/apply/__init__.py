"""Apply: ordered batches with a fresh dry-run per chatbot and write-ahead journaling.

``schedule`` is the pure arithmetic (order, batches, failure budget);
``decide`` the pure choice at each step of one chatbot's apply (and the one
"may have applied" rule); ``batches`` carries one run's items through them. May import plan, fleet,
journal and engine; never rollback, run or commands.
"""
