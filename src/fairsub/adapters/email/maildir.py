"""A local mailbox: 'sent' email lands in a Maildir folder. The demo's /dev/mailbox reads it,
so a newcomer can see every email without an SMTP server."""

from __future__ import annotations

import email.policy
import mailbox
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage as MimeMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from fairsub.adapters.email.smtp import to_mime
from fairsub.services.ports import EmailMessage


@dataclass(frozen=True, slots=True)
class StoredEmail:
    key: str
    to: str
    subject: str
    date: datetime
    text: str
    html: str


class MaildirMailer:
    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = folder
        self.sender = sender
        self._sending_box: mailbox.Maildir | None = None

    def _box(self) -> mailbox.Maildir:
        # mailbox.Maildir makes tmp/, new/ and cur/ only when it makes the folder itself, one
        # after the other. Another process (`fairsub serve`'s relay) may be doing just that,
        # so each is made here, whoever gets there first.
        for part in ("tmp", "new", "cur"):
            (self.folder / part).mkdir(parents=True, exist_ok=True)
        return mailbox.Maildir(self.folder, create=False)

    def send(self, message: EmailMessage) -> None:
        # Filed as bytes written once: given the message object, mailbox writes it out with
        # its own generator, which ignores the message's policy and folds every header.
        raw = to_mime(message, self.sender).as_bytes()
        if self._sending_box is None:
            self._sending_box = self._box()
        try:
            self._sending_box.add(raw)
        except FileNotFoundError:  # the folder was removed since: make it again
            self._sending_box = self._box()
            self._sending_box.add(raw)

    def messages(self) -> list[StoredEmail]:
        found: list[StoredEmail] = []
        box = self._box()
        for key in box.iterkeys():
            with box.get_file(key) as handle:
                raw = handle.read()
            mime = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(mime, MimeMessage)
            text = mime.get_body(("plain",))
            html = mime.get_body(("html",))
            date = mime["Date"]
            found.append(
                StoredEmail(
                    key=key,
                    to=str(mime["To"]),
                    subject=str(mime["Subject"]),
                    date=parsedate_to_datetime(date) if date else datetime.now(UTC),
                    text=text.get_content() if text else "",
                    html=html.get_content() if html else "",
                )
            )
        return sorted(found, key=lambda m: (m.date, m.key), reverse=True)
