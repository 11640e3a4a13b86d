"""The rule-based intent parser, its vocabulary and its evaluation harness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from godel.errors import IntentError, ValidationError
from godel.intents import vocabulary as vocab
from godel.intents.evaluate import evaluate, load_corpus, main
from godel.intents.parser import (
    MAX_FEATURE_LENGTH,
    MAX_TEXT_LENGTH,
    compile_phrase,
    correct_word,
    emittable_requirements,
    parse_text,
    score_intents,
)
from godel.intents.schema import Complexity, IntentKind

pytestmark = pytest.mark.unit

CORPUS = Path(__file__).resolve().parents[1] / "data" / "intent_corpus.yaml"


# ---------------------------------------------------------------- README examples


def test_readme_oauth_example() -> None:
    parsed = parse_text("Add OAuth2 login with Google, ensure CSRF protection")
    assert parsed.intent is IntentKind.implement_feature
    assert {"authentication", "csrf_protection"} <= set(parsed.requirements)
    assert parsed.feature == "oauth2 login with google"
    assert parsed.complexity is Complexity.medium


def test_readme_jwt_example() -> None:
    parsed = parse_text("Add JWT authentication with rate limiting")
    assert parsed.intent is IntentKind.implement_feature
    assert {"authentication", "rate_limiting"} <= set(parsed.requirements)
    assert parsed.feature == "jwt authentication"


# ---------------------------------------------------------------- each intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Add OAuth2 login with Google", IntentKind.implement_feature),
        ("we want customers to download their invoices as PDF", IntentKind.implement_feature),
        ("fix login 500", IntentKind.fix_bug),
        ("logout button does nothing", IntentKind.fix_bug),
        ("refactor the payment service into smaller modules", IntentKind.refactor),
        ("clean up utils.py and rename the helpers", IntentKind.refactor),
        ("write tests for the payment module", IntentKind.test),
        ("please to make the tests for payment module", IntentKind.test),
        ("review PR #142", IntentKind.review),
        ("Can you review my pull request for the billing endpoints?", IntentKind.review),
        ("audit the auth service for vulnerabilities", IntentKind.security_audit),
        ("review the codebase for security vulnerabilities", IntentKind.security_audit),
        ("fix the slow query on the orders page", IntentKind.optimize_performance),
        ("can you make the login faster?", IntentKind.optimize_performance),
        ("deploy to staging", IntentKind.deploy),
        ("ship v2.3.0 to production", IntentKind.deploy),
        ("document the REST API", IntentKind.document),
        ("fix typo in the README", IntentKind.document),
    ],
)
def test_intent_kinds(text: str, intent: IntentKind) -> None:
    assert parse_text(text).intent is intent


def test_every_intent_kind_has_cues_and_a_tie_rank() -> None:
    assert set(vocab.INTENT_CUES) == set(IntentKind)
    assert set(vocab.HEAD_VERBS) == set(IntentKind)
    assert sorted(vocab.TIE_ORDER) == sorted(IntentKind)


def test_audit_logging_is_a_feature_not_an_audit() -> None:
    text = "Build a billing system with full audit logging"
    assert parse_text(text).intent is IntentKind.implement_feature


def test_statement_without_cues_is_a_bug_and_request_is_a_feature() -> None:
    assert parse_text("images upload sideways on iPhone").intent is IntentKind.fix_bug
    assert parse_text("make a page that lists running agents").intent is IntentKind.implement_feature


# ---------------------------------------------------------------- typos


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("implment a dark mode toggle", IntentKind.implement_feature),
        ("refactr the payment service", IntentKind.refactor),
        ("secuirty review of the upload endpoint", IntentKind.security_audit),
        ("improve perfomance of the report generator", IntentKind.optimize_performance),
        ("deplyo the api to the cluster", IntentKind.deploy),
        ("documnet the deployment process", IntentKind.document),
        ("Reveiw the changes to the auth middleware", IntentKind.review),
    ],
)
def test_typos_are_tolerated(text: str, intent: IntentKind) -> None:
    assert parse_text(text).intent is intent


@pytest.mark.parametrize(
    ("typo", "word"),
    [("implment", "implement"), ("refactr", "refactor"), ("secuirty", "security"),
     ("vulnerabilty", "vulnerability"), ("deploymnet", "deployment")],
)
def test_correct_word_fixes_slips(typo: str, word: str) -> None:
    assert correct_word(typo) == word


@pytest.mark.parametrize(
    "word",
    ["could", "script", "protection", "product", "through", "starting", "covered",
     "requires", "latest", "recognize", "deployed", "extracted"],
)
def test_correct_word_leaves_real_words_alone(word: str) -> None:
    assert correct_word(word) == word


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "123 !!! 456", "???"])
def test_empty_text_raises(text: str) -> None:
    with pytest.raises(IntentError) as caught:
        parse_text(text)
    assert caught.value.field == "intent"
    assert caught.value.message == "intent text is empty"


def test_overlong_text_raises_naming_the_field() -> None:
    with pytest.raises(IntentError) as caught:
        parse_text("a" * (MAX_TEXT_LENGTH + 1))
    assert caught.value.field == "intent"
    assert "intent" in str(caught.value)
    assert str(MAX_TEXT_LENGTH) in caught.value.message


def test_text_at_the_limit_is_accepted() -> None:
    text = ("fix the login page " * 1000)[:MAX_TEXT_LENGTH]
    assert parse_text(text).intent is IntentKind.fix_bug


def test_non_string_raises_intent_error() -> None:
    with pytest.raises(IntentError):
        parse_text(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------- output shape


def test_parse_is_deterministic() -> None:
    text = "Before the SOC2 audit check authentication, SQL injection and logging across the backend"
    first = parse_text(text)
    correct_word.cache_clear()
    assert all(parse_text(text) == first for _ in range(3))


def test_feature_is_short_and_readable() -> None:
    long_text = "Add " + " ".join(f"widget{n}" for n in range(40)) + " to the dashboard"
    assert 0 < len(parse_text(long_text).feature) <= MAX_FEATURE_LENGTH
    assert parse_text("write tests for the payment module").feature == "payment module"
    assert parse_text("secuirty review of the file upload endpoint").feature == "file upload endpoint"
    assert parse_text("BUG-1423: Date picker shows wrong month").feature == "date picker shows wrong month"


def test_feature_survives_non_latin_text() -> None:
    parsed = parse_text("ログイン画面を追加")
    assert parsed.feature
    assert 0.0 <= parsed.confidence <= 1.0


@pytest.mark.parametrize(
    ("text", "complexity"),
    [
        ("fix typo in the README", Complexity.low),
        ("small fix: the footer link points to the old domain", Complexity.low),
        ("deploy to staging", Complexity.low),
        ("Add dark mode", Complexity.medium),
        ("deploy to production", Complexity.medium),
        ("Migrate the whole backend from Flask to FastAPI", Complexity.high),
        ("Implement a distributed job scheduler across all regions", Complexity.high),
        ("Build a multi-tenant billing system", Complexity.high),
    ],
)
def test_complexity(text: str, complexity: Complexity) -> None:
    assert parse_text(text).complexity is complexity


def test_confidence_follows_the_margin() -> None:
    clear = parse_text("audit the auth service for vulnerabilities")
    unclear = parse_text("Add OpenAPI descriptions to every endpoint")
    nothing = parse_text("images upload sideways on iPhone")
    assert 0.0 <= nothing.confidence < unclear.confidence < clear.confidence <= 1.0


def test_score_intents_explains_the_choice() -> None:
    scores = score_intents("fix the slow query")
    assert set(scores) == set(IntentKind)
    assert scores[IntentKind.optimize_performance] > scores[IntentKind.fix_bug] > 0


# ---------------------------------------------------------------- vocabulary


def test_vocabulary_has_the_documented_terms() -> None:
    required = {
        "authentication", "authorization", "csrf_protection", "xss_protection",
        "sql_injection_protection", "input_validation", "rate_limiting", "encryption",
        "test_coverage", "performance", "backward_compatibility", "documentation",
        "logging", "accessibility",
    }
    assert required <= set(vocab.REQUIREMENTS)
    for name, term in vocab.REQUIREMENTS.items():
        assert term.description.strip(), name
        assert term.patterns, name


def test_named_requirement_sets() -> None:
    security = {
        "authentication", "authorization", "csrf_protection", "xss_protection",
        "sql_injection_protection", "input_validation", "encryption",
    }
    assert security == set(vocab.SECURITY_REQUIREMENTS)
    assert "performance" in vocab.PERFORMANCE_REQUIREMENTS
    assert vocab.PERFORMANCE_REQUIREMENTS.issubset(vocab.REQUIREMENTS)


def test_every_emittable_requirement_is_in_the_vocabulary() -> None:
    assert emittable_requirements() <= set(vocab.REQUIREMENTS)
    assert set(vocab.IMPLIED_REQUIREMENT.values()) <= set(vocab.REQUIREMENTS)


def test_requirements_emitted_on_the_corpus_are_vocabulary_terms() -> None:
    for entry in load_corpus(CORPUS):
        parsed = parse_text(entry["text"])
        assert set(parsed.requirements) <= set(vocab.REQUIREMENTS), entry["text"]
        assert set(entry["requirements"]) <= set(vocab.REQUIREMENTS), entry["text"]


def test_intent_implies_its_requirement() -> None:
    assert "test_coverage" in parse_text("write tests for utils").requirements
    assert "documentation" in parse_text("document the CLI").requirements
    assert "performance" in parse_text("optimize search").requirements


def test_pen_test_is_not_test_coverage() -> None:
    parsed = parse_text("Pen test the admin panel, focus on authorization bypass")
    assert parsed.intent is IntentKind.security_audit
    assert "test_coverage" not in parsed.requirements


@pytest.mark.parametrize(
    ("phrase", "text", "matches"),
    [
        ("optimi*", "please optimise it", True),
        ("*error", "a typeerror here", True),
        ("#", "release v2.3 now", True),
        ("only ... can", "only account owners can", True),
        ("only ... can", "only one two three four can", False),
        ("test", "latest build", False),
    ],
)
def test_compile_phrase(phrase: str, text: str, matches: bool) -> None:
    assert bool(compile_phrase(phrase).search(text)) is matches


# ---------------------------------------------------------------- corpus and evaluation


def test_corpus_intent_accuracy() -> None:
    entries = load_corpus(CORPUS)
    report = evaluate(entries)
    assert report["total"] >= 170
    assert all(row["support"] >= 12 for row in report["intents"].values())
    assert report["intent_accuracy"] >= 0.95, report["mistakes"]


def test_evaluate_scores_each_field() -> None:
    entries = [
        {"text": "write tests for utils", "intent": "test", "complexity": "medium",
         "requirements": ["test_coverage"]},
        {"text": "deploy to staging", "intent": "review", "complexity": "low", "requirements": []},
    ]
    report = evaluate(entries)
    assert report["intent_accuracy"] == 0.5
    assert report["intents"]["test"] == {"precision": 1.0, "recall": 1.0, "support": 1}
    assert report["intents"]["review"]["recall"] == 0.0
    assert report["intents"]["deploy"]["precision"] == 0.0
    assert report["complexity_accuracy"] == 1.0
    assert report["requirements"]["exact"] == 1.0
    assert report["mistakes"][0]["got"] == "deploy"


def test_evaluate_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CORPUS), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["intent_accuracy"] >= 0.95
    assert {"intents", "complexity_accuracy", "requirements"} <= set(report)


def test_evaluate_cli_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CORPUS)]) == 0
    assert "intent accuracy" in capsys.readouterr().out


def test_load_corpus_rejects_bad_labels(tmp_path: Path) -> None:
    bad = tmp_path / "corpus.yaml"
    bad.write_text("- text: hello\n  intent: dance\n", encoding="utf-8")
    with pytest.raises(ValidationError):
        load_corpus(bad)
    assert main([str(bad)]) == ValidationError.exit_code
