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
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

from godel.errors import IntentError
from godel.intents import vocabulary as vocab
from godel.intents.schema import Complexity, IntentKind, ParsedIntent

MAX_TEXT_LENGTH = 10_000
MAX_FEATURE_LENGTH = 60
DEFAULT_FEATURE = "project"

_TOKEN_RE = re.compile(r"#?[a-z0-9][a-z0-9_+#]*(?:[./\-][a-z0-9_+#]+)*")
_CLAUSE_RE = re.compile(r"[.!?;]+(?=\s|$)|[,:](?=\s)|\n|\s[-–—]\s|[()\"]")
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


def _vocabulary_phrases() -> list[str]:
    phrases: list[str] = []
    for cues in vocab.INTENT_CUES.values():
        phrases.extend(cues)
    for heads in vocab.HEAD_VERBS.values():
        phrases.extend(heads)
    for term in vocab.REQUIREMENTS.values():
        phrases.extend(term.patterns)
    phrases.extend(vocab.LOW_COMPLEXITY_CUES + vocab.HIGH_COMPLEXITY_CUES)
    return phrases


def _lexicon() -> tuple[frozenset[str], tuple[str, ...], tuple[str, ...]]:
    """Known words (left alone), whole words typos go to, and stems (``optimi``)."""
    words = [w for p in _vocabulary_phrases() for w in p.split()]
    plain = {w for w in words if w.isalpha()}
    stems = tuple(sorted({w[:-1] for w in words if w.endswith("*") and len(w) > 4}))
    targets = tuple(sorted(w for w in plain | set(vocab.EXTRA_TYPO_TARGETS) if len(w) >= 4))
    return frozenset(plain | vocab.NOT_TYPOS), targets, stems


_KNOWN_WORDS, _TYPO_TARGETS, _STEMS = _lexicon()


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


def _matches_stem(word: str) -> bool:
    return any(word.startswith(stem) for stem in _STEMS)


@lru_cache(maxsize=4096)
def correct_word(word: str) -> str:
    """The cue word ``word`` is probably a typo of, or ``word`` unchanged.

    Only unknown alphabetic words of four letters or more are corrected, and
    only towards a word with the same first letter: typos rarely hit the first
    key, and this keeps "latest" from becoming "test".
    """
    if len(word) < 4 or not word.isalpha() or word in _KNOWN_WORDS or _matches_stem(word):
        return word
    candidates = [t for t in _TYPO_TARGETS if t[0] == word[0]]
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=_TYPO_CUTOFF)
    return close[0] if close else word


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


# ---------------------------------------------------------------- clause heads


def _word_matches(word: str, base: str) -> bool:
    """``word`` is ``base`` or a plain inflection of it (adds, testing, moved)."""
    if word == base:
        return True
    stem = base[:-1] if base.endswith("e") else base
    return word.startswith(stem) and word[len(stem):] in {"s", "es", "ed", "d", "ing", "e"}


def _phrase_at(tokens: Sequence[_Token], start: int, phrase: str) -> int:
    """Number of tokens ``phrase`` covers at ``start``, or 0 if it is not there."""
    words = phrase.split()
    if start + len(words) > len(tokens):
        return 0
    for offset, base in enumerate(words):
        if not _word_matches(tokens[start + offset].norm, base):
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


def _head_bonus(tokens: Sequence[_Token]) -> dict[IntentKind, float]:
    """Extra weight for the intents whose verb opens this clause."""
    start = _skip_filler(tokens)
    bonus: dict[IntentKind, float] = {}
    for kind, heads in vocab.HEAD_VERBS.items():
        best = max((w for p, w in heads.items() if _phrase_at(tokens, start, p)), default=0.0)
        if best:
            bonus[kind] = best
    return bonus


# ---------------------------------------------------------------- scoring


def score_intents(text: str) -> dict[IntentKind, float]:
    """Weighted evidence per intent; exposed so tools can explain a parse."""
    clauses = _clauses(text)
    cue_text = " ".join(_cue_text(c) for c in clauses)
    scores = {kind: 0.0 for kind in IntentKind}
    for kind, cues in _INTENT_RX.items():
        scores[kind] = sum(weight for rx, weight in cues if rx.search(cue_text))
    for position, clause in enumerate(clauses):
        factor = 1.0 if position == 0 else 0.5
        for kind, bonus in _head_bonus(clause).items():
            scores[kind] += bonus * factor
    return scores


def _pick(scores: dict[IntentKind, float]) -> tuple[IntentKind, float]:
    """Best intent and a confidence from its margin over the runner-up."""
    ranked = sorted(vocab.TIE_ORDER, key=lambda k: -scores[k])  # stable: ties keep TIE_ORDER
    best, second = scores[ranked[0]], scores[ranked[1]]
    if best <= 0:
        return IntentKind.implement_feature, 0.2
    margin = (best - second) / best
    strength = min(1.0, best / 8.0)
    return ranked[0], round(0.25 + 0.75 * margin * strength, 2)


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


def _complexity(cue_text: str, requirements: Sequence[str]) -> Complexity:
    """Size cues decide; long tickets and many requirements count as size."""
    low = sum(1 for rx in _LOW_RX if rx.search(cue_text))
    high = sum(1 for rx in _HIGH_RX if rx.search(cue_text))
    high += (len(cue_text.split()) >= 80) + (len(requirements) >= 4)
    if high > low:
        return Complexity.high
    if low > high:
        return Complexity.low
    return Complexity.medium


# ---------------------------------------------------------------- feature name


_HEADS_ALL = tuple(p for heads in vocab.HEAD_VERBS.values() for p in heads) + vocab.GENERIC_VERBS
_CUE_RX_ALL = [rx for cues in _INTENT_RX.values() for rx, _ in cues] + [
    rx for patterns, _ in _REQUIREMENT_RX.values() for rx in patterns
]


def _strip_front(tokens: Sequence[_Token]) -> list[_Token]:
    """Drop filler, the opening verb and frame words ("tests for the")."""
    index = _skip_filler(tokens)
    index += _longest_at(tokens, index, _HEADS_ALL)
    while index < len(tokens) and (tokens[index].norm in vocab.FRAME_WORDS or not tokens[index].norm.strip()):
        if not tokens[index].norm and tokens[index].raw.strip("#"):
            break  # a path or file name is a fine feature
        index += 1
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


def extract_feature(text: str) -> str:
    """Short readable name of the thing to work on, from the first useful clause."""
    for clause in _clauses(text):
        tokens = _cut_tail(_strip_front(clause))
        while tokens and tokens[-1].norm in vocab.FRAME_WORDS:
            tokens.pop()
        if tokens and any(t.norm not in vocab.FRAME_WORDS for t in tokens):
            return _shorten([t.raw for t in tokens])
    return DEFAULT_FEATURE


# ---------------------------------------------------------------- entry point


def parse_text(text: str) -> ParsedIntent:
    """Read intent, feature, requirements and size from free text, by rules only.

    Raises ``IntentError`` (field ``intent``) for empty or over-long text.
    """
    _check_text(text)
    intent, confidence = _pick(score_intents(text))
    cue_text = " ".join(_cue_text(c) for c in _clauses(text))
    requirements = _requirements(cue_text, intent)
    return ParsedIntent(
        intent=intent,
        feature=extract_feature(text),
        requirements=requirements,
        complexity=_complexity(cue_text, requirements),
        confidence=confidence,
    )


def emittable_requirements() -> frozenset[str]:
    """Every requirement ``parse_text`` can return; all are vocabulary terms."""
    return frozenset(_REQUIREMENT_RX) | frozenset(vocab.IMPLIED_REQUIREMENT.values())
