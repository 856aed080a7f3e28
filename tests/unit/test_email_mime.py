"""The MIME an email goes out as: what any mail client reads back from it, SMTP-safe."""

import email
import email.policy
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import example, given
from hypothesis import strategies as st

from fairsub.adapters.email.smtp import to_mime
from fairsub.services.ports import EmailMessage

SENDER = "Lärkspur Security <no-reply@larkspur.example>"
# Hypothesis takes naive bounds and adds the zone itself.
EARLIEST, LATEST = datetime(1990, 1, 1), datetime(2100, 1, 1)  # noqa: DTZ001
words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    min_size=1,
    max_size=300,
)


@given(
    subject=words.map(str.strip).filter(bool),
    text=words,
    html=words,
    written_at=st.datetimes(EARLIEST, LATEST, timezones=st.timezones()),
)
# A local time inside a DST change, where the zone gives it two offsets (Hypothesis found it).
@example(
    subject="Gap",
    text="t",
    html="h",
    written_at=datetime(2002, 3, 31, 3, 0, tzinfo=ZoneInfo("Asia/Bishkek")),
)
def test_subject_sender_date_and_both_bodies_read_back_as_written(
    subject: str, text: str, html: str, written_at: datetime
) -> None:
    sent = EmailMessage(
        "jana@example.de",
        subject,
        text + "\n",
        html + "\n",
        "<7.x@larkspur.example>",
        written_at,
    )
    raw = to_mime(sent, SENDER).as_bytes()

    read = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(read, email.message.EmailMessage)
    assert str(read["Subject"]) == subject
    assert str(read["From"]) == SENDER
    assert read["To"] == "jana@example.de" and read["Message-ID"] == "<7.x@larkspur.example>"
    # Compared in UTC: Python never finds a time in a zone's DST gap or fold equal to one
    # in another zone, even to the instant it converts to.
    assert read["Date"].datetime == written_at.astimezone(UTC).replace(microsecond=0)
    plain, rich = read.get_body(("plain",)), read.get_body(("html",))
    assert plain is not None and rich is not None
    assert plain.get_content() == sent.text and rich.get_content() == sent.html
    assert all(len(line) <= 998 for line in raw.split(b"\n"))  # RFC 5322's hard limit
