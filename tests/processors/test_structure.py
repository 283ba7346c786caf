"""Structure rules: boilerplate, heading conventions, tables of contents, paragraphs."""

from __future__ import annotations

import pytest

from app.processors.analyze.structure import (
    cjk_to_int,
    find_body,
    find_headings,
    line_mode,
    paragraphs,
    roman_to_int,
    select_chapters,
    words_to_int,
)

PROSE = (
    "The quick brown fox jumps over the lazy dog near the river bank, and then it runs\n"
    "all the way home to its den under the old oak tree at the edge of the forest.\n"
)
ZH_PROSE = "他说了一句话，便走出门去，一路上看见许多人来来往往，心中十分欢喜。\n"


def chapter_titles(body: str, *, aozora: bool = False) -> list[str]:
    chapters, _ = select_chapters(find_headings(body, aozora=aozora, by_line=line_mode(body)))
    return [h.title for h in chapters]


def book(*headings: str, prose: str = PROSE) -> str:
    return "".join(f"{heading}\n\n{prose}\n" for heading in headings)


@pytest.mark.parametrize(
    ("headings", "titles"),
    [
        (["Chapter 1", "Chapter 2", "Chapter 12"], ["Chapter 1", "Chapter 2", "Chapter 12"]),
        (["CHAPTER I.", "CHAPTER XII."], ["CHAPTER I.", "CHAPTER XII."]),
        (
            ["Chapter the First", "Chapter the Twelfth"],
            ["Chapter the First", "Chapter the Twelfth"],
        ),
        (
            ["CHAPTER 1. Loomings.", "CHAPTER 2. The Carpet-Bag."],
            ["CHAPTER 1. Loomings.", "CHAPTER 2. The Carpet-Bag."],
        ),
        (["Chapitre premier", "Chapitre deux"], ["Chapitre premier", "Chapitre deux"]),
        (["I", "II", "III"], ["I", "II", "III"]),
        (["# The Book", "## One", "## Two"], ["One", "Two"]),
        (["# One", "# Two"], ["One", "Two"]),
    ],
    ids=[
        "arabic",
        "roman",
        "ordinal-words",
        "with-title",
        "french",
        "bare-roman",
        "md-h2",
        "md-h1",
    ],
)
def test_latin_heading_conventions(headings: list[str], titles: list[str]) -> None:
    assert chapter_titles(book(*headings)) == titles


def test_a_title_on_the_next_line_joins_the_heading() -> None:
    body = (
        "CHAPTER I.\nDown the Rabbit-Hole\n\n"
        + PROSE
        + "\nCHAPTER II.\nThe Pool of Tears\n\n"
        + PROSE
    )
    assert chapter_titles(body) == [
        "CHAPTER I. Down the Rabbit-Hole",
        "CHAPTER II. The Pool of Tears",
    ]


@pytest.mark.parametrize(
    ("headings", "titles"),
    [
        (["第一章", "第十二章"], ["第一章", "第十二章"]),
        (["第1章", "第12章"], ["第1章", "第12章"]),
        (["第１章", "第１２章"], ["第１章", "第１２章"]),
        (
            ["第一回　甄士隐梦幻识通灵", "第十二回　王熙凤毒设相思局"],
            ["第一回 甄士隐梦幻识通灵", "第十二回 王熙凤毒设相思局"],
        ),
    ],
    ids=["zhang", "arabic-zhang", "fullwidth", "hui-with-title"],
)
def test_cjk_heading_conventions(headings: list[str], titles: list[str]) -> None:
    assert chapter_titles(book(*headings, prose=ZH_PROSE)) == titles
    # one paragraph per line, no blank lines (as in 红楼梦)
    packed = "".join(f"{h}\n{ZH_PROSE * 2}" for h in headings)
    assert chapter_titles(packed) == titles


def test_a_cjk_line_that_merely_starts_like_a_heading_is_prose() -> None:
    body = f"第一回　开篇\n{ZH_PROSE}第四回中既将薛家母子在荣府中寄居等事略已表明。\n{ZH_PROSE}"
    assert chapter_titles(body) == ["第一回 开篇"]


def test_aozora_headings() -> None:
    body = "".join(
        f"［＃８字下げ］{n}［＃「{n}」は中見出し］\n\n{'吾輩は猫である。名前はまだ無い。' * 3}\n"
        for n in ("一", "二", "三")
    )
    assert chapter_titles(body, aozora=True) == ["一", "二", "三"]


def test_book_and_part_headings_divide_but_are_not_chapters() -> None:
    body = book(
        "BOOK I", "Chapter 1", "Chapter 2", "BOOK II", "Chapter 3", "PART THREE", "Chapter 4"
    )
    chapters, parts = select_chapters(find_headings(body))
    assert [h.title for h in chapters] == ["Chapter 1", "Chapter 2", "Chapter 3", "Chapter 4"]
    assert [h.title for h in parts] == ["BOOK I", "BOOK II", "PART THREE"]
    french = book("PREMIÈRE PARTIE", "I", "II", "DEUXIÈME PARTIE", "I")
    chapters, parts = select_chapters(find_headings(french))
    assert [h.title for h in chapters] == ["I", "II", "I"]
    assert [h.title for h in parts] == ["PREMIÈRE PARTIE", "DEUXIÈME PARTIE"]


def test_a_table_of_contents_is_not_taken_for_chapters() -> None:
    contents = "Contents\n\nChapter 1\n\nChapter 2\n\nChapter 3\n\n"
    body = contents + book("Chapter 1", "Chapter 2", "Chapter 3")
    headings = find_headings(body)
    assert [h.toc for h in headings] == [True, True, True, False, False, False]
    chapters, _ = select_chapters(headings)
    assert [h.start for h in chapters] == [
        body.index("Chapter 1\n\nThe"),
        *[body.index(f"Chapter {n}\n\nThe") for n in (2, 3)],
    ]
    # an indented contents list with titles, as in Alice
    indented = " CHAPTER I.     Down the Rabbit-Hole\n CHAPTER II.    The Pool of Tears\n"
    body = "Contents\n\n" + indented + "\n\n" + book("CHAPTER I.", "CHAPTER II.")
    assert chapter_titles(body) == ["CHAPTER I.", "CHAPTER II."]


def test_prose_that_begins_with_a_heading_word_is_not_a_heading() -> None:
    body = (
        PROSE
        + "\nChapter 1\n\n"
        + PROSE
        + "\nBook two of the series was\nwritten in a hurry.\n\n"
        + PROSE
    )
    assert chapter_titles(body) == ["Chapter 1"]
    assert chapter_titles("I\nam here, said the fox.\n\n" + PROSE) == []


def test_a_single_h1_or_a_lone_numeral_is_not_a_chapter_sequence() -> None:
    assert chapter_titles(book("# My Novel")) == []
    assert chapter_titles(book("I")) == []
    assert chapter_titles(PROSE * 10) == []


def test_gutenberg_boilerplate_is_cut_off() -> None:
    text = (
        "The Project Gutenberg EBook of Tiny, by Someone\n\nLicence words here.\n\n"
        "*** START OF THIS PROJECT GUTENBERG EBOOK TINY ***\n\n\n\nProduced by Volunteers\n\n\n"
        "TINY\n\n" + PROSE + "\nEnd of the Project Gutenberg EBook of Tiny\n\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK TINY ***\n\nMore licence words.\n"
    )
    body = find_body(text)
    assert body.boilerplate == "gutenberg"
    assert body.text.strip() == "TINY\n\n" + PROSE.strip()
    assert text[body.offset : body.offset + len(body.text)] == body.text


def test_aozora_legend_and_colophon_are_cut_off() -> None:
    rule = "-" * 55
    text = (
        f"吾輩は猫である\n夏目漱石\n\n{rule}\n【テキスト中に現れる記号について】\n《》：ルビ\n{rule}\n\n"
        "吾輩《わがはい》は猫である。\n\n底本：「夏目漱石全集1」筑摩書房\n"
    )
    body = find_body(text)
    assert body.boilerplate == "aozora"
    assert body.text.strip() == "吾輩《わがはい》は猫である。"


def test_text_without_boilerplate_is_kept_whole() -> None:
    assert find_body(PROSE) == find_body(PROSE)
    assert (find_body(PROSE).text, find_body(PROSE).boilerplate) == (PROSE, "none")


def test_paragraphs_by_blank_lines_or_by_lines() -> None:
    blank = "One line\nwrapped.\n\n  \nTwo.\n\n\nThree.\n"
    assert not line_mode(blank)
    assert paragraphs(blank, by_line=False) == ["One line\nwrapped.", "Two.", "Three."]
    packed = "第一段。\n第二段。\n　第三段。\n"
    assert line_mode(packed)
    assert paragraphs(packed, by_line=True) == ["第一段。", "第二段。", "第三段。"]


@pytest.mark.parametrize(
    ("token", "value"),
    [("I", 1), ("iv", 4), ("XII", 12), ("MCMXC", 1990), ("IIII", None), ("X1", None)],
)
def test_roman_numerals(token: str, value: int | None) -> None:
    assert roman_to_int(token) == value


@pytest.mark.parametrize(
    ("phrase", "value"),
    [
        ("twelfth", 12),
        ("the Twelfth", 12),
        ("twenty-first", 21),
        ("Thirty Two", 32),
        ("premier", 1),
        ("blue", None),
    ],
)
def test_number_words(phrase: str, value: int | None) -> None:
    assert words_to_int(phrase) == value


@pytest.mark.parametrize(
    ("token", "value"),
    [
        ("一", 1),
        ("十", 10),
        ("十二", 12),
        ("二十", 20),
        ("一百二十", 120),
        ("一百零五", 105),
        ("１２", 12),
        ("甲", None),
    ],
)
def test_cjk_numerals(token: str, value: int | None) -> None:
    assert cjk_to_int(token) == value
