"""nself-analytics: self-hosted product and web analytics on your own PostgreSQL and Redis.

The package is layered; each folder is a layer or a pipeline and says in its docstring what it owns and what it
may import (checked by tests/test_architecture.py; drawn in docs/architecture.md):

    model  <-  config  <-  store  <-  ingest  <-  pipeline
                              web (model, config, ingest)  <-  api (handlers)  <-  host (the process)
    integrations: HTTP clients of the service (config only)

This module holds the version only and imports nothing."""

__all__ = ["__version__"]

# The one place the version is written: setup.cfg reads it (attr:), and --version, /health, the OpenAPI info, the MCP
# server's serverInfo and plugin.yaml (tests/test_version.py) show it.
__version__ = "1.2.0"
