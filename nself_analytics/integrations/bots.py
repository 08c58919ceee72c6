"""The report bots: ``nself-analytics bot telegram`` (python-telegram-bot) and ``bot discord`` (discord.py).

Configured with TELEGRAM_BOT_TOKEN / DISCORD_BOT_TOKEN, ANALYTICS_URL, ANALYTICS_API_TOKEN and
ANALYTICS_SITE; ANALYTICS_BOT_CHATS (comma-separated chat or channel ids) restricts who may ask, since
the figures are the site's private analytics. Both answer through :mod:`.reports`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config import ConfigError
from .client import AnalyticsClient, ClientConfig
from .reports import HELP, run_report

if TYPE_CHECKING:
    from discord.ext import commands
    from telegram.ext import Application

__all__ = ["BotConfig", "build_discord", "build_telegram", "run_bot"]

TELEGRAM_COMMANDS = ("stats", "pages", "referrers", "countries", "devices", "trend", "languages")
DISCORD_COMMANDS = ("stats", "pages", "referrers", "countries", "devices", "trend", "languages")
NOT_ALLOWED = "This chat may not read these analytics (see ANALYTICS_BOT_CHATS)."


class BotConfig:
    """The chat token, the API client settings and the allowed chats (empty: any)."""

    def __init__(self, token: str, client: ClientConfig, chats: frozenset[str] = frozenset()) -> None:
        self.token = token
        self.client = client
        self.chats = chats

    @classmethod
    def from_env(cls, env: Mapping[str, str], token_variable: str) -> BotConfig:
        token = env.get(token_variable, "").strip()
        if not token:
            raise ConfigError(token_variable, "", "set it to the bot's token")
        chats = frozenset(c.strip() for c in env.get("ANALYTICS_BOT_CHATS", "").split(",") if c.strip())
        return cls(token, ClientConfig.from_env(env, need_site=True), chats)

    def allows(self, chat_id: object) -> bool:
        return not self.chats or str(chat_id) in self.chats


def build_telegram(config: BotConfig, *, base_url: str | None = None) -> Application:
    """The python-telegram-bot Application: /start and one CommandHandler per report."""
    from telegram import Update
    from telegram.ext import Application, CommandHandler, ContextTypes

    client = AnalyticsClient(config.client)
    site = config.client.site or ""

    builder = Application.builder().token(config.token)
    if base_url:
        builder = builder.base_url(base_url)
    app = builder.build()

    async def start(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_message is not None:
            await update.effective_message.reply_text(HELP.format(site=site, prefix="/"))

    def handler(name: str) -> Any:
        async def report(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            message = update.effective_message
            if message is None:
                return
            if not config.allows(message.chat_id):
                await message.reply_text(NOT_ALLOWED)
                return
            await message.reply_text(await run_report(client, name, site, list(context.args or [])))

        return report

    app.add_handler(CommandHandler(["start", "help"], start))
    for name in TELEGRAM_COMMANDS:
        app.add_handler(CommandHandler(name, handler(name)))
    return app


def build_discord(config: BotConfig) -> commands.Bot:
    """The discord.py Bot: ``!help`` and one command per report (message content intent needed)."""
    import discord
    from discord.ext import commands

    intents = discord.Intents.default()
    intents.message_content = True
    bot = commands.Bot(command_prefix="!", intents=intents, help_command=None)
    client = AnalyticsClient(config.client)
    site = config.client.site or ""

    def command(name: str) -> commands.Command[Any, Any, Any]:
        async def report(ctx: commands.Context[Any], *args: str) -> None:
            if not config.allows(ctx.channel.id):
                await ctx.send(NOT_ALLOWED)
                return
            await ctx.send(await run_report(client, name, site, list(args)))

        return commands.Command(report, name=name)

    async def help_(ctx: commands.Context[Any], *_args: str) -> None:
        await ctx.send(HELP.format(site=site, prefix="!"))

    bot.add_command(commands.Command(help_, name="help"))
    for name in DISCORD_COMMANDS:
        bot.add_command(command(name))
    return bot


def run_bot(kind: str, env: Mapping[str, str]) -> int:
    """Run a bot until interrupted; ConfigError names a missing variable."""
    if kind == "telegram":
        build_telegram(BotConfig.from_env(env, "TELEGRAM_BOT_TOKEN")).run_polling()
        return 0
    if kind == "discord":
        config = BotConfig.from_env(env, "DISCORD_BOT_TOKEN")
        build_discord(config).run(config.token, log_handler=None)
        return 0
    raise ConfigError("bot", kind, "use telegram or discord")
