"""nself-analytics: self-hosted product and web analytics on your own PostgreSQL and Redis."""

from .config import ConfigError, Settings
from .host.app import create_app, create_root_app

__all__ = ["ConfigError", "Settings", "__version__", "create_app", "create_root_app"]

__version__ = "1.1.1"
