"""Rule-based intent parser: free text in, ``ParsedIntent`` out, no model.

The parser scores each intent by the weighted cues of ``vocabulary`` found in
the text, plus a bonus for the verb that opens each clause, and picks the best
(ties go to the more specific intent). Typos are corrected word by word
towards the cue vocabulary with ``difflib`` so "refactr" still reads as
"refactor". Everything is deterministic: same text, same result.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

from godel.errors import IntentError
from godel.intents import vocabulary as vocab
from godel.intents.schema import Complexity, IntentKind, ParsedIntent

MAX_TEXT_LENGTH = 10_000
MAX_FEATURE_LENGTH = 60
DEFAULT_FEATURE = "project"
LONG_TICKET_WORDS = 50  # a ticket this long describes several pieces of work

_TOKEN_RE = re.compile(r"#?[^\W_][\w+#]*(?:[./\-][\w+#]+)*")  # any script, keeps v2.3 and n+1
_CLAUSE_RE = re.compile(r"[.!?;]+(?=\s|$)|[,:](?=\s)|\n|\s[-\u2013\u2014]\s|[()\"]")
_TICKET_RE = re.compile(r"^\s*(?:ticket\s*:?\s*)?[A-Za-z][A-Za-z0-9]*-\d+\s*[:.]?\s*", re.I)
_DOC_FILE_RE = re.compile(r"^([a-z0-9_\-]+)\.(?:md|rst|txt)$")
_CODE_FILE_RE = re.compile(r"\.(?:py|js|ts|tsx|jsx|go|rs|rb|java|json|ya?ml|toml|cfg|ini|html|css|sh|sql|lock)$")
_LETTER_RE = re.compile(r"[^\W\d_]")
_TYPO_CUTOFF = 0.8


class _Token(NamedTuple):
    """One word of the text: as written (for the feature) and normalised (for cues)."""

    raw: str
    norm: str


# ---------------------------------------------------------------- patterns


def _word_regex(word: str) -> str:
    if word == "#":
        return r"\S*\d\S*"
    if word.startswith("#"):  # "#ms": a number glued to a unit, "200ms"
        return r"\d+" + re.escape(word[1:])
    if word.endswith("*"):
        return re.escape(word[:-1]) + r"\S*"
    if word.startswith("*"):
        return r"\S+" + re.escape(word[1:])
    return re.escape(word)


def compile_phrase(phrase: str) -> re.Pattern[str]:
    """Turn a vocabulary phrase (see ``vocabulary`` docstring) into a regex."""
    words = phrase.split()
    regex = ""
    for index, word in enumerate(words):
        if word == "...":
            regex += r"(?:\S+ ){0,3}"
            continue
        regex += _word_regex(word) + (" " if index < len(words) - 1 else "")
    return re.compile(r"(?<!\S)" + regex + r"(?!\S)")


def _compile_weighted(table: dict[str, float]) -> list[tuple[re.Pattern[str], float]]:
    return [(compile_phrase(phrase), weight) for phrase, weight in table.items()]


_INTENT_RX = {kind: _compile_weighted(cues) for kind, cues in vocab.INTENT_CUES.items()}
_REQUIREMENT_RX = {
    name: ([compile_phrase(p) for p in term.patterns], [compile_phrase(p) for p in term.excludes])
    for name, term in vocab.REQUIREMENTS.items()
}
_LOW_RX = [compile_phrase(p) for p in vocab.LOW_COMPLEXITY_CUES]
_HIGH_RX = [compile_phrase(p) for p in vocab.HIGH_COMPLEXITY_CUES]
_REHEARSAL_RX = [compile_phrase(p) for p in vocab.REHEARSAL_ENVIRONMENTS]
_LIVE_RX = [compile_phrase(p) for p in vocab.LIVE_ENVIRONMENTS]


def _known_words() -> frozenset[str]:
    """Words typo correction must leave alone: every plain vocabulary word."""
    phrases = [p for table in (*vocab.INTENT_CUES.values(), *vocab.HEAD_VERBS.values()) for p in table]
    phrases += [p for term in vocab.REQUIREMENTS.values() for p in term.patterns]
    phrases += [*vocab.LOW_COMPLEXITY_CUES, *vocab.HIGH_COMPLEXITY_CUES]
    words = {w for p in phrases for w in p.split() if w.isalpha()}
    return frozenset(words | vocab.NOT_TYPOS | set(vocab.TYPO_TARGETS))


_KNOWN_WORDS = _known_words()


# ---------------------------------------------------------------- normalising


def _check_text(text: str) -> None:
    """Refuse input no rule can read, with the field the caller should fix."""
    if not isinstance(text, str):
        raise IntentError("intent text must be a string", field="intent")
    if len(text) > MAX_TEXT_LENGTH:
        raise IntentError(
            f"intent text is {len(text)} characters; the limit is {MAX_TEXT_LENGTH}",
            field="intent",
        )
    if not text.strip() or not _LETTER_RE.search(text):
        raise IntentError("intent text is empty", field="intent")


_VERB_ENDINGS = frozenset({"", "e", "s", "es", "d", "ed", "ing"})
_WORD_ENDINGS = _VERB_ENDINGS | {"er", "ers", "ment", "ments", "ly", "ion", "ions", "al"}


def _inflects(word: str, base: str, endings: frozenset[str] = _VERB_ENDINGS) -> bool:
    """``word`` is ``base`` plus a plain ending: "adds", "testing", "moved"."""
    stem = base[:-1] if base.endswith("e") else base
    return word.startswith(stem) and word[len(stem):] in endings


def _letters_differ(word: str, target: str) -> int:
    """How many letters one word has that the other lacks (both ways)."""
    difference = Counter(word)
    difference.subtract(Counter(target))
    return sum(abs(n) for n in difference.values())


def _is_slip(word: str, target: str) -> bool:
    """A typing slip drops, doubles or swaps letters; a different word changes them.

    "secuirty"/"security" differ by 0 letters, "implment"/"implement" by 1,
    but "protection"/"production" by 4, though difflib rates that pair 0.9.
    """
    allowed = 1 if len(word) < 8 else 2
    return abs(len(word) - len(target)) <= 2 and _letters_differ(word, target) <= allowed


@lru_cache(maxsize=4096)
def correct_word(word: str) -> str:
    """The vocabulary word ``word`` is probably a typo of, or ``word`` unchanged.

    Only unknown alphabetic words of six letters or more are corrected, only
    towards a target with the same first letter (typos rarely hit the first
    key) and only when the change looks like a slip, not another word.
    """
    if len(word) < vocab.TYPO_MIN_LENGTH or not word.isalpha() or word in _KNOWN_WORDS:
        return word
    if any(_inflects(word, target, _WORD_ENDINGS) for target in vocab.TYPO_TARGETS):
        return word  # "extracted", "deployed": already understood
    candidates = [t for t in vocab.TYPO_TARGETS if t[0] == word[0]]
    for close in difflib.get_close_matches(word, candidates, n=3, cutoff=_TYPO_CUTOFF):
        if _is_slip(word, close):
            return close
    return word


def _normalise_token(raw: str) -> str:
    """Cue form of a token: paths and code files name places, not intents."""
    word = raw.lstrip("#")
    if "/" in word or _CODE_FILE_RE.search(word):
        return ""
    doc_file = _DOC_FILE_RE.match(word)
    if doc_file:
        word = doc_file.group(1)
    return " ".join(correct_word(part) for part in word.split("-") if part)


def _tokenize(text: str) -> list[_Token]:
    lowered = text.lower().replace("'", "").replace("\u2019", "").replace("`", "")
    return [_Token(raw, _normalise_token(raw)) for raw in _TOKEN_RE.findall(lowered)]


def _clauses(text: str) -> list[list[_Token]]:
    """Split on sentence and clause punctuation; each clause may open with a verb."""
    text = _TICKET_RE.sub("", text, count=1)
    parts = (_tokenize(part) for part in _CLAUSE_RE.split(text))
    return [tokens for tokens in parts if tokens]


def _cue_text(tokens: Iterable[_Token]) -> str:
    return " ".join(t.norm for t in tokens if t.norm)


def _joined(clauses: Sequence[Sequence[_Token]]) -> str:
    return " ".join(_cue_text(c) for c in clauses)


# ---------------------------------------------------------------- clause heads


def _phrase_at(tokens: Sequence[_Token], start: int, phrase: str) -> int:
    """Number of tokens ``phrase`` covers at ``start``, or 0 if it is not there."""
    words = phrase.split()
    if start + len(words) > len(tokens):
        return 0
    for offset, base in enumerate(words):
        if not _inflects(tokens[start + offset].norm, base):
            return 0
    return len(words)


def _longest_at(tokens: Sequence[_Token], start: int, phrases: Iterable[str]) -> int:
    return max((_phrase_at(tokens, start, p) for p in phrases), default=0)


def _skip_filler(tokens: Sequence[_Token]) -> int:
    """Index of the first token after "please", "can you" and the like."""
    index = 0
    while index < len(tokens):
        width = _longest_at(tokens, index, vocab.FILLER_PHRASES)
        if not width:
            break
        index += width
    return index


_HEADS_ALL = tuple(p for heads in vocab.HEAD_VERBS.values() for p in heads) + vocab.GENERIC_VERBS
_OBJECT_RX = {kind: [compile_phrase(p) for p in nouns] for kind, nouns in vocab.OBJECT_NOUNS.items()}


def _skip_determiners(tokens: Sequence[_Token], index: int) -> int:
    while index < len(tokens) and tokens[index].norm in vocab.DETERMINERS:
        index += 1
    return index


def _head_bonus(tokens: Sequence[_Token]) -> dict[IntentKind, float]:
    """Extra weight for the intents whose verb, or the verb's object, opens this clause."""
    start = _skip_filler(tokens)
    bonus: dict[IntentKind, float] = {}
    for kind, heads in vocab.HEAD_VERBS.items():
        best = max((w for p, w in heads.items() if _phrase_at(tokens, start, p)), default=0.0)
        if best:
            bonus[kind] = best
    verb_end = start + _longest_at(tokens, start, _HEADS_ALL)
    if verb_end > start:
        begin = _skip_determiners(tokens, verb_end)
        window = _cue_text(tokens[begin:begin + vocab.OBJECT_WINDOW])
        for kind, nouns in _OBJECT_RX.items():
            if any(rx.search(window) for rx in nouns):
                bonus[kind] = bonus.get(kind, 0.0) + vocab.OBJECT_BONUS
    return bonus


# ---------------------------------------------------------------- scoring


def _score(clauses: Sequence[Sequence[_Token]]) -> dict[IntentKind, float]:
    """Cue weights found anywhere, plus head bonuses (full for the first clause)."""
    cue_text = _joined(clauses)
    scores = {kind: 0.0 for kind in IntentKind}
    for kind, cues in _INTENT_RX.items():
        scores[kind] = sum(weight for rx, weight in cues if rx.search(cue_text))
    for position, clause in enumerate(clauses):
        factor = 1.0 if position == 0 else 0.5
        for kind, bonus in _head_bonus(clause).items():
            scores[kind] += bonus * factor
    return scores


def score_intents(text: str) -> dict[IntentKind, float]:
    """Weighted evidence per intent; exposed so tools and tests can explain a parse."""
    return _score(_clauses(text))


def _pick(scores: dict[IntentKind, float], fallback: IntentKind) -> tuple[IntentKind, float]:
    """Best intent and a confidence from its margin over the runner-up."""
    ranked = sorted(vocab.TIE_ORDER, key=lambda k: -scores[k])  # stable: ties keep TIE_ORDER
    best, second = scores[ranked[0]], scores[ranked[1]]
    if best <= 0:
        return fallback, 0.2
    margin = (best - second) / best
    strength = min(1.0, best / 8.0)
    return ranked[0], round(0.25 + 0.75 * margin * strength, 2)


def _fallback_intent(clauses: Sequence[Sequence[_Token]]) -> IntentKind:
    """With no cue at all, a request ("add X") builds and a statement ("X happens") is a bug."""
    first = clauses[0] if clauses else []
    asks = _longest_at(first, 0, vocab.REQUEST_OPENERS) or _longest_at(first, _skip_filler(first), _HEADS_ALL)
    return IntentKind.implement_feature if asks else IntentKind.fix_bug


def _requirements(cue_text: str, intent: IntentKind) -> list[str]:
    """Vocabulary terms the text asks for, in vocabulary order."""
    found: list[str] = []
    for name, (patterns, excludes) in _REQUIREMENT_RX.items():
        text = cue_text
        for rx in excludes:
            text = rx.sub(" ", text)
        if any(rx.search(text) for rx in patterns) or vocab.IMPLIED_REQUIREMENT.get(intent) == name:
            found.append(name)
    return found


def _is_rehearsal_deploy(cue_text: str, intent: IntentKind) -> bool:
    """A deploy to staging only: routine, unlike anything that reaches users."""
    if intent is not IntentKind.deploy:
        return False
    return any(rx.search(cue_text) for rx in _REHEARSAL_RX) and not any(rx.search(cue_text) for rx in _LIVE_RX)


def _complexity(cue_text: str, intent: IntentKind, requirements: Sequence[str]) -> Complexity:
    """Size cues decide; long tickets and many requirements count as size."""
    low = sum(1 for rx in _LOW_RX if rx.search(cue_text)) + _is_rehearsal_deploy(cue_text, intent)
    high = sum(1 for rx in _HIGH_RX if rx.search(cue_text))
    high += (len(cue_text.split()) >= LONG_TICKET_WORDS) + (len(requirements) >= 4)
    if high > low:
        return Complexity.high
    if low > high:
        return Complexity.low
    return Complexity.medium


# ---------------------------------------------------------------- feature name


_CUE_RX_ALL = [rx for cues in _INTENT_RX.values() for rx, _ in cues] + [
    rx for patterns, _ in _REQUIREMENT_RX.values() for rx in patterns
]


def _strip_front(tokens: Sequence[_Token]) -> list[_Token]:
    """Drop filler, the opening verb, determiners and work nouns ("tests for the")."""
    index = _skip_filler(tokens)
    index += _longest_at(tokens, index, _HEADS_ALL)
    while index < len(tokens):
        width = _longest_at(tokens, index, vocab.WORK_NOUNS)
        if tokens[index].norm in vocab.DETERMINERS:
            width = max(width, 1)
        if not width:
            break
        index += width
    return list(tokens[index:])


def _cue_follows(tokens: Sequence[_Token]) -> bool:
    text = _cue_text(tokens[:4])
    return any(rx.match(text) for rx in _CUE_RX_ALL)


def _cut_tail(tokens: Sequence[_Token]) -> list[_Token]:
    """Stop where constraints start ("... with rate limiting", "... so that")."""
    for index, token in enumerate(tokens):
        if index == 0:
            continue
        if token.norm in vocab.CLAUSE_BREAKERS:
            return list(tokens[:index])
        if token.norm in vocab.SOFT_BREAKERS and _cue_follows(tokens[index + 1:]):
            return list(tokens[:index])
    return list(tokens)


def _shorten(words: list[str]) -> str:
    text = ""
    for word in words:
        candidate = f"{text} {word}".strip()
        if len(candidate) > MAX_FEATURE_LENGTH:
            break
        text = candidate
    return text or words[0][:MAX_FEATURE_LENGTH]


def _feature(clauses: Sequence[Sequence[_Token]]) -> str:
    """Short readable name of the thing to work on, from the first useful clause."""
    for clause in clauses:
        tokens = _cut_tail(_strip_front(clause))
        while tokens and tokens[-1].norm in vocab.DETERMINERS:
            tokens.pop()
        if tokens:
            return _shorten([t.raw for t in tokens])
    return DEFAULT_FEATURE


# ---------------------------------------------------------------- entry point


def parse_text(text: str) -> ParsedIntent:
    """Read intent, feature, requirements and size from free text, by rules only.

    Raises ``IntentError`` (field ``intent``) for empty or over-long text.
    """
    _check_text(text)
    clauses = _clauses(text)
    intent, confidence = _pick(_score(clauses), _fallback_intent(clauses))
    cue_text = _joined(clauses)
    requirements = _requirements(cue_text, intent)
    return ParsedIntent(
        intent=intent,
        feature=_feature(clauses),
        requirements=requirements,
        complexity=_complexity(cue_text, intent, requirements),
        confidence=confidence,
    )


def emittable_requirements() -> frozenset[str]:
    """Every requirement ``parse_text`` can return; all are vocabulary terms."""
    return frozenset(_REQUIREMENT_RX) | frozenset(vocab.IMPLIED_REQUIREMENT.values())
