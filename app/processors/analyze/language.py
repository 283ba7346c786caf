"""Language of a manuscript, and small built-in stop-word lists.

Detection looks at a sample: the script (kana means Japanese, Han without
kana Chinese, Hangul Korean, Cyrillic Russian), then, for Latin script, which
language's stop words are most frequent. ``und`` (undetermined) when nothing
is clear. The lists are short on purpose (the most frequent function words):
they serve keyword extraction and sentence scoring, not linguistics.
"""

from __future__ import annotations

from collections import Counter

from app.processors.analyze.text import (
    CYRILLIC_CHAR_RE,
    HAN_CHAR_RE,
    HANGUL_CHAR_RE,
    KANA_CHAR_RE,
    LATIN_CHAR_RE,
    WORD_RE,
)

_EN = """a about above after again against all also am an and any are as at be because been
before being below between both but by can could did do does doing down during each even
ever every few for from further had has have having he her here hers herself him himself his
how i if in into is it its itself just let like made make many may me might more most much
must my myself never no nor not now of off often on once one only or other ought our ours
ourselves out over own quite rather really said same say says see shall she should so some
such than that the their theirs them themselves then there these they this those though
through thus till to too under until up upon us very was we well were what when where which
while who whom whose why will with without would yes yet you your yours yourself yourselves
don’t didn’t couldn’t wouldn’t won’t can’t isn’t wasn’t i’m it’s that’s don't didn't couldn't
wouldn't won't can't isn't wasn't i'm it's that's mr mrs miss ms dr sir oh ah well come came
go went know knew think thought two little great good much"""

_FR = """a à afin ai aie aient aies ait alors as au aucun aucune aussi autre autres aux avaient
avais avait avant avec avez aviez avions avoir avons ayant ayez ayons bien c ça car ce ceci
cela celle celles celui cependant ces cet cette ceux chaque chez ci comme comment d dans de
des deux devant donc dont du elle elles en encore entre es est et étaient étais était étant
été être eu eue eues eûmes eurent eus eut eux fait faire fois font fut furent fûmes grand
haut hors ici il ils j je jusqu l la là le les leur leurs lui m ma mais me même mêmes mes
moi moins mon n ne ni nos notre nous on ont ou où par parce pas peu peut plus pour pourquoi
puis qu quand que quel quelle quelles quels qui quoi s sa sans se sera serait ses si sien
soi soit son sont sous suis sur t ta tandis te tes toi ton tous tout toute toutes très tu
un une vers voici voilà vos votre vous y dit elle-même lui-même monsieur madame avait-il
était-ce"""

_DE = """aber alle allem allen aller alles als also am an ander andere anderem anderen anderer
anderes auch auf aus bei bin bis bist da damit dann das dass dem den denn der des dich die
dir doch dort du durch ein eine einem einen einer eines er es etwas euch euer für gegen
gewesen hab habe haben hat hatte hatten hier hin hinter ich ihm ihn ihnen ihr ihre im in
indem ins ist ja jede jedem jeden jeder jedes jene jetzt kann kein keine können könnte man
manche mein meine mich mir mit muss nach nicht nichts noch nun nur ob oder ohne sehr sein
seine sich sie sind so solche soll sondern sonst über um und uns unser unter viel vom von
vor war waren warst was weg weil weiter welche wenn wer werde werden wie wieder will wir
wird wo wollen würde zu zum zur zwar zwischen"""

_ES = """a al algo algunas algunos ante antes como con contra cual cuando de del desde donde
durante e el él ella ellas ellos en entre era erais eran eras eres es esa esas ese eso esos
esta estaba estado estar estas este esto estos fue fueron ha había habían han hasta hay la
las le les lo los más me mi mis mucho muy nada ni no nos nosotros o os otra otro para pero
poco por porque que quien se sea ser si sí sin sobre su sus también tan te tenía tiene todo
todos tu tus un una uno unos usted y ya yo"""

_IT = """a ad al alla alle anche avere aveva c che chi ci come con contro cui da dal dalla
dei del della delle di dove e è ed egli era erano essere gli ha hanno i il in io la le lei
lo loro lui ma mi mia mio ne nei nel nella noi non o per perché più poi quale quando quella
quello questa questo se si sono su sua suo tra tu tutto un una uno voi"""

_PT = """a ao aos as até com como da das de dela dele deles depois do dos e é ela elas ele
eles em entre era essa esse esta este eu foi há isso já lhe mais mas me mesmo meu minha muito
na não nas nem no nos o os ou para pela pelo por qual quando que quem se sem ser seu sua
também te tem um uma você"""

_ZH = """的 了 是 不 我 你 他 她 它 们 这 那 也 就 都 在 有 个 么 什 着 来 去 得 之 而 以 其 于 与
和 把 被 让 给 又 还 没 吗 呢 吧 啊 呀 一 上 下 中 里 说 道 便 只 要 会 能 可 此 所 为 如 若 则
或 但 因 并 已 将 见 从 向 到 再 才 些 自 己 好 大 小 多 少 两 三"""

_JA = """の に は を た が で て と し れ さ ある いる も する から な こと として い や れる
など なっ ない この ため その あっ よう また もの という あり まで られ なる へ か だ これ
によって により おり より による ず なり られる において ば なかっ なく しかし について せ だっ
その後 できる それ う ので なお のみ でき き つ における および いう さらに でも ら たり その他
に関する たち ます ん なら 事 自分 出来 今日 一人 何 云う 見る 思う"""

_RU = """и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по
только ее её мне было вот от меня еще ещё нет о из ему теперь когда даже ну вдруг ли если уже
или ни быть был была были него до вас нибудь опять уж вам ведь там потом себя ничего ей
может они тут где есть надо ней для мы тебя их чем сам чтобы без будто чего раз тоже себе
под будет ж тогда кто этот того потому этого какой совсем ним здесь этом один почти мой
тем чтобы нее сейчас куда зачем всех никогда можно при наконец два об другой хоть после
над больше тот через эти нас про всего них какая много разве три эту моя впрочем хорошо
свою этой перед иногда лучше чуть том нельзя такой им более всегда конечно всю между"""

STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(_EN.split()),
    "fr": frozenset(_FR.split()),
    "de": frozenset(_DE.split()),
    "es": frozenset(_ES.split()),
    "it": frozenset(_IT.split()),
    "pt": frozenset(_PT.split()),
    "zh": frozenset(_ZH.split()),
    "ja": frozenset(_JA.split()),
    "ru": frozenset(_RU.split()),
}
"""Stop words per language (Chinese: single characters; Japanese: words and characters)."""

_LATIN_LANGUAGES = ("en", "fr", "de", "es", "it", "pt")
SAMPLE_CHARS = 60_000


def detect_language(text: str) -> str:
    """An ISO 639-1 code for ``text`` (see the module docstring)."""
    sample = _sample(text)
    han = len(HAN_CHAR_RE.findall(sample))
    kana = len(KANA_CHAR_RE.findall(sample))
    hangul = len(HANGUL_CHAR_RE.findall(sample))
    cyrillic = len(CYRILLIC_CHAR_RE.findall(sample))
    latin = len(LATIN_CHAR_RE.findall(sample))
    scripts = {"cjk": han + kana, "ko": hangul, "ru": cyrillic, "latin": latin}
    script = max(scripts, key=lambda s: scripts[s])
    if scripts[script] == 0:
        return "und"
    if script == "cjk":
        return "ja" if kana > 0.05 * (han + kana) else "zh"
    if script != "latin":
        return script
    words = Counter(w.lower() for w in WORD_RE.findall(sample))
    total = sum(words.values())
    hits = {
        lang: sum(words[w] for w in STOP_WORDS[lang] if w in words) for lang in _LATIN_LANGUAGES
    }
    best = max(_LATIN_LANGUAGES, key=lambda lang: (hits[lang], -_LATIN_LANGUAGES.index(lang)))
    return best if total and hits[best] >= 0.1 * total else "und"


def _sample(text: str) -> str:
    """Up to SAMPLE_CHARS from the start, middle and end of ``text``."""
    if len(text) <= SAMPLE_CHARS:
        return text
    third = SAMPLE_CHARS // 3
    middle = len(text) // 2
    return "\n".join((text[:third], text[middle - third // 2 : middle + third // 2], text[-third:]))


def stop_words(language: str) -> frozenset[str]:
    """The stop words of ``language``; English's when there is no list for it."""
    return STOP_WORDS.get(language, STOP_WORDS["en"])
