"""Spot file names that identify a person, because file names travel unencrypted.

Even inside an encrypted zip, member names can be read, and names show up in emails and
download pages. The seed procedures say: "DO NOT USE specific names such as Julia Smith.doc
or Julia.Smith.zip" and "Do NOT use something confidential like a combination of SSN and
name". :func:`identifying_reasons` returns one sentence per thing found (a person's name, a
full date, a National Insurance, NHS or Social Security number, an email address or a phone
number) so the sender can rename the file; an empty list means the name looks neutral.

Names are recognised only next to a known first name (embedded list) and never when the
neighbouring word is an ordinary document word ("Annual Report", "Meeting Notes"), which
keeps false alarms rare at the cost of missing names the list does not know.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

import phonenumbers

from bot.messages import validation as msg

_MAX_CHARS = 1000  # real file names are at most 255 bytes; longer input is cut, not refused
_MAX_QUOTE = 60

FIRST_NAMES: frozenset[str] = frozenset("""
aaliyah aaron abbie abdul abdullah abigail ada adam adrian ahmed aidan aiden aisha alan
albert alex alexander alexandra alexis alfie alfred ali alice alicia alison amanda amelia
amir amy andrea andrew angela angus anita ann anna anne annette anthony antonio archie
arthur ashley aston barbara barry beatrice ben benjamin bernard beth bethany betty beverley
billy blake bradley brandon brenda brian bridget bruce bryan caitlin callum cameron carl
carla carlos caroline carolyn catherine charles charlie charlotte chloe chris christina
christine christopher claire clara clare cody colin connor craig cynthia daisy damian
daniel danielle darren david debbie deborah declan denise dennis derek diana diane dominic
donald donna doreen dorothy douglas duncan dylan edith edward eileen elaine eleanor elijah
elizabeth ella ellie emily emma eric erin ethan eugene evelyn fatima fiona florence francis
freddie frederick freya gareth gary gavin gemma geoffrey george georgia gerald gillian
gloria gordon graham gregory hannah harold harriet harrison harry harvey hayley heidi
helen henry howard hugh ian imogen isaac isabel isabella isla jacob jacqueline james jamie
jane janet janice jasmine jason jean jeffrey jennifer jeremy jessica joan joanne jodie joe
joel john jonathan joseph joshua joyce judith judy julia julian julie justin karen kate
katherine kathleen kathryn katie keith kelly kenneth kerry kevin kieran kimberly kirsty
laura lauren lawrence leah lee leo leon lesley leslie lewis liam linda lindsay lisa logan
louis louise lucas lucy luke lydia lynn lynne madison maisie malcolm margaret maria marie
marion martin martha mary matilda matthew maureen megan melanie melissa michael michelle
mildred millie mohammed mohammad muhammad molly monica naomi natalie nathan neil nicholas
nicola nigel noah oliver olivia oscar owen pamela patricia patrick paul pauline peter
philip phillip phoebe rachel raymond rebecca richard rita robert roger ronald rosemary ross
roy russell ruth ryan samantha samuel sandra sarah scott sean sharon sheila shirley simon
sophia sophie stacey stanley stephanie stephen steven stuart susan suzanne sylvia tanya
teresa theo theodore thomas timothy toby tom tommy tony tracey tracy trevor tyler valerie
vanessa vera victoria vincent walter wayne wendy william yasmin yvonne zachary zara zoe
abby agnes aimee aleksandra alisha alyssa amber amit andy angel anjali annabel anthea
april arjun aryan ava bella bill bob brooke carol carter chelsea christian cliff clive
craig dale dawn dean derek dianne donna drew duke eddie eve faith felix frank gail gemma
gene ginger glen glenn grace guy hazel heather holly hope hunter iris ivy jack jacky jade
jay jenny jill jim jimmy jo jordan josh joy june karl kay kim kyle lily lorraine mandy
marcus mark mason matt max may mia miles milly morgan nancy nick noel norman olive paige
pat patsy pearl penny poppy priya rahul raj ray reece reggie rhys rob robin rose ruby rory
sadie sally sam sanjay sara shane sienna stella sue summer sunil terry tina troy vicky
victor violet will yusuf zainab zak
""".split())
"""Common UK/US first names; a name is only flagged next to one of these."""

# First names that are also everyday words: flagged only when written as names
# ("Mark Thompson"), never in lower case ("mark scheme", "may minutes").
_AMBIGUOUS_NAMES = frozenset("""
april may june august will mark rose grace faith hope joy dawn summer holly ivy lily daisy
poppy ruby amber pearl jade heather violet iris hazel olive bill frank guy pat sue ray rob
art victor hunter chase carter mason jordan chelsea christian max miles sage noel carol
jack nick bob sandy matt gene drew dean glen cliff jay penny kitty angel bella eve robin
gail dale lee duke ginger norman terry
""".split())

DOCUMENT_WORDS: frozenset[str] = frozenset("""
a an and the of for to in on at by with from re fw fwd or vs via per as is it into about
annual report reports meeting meetings notes note minutes minute agenda case cases summary
summaries draft drafts final version copy scan scanned letter letters form forms application
applications referral referrals assessment assessments plan plans policy policies budget
budgets invoice invoices statement statements review reviews contract contracts agreement
agreements proposal proposals memo memorandum update updates data list lists schedule
schedules guide guidance template templates appendix annex attachment document documents
file files record records register log summary overview brief briefing paper papers
presentation slides slide spreadsheet sheet workbook table chart figures figure analysis
audit evidence request requests response responses reply complaint complaints decision
decisions outcome outcomes order orders notice notices action actions tracker project
projects programme program strategy framework procedure procedures process protocol
standard standards checklist consent request details detail information info contact
contacts address addresses book booking confirmation receipt payment payments account
accounts finance financial quarterly monthly weekly daily year yearly month week day
annual interim progress status team teams staff service services department council
county borough district city town parish authority office board committee panel group
forum trust foundation fund school schools college academy university nursery hospital
clinic surgery practice centre center house home court street road lane avenue close
drive way park place square gardens garden hall station bridge hill green north south
east west central upper lower new old first second third last next general public private
internal external official sensitive confidential restricted controlled secure security
social care adult adults child children young people family families housing planning
health education safeguarding protection support services mental community early help
youth justice legal police court probation employment training transport highways
environment waste leisure library libraries culture tourism business economic
development regeneration estates property properties building buildings works repair
repairs maintenance contractor supplier suppliers tender procurement grant grants award
awards scheme schemes period term terms rules rule guide handbook manual instructions
training course courses session sessions event events workshop conference visit visits
inspection inspections survey surveys questionnaire feedback results result score scores
test tests exam exams mock paper answers marking mark marks scheme grades grade level
levels key stage ks phase term holiday holidays absence attendance leave sickness rota
timetable calendar diary invoice quote quotation estimate order purchase sales sale
budget cost costs price prices pricing rates rate tax vat pay payroll salary salaries
pension pensions benefits benefit claim claims form letter email emails message messages
call calls phone number numbers photo photos picture pictures image images video audio
recording transcript map maps plan drawing drawings design designs specification spec
requirements scope brief charter terms reference contacts directory structure chart org
job jobs role roles vacancy vacancies recruitment interview interviews offer cv resume
appraisal appraisals objectives performance supervision induction handover
january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday
friday saturday sunday spring autumn winter summer christmas easter new
aid day garden court road street station line period draft limit size value total
level rating alert warning fair lodge cottage farm manor villa mews terrace crescent grove
view rise walk row estate field wood writing capacity speed
""".split())
"""Ordinary document words: a first name next to one of these is not a person's name."""

_TITLES = frozenset("mr mrs ms miss mx dr prof sir dame lady lord rev".split())

# --- patterns --------------------------------------------------------------------------

_LETTER_RUN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_SEPARATOR_GAP = re.compile(r"[\s._\-,+&]{1,3}")
_DOB_WORDS = re.compile(
    r"(?<![A-Za-z])(?:dob|d\.o\.b\.?|date[\s._-]*of[\s._-]*birth|birth[\s._-]*date)(?![a-z])",
    re.IGNORECASE,
)
_DOB_CAPS = re.compile(r"(?<![A-Z])DOB(?![A-Za-z])")
_DMY = re.compile(r"(?<!\d)(\d{1,2})([-._ ])(\d{1,2})\2(\d{4}|\d{2})(?!\d)", re.ASCII)
_YMD = re.compile(r"(?<!\d)(\d{4})([-._ ])(\d{1,2})\2(\d{1,2})(?!\d)", re.ASCII)
_COMPACT_DATE = re.compile(r"(?<!\d)(\d{8})(?!\d)", re.ASCII)
_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8,
    "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12, "january": 1, "february": 2,
    "march": 3, "april": 4, "june": 6, "july": 7, "august": 8, "september": 9,
    "october": 10, "november": 11, "december": 12,
}
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY_MONTH_YEAR = re.compile(
    rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th)?[\s._,-]*({_MONTH_ALT})(?![a-z])[\s._,-]*(\d{{4}}|\d{{2}})(?!\d)",
    re.IGNORECASE | re.ASCII,
)
_MONTH_DAY_YEAR = re.compile(
    rf"(?<![a-z])({_MONTH_ALT})[\s._-]*(\d{{1,2}})(?:st|nd|rd|th)?[\s._,-]+(\d{{4}})(?!\d)",
    re.IGNORECASE | re.ASCII,
)
_NI_NUMBER = re.compile(
    r"(?<![A-Za-z0-9])([A-Za-z]{2})[\s-]?(\d{2})[\s-]?(\d{2})[\s-]?(\d{2})[\s-]?([A-Da-d])"
    r"(?![A-Za-z0-9])",
    re.ASCII,
)
_NHS_NUMBER = re.compile(r"(?<!\d)(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?!\d)", re.ASCII)
_SSN = re.compile(r"(?<!\d)(\d{3})([- ])(\d{2})\2(\d{4})(?!\d)", re.ASCII)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", re.ASCII)
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,6}")

_NI_BAD_FIRST = set("DFIQUV")
_NI_BAD_SECOND = set("DFIOQUV")
_NI_BAD_PREFIXES = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


class _Finder:
    """Collects reasons, never reporting text already explained by an earlier rule."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.claimed: list[tuple[int, int]] = []
        self.found: list[tuple[int, str]] = []

    def free(self, start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in self.claimed)

    def add(self, start: int, end: int, template: str) -> None:
        if not self.free(start, end):
            return
        self.claimed.append((start, end))
        self.found.append((start, template.format(text=_quote(self.text[start:end]))))

    def reasons(self) -> list[str]:
        """In the order they appear in the name, each sentence once."""
        ordered: list[str] = []
        for _, reason in sorted(self.found):
            if reason not in ordered:
                ordered.append(reason)
        return ordered


def _quote(text: str) -> str:
    cleaned = " ".join(text.split())
    return cleaned if len(cleaned) <= _MAX_QUOTE else cleaned[: _MAX_QUOTE - 1] + "…"


def _basename(filename: str) -> str:
    """Folders do not matter; hidden and compatibility characters are normalised away."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1][: _MAX_CHARS * 4]
    text = unicodedata.normalize("NFKC", base)
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in text
        if unicodedata.category(ch) not in ("Cf", "Cs", "Co")
    )
    return text.replace("\\", "/").rsplit("/", 1)[-1].strip()[:_MAX_CHARS]


def _stem(base: str) -> str:
    """The name without a short extension ("Julia.Smith.zip" -> "Julia.Smith")."""
    trimmed = base.rstrip(". ")
    if "." in trimmed:
        stem, ext = trimmed.rsplit(".", 1)
        if _EXTENSION.fullmatch(ext) and stem.strip():
            return stem
    return trimmed


def _valid_date(year: int, month: int, day: int) -> bool:
    if not 1900 <= year <= 2099:
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _full_year(text: str) -> int:
    """Two-digit years: 00-29 are 2000s, 30-99 are 1900s (as most date-of-birth forms read)."""
    year = int(text)
    if len(text) == 2:
        year += 2000 if year < 30 else 1900
    return year


def _find_dates(found: _Finder) -> None:
    text = found.text
    for pattern in (_DOB_WORDS, _DOB_CAPS):
        for m in pattern.finditer(text):
            found.add(m.start(), m.end(), msg.NAMING_DOB_WORD)
    for m in _DMY.finditer(text):
        first, sep, second, year_text = m.group(1), m.group(2), m.group(3), m.group(4)
        if len(year_text) == 2 and (sep == "." or len(first) != 2 or len(second) != 2):
            continue  # "v1.2.3" style version numbers, not dates
        year = _full_year(year_text)
        a, b = int(first), int(second)
        if _valid_date(year, b, a) or _valid_date(year, a, b):
            found.add(m.start(), m.end(), msg.NAMING_DATE)
    for m in _YMD.finditer(text):
        if _valid_date(int(m.group(1)), int(m.group(3)), int(m.group(4))):
            found.add(m.start(), m.end(), msg.NAMING_DATE)
    for m in _COMPACT_DATE.finditer(text):
        # Day-first or month-first, as people write birthdays (01022003). Year-first
        # stamps (20120910) are how scanners and systems date documents: not flagged.
        digits = m.group(1)
        a, b, year = int(digits[:2]), int(digits[2:4]), int(digits[4:])
        if _valid_date(year, b, a) or _valid_date(year, a, b):
            found.add(m.start(), m.end(), msg.NAMING_DATE)
    for m in _DAY_MONTH_YEAR.finditer(text):
        month = _MONTHS[m.group(2).lower()]
        if _valid_date(_full_year(m.group(3)), month, int(m.group(1))):
            found.add(m.start(), m.end(), msg.NAMING_DATE)
    for m in _MONTH_DAY_YEAR.finditer(text):
        month = _MONTHS[m.group(1).lower()]
        if _valid_date(int(m.group(3)), month, int(m.group(2))):
            found.add(m.start(), m.end(), msg.NAMING_DATE)


def _valid_ni(prefix: str) -> bool:
    """HMRC never issues these prefixes, so "AB123456C" counts but "GB123456A" does not."""
    p = prefix.upper()
    return p[0] not in _NI_BAD_FIRST and p[1] not in _NI_BAD_SECOND and p not in _NI_BAD_PREFIXES


def _valid_nhs(digits: str) -> bool:
    """Modulus 11 check digit, as NHS Digital specifies; repeated digits are test values."""
    if len(set(digits)) == 1:
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def _find_numbers(found: _Finder) -> None:
    text = found.text
    for m in _NI_NUMBER.finditer(text):
        if _valid_ni(m.group(1)):
            found.add(m.start(), m.end(), msg.NAMING_NI_NUMBER)
    for m in _NHS_NUMBER.finditer(text):
        if _valid_nhs(m.group(1) + m.group(2) + m.group(3)):
            found.add(m.start(), m.end(), msg.NAMING_NHS_NUMBER)
    for m in _SSN.finditer(text):
        area, group, serial = m.group(1), m.group(3), m.group(4)
        if area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000":
            found.add(m.start(), m.end(), msg.NAMING_SSN)


def _find_phones(found: _Finder, region: str) -> None:
    text = found.text
    if sum(ch.isdigit() for ch in text) < 7:
        return
    try:
        matcher = phonenumbers.PhoneNumberMatcher(
            text.replace("_", " "), region, leniency=phonenumbers.Leniency.VALID, max_tries=50
        )
        matches = [(int(m.start), int(m.end)) for m in matcher]
    except Exception:  # the library must not turn an odd file name into a crash
        return
    for start, end in matches:
        found.add(start, end, msg.NAMING_PHONE)


def _words(stem: str) -> list[tuple[int, int]]:
    """Spans of words, with CamelCase split: "JoanMcMillan" -> Joan, Mc, Millan."""
    spans: list[tuple[int, int]] = []
    for m in _LETTER_RUN.finditer(stem):
        start, word = m.start(), m.group()
        cut = 0
        for i in range(1, len(word)):
            prev, ch = word[i - 1], word[i]
            nxt = word[i + 1] if i + 1 < len(word) else ""
            if ch.isupper() and (prev.islower() or (prev.isupper() and nxt.islower())):
                spans.append((start + cut, start + i))
                cut = i
        spans.append((start + cut, start + len(word)))
    return spans


def _is_capitalised(word: str) -> bool:
    return word[:1].isupper()


def _is_document_word(word: str) -> bool:
    key = word.casefold()
    if key in DOCUMENT_WORDS:
        return True
    if key.endswith("ies") and key[:-3] + "y" in DOCUMENT_WORDS:
        return True
    return key.endswith("s") and key[:-1] in DOCUMENT_WORDS


def _surname_like(word: str) -> bool:
    return len(word) >= 2 and not _is_document_word(word)


def _find_names(found: _Finder, stem: str) -> None:
    spans = _words(stem)
    words = [stem[s:e] for s, e in spans]
    adjacent = [
        spans[i][1] == spans[i + 1][0]
        or bool(_SEPARATOR_GAP.fullmatch(stem[spans[i][1] : spans[i + 1][0]]))
        for i in range(len(spans) - 1)
    ]
    i = 0
    while i < len(spans) - 1:
        a, b = words[i], words[i + 1]
        key_a, key_b = a.casefold(), b.casefold()
        template = msg.NAMING_PERSON
        if not adjacent[i]:
            hit = False
        elif key_a in _TITLES:
            hit = _is_capitalised(a) and _is_capitalised(b) and _surname_like(b)
            template = msg.NAMING_TITLE_NAME
        elif key_a in FIRST_NAMES and key_a in _AMBIGUOUS_NAMES:
            hit = _is_capitalised(a) and _is_capitalised(b) and _surname_like(b)
        elif key_a in FIRST_NAMES:
            hit = _surname_like(b)
        elif key_b in FIRST_NAMES and key_b not in _AMBIGUOUS_NAMES:
            # "Smith, Julia" / "SMITH Julia": surname first, written as a name.
            hit = _is_capitalised(a) and _is_capitalised(b) and _surname_like(a)
        else:
            hit = False
        if not hit:
            i += 1
            continue
        end = i + 1
        while end + 1 < len(spans) and adjacent[end] and _is_capitalised(words[end + 1]) \
                and _surname_like(words[end + 1]):
            end += 1
        found.add(spans[i][0], spans[end][1], template)
        i = end + 1


def identifying_reasons(filename: str, *, region: str = "GB") -> list[str]:
    """Why ``filename`` looks like it identifies a person; an empty list when it does not.

    Only the basename matters (folders are ignored). ``region`` is used to recognise
    national phone numbers. Never raises, whatever the input.
    """
    if not isinstance(filename, str):
        return []
    base = _basename(filename)
    if not base:
        return []
    stem = _stem(base)  # always a prefix of base, so spans agree
    found = _Finder(base)
    for m in _EMAIL.finditer(base):
        end = m.end()
        if end > len(stem) and _EMAIL.fullmatch(base, m.start(), len(stem)):
            end = len(stem)  # "julia@council.gov.uk.pdf": the extension is not part of it
        found.add(m.start(), end, msg.NAMING_EMAIL)
    _find_numbers(found)
    _find_dates(found)
    _find_phones(found, region)
    _find_names(found, stem)
    return found.reasons()


def identifying_message(filename: str, *, region: str = "GB") -> str | None:
    """The full sentence asking the sender to rename, or None when the name looks neutral."""
    reasons = identifying_reasons(filename, region=region)
    if not reasons:
        return None
    return msg.NAMING_SUMMARY.format(
        name=_quote(_basename(filename)), reasons=msg.NAMING_REASON_JOINER.join(reasons)
    )
