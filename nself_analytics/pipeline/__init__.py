"""Background work of each process: the drain of the ingest stream into PostgreSQL (``drain``), the
runtime that starts and stops the loops (``runtime``: drainers, aggregator, maintenance, webhook sender),
leader election for the once-per-cluster schedules (``leader``), the upgrade's backfills run by the leader's
aggregate job (``backfill``), dead letters (``deadletters``) and webhooks (``webhook_facts``: what the drain
reports; ``webhook_sender``: the signed outbox sender).

May import model, config, store and ingest."""
