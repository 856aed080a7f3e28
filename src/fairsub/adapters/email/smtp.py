"""Sending over SMTP, with STARTTLS and login when configured."""

from __future__ import annotations

import binascii
import functools
import secrets
import smtplib
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC
from email import quoprimime
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import format_datetime, formataddr, parseaddr

from fairsub.services.ports import EmailMessage

# RFC 5322's recommended line length: a header this short needs no folding.
_LINE = 78


class _Policy(Compat32):
    """compat32, writing a short ASCII header as it is.

    compat32 runs every header through email.header.Header to fold it, a third of the CPU
    of writing a message out, though almost every header fits on its line as it stands.
    Those are written directly; any other (long, non-ASCII, multi-line) is folded as before."""

    def fold_binary(self, name: str, value: str) -> bytes:
        if (
            isinstance(value, str)
            and value.isascii()
            and len(name) + 2 + len(value) <= _LINE
            and "\n" not in value
            and "\r" not in value
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


POLICY = _Policy()


def to_mime(message: EmailMessage, sender: str) -> MIMEMultipart:
    """The email as MIME: plain text and HTML alternatives, UTF-8, quoted-printable.

    Built with the standard library's compat32 email classes. EmailMessage with the modern
    policy parses every header into an object and folds it again when writing, which made
    filing an email cost about 2.7 ms of CPU in the relay; these classes cost a third of
    that, and the three shortcuts here a third again: the bodies are encoded by binascii's
    C encoder rather than the email package's pure-Python one; the boundary is chosen here,
    so the writer does not compile a regular expression per message to check that it
    appears in no body (it cannot: quoted-printable writes every "=" as "=3D", so "=_"
    never occurs in an encoded body); and short headers skip folding (_Policy)."""
    # 64 random bits: the boundary only has to differ from every line of the bodies, and
    # "=_" never begins one. Longer, the Content-Type line passed 78 characters and went
    # through the email package's folding, a twentieth of the relay's work.
    mime = MIMEMultipart("alternative", boundary=f"=_{secrets.token_hex(8)}", policy=POLICY)
    mime["From"] = _from_header(sender)
    mime["To"] = message.to
    mime["Subject"] = _subject(message.subject)
    mime["Date"] = format_datetime(message.written_at.astimezone(UTC), usegmt=True)
    mime["Message-ID"] = message.message_id
    mime.attach(_text(message.text, "plain"))
    mime.attach(_text(message.html, "html"))
    return mime


@functools.lru_cache(maxsize=8)
def _from_header(sender: str) -> str:
    """The sender as a From header: the same for every email, so parsed once."""
    return formataddr(parseaddr(sender), charset="utf-8")


def _subject(subject: str) -> str:
    """The subject as it goes on the wire: as it is if ASCII, else RFC 2047 encoded words.

    Most subjects fit one Q-encoded word on the Subject line, and quoprimime writes that
    word at C speed. Header finds the same word by re-measuring the subject's encoded
    length after each character it adds, which cost 126 µs a subject, a fifth of the
    relay's work for a turn-off's email; it is kept for a subject that needs splitting."""
    if subject.isascii():
        return subject
    word = quoprimime.header_encode(subject.encode("utf-8"), charset="utf-8")
    if len("Subject: ") + len(word) <= _LINE:
        return word
    return Header(subject, "utf-8", header_name="Subject").encode()


def _text(body: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype, policy=POLICY, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    # Readable in a raw mailbox, unlike base64; line breaks stay line breaks (istext).
    part.set_payload(binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii"))
    return part


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.username, self.password = starttls, username, password
        self.timeout = timeout

    def deliver(self, messages: Sequence[EmailMessage]) -> list[Exception | None]:
        """The batch over one SMTP session: one connection, STARTTLS and login for all of
        it, not one per email. A message the server refuses (a bad recipient, say) fails
        alone and the session goes on; if the server ends the session, the rest go over a
        new one; if no session can be opened, the rest fail with that error unsent."""
        results: list[Exception | None] = []
        smtp: smtplib.SMTP | None = None
        try:
            for message in messages:
                try:
                    if smtp is None:
                        smtp = self._connect()
                    smtp.send_message(to_mime(message, self.sender))
                    results.append(None)
                except Exception as error:  # noqa: BLE001 - reported per message, retried later
                    results.append(error)
                    if smtp is None:  # could not connect: the others would fail the same way
                        results.extend(error for _ in messages[len(results) :])
                        break
                    if smtp.sock is None:  # smtplib closed it: the server is gone
                        smtp = None
        finally:
            if smtp is not None:
                with suppress(OSError, smtplib.SMTPException):
                    smtp.quit()
        return results

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp
