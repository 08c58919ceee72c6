"""Email over SMTP (ANALYTICS_SMTP_URL, from ANALYTICS_SMTP_FROM) with aiosmtplib: a multipart message with the
plain text, the HTML alternative and the chart as an inline image (``cid:chart``)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from ...config import Settings
from .chat import ChannelError
from .message import Rendered

__all__ = ["build_email", "send_email"]


def build_email(sender: str, to: str, rendered: Rendered) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = rendered.subject.replace("\r", " ").replace("\n", " ")
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    if rendered.png is not None:
        html_part = message.get_body(("html",))
        assert isinstance(html_part, EmailMessage)
        html_part.add_related(rendered.png, maintype="image", subtype="png", cid="<chart>", filename="chart.png")
    return message


async def send_email(settings: Settings, to: str, rendered: Rendered) -> None:
    smtp = settings.smtp
    if smtp is None:
        raise ChannelError("ANALYTICS_SMTP_URL is not set on the service")
    await aiosmtplib.send(build_email(settings.smtp_from, to, rendered), sender=settings.smtp_from, recipients=[to],
                          hostname=smtp.host, port=smtp.port, username=smtp.username, password=smtp.password,
                          use_tls=smtp.tls, start_tls=smtp.starttls, timeout=settings.webhook_timeout)
