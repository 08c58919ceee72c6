"""Which PostgreSQL and Redis the service talks to: the configured URLs, or embedded servers."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import Settings
from .embedded import EmbeddedPostgres
from .embedded_redis import EmbeddedRedis

__all__ = ["Services"]


@dataclass
class Services:
    """The stores in use; embedded ones are started by :meth:`up` and stopped by :meth:`down`."""

    settings: Settings
    postgres: EmbeddedPostgres | None = field(default=None, init=False)
    redis: EmbeddedRedis | None = field(default=None, init=False)

    def up(self, *, redis: bool = True) -> Settings:
        """Start whatever embedded server is needed; return settings with the URLs filled in."""
        database_url = self.settings.database_url
        redis_url = self.settings.redis_url
        if database_url is None:
            self.postgres = EmbeddedPostgres(self.settings.data_dir)
            database_url = self.postgres.start()
        if redis_url is None and redis:
            self.redis = EmbeddedRedis(self.settings.data_dir)
            redis_url = self.redis.start()
        return self.settings.with_(database_url=database_url, redis_url=redis_url)

    def down(self) -> None:
        """Stop the embedded servers this object started (their data stays for the next start)."""
        if self.redis is not None and self.redis.started_here:
            self.redis.stop()
        if self.postgres is not None and self.postgres.started_here:
            self.postgres.stop()
