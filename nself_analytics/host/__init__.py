"""The process and its platform: the nself plugin and its hooks (``plugin``, ``hookspecs``), the command
line (``cli``), the app factory (``app``), start-up, lifecycle and worker processes (``startup``,
``lifecycle``, ``processes``), the embedded PostgreSQL and Redis (``embedded``), services, migrations, logging
and the dead-letter command.

May import every layer; nothing imports host."""
