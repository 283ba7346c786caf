"""Decoding rules: BOMs, UTF-8/16/32, the CJK and Latin code pages, normalisation, failures."""

from __future__ import annotations

import codecs
import pickle
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.processors.analyze.decoding import (
    SNIFF_BYTES,
    Decoded,
    binary_format,
    canonical_encoding,
    decode,
    normalise,
    sniff,
)
from app.processors.base import PermanentError, ProcessorError
from tests.conftest import CORPUS
from tests.processors.variants import (
    ISSUE_FILES,
    PAIRS,
    SIGNATURES,
    Manuscript,
    issue_files,
    manuscripts,
    writable,
)

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


# The upload check: sniff() on the first SNIFF_BYTES agrees with decode() on the whole file.


@pytest.mark.parametrize("case", list(ISSUE_FILES))
def test_a_cut_inside_a_character_passes_the_upload_check(case: str) -> None:
    data = issue_files()[case]
    head = data[:SNIFF_BYTES]
    # the cut really splits a character: a strict decode of the prefix fails
    encoding = decode(data).encoding
    with pytest.raises(UnicodeDecodeError):
        head.removeprefix(codecs.BOM_UTF16_LE).decode(encoding)
    sniffed = sniff(head, len(data))
    assert (sniffed.encoding, sniffed.complete) == (encoding, False)
    assert sniffed.bom is (case == "utf16-surrogate")


@pytest.mark.parametrize(
    "data",
    [
        (TRADITIONAL * 3).encode("big5"),
        (SIMPLIFIED * 3).encode("gb18030"),
        (JAPANESE * 3).encode("shift_jis"),
        (JAPANESE * 3).encode("euc_jp"),
        (KOREAN * 3).encode("euc_kr"),
        (FRENCH * 3).encode("cp1252"),
        codecs.BOM_UTF32_BE + FRENCH.encode("utf-32-be"),
        FRENCH.encode("utf-16-le"),
        bytes(range(256)) * 20,
        _random_bytes(20_000),
        b"\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c" * 200,
        b"plain text\n" + b"\x01\x02\x03\x1b" * 100,
        b"%PDF-1.7\n" + b"plain text\n" * 10,
    ],
    ids=lambda data: repr(data[:12]),
)
def test_on_a_whole_file_sniff_is_decode(data: bytes) -> None:
    try:
        expected: Decoded | str = decode(data)
    except PermanentError as refused:
        expected = refused.message
    if isinstance(expected, str):
        with pytest.raises(PermanentError) as caught:
            sniff(data)
        assert caught.value.message == expected
    else:
        sniffed = sniff(data)
        assert (sniffed.encoding, sniffed.bom, sniffed.complete) == (
            expected.encoding,
            expected.bom,
            True,
        )


def _check_manuscript(manuscript: Manuscript) -> None:
    data = manuscript.data
    sniffed = sniff(data[:SNIFF_BYTES], len(data), has_nul=False)
    assert not sniffed.complete
    decoded = decode(data)
    assert manuscript.is_right_encoding(decoded.encoding), (decoded.encoding, manuscript.encoding)
    assert decoded.bom is bool(manuscript.encoding.bom)
    assert decoded.text == manuscript.expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manuscript=manuscripts())
def test_the_upload_check_accepts_every_manuscript_the_analyzer_reads(
    manuscript: Manuscript,
) -> None:
    """Any corpus text, in any encoding it can be written in, whatever the line endings and
    wherever the cut at SNIFF_BYTES falls inside a character: the upload check accepts it and
    decode() reads it losslessly with the right encoding."""
    assert manuscript.split or manuscript.encoding.codec in ("cp1252", "latin-1")
    _check_manuscript(manuscript)


@st.composite
def mixtures(draw: st.DrawFn) -> bytes:
    """Text in some encoding with random bytes (binary, controls, NULs) spliced in."""
    name, encoding = draw(st.sampled_from(PAIRS))
    text = writable(name, encoding.codec)
    start = draw(st.integers(min_value=0, max_value=len(text) - 1))
    data = bytearray(
        encoding.bom + text[start : start + draw(st.integers(0, 40_000))].encode(encoding.codec)
    )
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        junk = draw(st.binary(min_size=1, max_size=200))
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data[at:at] = junk * draw(st.integers(min_value=1, max_value=50))
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mixtures(), keep=st.integers(min_value=1, max_value=SNIFF_BYTES))
def test_the_upload_check_refuses_only_what_decode_refuses(data: bytes, keep: int) -> None:
    """Whatever the bytes and wherever the prefix ends: if decode() reads the whole file,
    sniff() accepts the prefix; on the whole file it says what decode() says."""
    head = data[:keep]
    try:
        decoded = decode(data)
    except PermanentError:
        return
    sniff(head, len(data), has_nul=b"\x00" in data)
    assert sniff(data).encoding == decoded.encoding


@pytest.mark.parametrize("kind", list(SIGNATURES))
def test_binary_formats_are_refused_by_their_signature(kind: str) -> None:
    signature, name = SIGNATURES[kind]
    # what follows the signature looks like text: only the signature gives it away
    data = signature + b"Chapter 1\n\nIt was a bright cold day in April.\n" * 3000
    assert binary_format(data) == name
    message = f"The file does not look like text: it is {name}."
    for attempt in (lambda: decode(data), lambda: sniff(data[:SNIFF_BYTES], len(data))):
        with pytest.raises(PermanentError) as caught:
            attempt()
        assert caught.value.message == message


@pytest.mark.parametrize(
    "text",
    [
        "MZ was what she called him.\n",
        "BMW drove past the church.\n",
        "ID3 tags are metadata, he said.\n",
        "PK, as everyone called him, was late.\n",
        "RIFF and RAFF were twins.\n",
        "%PDF is not a word.\n",
        "MZ" + " " * 80 + "PE\n",
        "漱壕，" + SIMPLIFIED,  # 0xCAFEBABE in GB18030: a Java class's magic number
    ],
)
def test_text_that_starts_like_a_signature_is_text(text: str) -> None:
    repeat = 2 * SNIFF_BYTES // len(text)
    data = text.encode("gb18030") * repeat
    assert binary_format(data) is None
    assert decode(data).text == text * repeat
    assert sniff(data[:SNIFF_BYTES], len(data)).complete is False
    assert sniff(data[:4000]).complete is True


@pytest.mark.parametrize(
    ("names", "canonical"),
    [
        (["shift_jis", "Shift-JIS", "SJIS", "cp932", "ms932"], "shift_jis"),
        (["gb18030", "GBK", "gb2312", "cp936"], "gb18030"),
        (["big5", "Big5-HKSCS", "cp950"], "big5"),
        (["euc-kr", "cp949"], "euc_kr"),
        (["euc-jp", "EUC_JP", "eucjp"], "euc_jp"),
        (["cp1252", "windows-1252", "latin-1", "ISO-8859-1", "latin1"], "cp1252"),
        (["utf-8", "UTF8", "utf_8_sig", "ascii"], "utf-8"),
        (["utf-16-le", "UTF-16LE"], "utf-16-le"),
        (["iso-8859-15", "latin9"], "iso8859-15"),
    ],
)
def test_equivalent_encoding_names_have_one_canonical_name(
    names: list[str], canonical: str
) -> None:
    assert {canonical_encoding(name) for name in names} == {canonical}
    assert canonical_encoding("utf-16-be") != canonical_encoding("utf-16-le")
    assert canonical_encoding("no-such-codec") == "no-such-codec"


def test_every_corpus_file_has_writable_encodings() -> None:
    assert {name for name, _ in PAIRS} == {
        p.name for p in CORPUS.iterdir() if p.suffix in (".txt", ".md") and p.stem != "MANIFEST"
    }
