"""Which PostgreSQL and Redis the service talks to: the configured URLs, or embedded servers."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import Settings
from ..pipeline.supervisor import STORE_TASKS_FILE
from .embedded import EmbeddedPostgres
from .embedded_redis import EmbeddedRedis
from .store_keeper import Store, StoreKeeper

__all__ = ["Services"]


@dataclass
class Services:
    """The stores in use; embedded ones are started by :meth:`up`, restarted when they die by :meth:`keep`, and
    stopped by :meth:`down`."""

    settings: Settings
    postgres: EmbeddedPostgres | None = field(default=None, init=False)
    redis: EmbeddedRedis | None = field(default=None, init=False)
    keeper: StoreKeeper | None = field(default=None, init=False)

    def up(self, *, redis: bool = True, take_over: bool = False) -> Settings:
        """Start whatever embedded server is needed; return settings with the URLs filled in. ``take_over`` (the
        service, holding the data folder's lock): stores of this data folder still running are orphans of an
        earlier service; they are stopped first, and the new ones are this process's children."""
        database_url = self.settings.database_url
        redis_url = self.settings.redis_url
        if take_over:
            (self.settings.data_dir / STORE_TASKS_FILE).unlink(missing_ok=True)
        if database_url is None:
            self.postgres = EmbeddedPostgres(self.settings.data_dir)
            if take_over:
                self.postgres.stop_orphan()
                self.postgres.die_with_parent = True
            database_url = self.postgres.start()
        if redis_url is None and redis:
            self.redis = EmbeddedRedis(self.settings.data_dir)
            if take_over:
                self.redis.stop_orphan()
                self.redis.die_with_parent = True
            redis_url = self.redis.start()
        return self.settings.with_(database_url=database_url, redis_url=redis_url)

    def keep(self) -> None:
        """Restart an embedded store that dies, with backoff, until :meth:`down` (host/store_keeper.py)."""
        stores: dict[str, Store] = {}
        if self.postgres is not None and self.postgres.started_here:
            stores["embedded-postgres"] = self.postgres
        if self.redis is not None and self.redis.started_here:
            stores["embedded-redis"] = self.redis
        if stores:
            self.keeper = StoreKeeper(self.settings.data_dir, stores)
            self.keeper.start()

    def down(self) -> None:
        """Stop the embedded servers this object started (their data stays for the next start)."""
        if self.keeper is not None:
            self.keeper.halt()
        if self.redis is not None and self.redis.started_here:
            self.redis.stop()
        if self.postgres is not None and self.postgres.started_here:
            self.postgres.stop()
