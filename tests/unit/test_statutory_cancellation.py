"""The German cancellation button's form (C4), checked for shape before anything is
looked up: what it needs, what it defaults to, and what it refuses with what to correct."""

from __future__ import annotations

import re
from datetime import date

import pytest

from fairsub.domain.errors import InvalidInput
from fairsub.services import public_forms, statutory_cancellation
from fairsub.services.statutory_cancellation import Termination

JANA = "jana@example.com"
TODAY = date(2026, 11, 27)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "maybe"}, statutory_cancellation.KIND_MISSING),
        ({"kind": "extraordinary", "reason": "  "}, statutory_cancellation.REASON_MISSING),
        ({"end": "whenever"}, statutory_cancellation.END_MISSING),
        ({"end": "date", "end_date": ""}, statutory_cancellation.DATE_INVALID),
        ({"end": "date", "end_date": "next year"}, statutory_cancellation.DATE_INVALID),
        ({"end": "date", "end_date": "31.02.2027"}, statutory_cancellation.DATE_INVALID),
        ({"end": "date", "end_date": "2026-11-26"}, statutory_cancellation.DATE_INVALID),
        ({"end": "date", "end_date": "9999-12-31"}, statutory_cancellation.DATE_INVALID),
        ({"name": " "}, public_forms.NAME_MISSING),
        ({"email": "not-an-email"}, public_forms.EMAIL_MISSING),
        ({"contract": "my antivirus"}, public_forms.CONTRACT_MISSING),
    ],
)
def test_c4_a_form_to_correct_is_refused_with_what_to_correct(
    fields: dict[str, str], message: str
) -> None:
    form = {
        "kind": "ordinary",
        "name": "Jana Neu",
        "email": JANA,
        "contract": "1042",
        "end": "",
        "end_date": "",
        "reason": "",
    }
    with pytest.raises(InvalidInput, match=re.escape(message)):
        statutory_cancellation.declare(**{**form, **fields}, today=TODAY)


def test_c4_the_form_defaults_to_an_ordinary_termination_at_the_earliest_end() -> None:
    declared = statutory_cancellation.declare(
        kind="",
        name=" Jana  Neu ",
        email=JANA,
        contract="receipt 1042",
        end="",
        end_date="2027-01-01",  # typed, but the earliest end stayed chosen
        reason="typed before choosing ordinary",
        today=TODAY,
    )
    assert declared.kind is Termination.ORDINARY and declared.wished_end is None
    assert (declared.identity.name, declared.identity.receipt_number) == ("Jana Neu", 1042)
    assert declared.reason == ""  # an ordinary termination needs and keeps none
    today = statutory_cancellation.declare(
        kind="ordinary",
        name="J",
        email=JANA,
        contract="1",
        end="date",
        end_date="2026-11-27",
        reason="",
        today=TODAY,
    )
    assert today.wished_end == TODAY
