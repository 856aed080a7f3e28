"""A local mailbox: 'sent' email lands in a Maildir folder. The demo's /dev/mailbox reads it,
so a newcomer can see every email without an SMTP server.

A development tool, never a production mailer (settings refuse it there). Email is filed
as Maildir delivers it, written under tmp/ and then moved into new/ whole, so a reader
never sees half a message, but without the fsync that mailbox.Maildir.add makes for each
one: that flush, with its link and unlink, cost the relay about 1 ms of kernel time per
email, beside the portal it shares the machine with. A machine crash may lose the last
emails filed; the outbox has them all."""

from __future__ import annotations

import email.policy
import itertools
import mailbox
import os
import secrets
import time
from collections.abc import Sequence
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
        self._names = itertools.count()

    def _make_folders(self) -> None:
        # mailbox.Maildir makes tmp/, new/ and cur/ only when it makes the folder itself, one
        # after the other. Another process (`fairsub serve`'s relay) may be doing just that,
        # so each is made here, whoever gets there first.
        for part in ("tmp", "new", "cur"):
            (self.folder / part).mkdir(parents=True, exist_ok=True)

    def _box(self) -> mailbox.Maildir:
        self._make_folders()
        return mailbox.Maildir(self.folder, create=False)

    def deliver(self, messages: Sequence[EmailMessage]) -> list[Exception | None]:
        results: list[Exception | None] = []
        for message in messages:
            try:
                self._send(message)
            except Exception as error:  # noqa: BLE001 - reported per message, retried later
                results.append(error)
            else:
                results.append(None)
        return results

    def _send(self, message: EmailMessage) -> None:
        raw = to_mime(message, self.sender).as_bytes()
        try:
            self._file(raw)
        except FileNotFoundError:  # the first email, or the folder was removed since
            self._make_folders()
            self._file(raw)

    def _file(self, raw: bytes) -> None:
        # A Maildir name: unique across processes and machines sharing the folder.
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(self._names)}R{secrets.token_hex(4)}"
        draft = self.folder / "tmp" / name
        draft.write_bytes(raw)
        os.replace(draft, self.folder / "new" / name)

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
