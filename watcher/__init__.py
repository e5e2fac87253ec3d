"""policy-watcher: watch terms of service and privacy policies, clause by clause.

The pipeline, one module per stage: config -> fetch -> normalize -> store -> diff ->
notify, driven by check (one run) and schedule (the daemon), with cli as the shell.
"""

__version__ = "0.1.0"
