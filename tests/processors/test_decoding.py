"""Decoding rules: BOMs, UTF-8/16/32, the CJK and Latin code pages, normalisation, failures."""

from __future__ import annotations

import codecs
import pickle
import random

import pytest

from app.processors.analyze.decoding import decode, normalise
from app.processors.base import PermanentError, ProcessorError

TRADITIONAL = (
    "話說天下大勢，分久必合，合久必分。周末七國分爭，并入於秦。及秦滅之後，楚、漢分爭，"
    "又并入於漢。漢朝自高祖斬白蛇而起義，一統天下。後來光武中興，傳至獻帝，遂分為三國。\n"
)
SIMPLIFIED = (
    "却说宝玉听了，忙笑道：“你们这会子可好了。”黛玉便冷笑道：“我早知道他来，我就不来了。”\n"
)
JAPANESE = (
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
    "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。\n"
)
KOREAN = (
    "옛날 옛적에 한 마을에 착한 농부가 살았습니다. 그는 매일 아침 일찍 일어나 밭에 나가 "
    "일을 했습니다. 어느 날 그는 밭에서 커다란 무를 발견했습니다.\n"
)
FRENCH = (
    "Nous étions à l’Étude, quand le Proviseur entra, suivi d’un nouveau habillé en bourgeois "
    "et d’un garçon de classe qui portait un grand pupitre. — Ça coûte cher, dit-il. Œuvre.\n"
)


@pytest.mark.parametrize(
    ("text", "codec", "expected"),
    [
        (TRADITIONAL, "big5", "big5"),
        (SIMPLIFIED, "gb18030", "gb18030"),
        (SIMPLIFIED, "gbk", "gb18030"),
        (JAPANESE, "shift_jis", "shift_jis"),
        (KOREAN, "euc_kr", "euc-kr"),
        (FRENCH, "cp1252", "cp1252"),
        (FRENCH.replace("’", "'").replace("—", "-").replace("Œ", "OE"), "latin-1", "cp1252"),
    ],
)
def test_legacy_encodings_are_detected_and_verified(text: str, codec: str, expected: str) -> None:
    decoded = decode((text * 3).encode(codec))
    assert decoded.text == text * 3
    assert decoded.encoding == expected
    assert decoded.bom is False
    assert 0.9 <= decoded.confidence <= 1.0


@pytest.mark.parametrize(
    ("bom", "codec", "name"),
    [
        (codecs.BOM_UTF8, "utf-8", "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32-be"),
    ],
)
def test_a_bom_decides_and_is_removed(bom: bytes, codec: str, name: str) -> None:
    text = "Chapter 1\n\nCafé “naïve” 红楼梦.\n"
    decoded = decode(bom + text.encode(codec))
    assert (decoded.text, decoded.encoding, decoded.confidence, decoded.bom) == (
        text,
        name,
        1.0,
        True,
    )


def test_a_bom_wins_over_a_wrongly_declared_encoding() -> None:
    text = "<!-- encoding: iso-8859-1 -->\n-*- coding: cp1252 -*-\n\nÉmile said “déjà vu”.\n"
    decoded = decode(codecs.BOM_UTF8 + text.encode("utf-8"))
    assert decoded.text == text
    assert (decoded.encoding, decoded.bom) == ("utf-8", True)
    utf16 = decode(codecs.BOM_UTF16_LE + "charset=utf-8\nÉmile\n".encode("utf-16-le"))
    assert utf16.text == "charset=utf-8\nÉmile\n"


def test_utf16_without_a_bom_is_recognised_by_its_nul_bytes() -> None:
    text = "It was the best of times, it was the worst of times.\n" * 5
    assert decode(text.encode("utf-16-le")).text == text
    assert decode(text.encode("utf-16-be")).encoding == "utf-16-be"


def test_strict_utf8_comes_first() -> None:
    decoded = decode("Plain ASCII, then “curly” quotes and 宝玉.\n".encode())
    assert (decoded.encoding, decoded.confidence, decoded.bom) == ("utf-8", 1.0, False)


def test_line_endings_and_nfc_are_normalised() -> None:
    decoded = decode(b"one\r\ntwo\rthree\nCafe\xcc\x81\r\n")
    assert decoded.text == "one\ntwo\nthree\nCafé\n"
    assert normalise("\ufeffa\r\nb") == "a\nb"


def _random_bytes(size: int) -> bytes:
    rng = random.Random(7)
    return bytes(rng.randrange(1, 256) for _ in range(size))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes(range(256)) * 20, "contains NUL bytes"),
        (_random_bytes(20_000), "could not be decoded"),
        (b"\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c" * 200, "could not be decoded"),
        (b"plain text\n" + b"\x01\x02\x03\x1b" * 100, "control characters"),
    ],
    ids=["binary-with-nul", "random-bytes", "no-encoding-fits", "ascii-controls"],
)
def test_undecodable_input_is_a_permanent_error(data: bytes, message: str) -> None:
    with pytest.raises(PermanentError) as caught:
        decode(data)
    assert caught.value.retryable is False
    assert message in caught.value.message
    assert caught.value.message.startswith(("The file could not be decoded", "The file does not"))
    # the worker pool receives it from another process, still permanent
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301
    assert isinstance(copy, ProcessorError)
    assert (copy.retryable, copy.message) == (False, caught.value.message)
