"""Background work of each process, every loop under one supervisor (``supervisor``).

- ``supervisor``: runs each loop as a named task, restarts it with capped backoff after any exception (logged with
  its traceback), records its state for /health ``tasks``. A later loop is declared in ``runtime.Worker.__init__``:
  ``supervisor.loop(name, step)`` (``step()`` does one round, returns the seconds until the next) or
  ``supervisor.every(name, seconds, job, leader_only=True)`` (a periodic job, only while this process leads).
- ``runtime``: the Worker, which declares the loops: drainers, facts, webhook sender, leadership (every process);
  aggregate (with the upgrade's backfills, ``backfill``), maintain and delete_names (the leader only).
- ``drain``: the Redis ingest stream into PostgreSQL, exactly once, acknowledged after the commit.
- ``facts``: what stored events report (event.tracked fan-out, funnel completions in ``webhook_facts``, quota
  crossings), read from the event outbox after the drain's acknowledgement.
- ``aggregator``: the dirty hours into the rollups; a timed-out hour is quarantined, never retried forever.
- ``leader`` (leader election), ``deadletters``, ``webhook_sender`` (the signed, fair outbox sender).

May import model, config, store and ingest."""
