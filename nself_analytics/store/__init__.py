"""The store layer: all SQL, parameterized, as named constants next to the functions that run it.

One module per resource (events, funnels, people, identity: the person map and its links, quotas, webhooks, the
upgrade's backfills...); ``online_ddl`` (synchronous) is the events' index changes a migration makes without
blocking writers;
the rollups the aggregator materializes and the reads that plan over them are in ``store/rollups/``.
May import model and config only (no Redis, no HTTP)."""
