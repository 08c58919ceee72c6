"""Rollups: the aggregate tables the background aggregator materializes (``aggregates``), the web
sessions, daily and hourly rollups (``web_rollup``, ``web_daily``, ``web_hour_stats``), event first/last times
(``event_times``), the HyperLogLog sketches (``hll``) and the dirty hours a read must scan raw (``dirty``).

Part of the store layer: may import model, config and the rest of store."""
