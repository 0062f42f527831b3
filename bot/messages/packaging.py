"""Text that packaging and passwords put in front of people.

Two audiences: the recipient who opens the archive (file names, the index header) and the
person listening to a password over the phone (the voice spelling phrases).
"""

from types import MappingProxyType
from typing import Final

# --- Inside the archive -------------------------------------------------------------------

#: Stem of the neutral member names: "document-1.pdf", "document-2", ...
NEUTRAL_NAME_STEM: Final = "document"

#: Name of the encrypted member that maps neutral names back to the sender's names.
INDEX_FILE_NAME: Final = "index.txt"

#: First line of the index. Starts with "#" so that readers (and ``read_index``) can tell it
#: from the entries, which are "<name in archive><TAB><original name>".
INDEX_HEADER: Final = (
    "# Safe Haven {reference}: each line gives a file's name in this archive, a tab, "
    "then the name the sender gave it."
)

# --- Reading a password aloud -------------------------------------------------------------

#: Said before a word is spelled, so the listener hears the whole word first.
VOICE_WORD: Final = "The word {word}."
#: A lowercase letter: "a for Alpha".
VOICE_LETTER: Final = "{letter} for {code}"
#: An uppercase letter: "capital H for Hotel".
VOICE_CAPITAL_LETTER: Final = "capital {letter} for {code}"
#: A digit: "number four".
VOICE_DIGIT: Final = "number {word}"

#: NATO / ICAO spelling alphabet, with the spellings text-to-speech engines pronounce best.
NATO_ALPHABET: Final = MappingProxyType(
    {
        "a": "Alpha",
        "b": "Bravo",
        "c": "Charlie",
        "d": "Delta",
        "e": "Echo",
        "f": "Foxtrot",
        "g": "Golf",
        "h": "Hotel",
        "i": "India",
        "j": "Juliet",
        "k": "Kilo",
        "l": "Lima",
        "m": "Mike",
        "n": "November",
        "o": "Oscar",
        "p": "Papa",
        "q": "Quebec",
        "r": "Romeo",
        "s": "Sierra",
        "t": "Tango",
        "u": "Uniform",
        "v": "Victor",
        "w": "Whiskey",
        "x": "X-ray",
        "y": "Yankee",
        "z": "Zulu",
    }
)

DIGIT_WORDS: Final = MappingProxyType(
    {
        "0": "zero",
        "1": "one",
        "2": "two",
        "3": "three",
        "4": "four",
        "5": "five",
        "6": "six",
        "7": "seven",
        "8": "eight",
        "9": "nine",
    }
)

#: Names of the punctuation a password may contain.
SYMBOL_NAMES: Final = MappingProxyType(
    {
        "-": "dash",
        "_": "underscore",
        ".": "dot",
        " ": "space",
        "+": "plus",
        "/": "slash",
        "#": "hash",
        "!": "exclamation mark",
        "@": "at sign",
        "*": "asterisk",
        "=": "equals",
        ",": "comma",
        ":": "colon",
        "?": "question mark",
    }
)
