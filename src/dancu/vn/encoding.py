"""What a file that is not UTF-8 most probably is, and how to convert it.

Sectoral files reach dancu saved from old Excel installs and from legacy Vietnamese font
encodings; a clear guess (UTF-16, TCVN3, VNI, Windows-1258) with the conversion to make is
worth more to an official than "invalid UTF-8". Used by the register import and by
reconciliation alike.
"""

from __future__ import annotations

import codecs
import re

from dancu.vn import names as vn_names

_SPLIT_FIELDS = re.compile(rb"[,;\t\r\n\"]")
_FALLBACK_ADVICE = "open it in Excel or LibreOffice and save it as 'CSV UTF-8'"


def guess(sample: bytes) -> str:
    """What a non-UTF-8 sample most probably is: UTF-16, TCVN3, VNI, Windows-1258 or other."""
    if (
        sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        or sample.count(0) > len(sample) // 4
    ):
        return "UTF-16"
    votes = {"TCVN3": 0, "VNI": 0}
    for chunk in _SPLIT_FIELDS.split(sample):
        if chunk.isascii():
            continue
        legacy = vn_names.looks_like_legacy_encoding(chunk.decode("latin-1").strip())
        if legacy is not None:
            votes[legacy] += 1
    if max(votes.values()) > 0:
        return max(votes, key=lambda k: votes[k])
    decoded = sample.decode("cp1258", errors="replace")
    if vn_names.has_diacritics(decoded):
        return "Windows-1258"
    return "Windows-1252 or another 8-bit code page"


ADVICE = {
    "UTF-16": "save it as 'CSV UTF-8' or convert it: iconv -f UTF-16 -t UTF-8 in.csv > out.csv",
    "Windows-1258": "convert it: iconv -f CP1258 -t UTF-8 in.csv > out.csv, or open it in "
    "Excel or LibreOffice and save it as 'CSV UTF-8'",
    "TCVN3": "it is typed in a legacy Vietnamese font encoding (.VnTime, ABC); convert the text "
    "to Unicode with UniKey's converter (source TCVN3 (ABC), destination Unicode) and save it "
    "as 'CSV UTF-8'",
    "VNI": "it is typed in the VNI font encoding (VNI-Times); convert the text to Unicode with "
    "UniKey's converter (source VNI Windows, destination Unicode) and save it as 'CSV UTF-8'",
}


def describe(sample: bytes) -> tuple[str, str]:
    """(the encoding ``sample`` most probably is, how to convert the file to UTF-8)."""
    encoding = guess(sample)
    return encoding, ADVICE.get(encoding, _FALLBACK_ADVICE)
