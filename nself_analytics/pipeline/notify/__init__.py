"""Notification channels, reusable by every producer (alerts now, reports later): a message from a payload
(``message``: subject, plain text, inline-styled HTML), a small chart drawn offline (``png``: a pure-Python PNG
writer), the senders (``chat``: Telegram through python-telegram-bot, Discord through discord.py; ``mail``: SMTP
through aiosmtplib) and the outbox sender that delivers np_analytics_notifications rows (``outbox``).

May import model, config and store (the package's layer rules are pipeline's)."""
