"""An SMTP server simulator (aiosmtpd) for the email channel: a mail relay we do not run, behind a real
network boundary (TCP, the SMTP protocol).

It stores every message it accepts (the raw bytes and the parsed message, for tests and the demo) and
can be told to refuse the next N messages with a transient 4xx (``451 4.3.0``) or a permanent 5xx, so
retries and dead letters can be exercised. With ``credentials`` it requires AUTH (PLAIN/LOGIN; without a
TLS context allowed in clear because this is a local simulator). With ``tls_context`` and
``security="starttls"`` it offers and requires STARTTLS (AUTH only after it); with ``security="tls"`` the
connection is TLS from the start (SMTPS).

In a test (same event loop)::

    server = await SmtpServer.start(credentials=("notify", "secret"))
    server.fail_next(2)            # the next two messages get 451
    ... server.messages[0].subject ...
    await server.stop()

From the command line (the demo's stack)::

    python -m baoxue.fakes.smtp_server --port 8125 --user notify --password dev-smtp-password
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import logging
import ssl
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted message: the envelope and the message parsed with the modern policy (so headers
    such as an RFC 2047 encoded Subject come back decoded)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        """The plain-text body, decoded from its transfer encoding and charset."""
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]


@dataclass
class _State:
    credentials: tuple[str, str] | None
    fail_count: int = 0
    fail_reply: str = "451 4.3.0 Temporary failure, try again later"
    transactions: int = 0
    refused: int = 0
    auth_failures: int = 0
    messages: list[ReceivedMail] = field(default_factory=list)


class _Handler:
    def __init__(self, state: _State) -> None:
        self.state = state

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.state.transactions += 1
        if self.state.fail_count > 0:
            self.state.fail_count -= 1
            self.state.refused += 1
            return self.state.fail_reply
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.state.messages.append(
            ReceivedMail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=raw,
                message=parsed,
            )
        )
        return "250 2.0.0 OK: queued"


class SmtpServer:
    """The simulator bound to a local port; its state is inspectable while it runs."""

    def __init__(self, server: asyncio.Server, state: _State) -> None:
        self._server, self._state = server, state
        self.host, self.port = server.sockets[0].getsockname()[:2]

    @classmethod
    async def start(
        cls,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: tuple[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        security: str = "starttls",
    ) -> SmtpServer:
        state = _State(credentials=credentials)
        handler = _Handler(state)

        def authenticator(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
        ) -> AuthResult:
            ok = (
                isinstance(auth_data, LoginPassword)
                and state.credentials is not None
                and (auth_data.login.decode(), auth_data.password.decode()) == state.credentials
            )
            if not ok:
                state.auth_failures += 1
            return AuthResult(success=ok, handled=False)

        starttls = tls_context is not None and security == "starttls"
        implicit = tls_context if security == "tls" else None

        def factory() -> SMTP:
            with warnings.catch_warnings():  # AUTH without TLS: deliberate in a local simulator
                warnings.simplefilter("ignore", UserWarning)
                return SMTP(
                    handler,
                    hostname="smtp.simulator.local",
                    decode_data=False,
                    enable_SMTPUTF8=True,
                    authenticator=authenticator if credentials else None,
                    auth_required=credentials is not None,
                    auth_require_tls=starttls,
                    tls_context=tls_context if starttls else None,
                    require_starttls=starttls,
                )

        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, host=host, port=port, ssl=implicit)
        return cls(server, state)

    @property
    def messages(self) -> list[ReceivedMail]:
        return self._state.messages

    @property
    def transactions(self) -> int:
        """Messages offered (DATA commands), accepted or refused."""
        return self._state.transactions

    @property
    def auth_failures(self) -> int:
        return self._state.auth_failures

    def fail_next(self, n: int, *, permanent: bool = False) -> None:
        """Refuse the next `n` messages: 451 (transient) or, with ``permanent``, 554 (permanent)."""
        self._state.fail_count = n
        self._state.fail_reply = (
            "554 5.7.1 Message rejected" if permanent else "451 4.3.0 Temporary failure, try again later"
        )

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()


async def _serve(host: str, port: int, credentials: tuple[str, str] | None, fail_first: int) -> None:
    server = await SmtpServer.start(host=host, port=port, credentials=credentials)
    server.fail_next(fail_first)
    log.warning("SMTP simulator listening on %s:%s", server.host, server.port)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="SMTP server simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8125)
    parser.add_argument("--user", default=None)
    parser.add_argument("--password", default=None)
    parser.add_argument("--fail-first", type=int, default=0, help="refuse the first N messages with 451")
    args = parser.parse_args()
    credentials = (args.user, args.password) if args.user and args.password else None
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(args.host, args.port, credentials, args.fail_first))


if __name__ == "__main__":
    main()
