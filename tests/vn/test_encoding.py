"""Naming the encoding of a file that is not UTF-8, with the conversion to make."""

from __future__ import annotations

import codecs

from dancu.vn import encoding


def test_windows_1258_is_named_with_its_conversion() -> None:
    # Windows-1258 writes tones as combining marks after the letter.
    sample = "001085000001,Tra\u0300n Văn A\u0301nh,1985\n".encode("cp1258")
    name, advice = encoding.describe(sample)
    assert name == "Windows-1258"
    assert "iconv -f CP1258" in advice


def test_utf16_is_named() -> None:
    sample = codecs.BOM_UTF16_LE + "họ tên,ngày sinh\n".encode("utf-16-le")
    assert encoding.describe(sample)[0] == "UTF-16"


def test_plain_latin_text_gets_the_generic_advice() -> None:
    name, advice = encoding.describe(b"price \x80 5\n")
    assert name == "Windows-1252 or another 8-bit code page"
    assert "CSV UTF-8" in advice
