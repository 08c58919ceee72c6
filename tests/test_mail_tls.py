"""Alert email over TLS, end to end: a real local aiosmtpd server with a self-signed certificate made in the test
(the ``cryptography`` package), reached through ANALYTICS_SMTP_URL's two TLS forms, smtp://...?starttls=1 and
smtps://. The message arrives with its text and HTML parts. Hostile: a server that offers no STARTTLS when the URL
asks for it, and a certificate that does not verify, fail the delivery (failed at once, the reason in the alert's
history), nothing is sent in plain text, and verify=0 is the one way to accept such a certificate."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nself_analytics.config import ConfigError, Settings
from nself_analytics.model.mail_url import parse_smtp_url

from .alerts_support import checks, create_alert, hours_back, run_at, signup_alert
from .conftest import free_port
from .notify_support import Inbox


class Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, valid from an hour ago for a day."""

    def __init__(self, folder: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        self.cert = folder / "smtp-cert.pem"
        self.key = folder / "smtp-key.pem"
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


class Server:
    """A real SMTP server on 127.0.0.1: ``mode`` starttls (offers and requires STARTTLS), tls (TLS from the
    first byte) or plain (offers no STARTTLS)."""

    def __init__(self, certificate: Certificate, mode: str) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        context = certificate.server_context()
        if mode == "starttls":
            self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, tls_context=context,
                                         require_starttls=True)
        elif mode == "tls":
            self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, ssl_context=context)
        else:
            self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def url(self, mode: str, extra: str = "") -> str:
        if mode == "tls":
            return f"smtps://127.0.0.1:{self.port}" + (f"?{extra}" if extra else "")
        return f"smtp://127.0.0.1:{self.port}?starttls=1" + (f"&{extra}" if extra else "")


@pytest.fixture(name="certificate")
def certificate_fixture(tmp_path: Path) -> Certificate:
    return Certificate(tmp_path)


@pytest.fixture(name="servers")
def servers_fixture(certificate: Certificate) -> Iterator[dict[str, Server]]:
    servers = {mode: Server(certificate, mode) for mode in ("starttls", "tls", "plain")}
    for server in servers.values():
        server.controller.start()
    yield servers
    for server in servers.values():
        server.controller.stop()


def _mail_settings(settings: Settings, url: str, ca_file: Path | None) -> Settings:
    return settings.with_(smtp=parse_smtp_url(url), smtp_from="alerts@example.com",
                          smtp_ca_file=str(ca_file) if ca_file else None)


async def _fire(make_client: Any, auth: Any, settings: Settings) -> dict[str, Any]:
    """An alert that fires at once (lower bound 1, no events) with one email recipient; its history."""
    client = await make_client(settings)
    alert = await create_alert(client, auth, **signup_alert(condition={"lower": 1},
                                                            channels={"emails": ["ops@example.com"]}))
    await run_at(client, hours_back(0))
    return await checks(client, auth, alert["id"])


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_alert_email_arrives_over_tls(make_client: Any, settings: Settings, auth: Any,
                                           certificate: Certificate, servers: dict[str, Server], mode: str) -> None:
    server = servers[mode]
    history = await _fire(make_client, auth, _mail_settings(settings, server.url(mode), certificate.cert))
    assert [(n["channel"], n["status"], n["last_error"]) for n in history["notifications"]] == \
        [("email", "sent", None)]
    [mail] = server.inbox.messages
    assert mail["To"] == "ops@example.com" and mail["Subject"] == "Alert firing: Signups surge"
    parts = {part.get_content_type(): part.get_payload(decode=True) for part in mail.walk()}
    assert b"Lower bound: 1" in parts["text/plain"] and b"<script" not in parts["text/html"]
    assert b"style=" in parts["text/html"]
    assert not servers["plain"].inbox.messages


async def test_a_server_without_starttls_fails_the_delivery(make_client: Any, settings: Settings, auth: Any,
                                                           certificate: Certificate,
                                                           servers: dict[str, Server]) -> None:
    plain = servers["plain"]
    history = await _fire(make_client, auth, _mail_settings(settings, plain.url("starttls"), certificate.cert))
    [sent] = history["notifications"]
    assert (sent["status"], sent["attempts"]) == ("failed", 1)  # not retried: the same server says the same
    assert "does not offer STARTTLS" in sent["last_error"] and "plain text" in sent["last_error"]
    assert history["checks"][0]["state"] == "firing"  # the check itself went through
    assert plain.inbox.messages == []  # nothing was sent in plain text


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_a_certificate_that_does_not_verify_is_refused_unless_the_url_says_so(
        make_client: Any, settings: Settings, auth: Any, certificate: Certificate, servers: dict[str, Server],
        mode: str) -> None:
    server = servers[mode]
    refused = await _fire(make_client, auth, _mail_settings(settings, server.url(mode), None))
    [sent] = refused["notifications"]
    assert sent["status"] == "failed" and "certificate does not verify" in sent["last_error"]
    assert "verify=0" in sent["last_error"] and server.inbox.messages == []
    accepted = await _fire(make_client, auth, _mail_settings(settings, server.url(mode, "verify=0"), None))
    assert [n["status"] for n in accepted["notifications"]] == ["sent"]
    assert len(server.inbox.messages) == 1


def test_the_tls_options_are_checked_at_configuration_time(certificate: Certificate, tmp_path: Path) -> None:
    base = {"ANALYTICS_SECRET_TOKEN": "sk_" + "x" * 30, "ANALYTICS_WRITE_KEYS": "wk_x"}
    url = parse_smtp_url("smtp://h?starttls=1&verify=0")
    assert (url.starttls, url.verify) == (True, False) and parse_smtp_url("smtps://h").verify
    ok = Settings.from_env({**base, "ANALYTICS_SMTP_CA_FILE": str(certificate.cert)}, persist_secrets=False)
    assert ok.smtp_ca_file == str(certificate.cert)
    for bad in ("smtp://h?verify=0", "smtps://h?verify=perhaps", "smtp://h?starttls=1&verify="):
        with pytest.raises(ValueError):
            parse_smtp_url(bad)
    (tmp_path / "junk.pem").write_text("not a certificate")
    for path in (str(tmp_path / "missing.pem"), str(tmp_path / "junk.pem")):
        with pytest.raises(ConfigError) as info:
            Settings.from_env({**base, "ANALYTICS_SMTP_CA_FILE": path}, persist_secrets=False)
        assert info.value.variable == "ANALYTICS_SMTP_CA_FILE"
