"""Sentence, word, name, keyword and statistics rules, on small hand-made inputs."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.processors.analyze import analysis
from app.processors.analyze.characters import LatinCast
from app.processors.analyze.language import detect_language
from app.processors.analyze.report import reading_time_minutes
from app.processors.analyze.segmentation import names_no_one
from app.processors.analyze.sentences import split_sentences
from app.processors.analyze.text import (
    CJK,
    LATIN_WORD_RE,
    WORD_RE,
    count_words,
    display,
    word_finder,
)
from tests.processors.helpers import CORPUS, analyze_file, analyze_text


@pytest.mark.parametrize(
    ("paragraph", "sentences"),
    [
        (
            "It rained. We stayed in! Did you? Yes.",
            ["It rained.", "We stayed in!", "Did you?", "Yes."],
        ),
        (
            "Mr. Darcy bowed. Mrs. Bennet and Dr. Jones left; Ms. Lucas stayed.",
            ["Mr. Darcy bowed.", "Mrs. Bennet and Dr. Jones left; Ms. Lucas stayed."],
        ),
        (
            "“Oh! dear,” said Alice. “I’m late!” She ran.",
            ["“Oh! dear,” said Alice.", "“I’m late!”", "She ran."],
        ),
        ("“Is it?” asked he. Then silence.", ["“Is it?” asked he.", "Then silence."]),
        ("M. Homais entra. Il parla…  Puis rien.", ["M. Homais entra.", "Il parla…", "Puis rien."]),
        ("It cost 3.5 pounds. Cheap.", ["It cost 3.5 pounds.", "Cheap."]),
        (
            "宝玉笑道：“好妹妹！”黛玉不答。众人都笑了。",
            ["宝玉笑道：“好妹妹！”", "黛玉不答。", "众人都笑了。"],
        ),
        (
            "「待て！」と言った。吾輩は猫である。名前はまだ無い。",
            ["「待て！」と言った。", "吾輩は猫である。", "名前はまだ無い。"],
        ),
        ("他说：“走吧。”于是走了？是的！", ["他说：“走吧。”", "于是走了？", "是的！"]),
        ("No ending punctuation here", ["No ending punctuation here"]),
        ("   ", []),
    ],
    ids=[
        "plain",
        "abbreviations",
        "quoted-exclamation",
        "quoted-question",
        "initial-ellipsis",
        "decimal",
        "zh-quotes",
        "ja-quotation-particle",
        "zh-punctuation",
        "no-end",
        "blank",
    ],
)
def test_sentence_splitting(paragraph: str, sentences: list[str]) -> None:
    assert split_sentences(paragraph) == sentences


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "The cat’s waistcoat-pocket didn't tick.",
            ["The", "cat’s", "waistcoat-pocket", "didn't", "tick"],
        ),
        ("宝玉笑道。", ["宝", "玉", "笑", "道"]),
        ("吾輩は猫、ニャー。", ["吾", "輩", "は", "猫", "ニ", "ャ", "ー"]),
        ("Hello 世界 and 2024 — ok", ["Hello", "世", "界", "and", "2024", "ok"]),
        ("Émile, naïve façade; 한국어 문장", ["Émile", "naïve", "façade", "한국어", "문장"]),
        ("々 — … 「」 *", []),
    ],
    ids=[
        "latin-tokens",
        "han-one-each",
        "kana-one-each",
        "mixed-scripts",
        "accents-hangul",
        "no-words",
    ],
)
def test_words(text: str, words: list[str]) -> None:
    assert WORD_RE.findall(text) == words
    assert count_words(text) == len(words)


def test_display_joins_lines() -> None:
    assert display("a wrapped\nline") == "a wrapped line"
    assert display("宝玉\n笑道。") == "宝玉笑道。"
    assert display("  plain  ") == "plain"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("It was the best of times, it was the worst of times, and all of that. " * 5, "en"),
        ("Il était une fois une princesse qui vivait dans un château avec le roi. " * 5, "fr"),
        ("宝玉听了，便笑道：这是什么话。" * 5, "zh"),
        ("吾輩は猫である。名前はまだ無い。" * 5, "ja"),
        ("옛날 옛적에 한 마을에 착한 농부가 살았습니다. " * 5, "ko"),
        ("1234 5678 !!!", "und"),
    ],
)
def test_language_detection(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_names_are_people_not_sentence_initial_words_titles_or_places() -> None:
    sentences = [
        "However, Mr. Darcy said that Elizabeth was right.",
        "Elizabeth laughed at Darcy and at Mrs. Bennet.",
        "Nothing was said; Lady Catherine frowned at Elizabeth.",
        "Perhaps Darcy knew, and Jane told Elizabeth so.",
        "Then Jane and Darcy and Mrs. Bennet walked to Meryton on Monday.",
        "Still, Jane, Mrs. Bennet and Darcy waited at Meryton on Monday and Monday.",
        "“Come,” said Jane. “Yes,” cried Elizabeth, and Darcy smiled.",
        "They dined at Meryton, and in Meryton they stayed.",
    ]
    cast = LatinCast("en")
    cast.feed("\n\n".join(sentences), 1)
    words = Counter(WORD_RE.findall(" ".join(sentences)))
    found = {c.name: c.mentions for c in cast.characters(words, 20)}
    # Meryton (four times after "to", "at", "in") is a place; Monday a day; titles
    # are kept with the name they belong to, never alone
    assert found == {"Darcy": 6, "Elizabeth": 5, "Jane": 4, "Mrs. Bennet": 3}


def test_stats_keywords_and_names_end_to_end(tmp_path: Path) -> None:
    line = "Anna walked with Boris to the harbour, where the harbour lights shone."
    text = "\n\n".join([line, "“Look at the lights,” said Anna to Boris.", line] * 4) + "\n"
    report = analyze_text(text, tmp_path).report
    assert report["counts"] == {
        "words": 4 * (12 + 12 + 8),
        "sentences": 12,
        "paragraphs": 12,
        "chapters": 0,
        "parts": 0,
        "characters": len(text),
        "segmented_words": None,
    }
    assert report["average_sentence_length"] == round(4 * 32 / 12, 2)
    assert report["reading_time_minutes"] == 1
    terms = [k["term"] for k in report["keywords"]]
    assert report["keywords"][0] == {"term": "harbour", "count": 16}
    # character names are reported apart, never as keywords
    assert not {"the", "with", "where", "said", "at", "to", "anna", "boris"} & set(terms)
    assert [n["name"] for n in report["character_names"]] == ["Anna", "Boris"]
    quoted = len("“Look at the lights,”") * 4
    paragraph_chars = sum(len(p) for p in text.split("\n\n") if p.strip()) - 1
    assert report["dialogue_ratio"] == round(quoted / paragraph_chars, 4)


def test_french_stop_words_are_removed_from_keywords(tmp_path: Path) -> None:
    text = "Emma regardait la campagne et les nuages avec une tristesse infinie. " * 30
    report = analyze_text(text, tmp_path).report
    assert report["language"] == "fr"
    terms = [k["term"] for k in report["keywords"]]
    assert not {"la", "et", "les", "avec", "une"} & set(terms)
    # "campagne" is among French's 1,000 most common words: not distinctive
    assert terms == ["infinie", "regardait", "tristesse", "nuages"]


def test_lexical_diversity_is_a_type_token_ratio(tmp_path: Path) -> None:
    varied = " ".join(f"word{n}" for n in range(400)) + ".\n"
    assert analyze_text(varied, tmp_path).report["lexical_diversity"] == 1.0
    repetitive = "Tick tock tick tock. " * 200
    assert analyze_text(repetitive, tmp_path).report["lexical_diversity"] == round(2 / 800, 4)


def test_reading_time_rounds_up_per_language() -> None:
    assert reading_time_minutes(0, "en") == 0
    assert reading_time_minutes(238, "en") == 1
    assert reading_time_minutes(239, "fr") == 2
    assert reading_time_minutes(301, "zh") == 2
    assert reading_time_minutes(400, "ja") == 1


def test_only_dialogue(tmp_path: Path) -> None:
    lines = ["“Where are you going?”", "«Au marché.»", "— Et après ?", "「どこへ行くの？」"]
    report = analyze_text("\n\n".join(lines * 5) + "\n", tmp_path).report
    assert report["dialogue_ratio"] == 1.0
    assert report["counts"]["paragraphs"] == 20


def test_mixed_scripts_count_both(tmp_path: Path) -> None:
    text = "Hello world 你好世界 and more. 我们走吧。\n\n" * 10
    report = analyze_text(text, tmp_path).report
    assert report["counts"]["words"] == 10 * (4 + 4 + 4)
    assert report["counts"]["sentences"] == 20


_NO_CJK = st.text(
    alphabet=st.characters(
        codec="utf-8",
        exclude_categories=("Cs",),
        # no Han, kana or the CJK marks: the texts the Latin-only tokenizer is chosen for
        exclude_characters="々〆〇",
    ).filter(lambda c: not re.match(rf"[{CJK}]", c)),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(_NO_CJK)
def test_the_latin_tokenizer_finds_the_same_words_as_the_general_one(text: str) -> None:
    finder = word_finder(text)
    assert finder == LATIN_WORD_RE.findall
    assert finder(text) == WORD_RE.findall(text)


def test_a_text_with_cjk_uses_the_general_tokenizer() -> None:
    assert word_finder("Hello 世界") == WORD_RE.findall
    assert word_finder("見る々") == WORD_RE.findall


def test_names_in_cyrillic_are_found_with_russian_evidence(tmp_path: Path) -> None:
    line = (
        "— Где ты был? — спросил Иван. Анна улыбнулась и сказала, что Иван опоздал. "
        "Потом Анна ушла, а Иван остался в Москве."
    )
    report = analyze_text("\n\n".join([line] * 6), tmp_path).report
    assert report["language"] == "ru"
    names = [(n["name"], n["mentions"]) for n in report["character_names"]]
    # Москва has no evidence of being a person; Потом is a stop word, not a first name
    assert names == [("Иван", 18), ("Анна", 12)]


def test_german_nouns_are_not_names(tmp_path: Path) -> None:
    line = (
        "„Wo warst du?“, fragte Hans. Der Mann sah das Haus und die Frau. Greta lächelte, "
        "und Hans sagte nichts. Später ging Greta mit Hans in die Stadt, und der Mann "
        "sagte, die Frau sei müde."
    )
    report = analyze_text("\n\n".join([line] * 6), tmp_path).report
    assert report["language"] == "de"
    names = [(n["name"], n["mentions"]) for n in report["character_names"]]
    # every German noun is capitalised: Mann, Haus, Stadt come after an article; and
    # "Frau." ends a sentence (a whole word, not an abbreviated title like "Mr.")
    assert names == [("Hans", 18), ("Greta", 12)]


def test_a_surname_several_people_share_is_never_shown_alone() -> None:
    # "Smith" alone is used more often than either titled form: which Smith is meant
    # is not known, so no character is called "Smith"; each is shown with a title
    sentences = [
        "Mr. Smith looked at the sea.",
        "Mrs. Smith smiled at Mr. Smith.",
        "Then Smith laughed, and Smith said nothing.",
        "“Come,” said Smith to Mrs. Smith.",
        "Mr. Smith and Mrs. Smith walked with Smith at last.",
    ] * 3
    cast = LatinCast("en")
    cast.feed("\n\n".join(sentences), 1)
    words = Counter(WORD_RE.findall(" ".join(sentences)))
    found = {c.name: c.mentions for c in cast.characters(words, 20)}
    assert "Smith" not in found
    assert set(found) == {"Mr. Smith", "Mrs. Smith"}
    # every mention counts, the bare ones for the more titled person
    assert sum(found.values()) == 3 * 10


def test_a_long_text_samples_the_context_but_counts_every_mention() -> None:
    """A text past CONTEXT_SAMPLE_CHARS reads the context around a sample of the runs;
    mentions, titles and chapters are still those of the exact scan."""
    sentences = [
        "However, Mr. Darcy said that Elizabeth was right.",
        "Elizabeth laughed at Darcy and at Mrs. Bennet. Jane Bennet came.",
        "“Come,” said Jane. “Yes,” cried Elizabeth, and Darcy smiled.",
        "Lady Catherine frowned. The Queen and Mock Turtle sang with Alice.",
    ]
    chapters = ["\n\n".join(sentences[i:] + sentences[:i]) * 5 for i in range(4)]
    exact, sampled = LatinCast("en"), LatinCast("en", 10_000_000)
    assert exact.stride == 1
    assert sampled.stride > 1
    for index, chapter in enumerate(chapters, start=1):
        exact.feed(chapter, index)
        sampled.feed(chapter, index)
    assert set(exact.cores) == set(sampled.cores)
    for key, core in exact.cores.items():
        other = sampled.cores[key]
        assert (core.mentions, core.titles) == (other.mentions, other.titles), key
        assert {g: dict(c) for g, c in core.groups.items() if c} == {
            g: dict(c) for g, c in other.groups.items() if c
        }, key
    # the sample's evidence is weighted by the stride: of the same order as the exact
    darcy, sampled_darcy = exact.cores[("Darcy",)], sampled.cores[("Darcy",)]
    assert sampled_darcy.sampled % sampled.stride == 0
    assert abs(sampled_darcy.sampled - darcy.sampled) <= 2 * sampled.stride


@pytest.mark.parametrize(
    ("word", "language", "no_one"),
    [
        ("彼等", "ja", True),  # "they": a pronoun with a plural suffix
        ("彼女", "ja", True),  # "she": a pronoun that points (彼)
        ("返事", "ja", True),  # "reply": a verbal noun
        ("吾輩", "ja", False),  # "I": a first-person narrator's name for itself
        ("迷亭", "ja", False),
        ("主人", "ja", False),
        ("他们", "zh", True),  # "they"
        ("自己", "zh", True),  # "oneself"
        ("宝玉", "zh", False),
        ("Darcy", "en", False),
    ],
)
def test_pronouns_and_verbal_nouns_name_no_one(word: str, language: str, no_one: bool) -> None:
    assert names_no_one(word, language) is no_one


def test_a_long_text_reads_a_regular_sample_of_its_type_token_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    novel = CORPUS / "moby_dick.en.utf8.txt"
    exact = analyze_file(novel, tmp_path / "exact").report["lexical_diversity"]
    # as if the novel were past TTR_SAMPLE_CHARS: one window in about six is read
    monkeypatch.setattr(analysis, "TTR_SAMPLE_CHARS", 200_000)
    sampled = analyze_file(novel, tmp_path / "sampled").report["lexical_diversity"]
    assert sampled != exact
    assert abs(sampled - exact) <= 0.01


def test_a_chapter_summary_prefers_narration_and_falls_back_to_the_rest(tmp_path: Path) -> None:
    """Narrative sentences are chosen before questions, exclamations and dialogue; a
    chapter with fewer than three of them is completed from the others."""
    rich = (
        "Anna walked along the river towards the old mill. "
        "Why had the miller left the mill standing empty all winter? "
        "The river carried broken branches past the silent mill wheel. "
        "What a cold and empty mill it was by the river! "
        "Anna found the miller's letter hidden under a loose stone. "
        "Would the miller ever come back to the river and the mill? "
        "She read the letter twice and folded it into her coat."
    )
    sparse = (
        "Where had the miller gone with his horses and his cart? "
        "Anna waited by the mill until the evening came down. "
        "Was the letter a lie written to keep her from the river? "
        "How cold the wind was along the empty road to the village! "
        "“Come home, Anna,” her brother called from the bridge over the river."
    )
    text = f"Chapter 1\n\n{rich}\n\nChapter 2\n\n{sparse}\n"
    chapters = analyze_text(text, tmp_path).report["chapters"]
    first, second = chapters[0]["summary"], chapters[1]["summary"]
    assert len(first) == 3
    assert all(sentence.endswith(".") for sentence in first)
    assert len(second) == 3
    assert "Anna waited by the mill until the evening came down." in second
    assert [s for s in second if not s.endswith(".")]  # completed from the others
