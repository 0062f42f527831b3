"""File names that identify a person are caught; ordinary document names are left alone."""

from __future__ import annotations

import random

import pytest

from bot.messages import validation as msg
from bot.naming import FIRST_NAMES, identifying_message, identifying_reasons


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        # Seeds: "Julia Smith.doc", "Julia.Smith.zip", "JoanMcMillan.TIF".
        ("Julia Smith.doc", [msg.NAMING_PERSON.format(text="Julia Smith")]),
        ("Julia.Smith.zip", [msg.NAMING_PERSON.format(text="Julia.Smith")]),
        ("JoanMcMillan.TIF", [msg.NAMING_PERSON.format(text="JoanMcMillan")]),
        ("julia_smith.docx", [msg.NAMING_PERSON.format(text="julia_smith")]),
        ("JULIA SMITH referral.pdf", [msg.NAMING_PERSON.format(text="JULIA SMITH")]),
        ("SMITH, Julia.pdf", [msg.NAMING_PERSON.format(text="SMITH, Julia")]),
        ("Mary Ann Smith.pdf", [msg.NAMING_PERSON.format(text="Mary Ann Smith")]),
        ("Mark Thompson.docx", [msg.NAMING_PERSON.format(text="Mark Thompson")]),
        ("Mrs Patel letter.docx", [msg.NAMING_TITLE_NAME.format(text="Mrs Patel")]),
        ("/home/x/Case files/Julia Smith.doc", [msg.NAMING_PERSON.format(text="Julia Smith")]),
        ("C:\\Users\\Julia Smith\\report.pdf", []),  # folders do not matter
        # Dates, any full date could be a date of birth.
        ("scan 01-02-2003.pdf", [msg.NAMING_DATE.format(text="01-02-2003")]),
        ("2003-02-01 letter.pdf", [msg.NAMING_DATE.format(text="2003-02-01")]),
        ("01022003.pdf", [msg.NAMING_DATE.format(text="01022003")]),
        ("1 Feb 2003.pdf", [msg.NAMING_DATE.format(text="1 Feb 2003")]),
        ("born 21st March 1987.pdf", [msg.NAMING_DATE.format(text="21st March 1987")]),
        ("February 1, 2003.pdf", [msg.NAMING_DATE.format(text="February 1, 2003")]),
        ("visit 12-10-24.docx", [msg.NAMING_DATE.format(text="12-10-24")]),
        ("DOB.pdf", [msg.NAMING_DOB_WORD.format(text="DOB")]),
        ("smith date of birth.pdf", [msg.NAMING_DOB_WORD.format(text="date of birth")]),
        # Numbers.
        ("AB123456C.pdf", [msg.NAMING_NI_NUMBER.format(text="AB123456C")]),
        ("ni ab 12 34 56 c.pdf", [msg.NAMING_NI_NUMBER.format(text="ab 12 34 56 c")]),
        ("NHS 943 476 5919.pdf", [msg.NAMING_NHS_NUMBER.format(text="943 476 5919")]),
        ("943-476-5919.pdf", [msg.NAMING_NHS_NUMBER.format(text="943-476-5919")]),
        ("9434765919.pdf", [msg.NAMING_NHS_NUMBER.format(text="9434765919")]),
        ("123-45-6789.pdf", [msg.NAMING_SSN.format(text="123-45-6789")]),
        ("julia@council.gov.uk.pdf", [msg.NAMING_EMAIL.format(text="julia@council.gov.uk")]),
        ("call 07911 123456.docx", [msg.NAMING_PHONE.format(text="07911 123456")]),
        # Seed: "a combination of SSN and name".
        ("Julia Smith 123-45-6789.pdf", [msg.NAMING_PERSON.format(text="Julia Smith"),
                                         msg.NAMING_SSN.format(text="123-45-6789")]),
    ],
)
def test_identifying_names_flagged(filename: str, expected: list[str]) -> None:
    assert identifying_reasons(filename) == expected


@pytest.mark.parametrize(
    "filename",
    [
        "Annual Report 2024.pdf", "minutes.docx", "20120910.zip", "Meeting Notes.docx",
        "Case Summary.pdf", "Case 12345 referral.pdf", "mark scheme.pdf", "Mark Scheme.pdf",
        "May Minutes.docx", "June Budget 2024.xlsx", "Grace Period.pdf", "Christian Aid.pdf",
        "Joint Strategic Needs Assessment.pdf", "budget 2024-25.xlsx", "Q3 2024 figures.xlsx",
        "v1.2.3.pdf", "release 01.02.03.zip", "Victoria Road plan.pdf", "GB123456A.pdf",
        "DOBSON.pdf", "Child Protection Conference.docx", "EHCP review 2023.pdf",
        "1234567890.pdf", "0000000000.pdf", "", ".", "...pdf", "document-1.pdf",
    ],
)
def test_neutral_names_not_flagged(filename: str) -> None:
    assert identifying_reasons(filename) == []


@pytest.mark.parametrize(
    ("filename", "flagged"),
    [
        ("AB123456C.pdf", True),
        ("DA123456C.pdf", False),  # D is never a first letter
        ("AO123456C.pdf", False),  # O is never a second letter
        ("NT123456C.pdf", False),  # unallocated prefix
        ("AB123456E.pdf", False),  # suffix is A-D
        ("9434765919.pdf", True),
        ("9434765918.pdf", False),  # wrong check digit
        ("01-02-2003.pdf", True),
        ("31-02-2003.pdf", False),  # no such day
        ("32012003.pdf", False),
    ],
)
def test_checksums_and_validity_rules(filename: str, flagged: bool) -> None:
    assert bool(identifying_reasons(filename)) is flagged


def test_summary_message_says_what_to_do() -> None:
    assert identifying_message("Annual Report 2024.pdf") is None
    message = identifying_message("Julia Smith 01-02-2003.doc")
    assert message == msg.NAMING_SUMMARY.format(
        name="Julia Smith 01-02-2003.doc",
        reasons=msg.NAMING_REASON_JOINER.join([
            msg.NAMING_PERSON.format(text="Julia Smith"),
            msg.NAMING_DATE.format(text="01-02-2003"),
        ]),
    )


def test_first_name_list_is_substantial() -> None:
    assert len(FIRST_NAMES) >= 300
    assert {"julia", "joan", "mohammed", "olivia"} <= FIRST_NAMES


def test_random_names_never_raise() -> None:
    rng = random.Random(99)
    alphabet = "JuliaSmith 0123456789-._@+/\\\x00\u202eéÉ漢\U0001f600DOBab"
    for _ in range(1500):
        if rng.random() < 0.5:
            name = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        else:
            name = "".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(rng.randint(0, 40)))
        reasons = identifying_reasons(name)
        assert all(isinstance(r, str) and r for r in reasons)
    assert identifying_reasons("Julia Smith " * 100_000 + ".pdf") != []
