"""Names: canonical form, fold key, legacy encodings, splitting (DOMAIN.md "Names")."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dancu.vn.names import (
    FOLD_ONLY_VARIANTS,
    SAME_CANONICAL_VARIANTS,
    NameVariant,
    canonical_name,
    fold,
    given_name_first_variants,
    has_diacritics,
    looks_like_legacy_encoding,
    repair_legacy_encoding,
    split_name,
)

# ---------------------------------------------------------------------------------------------
# A generator of synthetic Vietnamese syllables, written independently of the implementation:
# each rhyme states by hand where the tone goes in the traditional style ("old") and in the
# new style ("new"); they differ only for open oa, oe, uy.
# ---------------------------------------------------------------------------------------------

ONSETS = [*"b c ch d đ h kh l m n ng nh ph r s t th tr v x".split(), ""]
# (rhyme without tone, index of the toned vowel old style, new style)
OPEN_RHYMES = [
    ("a", 0, 0), ("e", 0, 0), ("ê", 0, 0), ("i", 0, 0), ("o", 0, 0), ("ô", 0, 0), ("ơ", 0, 0),
    ("u", 0, 0), ("ư", 0, 0), ("y", 0, 0), ("ai", 0, 0), ("ao", 0, 0), ("au", 0, 0),
    ("ay", 0, 0), ("âu", 0, 0), ("ây", 0, 0), ("eo", 0, 0), ("êu", 0, 0), ("ia", 0, 0),
    ("iu", 0, 0), ("oa", 0, 1), ("oe", 0, 1), ("oi", 0, 0), ("ôi", 0, 0), ("ơi", 0, 0),
    ("ua", 0, 0), ("uê", 1, 1), ("ui", 0, 0), ("uy", 0, 1), ("ưa", 0, 0), ("ưi", 0, 0),
    ("ưu", 0, 0), ("oai", 1, 1), ("oay", 1, 1), ("uôi", 1, 1), ("ươi", 1, 1), ("iêu", 1, 1),
    ("uyu", 1, 1), ("oeo", 1, 1), ("uây", 1, 1), ("ươu", 1, 1),
]  # fmt: skip
SONORANT_RHYMES = [
    ("an", 0, 0), ("anh", 0, 0), ("ang", 0, 0), ("ăn", 0, 0), ("âm", 0, 0), ("em", 0, 0),
    ("ên", 0, 0), ("ênh", 0, 0), ("in", 0, 0), ("inh", 0, 0), ("om", 0, 0), ("ông", 0, 0),
    ("ơn", 0, 0), ("un", 0, 0), ("ung", 0, 0), ("ưng", 0, 0), ("iên", 1, 1), ("uôn", 1, 1),
    ("ương", 1, 1), ("oan", 1, 1), ("oang", 1, 1), ("oanh", 1, 1), ("uân", 1, 1),
    ("uyên", 2, 2), ("uynh", 1, 1),
]  # fmt: skip
STOP_RHYMES = [
    ("at", 0, 0), ("ac", 0, 0), ("ach", 0, 0), ("ăc", 0, 0), ("ât", 0, 0), ("ep", 0, 0),
    ("êt", 0, 0), ("ich", 0, 0), ("ôc", 0, 0), ("ot", 0, 0), ("ơt", 0, 0), ("uc", 0, 0),
    ("ưc", 0, 0), ("iêt", 1, 1), ("uôc", 1, 1), ("ươc", 1, 1), ("oat", 1, 1), ("oăc", 1, 1),
    ("uât", 1, 1), ("uyêt", 2, 2), ("uych", 1, 1),
]  # fmt: skip
TONES = ["", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323"]
STOP_TONES = ["\u0301", "\u0323"]
VOWEL_LETTERS = set("aăâeêioôơuưy")

# Common family names whose TCVN3 and VNI garblings are both visibly broken.
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Bùi", "Đặng", "Đỗ", "Ngô", "Dương"]


def _put_tone(rhyme: str, index: int, tone: str) -> str:
    """Place ``tone`` on the ``index``-th vowel letter of ``rhyme``."""
    seen = -1
    out = []
    for ch in rhyme:
        out.append(ch)
        if ch in VOWEL_LETTERS:
            seen += 1
            if seen == index:
                out.append(tone)
    return unicodedata.normalize("NFC", "".join(out))


@st.composite
def syllables(draw: st.DrawFn) -> tuple[str, str, str]:
    """(old-style, new-style, any-vowel-style) spellings of one lower-case syllable."""
    kind = draw(st.sampled_from(["open", "sonorant", "stop"]))
    table = {"open": OPEN_RHYMES, "sonorant": SONORANT_RHYMES, "stop": STOP_RHYMES}[kind]
    rhyme, old, new = draw(st.sampled_from(table))
    tone = draw(st.sampled_from(STOP_TONES if kind == "stop" else TONES))
    onset = draw(st.sampled_from(ONSETS))
    if onset == "" and rhyme[0] == "y":
        onset = "h"
    n_vowels = sum(ch in VOWEL_LETTERS for ch in rhyme)
    anywhere = draw(st.integers(0, n_vowels - 1))
    return (
        onset + _put_tone(rhyme, old, tone),
        onset + _put_tone(rhyme, new, tone),
        onset + _put_tone(rhyme, anywhere, tone),
    )


def _proper(words: list[str]) -> str:
    return " ".join(w[0].upper() + w[1:] for w in words)


@st.composite
def names(draw: st.DrawFn) -> tuple[str, str, str]:
    """(canonical, new-style, random-placement) spellings of a synthetic full name."""
    family = draw(st.sampled_from(FAMILY))
    parts = draw(st.lists(syllables(), min_size=1, max_size=3))
    old = _proper([p[0] for p in parts])
    new = _proper([p[1] for p in parts])
    anyw = _proper([p[2] for p in parts])
    return f"{family} {old}", f"{family} {new}", f"{family} {anyw}"


def strip_diacritics(text: str) -> str:
    """Independent no-diacritics writing: drop combining marks, đ as d."""
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return bare.replace("đ", "d").replace("Đ", "D")


# --- independent legacy encoders (from the published byte tables) ------------------------------

_TCVN3_UNICODE = "ĂÂÊÔƠƯĐăâêôơưđàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
_TCVN3_CODES = bytes.fromhex(
    "A1 A2 A3 A4 A5 A6 A7 A8 A9 AA AB AC AD AE"
    " B5 B6 B7 B8 B9 BB BC BD BE C6 C7 C8 C9 CA CB"
    " CC CE CF D0 D1 D2 D3 D4 D5 D6 D7 D8 DC DD DE"
    " DF E1 E2 E3 E4 E5 E6 E7 E8 E9 EA EB EC ED EE"
    " EF F1 F2 F3 F4 F5 F6 F7 F8 F9 FA FB FC FD FE"
)
TCVN3_ENCODE = dict(zip(_TCVN3_UNICODE, _TCVN3_CODES, strict=True))


def tcvn3_garble(text: str) -> str:
    """Encode in TCVN3 (toned capitals use the small code, as caps fonts do), read as cp1252."""
    out = bytearray()
    for ch in text:
        if ch.isascii():
            out += ch.encode()
        elif ch in TCVN3_ENCODE:
            out.append(TCVN3_ENCODE[ch])
        else:
            out.append(TCVN3_ENCODE[ch.lower()])
    return out.decode("cp1252")


_VNI_TONE = {"\u0301": 0xF9, "\u0300": 0xF8, "\u0309": 0xFB, "\u0303": 0xF5, "\u0323": 0xEF}
_VNI_HAT = {"": 0xE2, "\u0301": 0xE1, "\u0300": 0xE0, "\u0309": 0xE5, "\u0303": 0xE3,
            "\u0323": 0xE4}  # fmt: skip
_VNI_BREVE = {"": 0xEA, "\u0301": 0xE9, "\u0300": 0xE8, "\u0309": 0xFA, "\u0303": 0xFC,
              "\u0323": 0xEB}  # fmt: skip
_VNI_I = {"\u0301": 0xED, "\u0300": 0xEC, "\u0309": 0xE6, "\u0303": 0xF3, "\u0323": 0xF2}


def vni_garble(text: str) -> str:
    """Encode in VNI-Windows, read as cp1252."""
    out = bytearray()
    for ch in text:
        if ch.isascii():
            out += ch.encode()
            continue
        if ch in "đĐ":
            out.append(0xF1 if ch == "đ" else 0xD1)
            continue
        d = unicodedata.normalize("NFD", ch)
        base, marks = d[0], d[1:]
        tone = next((m for m in marks if m in _VNI_TONE), "")
        shift = -0x20 if base.isupper() else 0  # capital bytes sit 0x20 below small ones
        if "\u031b" in marks:
            out.append((0xF4 if base.lower() == "o" else 0xF6) + shift)
            if tone:
                out.append(_VNI_TONE[tone] + shift)
        elif "\u0302" in marks:
            out += base.encode() + bytes([_VNI_HAT[tone] + shift])
        elif "\u0306" in marks:
            out += base.encode() + bytes([_VNI_BREVE[tone] + shift])
        elif base.lower() == "i":
            out.append(_VNI_I[tone] + shift)
        elif base.lower() == "y" and tone == "\u0323":
            out.append(0xEE + shift)
        else:
            out += base.encode() + bytes([_VNI_TONE[tone] + shift])
    return out.decode("cp1252")


_TELEX_TONE_KEYS = {"\u0301": "s", "\u0300": "f", "\u0309": "r", "\u0303": "x", "\u0323": "j"}
_TELEX_SHAPE_KEYS = {"\u0302": None, "\u0306": "w", "\u031b": "w"}


def telex_type(word: str) -> str:
    """How the word is keyed in Telex (shape keys after the letter, tone key at the end)."""
    out = []
    tone_key = ""
    for ch in word:
        if ch in "đĐ":
            out.append("dd" if ch == "đ" else "Dd")
            continue
        d = unicodedata.normalize("NFD", ch)
        base, marks = d[0], d[1:]
        out.append(base)
        for m in marks:
            if m in _TELEX_SHAPE_KEYS:
                out.append(_TELEX_SHAPE_KEYS[m] or base.lower())
            elif m in _TELEX_TONE_KEYS:
                tone_key = _TELEX_TONE_KEYS[m]
    return "".join(out) + tone_key


# ---------------------------------------------------------------------------------------------
# Examples
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hoà", "Hòa"),
        ("Hòa", "Hòa"),
        ("HOÀ", "Hòa"),
        ("khoẻ", "Khỏe"),
        ("Thuỵ", "Thụy"),
        ("thuỷ", "Thủy"),
        ("hoá", "Hóa"),
        ("qúy", "Quý"),
        ("quý", "Quý"),
        ("qùynh", "Quỳnh"),
        ("gìau", "Giàu"),
        ("giàu", "Giàu"),
        ("gìn", "Gìn"),
        ("ngòai", "Ngoài"),
        ("ngừơi", "Người"),
        ("nguyêñ", "Nguyễn"),
        ("ĐẶNG thị  NGỌC\u00a0ÁNH", "Đặng Thị Ngọc Ánh"),
        ("đỗ\tvăn\u200ban ", "Đỗ Văn An"),
        ("\ufeffLê\u200d Hoa\u00ad", "Lê Hoa"),
        ("h’hen niê", "H'Hen Niê"),
        ("nguyễn thị anh–thư", "Nguyễn Thị Anh-Thư"),
        ("Ðặng", "Đặng"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_canonical_examples(raw: str, expected: str) -> None:
    assert canonical_name(raw) == expected
    assert canonical_name(unicodedata.normalize("NFD", raw)) == expected


def test_marks_in_any_order() -> None:
    # a + acute + circumflex is not composed by NFC; it still means ấ
    raw = "Nguy\u0065\u0303\u0302n Th\u0061\u0301\u0302n"
    assert canonical_name(raw) == "Nguyễn Thấn"


def test_output_is_nfc() -> None:
    out = canonical_name(unicodedata.normalize("NFD", "Trần Thị Thủy"))
    assert out == unicodedata.normalize("NFC", out) == "Trần Thị Thủy"


@pytest.mark.parametrize(
    ("garbled", "encoding", "expected"),
    [
        ("NguyÔn V¨n An", "TCVN3", "Nguyễn Văn An"),
        ("Lª ThÞ Hoa", "TCVN3", "Lê Thị Hoa"),
        ("§Æng V¨n Tó", "TCVN3", "Đặng Văn Tú"),
        ("Tr\u00ad¬ng ThÞ Hoµ", "TCVN3", "Trương Thị Hòa"),
        ("NGUYÔN V¨N AN", "TCVN3", "Nguyễn Văn An"),
        ("Nguyeãn Vaên An", "VNI", "Nguyễn Văn An"),
        ("Traàn Thò Hoøa", "VNI", "Trần Thị Hòa"),
        ("Ñaëng Thuøy Döông", "VNI", "Đặng Thùy Dương"),
        ("NGUYEÃN VAÊN AN", "VNI", "Nguyễn Văn An"),
    ],
)
def test_legacy_examples(garbled: str, encoding: str, expected: str) -> None:
    assert looks_like_legacy_encoding(garbled) == encoding
    assert canonical_name(garbled) == expected
    assert canonical_name(repair_legacy_encoding(garbled)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Nguyễn Văn An",
        "Hoà",
        "Lê Hà",
        "Tú",
        "José García",
        "Müller",
        "Zoë",
        "Nguyen Van An",
        "H'Hen Niê",
        "Ksor H'Bia",
        "Y Bih Niê Kdăm",
        "",
    ],
)
def test_repair_leaves_valid_text_alone(text: str) -> None:
    assert looks_like_legacy_encoding(text) is None
    assert repair_legacy_encoding(text) == text


def _every_toned_syllable() -> list[str]:
    """t + each vowel letter with each tone (+ n where the vowel cannot end a syllable)."""
    out = []
    for base in ["a", "ă", "â", "e", "ê", "i", "o", "ô", "ơ", "u", "ư", "y"]:
        for tone in TONES:
            coda = "n" if base in ("ă", "â") else ""
            out.append("t" + unicodedata.normalize("NFC", base + tone) + coda)
    return out


@pytest.mark.parametrize("syllable", _every_toned_syllable())
@pytest.mark.parametrize("garble", [tcvn3_garble, vni_garble])
@pytest.mark.parametrize("upper", [False, True])
def test_every_letter_survives_legacy_round_trip(
    syllable: str, garble: Callable[[str], str], upper: bool
) -> None:
    # one syllable per vowel letter and tone, between words that give the encoding away
    name = f"Đặng Thị {syllable} Dương"
    if upper:
        name = name.upper()
    assert canonical_name(garble(name)) == canonical_name(name)


def test_telex_leftovers() -> None:
    assert canonical_name("Nguyeenx Vawn Thanhf") == "Nguyễn Văn Thành"
    assert canonical_name("ddoox thij hwowng") == "Đỗ Thị Hương"
    assert telex_type("Nguyễn") == "Nguyeenx" and telex_type("Đặng") == "Ddawngj"
    assert repair_legacy_encoding("Nguyễn Văn Thanhf") == "Nguyễn Văn Thành"
    # a lone tone key without any Vietnamese context is not enough evidence
    assert canonical_name("Thanhf") == "Thanhf"
    assert canonical_name("Max Weber") == "Max Weber"
    assert canonical_name("Lee Min Ho") == "Lee Min Ho"
    assert canonical_name("Kim Soo Hyun") == "Kim Soo Hyun"
    assert canonical_name("Dawn Moon") == "Dawn Moon"
    assert repair_legacy_encoding("Lee Soo") == "Lee Soo"
    # plain syllables are names without diacritics, never Telex
    assert canonical_name("Nguyen Van Anh") == "Nguyen Van Anh"


def test_fold_examples() -> None:
    assert fold("Đặng Thị Ngọc Ánh") == "dang thi ngoc anh"
    assert fold("  ĐỖ\u00a0 văn\tan ") == "do van an"
    assert fold("Dang Thi Ngoc Anh") == "dang thi ngoc anh"
    assert fold("H'Hen Niê") == "h'hen nie"


def test_has_diacritics() -> None:
    assert has_diacritics("Đang")
    assert has_diacritics("Hòa")
    assert has_diacritics(unicodedata.normalize("NFD", "Hòa"))
    assert has_diacritics("Ư")
    assert not has_diacritics("Nguyen Van An")
    assert not has_diacritics("")


def test_split_name() -> None:
    assert split_name("Nguyễn Văn An") == ("Nguyễn", "Văn", "An")
    assert split_name("Nguyễn Thị Ngọc Ánh") == ("Nguyễn", "Thị Ngọc", "Ánh")
    assert split_name("Lê An") == ("Lê", "", "An")
    assert split_name("An") == ("", "", "An")
    assert split_name("") == ("", "", "")
    assert split_name("Tôn Nữ Thị Ngọc") == ("Tôn Nữ", "Thị", "Ngọc")
    assert split_name("Âu Dương Phong") == ("Âu Dương", "", "Phong")
    assert split_name("Au Duong Phong") == ("Au Duong", "", "Phong")
    assert split_name("Công Tôn Minh Trí") == ("Công Tôn", "Minh", "Trí")
    assert split_name("Âu Dương") == ("Âu", "", "Dương")
    # a middle name that happens to follow Nguyễn is not a compound family name
    assert split_name("Nguyễn Phúc An") == ("Nguyễn", "Phúc", "An")


def test_given_name_first_variants() -> None:
    variants = given_name_first_variants("Nguyễn Văn An")
    assert variants == ["Văn An Nguyễn", "An Nguyễn Văn", "An Văn Nguyễn"]
    assert given_name_first_variants("Lê An") == ["An Lê"]
    assert given_name_first_variants("An") == []
    # word order is not canonicalised
    assert all(canonical_name(v) != "Nguyễn Văn An" for v in variants)


def test_variant_documentation_is_consistent() -> None:
    assert SAME_CANONICAL_VARIANTS.isdisjoint(FOLD_ONLY_VARIANTS)
    assert NameVariant.GIVEN_NAME_FIRST not in SAME_CANONICAL_VARIANTS | FOLD_ONLY_VARIANTS
    assert len(SAME_CANONICAL_VARIANTS | FOLD_ONLY_VARIANTS) == len(NameVariant) - 1


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@given(names())
def test_tone_placement_variants_reach_traditional_form(name: tuple[str, str, str]) -> None:
    old, new, anywhere = name
    assert canonical_name(old) == old
    assert canonical_name(new) == old
    assert canonical_name(anywhere) == old


@given(names(), st.sampled_from(["NFC", "NFD"]), st.sampled_from(["keep", "upper", "lower"]))
def test_form_and_case_variants(name: tuple[str, str, str], form: str, case: str) -> None:
    old, new, _ = name
    variant = {"keep": new, "upper": new.upper(), "lower": new.lower()}[case]
    assert canonical_name(unicodedata.normalize(form, variant)) == old  # type: ignore[arg-type]


@given(
    names(),
    st.lists(
        st.sampled_from([" ", "  ", "\t", "\u00a0", "\u200b", " \u3000"]), min_size=8, max_size=8
    ),
)
def test_spacing_variants(name: tuple[str, str, str], spaces: list[str]) -> None:
    old = name[0]
    words = old.split(" ")
    raw = spaces[0] + "".join(w + spaces[i + 1] for i, w in enumerate(words))
    assert canonical_name(raw) == old


@given(names(), st.booleans())
def test_legacy_garbling_variants(name: tuple[str, str, str], new_style: bool) -> None:
    old, new, _ = name
    source = new if new_style else old
    tcvn3 = tcvn3_garble(source)
    vni = vni_garble(source)
    assert looks_like_legacy_encoding(tcvn3) == "TCVN3"
    assert looks_like_legacy_encoding(vni) == "VNI"
    assert canonical_name(tcvn3) == old
    assert canonical_name(vni) == old
    assert canonical_name(tcvn3_garble(source.upper())) == old
    assert canonical_name(vni_garble(source.upper())) == old


@given(names())
def test_telex_leftovers_beside_vietnamese_words(name: tuple[str, str, str]) -> None:
    old = name[0]
    family, *rest = old.split(" ")
    typed = " ".join([family, *(telex_type(w) for w in rest)])
    assert canonical_name(typed) == old


@given(names(), st.sampled_from(["plain", "d", "upper-plain"]))
def test_fold_only_variants(name: tuple[str, str, str], how: str) -> None:
    old, new, _ = name
    if how == "plain":
        variant = strip_diacritics(new)
    elif how == "upper-plain":
        variant = strip_diacritics(new).upper()
    else:
        variant = new.replace("đ", "d").replace("Đ", "D")
    assert fold(canonical_name(variant)) == fold(canonical_name(old)) == fold(old)
    assert not has_diacritics(strip_diacritics(new))


@given(names())
def test_diacritics_matter_for_canonical_form(name: tuple[str, str, str]) -> None:
    old = name[0]
    plain = strip_diacritics(old)
    assume(plain != old)
    assert canonical_name(plain) != old


@given(names())
def test_idempotent_on_names(name: tuple[str, str, str]) -> None:
    for spelling in name:
        once = canonical_name(spelling)
        assert canonical_name(once) == once
        assert fold(once) == fold(fold(once))


_TEXT = st.text(
    alphabet=st.characters(
        codec="utf-8",
        categories=("L", "M", "N", "P", "Zs", "Cc", "Cf"),
    ),
    max_size=30,
)


@settings(max_examples=500)
@given(_TEXT)
def test_idempotent_on_any_text(text: str) -> None:
    once = canonical_name(text)
    assert canonical_name(once) == once
    assert once == unicodedata.normalize("NFC", once)
    assert "  " not in once and once == once.strip()
    assert fold(once) == fold(fold(once))


@given(names(), st.sampled_from(["NFC", "NFD"]), st.booleans())
def test_repair_never_touches_valid_vietnamese(
    name: tuple[str, str, str], form: str, upper: bool
) -> None:
    for spelling in name:
        text = unicodedata.normalize(form, spelling.upper() if upper else spelling)  # type: ignore[arg-type]
        assert looks_like_legacy_encoding(text) is None
        assert repair_legacy_encoding(text) == text
        assert repair_legacy_encoding(strip_diacritics(text)) == strip_diacritics(text)


@given(names())
def test_split_name_joins_back(name: tuple[str, str, str]) -> None:
    old = name[0]
    family, middle, given_ = split_name(old)
    assert " ".join(p for p in (family, middle, given_) if p) == old
    assert family in FAMILY
    assert given_ == old.split(" ")[-1]
