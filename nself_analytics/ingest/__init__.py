"""The ingest service: the one path behind /track, /batch, /identify, /page, /v1/* (Segment) and /hit
(the beacon). Wire messages are normalized (``normalize``), enriched (``enrich``, ``geo``),
checked (``site_guard`` for the beacon, ``quota_check``), counted (``counter_keys``) and queued in the Redis
stream (``queue``, key names in ``redis_keys``) by ``service.Ingestor``. Its refusals are in ``refusals`` (no HTTP).

May import model, config and store."""
