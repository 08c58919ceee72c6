"""The HTTP edge, no domain rules: the one edge middleware (``edge``: request id, forwarded headers,
errors, CORS, guards, access), credentials and the access check (``credentials``, ``auth``, ``access``), error
bodies (``errors``, Segment's shape in ``segment``), body and parameter parsing (``body``, ``params``), the
API's database pools (``pools``), app state keys (``appkeys``) and the OpenAPI document (``openapi``).

May import model, config and ingest (its errors and wire contract)."""
