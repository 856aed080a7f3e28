"""The README documents every setting and the two commands, and the repo stays clean."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from fairsub.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_readme_documents_every_fairsub_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        f"FAIRSUB_{name.upper()}"
        for name in Settings.model_fields
        if f"`FAIRSUB_{name.upper()}`" not in readme
    ]
    assert missing == []


def test_readme_gives_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme
    assert "make test" in readme


def test_c30_no_phone_numbers_in_templates_or_demo_data() -> None:
    """Nothing we ship shows a phone number: the scam works by putting one in front of people."""
    files = subprocess.run(
        ["git", "ls-files", "src"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    phone = re.compile(r"(?<![\w.-])\+?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?![\w-])")
    offenders = [
        f
        for f in files
        if f.endswith((".html", ".txt", ".toml", ".py"))
        and phone.search((ROOT / f).read_text(errors="ignore"))
    ]
    assert offenders == []
