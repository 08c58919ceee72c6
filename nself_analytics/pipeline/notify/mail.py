"""Email over SMTP (ANALYTICS_SMTP_URL, from ANALYTICS_SMTP_FROM) with aiosmtplib: a multipart message with the
plain text, the HTML alternative and the chart as an inline image (``cid:chart``).

TLS is never optional once asked for: with ``starttls=1`` a server that does not offer STARTTLS fails the send
(aiosmtplib refuses to go on in plain text), and a certificate that does not verify (against ANALYTICS_SMTP_CA_FILE
or the system's CAs, for the URL's host) fails it unless the URL says ``verify=0``. Both are :class:`TlsRefused`:
the outbox marks the notification failed at once (a retry would meet the same server), with the reason."""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from ...config import Settings
from .chat import ChannelError
from .message import Rendered

__all__ = ["TlsRefused", "build_email", "send_email"]


class TlsRefused(ChannelError):
    """The server did not give the TLS the URL asks for: no STARTTLS offered, or a certificate that does not
    verify."""


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


def _unverified(exc: ssl.SSLCertVerificationError) -> TlsRefused:
    return TlsRefused(f"TLS refused: the server's certificate does not verify ({exc.verify_message}); set "
                      "ANALYTICS_SMTP_CA_FILE, or verify=0 in ANALYTICS_SMTP_URL to accept it")


async def send_email(settings: Settings, to: str, rendered: Rendered) -> None:
    smtp = settings.smtp
    if smtp is None:
        raise ChannelError("ANALYTICS_SMTP_URL is not set on the service")
    try:
        await aiosmtplib.send(build_email(settings.smtp_from, to, rendered), sender=settings.smtp_from,
                              recipients=[to], hostname=smtp.host, port=smtp.port, username=smtp.username,
                              password=smtp.password, use_tls=smtp.tls, start_tls=smtp.starttls,
                              validate_certs=smtp.verify, cert_bundle=settings.smtp_ca_file,
                              timeout=settings.webhook_timeout)
    except ssl.SSLCertVerificationError as exc:
        raise _unverified(exc) from None
    except aiosmtplib.SMTPException as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ssl.SSLCertVerificationError):
            raise _unverified(cause) from None
        if "STARTTLS extension not supported" in str(exc):
            raise TlsRefused("TLS refused: the server does not offer STARTTLS (starttls=1); nothing was sent "
                             "in plain text") from None
        raise
