"""Vietnamese personal names: canonical form, search key, legacy-encoding repair and splitting.

Rules (DOMAIN.md "Names", CONTRACTS.md §2 ``full_name`` and §3 field agreement):

* ``canonical_name`` gives NFC text with the *traditional* tone placement used in official
  documents (``Hòa``, ``Khỏe``, ``Thủy``, ``Quý``, ``Giàu``), proper case per word, single spaces.
* ``fold`` gives the search key: lower case, no diacritics, ``đ`` as ``d``, single spaces.

Which input variants meet where (see also :class:`NameVariant`):

* same canonical form: NFC or NFD (combining marks in any order), old or new tone placement,
  any capitals, any whitespace (tabs, non-breaking, zero-width space), text garbled by the
  TCVN3 (ABC) or VNI legacy encodings read as Windows-1252/Latin-1, and Telex leftovers
  (``Nguyeenx``; see :func:`repair_legacy_encoding` for how cautious this is);
* same folded key only: the name written without diacritics, ``đ`` written ``d``;
* neither: given-name-first order (word order matters, CONTRACTS §3); search may try
  :func:`given_name_first_variants`.

Hyphens and apostrophes are kept (``H'Hen``, ``Anh-Thư``); typographic apostrophes and dashes
become ASCII ``'`` and ``-``, and each part after one is capitalised. Other punctuation is kept.
Zero-width joiners, word joiners, byte-order marks and soft hyphens are removed; a zero-width
space separates words. ``Ð``/``ð`` (eth), often typed for ``Đ``/``đ``, become ``Đ``/``đ``.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from functools import lru_cache
from operator import itemgetter
from typing import Literal

__all__ = [
    "COMPOUND_FAMILY_NAMES",
    "FOLD_ONLY_VARIANTS",
    "SAME_CANONICAL_VARIANTS",
    "NameVariant",
    "canonical_and_fold",
    "canonical_name",
    "fold",
    "given_name_first_variants",
    "has_diacritics",
    "looks_like_legacy_encoding",
    "repair_legacy_encoding",
    "split_name",
]

LegacyEncoding = Literal["TCVN3", "VNI"]

# --------------------------------------------------------------------------------------------
# Marks and letters
# --------------------------------------------------------------------------------------------

_GRAVE = "\u0300"  # huyền
_ACUTE = "\u0301"  # sắc
_TILDE = "\u0303"  # ngã
_HOOK = "\u0309"  # hỏi
_DOT = "\u0323"  # nặng
_CIRCUMFLEX = "\u0302"  # â ê ô
_BREVE = "\u0306"  # ă
_HORN = "\u031b"  # ơ ư

_TONE_MARKS = frozenset(_GRAVE + _ACUTE + _TILDE + _HOOK + _DOT)
_SHAPE_MARKS = frozenset(_CIRCUMFLEX + _BREVE + _HORN)
_VIET_MARKS = _TONE_MARKS | _SHAPE_MARKS
_VOWELS = frozenset("aeiouy")
_STOP_ENDINGS = ("c", "ch", "p", "t")  # rhymes ending so take only sắc or nặng

# Characters folded before splitting into words (only looked at in non-ASCII text).
_CLEAN = str.maketrans(
    {
        "\u200b": " ",  # zero-width space: a word separator
        "\u200c": None,  # zero-width non-joiner
        "\u200d": None,  # zero-width joiner
        "\u2060": None,  # word joiner
        "\ufeff": None,  # byte-order mark / zero-width no-break space
        "\u180e": None,  # Mongolian vowel separator (formerly a space)
        "\u00ad": None,  # soft hyphen (after legacy repair, where it means ư in TCVN3)
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "\u2032": "'",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00d0": "Đ",  # eth typed for Đ
        "\u00f0": "đ",
        "\u0189": "Đ",  # African D
        "\u0256": "đ",
    }
)

_CLEAN_KEYS = frozenset(chr(k) for k in _CLEAN)
_FOLD_LETTERS = str.maketrans({"đ": "d", "ð": "d", "ɖ": "d"})

# --------------------------------------------------------------------------------------------
# Tone placement (traditional style)
# --------------------------------------------------------------------------------------------


def _tone_target(bases: list[str], shapes: list[list[str]]) -> int | None:
    """Index of the letter that carries the tone in the traditional style, or None.

    Rule: a vowel with a shape mark (ă â ê ô ơ ư; the last of ươ); else the last vowel before a
    final consonant; else in open clusters the first of two vowels (hòa, thủy, mía) or the
    middle of three (ngoài); ``u`` after ``q`` and ``i`` after ``g`` belong to the onset.
    """
    vowels = [i for i, b in enumerate(bases) if b in _VOWELS]
    if not vowels:
        return None
    first, last = vowels[0], vowels[-1]
    if last - first + 1 != len(vowels):
        return None  # several vowel groups: not one syllable, leave the tone where it is
    if len(vowels) > 1 and not shapes[first]:
        onset = "".join(bases[:first])
        if (onset == "q" and bases[first] == "u") or (onset == "g" and bases[first] == "i"):
            first += 1
    shaped = [i for i in range(first, last + 1) if shapes[i]]
    if shaped:
        return shaped[-1]
    if last + 1 < len(bases):
        return last
    size = last - first + 1
    return first if size <= 2 else first + 1


def _canon_part(part: str) -> str:
    """One syllable-like run of a word: NFC, traditional tone placement, first letter upper."""
    if not part:
        return part
    if part.isascii():
        return part[0].upper() + part[1:].lower()
    bases: list[str] = []
    shapes: list[list[str]] = []
    tones: list[list[str]] = []
    others: list[list[str]] = []
    for ch in unicodedata.normalize("NFD", part):
        if ch in _VIET_MARKS or unicodedata.combining(ch):
            if not bases:
                bases.append("")
                shapes.append([])
                tones.append([])
                others.append([])
            if ch in _TONE_MARKS:
                if ch not in tones[-1]:
                    tones[-1].append(ch)
            elif ch in _SHAPE_MARKS:
                if ch not in shapes[-1]:
                    shapes[-1].append(ch)
            else:
                others[-1].append(ch)
        else:
            low = ch.lower()
            bases.append(low if len(low) == 1 else ch)
            shapes.append([])
            tones.append([])
            others.append([])
    toned = [i for i, t in enumerate(tones) if t]
    if len(toned) == 1 and len(tones[toned[0]]) == 1:
        target = _tone_target(bases, shapes)
        if target is not None and target != toned[0]:
            tones[target] = tones[toned[0]]
            tones[toned[0]] = []
    pieces: list[str] = []
    first = 1 if bases[0] == "" and len(bases) > 1 else 0  # skip a mark with no letter
    for i, base in enumerate(bases):
        if i == first:
            up = base.upper()
            if len(up) == 1:
                base = up
        pieces.append(base + "".join(sorted(shapes[i])) + "".join(sorted(tones[i])))
        pieces.append("".join(others[i]))
    return unicodedata.normalize("NFC", "".join(pieces))


def _canon_word(word: str) -> str:
    """Canonical form of one whitespace-free word; hyphen/apostrophe parts are done one by one."""
    if "-" not in word and "'" not in word:
        return _canon_part(word)
    out: list[str] = []
    start = 0
    for i, ch in enumerate(word):
        if ch == "-" or ch == "'":
            out.append(_canon_part(word[start:i]))
            out.append(ch)
            start = i + 1
    out.append(_canon_part(word[start:]))
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Syllable validation (used only to decide whether text is garbled)
# --------------------------------------------------------------------------------------------

_OPEN_RHYMES = (
    "a e ê i o ô ơ u ư y ai ao au ay âu ây eo êu ia iu oa oe oi ôi ơi ua uê ui uơ uy ưa ưi ưu "
    "oai oay oao oeo uây uôi ươi ươu iêu yêu uya uyu"
).split()
_NUCLEI_MNPT = "a ă â e ê i o ô ơ u ư iê yê uô ươ oa oă oe uâ uê uy uyê".split()
_NUCLEI_NGC = "a ă â e ê o ô u ư iê uô ươ oa oă oo uâ".split()
_NUCLEI_NHCH = "a ê i oa uê uy".split()


def _build_rhymes() -> frozenset[str]:
    rhymes = set(_OPEN_RHYMES)
    rhymes.update(n + c for n in _NUCLEI_MNPT for c in ("m", "n", "p", "t"))
    rhymes.update(n + c for n in _NUCLEI_NGC for c in ("ng", "c"))
    rhymes.update(n + c for n in _NUCLEI_NHCH for c in ("nh", "ch"))
    return frozenset(rhymes)


_RHYMES = _build_rhymes()
_ONSETS = "ngh ng nh ch gh gi kh ph qu th tr b c d đ g h k l m n p r s t v x".split()
_CODAS = frozenset(("c", "ch", "m", "n", "ng", "nh", "p", "t"))
_VIET_LETTERS = frozenset("abcdeghiklmnopqrstuvxyăâđêôơư")


def _strip_marks(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


_PLAIN_RHYMES = frozenset(_strip_marks(r) for r in _RHYMES)


def _has_rhyme(bare: str, rhymes: frozenset[str]) -> bool:
    """True if ``bare`` (no tone) is an onset (possibly none) followed by a rhyme of ``rhymes``."""
    if bare in rhymes:
        return True
    for onset in _ONSETS:
        if bare.startswith(onset):
            rest = bare[len(onset) :]
            if rest in rhymes or (onset == "qu" and "u" + rest in rhymes):
                return True
            if onset == "gi" and not rest:
                return True
    return False


@lru_cache(maxsize=1 << 14)
def _is_syllable(word: str) -> bool:
    """True if the lower-case ``word`` spells one Vietnamese syllable (tone on any vowel)."""
    decomposed = unicodedata.normalize("NFD", word)
    tones = [c for c in decomposed if c in _TONE_MARKS]
    if len(tones) > 1:
        return False
    bare = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONE_MARKS))
    if not bare or not _VIET_LETTERS.issuperset(bare):
        return False
    if tones and tones[0] not in (_ACUTE, _DOT) and bare.endswith(_STOP_ENDINGS):
        return False
    return _has_rhyme(bare, _RHYMES)


@lru_cache(maxsize=1 << 14)
def _is_plain_syllable(word: str) -> bool:
    """True if the lower-case ASCII ``word`` is a Vietnamese syllable written without marks."""
    return _has_rhyme(word, _PLAIN_RHYMES)


def _parts(text: str) -> list[str]:
    """Lower-case words of ``text`` cut at hyphens and apostrophes (empty parts dropped)."""
    out: list[str] = []
    for word in text.lower().split():
        out.extend(p for p in word.replace("'", "-").split("-") if p)
    return out


def _is_vietnamese(text: str) -> bool:
    """True if every non-ASCII part of ``text`` is a Vietnamese syllable."""
    return all(p.isascii() or _is_syllable(p) for p in _parts(text))


# --------------------------------------------------------------------------------------------
# Legacy encodings
# --------------------------------------------------------------------------------------------

# TCVN 5712:1993 VN3 ("ABC"): one byte per letter. Bytes read as Latin-1/Windows-1252 (same
# characters in A0-FF) on the left, the letters they encode on the right, in byte order within
# each group: capitals A1-A7, small shaped letters A8-AE, then each vowel's five tones in the
# order huyền, hỏi, ngã, sắc, nặng. TCVN3 has no toned capitals (caps fonts reuse small codes).
_TCVN3_BYTES = (
    "\u00a1\u00a2\u00a3\u00a4\u00a5\u00a6\u00a7"  # Ă Â Ê Ô Ơ Ư Đ
    "\u00a8\u00a9\u00aa\u00ab\u00ac\u00ad\u00ae"  # ă â ê ô ơ ư đ
    "\u00b5\u00b6\u00b7\u00b8\u00b9"  # a
    "\u00bb\u00bc\u00bd\u00be\u00c6"  # ă
    "\u00c7\u00c8\u00c9\u00ca\u00cb"  # â
    "\u00cc\u00ce\u00cf\u00d0\u00d1"  # e
    "\u00d2\u00d3\u00d4\u00d5\u00d6"  # ê
    "\u00d7\u00d8\u00dc\u00dd\u00de"  # i
    "\u00df\u00e1\u00e2\u00e3\u00e4"  # o
    "\u00e5\u00e6\u00e7\u00e8\u00e9"  # ô
    "\u00ea\u00eb\u00ec\u00ed\u00ee"  # ơ
    "\u00ef\u00f1\u00f2\u00f3\u00f4"  # u
    "\u00f5\u00f6\u00f7\u00f8\u00f9"  # ư
    "\u00fa\u00fb\u00fc\u00fd\u00fe"  # y
)


def _tcvn3_letters() -> str:
    out = ["ĂÂÊÔƠƯĐăâêôơưđ"]
    for base in (
        "a",
        "a" + _BREVE,
        "a" + _CIRCUMFLEX,
        "e",
        "e" + _CIRCUMFLEX,
        "i",
        "o",
        "o" + _CIRCUMFLEX,
        "o" + _HORN,
        "u",
        "u" + _HORN,
        "y",
    ):
        out.extend(
            unicodedata.normalize("NFC", base + t) for t in (_GRAVE, _HOOK, _TILDE, _ACUTE, _DOT)
        )
    return "".join(out)


_TCVN3_TABLE = str.maketrans(dict(zip(_TCVN3_BYTES, _tcvn3_letters(), strict=True)))

# VNI-Windows: a base letter followed by a modifier byte; ơ ư đ and the toned i/ỵ are single
# bytes. Modifier bytes (small, capital) -> (shape mark, tone mark).
_VNI_MODIFIER_BYTES = (
    ("ù", "Ù", "", _ACUTE),
    ("ø", "Ø", "", _GRAVE),
    ("û", "Û", "", _HOOK),
    ("õ", "Õ", "", _TILDE),
    ("ï", "Ï", "", _DOT),
    ("â", "Â", _CIRCUMFLEX, ""),
    ("á", "Á", _CIRCUMFLEX, _ACUTE),
    ("à", "À", _CIRCUMFLEX, _GRAVE),
    ("å", "Å", _CIRCUMFLEX, _HOOK),
    ("ã", "Ã", _CIRCUMFLEX, _TILDE),
    ("ä", "Ä", _CIRCUMFLEX, _DOT),
    ("ê", "Ê", _BREVE, ""),
    ("é", "É", _BREVE, _ACUTE),
    ("è", "È", _BREVE, _GRAVE),
    ("ú", "Ú", _BREVE, _HOOK),
    ("ü", "Ü", _BREVE, _TILDE),
    ("ë", "Ë", _BREVE, _DOT),
)
_VNI_MODIFIERS: dict[str, tuple[str, str]] = {
    byte: (shape, tone)
    for small, capital, shape, tone in _VNI_MODIFIER_BYTES
    for byte in (small, capital)
}

_VNI_SINGLES: dict[str, str] = {
    "ô": "ơ", "Ô": "Ơ", "ö": "ư", "Ö": "Ư", "ñ": "đ", "Ñ": "Đ",
    "ì": "ì", "Ì": "Ì", "í": "í", "Í": "Í", "æ": "ỉ", "Æ": "Ỉ",
    "ó": "ĩ", "Ó": "Ĩ", "ò": "ị", "Ò": "Ị", "î": "ỵ", "Î": "Ỵ",
}  # fmt: skip


def _vni_pairs() -> dict[str, str]:
    """Base letter + modifier byte -> letter, for every combination VNI allows."""
    pairs: dict[str, str] = {}
    for base in "aeouyAEOUYơưƠƯ":
        plain = base.lower()
        for byte, (shape, tone) in _VNI_MODIFIERS.items():
            if shape == _CIRCUMFLEX and plain not in "aeo":
                continue
            if shape == _BREVE and plain != "a":
                continue
            pairs[base + byte] = unicodedata.normalize("NFC", base + shape + tone)
    return pairs


_VNI_PAIRS = _vni_pairs()


_TCVN3_KEYS = frozenset(_TCVN3_BYTES) | {"\xa0"}


def _decode_tcvn3(text: str) -> str | None:
    if not all(c < "\x80" or c in _TCVN3_KEYS for c in text):
        return None
    return text.translate(_TCVN3_TABLE)


def _decode_vni(text: str) -> str | None:
    out: list[str] = []
    for ch in text:
        if ch < "\x80" or ch == "\xa0":
            out.append(ch)
            continue
        single = _VNI_SINGLES.get(ch)
        if single is not None:
            out.append(single)
            continue
        if ch not in _VNI_MODIFIERS or not out:
            return None
        combined = _VNI_PAIRS.get(out[-1] + ch)
        if combined is None:
            return None
        out[-1] = combined
    return "".join(out)


def _new_style(word: str) -> str:
    """The new-style spelling of a canonical lower-case syllable (tone on a of oa, e of oe...)."""
    for pair in ("oa", "oe", "uy"):
        for tone in _TONE_MARKS:
            toned = unicodedata.normalize("NFC", pair[0] + tone)
            if word.endswith(toned + pair[1]) and not word.startswith(("qu", "gi")):
                return word[:-2] + unicodedata.normalize("NFC", pair[1] + tone)
    return word


def _misplaced_tones(text: str) -> int:
    """How many non-ASCII parts carry their tone where neither tone style puts it."""
    bad = 0
    for part in _parts(text):
        if part.isascii():
            continue
        canon = _canon_part(part).lower()
        if part != canon and part != _new_style(canon):
            bad += 1
    return bad


def _restore_caps(original: str, decoded: str) -> str:
    """Upper-case decoded words whose ASCII letters were all capitals (caps fonts)."""
    words = decoded.split(" ")
    origs = original.split(" ")
    if len(words) != len(origs):
        return decoded
    out: list[str] = []
    for orig, word in zip(origs, words, strict=True):
        letters = [c for c in orig if c.isascii() and c.isalpha()]
        if len(letters) > 1 and all(c.isupper() for c in letters):
            word = word.upper()
        out.append(word)
    return " ".join(out)


@lru_cache(maxsize=1 << 12)
def _detect_legacy(text: str) -> tuple[LegacyEncoding, str] | None:
    """(encoding, decoded NFC text) when NFC ``text`` is TCVN3 or VNI read as Latin-1, else None."""
    if text.isascii() or len(text.encode("latin-1", "ignore")) != len(text) or _is_vietnamese(text):
        return None
    found: list[tuple[int, LegacyEncoding, str]] = []
    for name, decoder in (("TCVN3", _decode_tcvn3), ("VNI", _decode_vni)):
        decoded = decoder(text)
        if decoded is not None and decoded != text and _is_vietnamese(decoded):
            encoding: LegacyEncoding = "TCVN3" if name == "TCVN3" else "VNI"
            decoded = unicodedata.normalize("NFC", _restore_caps(text, decoded))
            found.append((_misplaced_tones(decoded), encoding, decoded))
    if not found:
        return None
    found.sort()
    if len(found) > 1 and found[0][0] == found[1][0]:
        return None  # both readings equally plausible: leave the text alone
    return found[0][1], found[0][2]


# --------------------------------------------------------------------------------------------
# Telex leftovers
# --------------------------------------------------------------------------------------------

_TELEX_TONES = {"s": _ACUTE, "f": _GRAVE, "r": _HOOK, "x": _TILDE, "j": _DOT}
_TELEX_SHAPES = (("aa", "â"), ("ee", "ê"), ("oo", "ô"), ("aw", "ă"), ("ow", "ơ"), ("uw", "ư"))


@lru_cache(maxsize=1 << 14)
def _telex_word(word: str) -> tuple[str, bool] | None:
    """(decoded lower-case word, self-evident) when ``word`` reads as a Telex leftover, else None.

    Only ASCII words that are not Vietnamese syllables written without marks and whose Telex
    reading is a Vietnamese syllable qualify (``nguyeenx`` -> ``nguyễn``, ``thanhf`` -> ``thành``).
    Self-evident: two or more Telex keys (``nguyeenx``, ``ddoox``), unlike ``lee`` or ``max``.
    """
    if not word.isascii() or not word.isalpha():
        return None
    w = word.lower()
    if _is_plain_syllable(w) and "oo" not in w:  # "coong" is Telex for Công, not a loanword
        return None
    tone = ""
    if len(w) > 1 and w[-1] in _TELEX_TONES and _VOWELS.intersection(w[:-1]):
        tone = _TELEX_TONES[w[-1]]
        w = w[:-1]
    else:
        start = next((i for i, c in enumerate(w) if c in _VOWELS), None)
        if start is None:
            return None
        end = start
        while end < len(w) and (w[end] in _VOWELS or w[end] == "w"):
            end += 1
        if end < len(w) - 1 and w[end] in _TELEX_TONES and w[end + 1 :] in _CODAS:
            tone = _TELEX_TONES[w[end]]
            w = w[:end] + w[end + 1 :]
    keys = 1 if tone else 0
    if w.startswith("dd"):
        w = "đ" + w[2:]
        keys += 1
    if "uow" in w:
        keys += w.count("uow")
        w = w.replace("uow", "ươ")
    for key, letter in _TELEX_SHAPES:
        if key in w:
            keys += w.count(key)
            w = w.replace(key, letter)
    if "w" in w:
        keys += w.count("w")
        w = w.replace("w", "ư")
    if w.endswith("ươ"):
        w = w[:-2] + "uơ"  # thuở, huơ: the horn goes on o only at the end of the word
    if not keys:
        return None
    if tone:
        first_vowel = next((i for i, c in enumerate(w) if c.lower() in "aeiouyăâêôơư"), None)
        if first_vowel is None:
            return None
        w = w[: first_vowel + 1] + tone + w[first_vowel + 1 :]
    decoded = _canon_part(unicodedata.normalize("NFC", w)).lower()
    if not _is_syllable(decoded):
        return None
    return decoded, keys >= 2


def _has_viet_marks(word: str) -> bool:
    if word.isascii():
        return False
    return (
        "đ" in word or "Đ" in word or not _VIET_MARKS.isdisjoint(unicodedata.normalize("NFD", word))
    )


def _repair_telex(words: list[str]) -> list[str]:
    """Replace Telex leftovers among ``words`` when the name shows Vietnamese typing.

    Evidence: a word with Vietnamese marks, or a self-evident Telex word (two keys or more).
    """
    found = [_telex_word(w) for w in words]
    if all(f is None for f in found):
        return words
    context = any(f is not None and f[1] for f in found) or any(_has_viet_marks(w) for w in words)
    out: list[str] = []
    for word, hit in zip(words, found, strict=True):
        if hit is None or not context:
            out.append(word)
        elif word.isupper() and len(word) > 1:
            out.append(hit[0].upper())
        elif word[0].isupper():
            out.append(hit[0][0].upper() + hit[0][1:])
        else:
            out.append(hit[0])
    return out


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


class NameVariant(StrEnum):
    """The ways one name arrives (DOMAIN.md "Names")."""

    NFC = "nfc"
    NFD = "nfd"
    TONE_PLACEMENT = "tone_placement"
    CAPITALS = "capitals"
    SPACING = "spacing"
    TCVN3 = "tcvn3"
    VNI = "vni"
    TELEX = "telex"
    NO_DIACRITICS = "no_diacritics"
    D_FOR_DJ = "d_for_dj"
    GIVEN_NAME_FIRST = "given_name_first"


SAME_CANONICAL_VARIANTS: frozenset[NameVariant] = frozenset(
    {
        NameVariant.NFC,
        NameVariant.NFD,
        NameVariant.TONE_PLACEMENT,
        NameVariant.CAPITALS,
        NameVariant.SPACING,
        NameVariant.TCVN3,
        NameVariant.VNI,
        NameVariant.TELEX,
    }
)
"""Variants that ``canonical_name`` maps to the same canonical form."""

FOLD_ONLY_VARIANTS: frozenset[NameVariant] = frozenset(
    {NameVariant.NO_DIACRITICS, NameVariant.D_FOR_DJ}
)
"""Variants that only reach the same ``fold`` key (CONTRACTS §3: compare without diacritics)."""


def repair_legacy_encoding(text: str) -> str:
    """Decode TCVN3/VNI text read as Latin-1, and Telex leftovers; else return ``text`` unchanged.

    Conservative: text whose non-ASCII words are all Vietnamese syllables is never touched, and a
    decoding is used only when exactly one encoding turns every word into Vietnamese. Telex words
    (ASCII, not a plain syllable, read as one under Telex) are repaired only when the text shows
    Vietnamese typing: another word with marks, or a word with two Telex keys (``Nguyeenx``).
    So ``Lee``, ``Max`` or ``Thanhf`` alone stay; ``Nguyễn Văn Thanhf`` becomes ``... Thành``.
    """
    if not text.isascii():
        hit = _detect_legacy(unicodedata.normalize("NFC", text))
        if hit is not None:
            return hit[1]
    words = text.split(" ")
    repaired = _repair_telex(words)
    return text if repaired is words else " ".join(repaired)


def looks_like_legacy_encoding(text: str) -> LegacyEncoding | None:
    """``"TCVN3"`` or ``"VNI"`` when ``text`` is Vietnamese garbled by that encoding, else None."""
    if text.isascii():
        return None
    hit = _detect_legacy(unicodedata.normalize("NFC", text))
    return None if hit is None else hit[0]


@lru_cache(maxsize=1 << 16)
def _fold_word(word: str) -> str:
    """Lower case, marks stripped, đ as d; a word made only of marks stays as it is."""
    low = word.lower()
    if low.isascii():
        return low
    return _strip_marks(low).translate(_FOLD_LETTERS) or low


WordInfo = tuple[str, str, tuple[str, bool] | None, bool]
"""(canonical word, its fold, Telex reading if any, canonical word is plainly Vietnamese)."""

# Per-word memo. A plain dict rather than lru_cache so that the hot path can look up all the
# words of a name with one C-level ``map(dict.get, words)``; cleared when full.
_WORDS: dict[str, WordInfo] = {}
_WORDS_MAX = 1 << 17


def _word_info(word: str) -> WordInfo:
    info = _WORDS.get(word)
    if info is None:
        canon = _canon_word(word)
        info = (canon, _fold_word(canon), _telex_word(word), _is_vietnamese(canon))
        if len(_WORDS) >= _WORDS_MAX:
            _WORDS.clear()
        _WORDS[word] = info
    return info


def _word_infos(words: list[str]) -> list[WordInfo]:
    infos = list(map(_WORDS.get, words))
    if None in infos:
        return [_word_info(w) for w in words]
    return infos  # type: ignore[return-value]  # no None left


_LATIN1_ONLY = re.compile("[^\x00-\xff]")
_NEEDS_CLEAN = re.compile("[" + re.escape("".join(sorted(_CLEAN_KEYS))) + "]")


def _prepare(raw: str) -> str:
    """NFC, legacy-encoding repair, then invisible and look-alike characters folded."""
    text = unicodedata.normalize("NFC", raw)
    if _LATIN1_ONLY.search(text) is None:  # only Latin-1 characters: maybe a legacy encoding
        hit = _detect_legacy(text)
        if hit is not None:
            text = hit[1]
    if _NEEDS_CLEAN.search(text) is not None:
        text = text.translate(_CLEAN)
    return text


def _resolve_telex(infos: list[WordInfo]) -> list[WordInfo]:
    """Same rule as :func:`_repair_telex`, on word infos."""
    context = any(i[2] is not None and i[2][1] for i in infos) or any(
        _has_viet_marks(i[0]) for i in infos
    )
    out: list[WordInfo] = []
    for info in infos:
        telex = info[2]
        out.append(_word_info(telex[0]) if telex is not None and context else info)
    return out


_CANON_OF = itemgetter(0)
_KEY_OF = itemgetter(1)
_TELEX_OF = itemgetter(2)
_VIETNAMESE_OF = itemgetter(3)


@lru_cache(maxsize=1 << 18)
def _canonical_pair(raw: str) -> tuple[str, str]:
    text = raw if raw.isascii() else _prepare(raw)
    infos = _word_infos(text.split())
    if any(map(_TELEX_OF, infos)):
        infos = _resolve_telex(infos)
    canon = " ".join(map(_CANON_OF, infos))
    if (
        canon != raw
        and not all(map(_VIETNAMESE_OF, infos))
        and not canon.isascii()
        and _LATIN1_ONLY.search(canon) is None
        and _detect_legacy(canon) is not None
    ):
        # case folding can turn odd Latin-1 text into a legacy look-alike: settle it now so
        # that the function stays idempotent (a decoded result is Vietnamese, hence stable)
        return _canonical_pair(canon)
    return canon, " ".join(map(_KEY_OF, infos))


def canonical_name(raw: str) -> str:
    """Canonical full name: NFC, traditional tone placement, proper case, single spaces.

    CONTRACTS §2/§3; idempotent. Legacy encodings and Telex leftovers are repaired first.
    """
    return _canonical_pair(raw)[0]


def canonical_and_fold(raw: str) -> tuple[str, str]:
    """``(canonical_name(raw), fold(canonical_name(raw)))`` in one cached step, for bulk loads."""
    return _canonical_pair(raw)


@lru_cache(maxsize=1 << 18)
def _fold(text: str) -> str:
    if text.isascii():
        return " ".join(text.lower().split())
    if _NEEDS_CLEAN.search(text) is not None:
        text = text.translate(_CLEAN)
    return " ".join(map(_fold_word, text.split()))


def fold(text: str) -> str:
    """Search key (``name_key``): lower case, no diacritics, ``đ`` as ``d``, single spaces.

    CONTRACTS §3: names given without diacritics are compared on this key.
    """
    return _fold(text)


_DIACRITIC_SIGNS = _VIET_MARKS | {"đ", "Đ"}


def has_diacritics(text: str) -> bool:
    """True if ``text`` carries any Vietnamese mark (tone, circumflex, breve, horn) or ``đ``."""
    if text.isascii():
        return False
    return not _DIACRITIC_SIGNS.isdisjoint(unicodedata.normalize("NFD", text))


COMPOUND_FAMILY_NAMES: frozenset[str] = frozenset(
    {
        "Âu Dương",
        "Công Tôn",
        "Đông Phương",
        "Gia Cát",
        "Hoàng Phủ",
        "Thượng Quan",
        "Tôn Nữ",
        "Tôn Thất",
        "Tư Đồ",
        "Tư Mã",
    }
)
"""Two-word family names recognised by :func:`split_name`.

``Nguyễn Phúc``/``Nguyễn Phước`` are left out on purpose: ``Phúc`` is a common middle name, so
the split would be wrong far more often than right.
"""

_COMPOUND_FAMILY_KEYS = frozenset(_fold(n) for n in COMPOUND_FAMILY_NAMES)


@lru_cache(maxsize=1 << 16)
def split_name(canonical: str) -> tuple[str, str, str]:
    """(family, middle, given) of a canonical name, family first (DOMAIN.md "Names").

    One word is a given name only; ``middle`` may be empty or several words; the two-word family
    names of :data:`COMPOUND_FAMILY_NAMES` (also written without diacritics) count as one.
    """
    words = canonical.split()
    if not words:
        return "", "", ""
    if len(words) == 1:
        return "", "", words[0]
    family_size = 1
    if len(words) >= 3:
        pair = f"{words[0]} {words[1]}"
        if pair in COMPOUND_FAMILY_NAMES or (
            not has_diacritics(pair) and _fold(pair) in _COMPOUND_FAMILY_KEYS
        ):
            family_size = 2
    return (
        " ".join(words[:family_size]),
        " ".join(words[family_size:-1]),
        words[-1],
    )


def given_name_first_variants(canonical: str) -> list[str]:
    """Given-name-first spellings of a family-first name, for search only (never canonical).

    ``Nguyễn Văn An`` -> ``Văn An Nguyễn``, ``An Nguyễn Văn``, ``An Văn Nguyễn``.
    """
    family, middle, given = split_name(canonical)
    if not family:
        return []
    candidates = [
        " ".join(p for p in (middle, given, family) if p),
        " ".join(p for p in (given, family, middle) if p),
        " ".join(p for p in (given, middle, family) if p),
    ]
    own = " ".join(canonical.split())
    out: list[str] = []
    for c in candidates:
        if c != own and c not in out:
            out.append(c)
    return out
