"""The words the rule-based intent parser knows, kept apart from its logic.

Everything here is data so the vocabulary can be read, documented and tested
on its own. Patterns are *phrases* matched against normalised text (lowercase,
punctuation removed, hyphens split into spaces, typos corrected):

- words are separated by single spaces and must follow each other;
- ``stem*`` matches any word starting with ``stem`` (``optimi*``);
- ``*tail`` matches any word ending with ``tail`` (``*error``);
- ``#`` matches any word containing a digit (``500``, ``v2.3``);
- ``#unit`` matches a number glued to a unit (``#ms`` matches ``200ms``);
- ``...`` matches a gap of up to three words (``only ... can``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from godel.intents.schema import IntentKind


@dataclass(frozen=True)
class Term:
    """One requirement: what it means and which phrases ask for it."""

    description: str
    patterns: tuple[str, ...]
    excludes: tuple[str, ...] = ()  # phrases that look like a pattern but are not


REQUIREMENTS: Final[dict[str, Term]] = {
    "authentication": Term(
        "Proving who the user is: login, passwords, sessions, tokens, SSO, MFA.",
        ("authenticat*", "auth", "auth0", "login", "logins", "log in", "logged out",
         "sign in", "signin", "oauth*", "jwt", "sso", "saml", "password*", "two factor",
         "2fa", "mfa", "totp", "session*", "invalid token", "token refresh",
         "refresh token", "access token", "bearer", "remember me", "credential*"),
    ),
    "authorization": Term(
        "Deciding what an authenticated user may do: roles, permissions, access control.",
        ("authori*", "permission*", "rbac", "role based", "roles", "access control",
         "only ... can", "who can access", "should have access", "privilege*", "acl",
         "forbidden"),
    ),
    "csrf_protection": Term(
        "Rejecting forged cross-site requests (CSRF tokens, origin checks).",
        ("csrf", "xsrf", "cross site request forgery"),
    ),
    "xss_protection": Term(
        "Escaping or sanitising output so user content cannot run script (XSS).",
        ("xss", "cross site scripting", "escaped", "unescaped", "html escaping",
         "sanitize html", "sanitise html"),
    ),
    "sql_injection_protection": Term(
        "Parameterised queries so user input never becomes SQL.",
        ("sql injection", "sqli", "parameterized quer*", "parameterised quer*",
         "prepared statement*"),
    ),
    "input_validation": Term(
        "Checking the shape, type and size of incoming data before using it.",
        ("validat*", "invalid input", "reject*", "sanitiz* input", "sanitis* input",
         "malformed input", "schema validation"),
    ),
    "rate_limiting": Term(
        "Capping how often a client may call, against abuse and overload.",
        ("rate limit*", "throttl*", "request quota*"),
    ),
    "encryption": Term(
        "Protecting data in transit and at rest: TLS, encrypted storage, password hashing.",
        ("encrypt*", "tls", "ssl", "https", "at rest", "in transit", "hashing", "hashed",
         "bcrypt", "argon2", "scrypt"),
    ),
    "test_coverage": Term(
        "Automated tests that exercise the change and guard against regressions.",
        ("test", "tests", "tested", "testing", "unit test*", "coverage", "test cases",
         "e2e", "end to end test*"),
        ("pen test", "pentest", "test suite", "run tests", "run the tests",
         "running the tests", "can test", "test it in isolation"),
    ),
    "performance": Term(
        "Speed and resource use: latency, throughput, memory, load time.",
        ("performan*", "perf", "fast", "faster", "slow*", "latency", "speed*",
         "throughput", "p95", "p99", "optimi*", "memory usage", "cpu usage", "load time",
         "bottleneck*", "n+1", "requests per second", "rps", "lazy load*", "cold start",
         "under load", "efficien*"),
    ),
    "backward_compatibility": Term(
        "Existing clients, APIs, data and imports keep working after the change.",
        ("backward* compat*", "without breaking", "breaking change*", "keep ... working",
         "old imports", "existing clients", "deprecat*", "same behaviour", "same behavior"),
    ),
    "documentation": Term(
        "Written explanation for people: docs, README, docstrings, guides, API reference.",
        ("document*", "docs", "doc", "readme", "docstring*", "changelog", "api reference",
         "openapi", "code comments", "guide", "runbook", "help text", "contributing", "wiki"),
    ),
    "logging": Term(
        "Recording what happened (and keeping secrets out of the record).",
        ("logging", "logs", "logger*", "logged", "audit trail", "structured log*"),
        ("logged out", "logged in"),
    ),
    "accessibility": Term(
        "Usable with assistive technology: screen readers, keyboard, contrast (WCAG).",
        ("accessib*", "a11y", "screen reader*", "aria", "wcag", "keyboard navigation",
         "colour contrast", "color contrast"),
    ),
    "caching": Term(
        "Keeping computed or fetched results to serve them again cheaply.",
        ("cache", "caches", "caching", "cached", "memoiz*", "memois*", "ttl"),
    ),
    "monitoring": Term(
        "Seeing the system run: metrics, alerts, tracing, error rates.",
        ("monitor*", "metrics", "prometheus", "grafana", "alert*", "observability",
         "tracing", "error rates", "error reporting", "sentry"),
    ),
    "error_handling": Term(
        "Failing gracefully: handled errors, retries, fallbacks, timeouts.",
        ("error handling", "handle errors", "handle failures", "retry", "retries",
         "on failure", "fallback*", "graceful*", "circuit breaker", "backoff"),
    ),
    "pagination": Term(
        "Returning large result sets a page at a time.",
        ("paginat*", "page size", "cursor based", "infinite scroll", "next page"),
    ),
    "internationalization": Term(
        "Text, formats and languages for users in other locales (i18n/l10n).",
        ("i18n", "l10n", "internationali*", "locali*", "translat*", "language",
         "languages", "locale*", "multilingual"),
    ),
}

SECURITY_REQUIREMENTS: Final[frozenset[str]] = frozenset({
    "authentication", "authorization", "csrf_protection", "xss_protection",
    "sql_injection_protection", "input_validation", "encryption",
})
PERFORMANCE_REQUIREMENTS: Final[frozenset[str]] = frozenset({"performance", "caching"})

# The requirement an intent always carries: asking for tests means coverage.
IMPLIED_REQUIREMENT: Final[dict[IntentKind, str]] = {
    IntentKind.test: "test_coverage",
    IntentKind.document: "documentation",
    IntentKind.optimize_performance: "performance",
}

# Evidence for each intent, anywhere in the text: phrase -> weight. Nouns that
# name the deliverable (tests, docs, vulnerabilities) weigh more than generic
# verbs (add, make) because they survive any phrasing. A negative weight takes
# back a cue that a longer phrase shows to mean something else ("audit log").
INTENT_CUES: Final[dict[IntentKind, dict[str, float]]] = {
    IntentKind.implement_feature: {
        "add": 1, "implement*": 3, "create": 1, "build": 1, "introduce": 2,
        "support": 1.5, "allow*": 1.5, "enable": 1, "integrate": 2, "develop": 1,
        "new feature": 3, "feature": 1, "i want": 1, "we need": 0.5, "would be great": 2,
        "would be nice": 2, "user story": 2, "acceptance criteria": 2, "ability to": 2,
        "as an admin": 1.5, "as a user": 1.5, "endpoint": 1, "button": 1, "toggle": 1,
        "checkbox": 1, "new": 0.5, "option to": 1.5, "page where": 1, "be able to": 2,
        "make it possible": 2, "would love": 2, "a way to": 1.5, "should have": 1.5,
        "hook up": 2,
    },
    IntentKind.fix_bug: {
        "fix": 2.5, "fx": 2, "bug": 3, "bugs": 3, "broken": 3, "broke": 2, "crash*": 3,
        "error": 1.5, "*error": 2, "exception": 2.5, "*exception": 1, "fail": 1.5,
        "fails": 1.5, "failed": 1.5, "failing": 1.5, "failure": 1, "doesnt work": 3,
        "not working": 3, "doesnt": 1.5, "stopped working": 3, "wrong": 2,
        "incorrect*": 2, "regression": 2, "500": 2, "502": 2, "503": 1.5, "403": 1.5,
        "404": 1.5, "leak": 2, "race condition": 2.5, "not being": 1.5, "anymore": 1.5,
        "no longer": 1.5, "mismatch": 1.5, "expected": 1, "actual": 1, "it should": 1,
        "issue": 1, "correct": 1.5, "repair": 2, "resolve": 1.5, "investigate": 1.5,
        "debug*": 2, "patch": 1.5, "why does": 1.5, "duplicate": 1.5, "even when": 1.5,
        "keeps showing": 1.5, "happens": 1, "users report": 1.5, "reproduce": 2, "traceback": 2,
        "accepts empty": 2, "gets logged out": 1.5, "null pointer": 2, "typo": 0.5,
        "points to the old": 1.5,
        # symptoms: a user describing what happens rather than asking for work
        "does nothing": 3, "nothing happens": 3, "no results": 2, "no output": 2,
        "returns no": 1.5, "cant": 1.5, "cannot": 1.5, "unable to": 2, "dies": 2,
        "hangs": 2, "freezes": 2, "stuck": 1.5, "silently": 1.5, "twice": 1.5,
        "when i": 1.5, "isnt": 1, "wont": 1.5, "instead of": 1,
        # errors named as a topic to build, not one that happens
        "error handling": -1.5, "error reporting": -1.5, "error rates": -1.5,
    },
    IntentKind.refactor: {
        "refactor*": 4, "clean up": 3, "cleanup": 3, "extract": 3, "rename": 3,
        "restructure": 4, "reorgani*": 4, "reorganis*": 4, "simplify": 3, "split": 2,
        "decouple": 3, "consolidate": 3, "rewrite": 2.5, "moderni*": 3, "convert": 2,
        "move": 1.5, "replace": 1.5, "migrate": 2, "migration": 0.5, "dry up": 3,
        "dedup*": 3, "break up": 3, "tidy": 3, "tech debt": 3, "duplicated": 1.5,
        "duplication": 2, "dead code": 3, "hard to read": 2.5, "readab*": 2,
        "maintainab*": 1, "mess": 1.5, "spaghetti": 2, "smaller modules": 2,
        "service layer": 1.5, "get rid of": 2, "better names": 2, "type hints": 2,
        "into a helper": 2, "into its own": 2, "layout": 1, "monolith": 2,
        "in one place": 1.5, "callbacks": 1, "async": 1, "unify": 3, "switch": 1.5,
        "same behaviour": 3, "same behavior": 3, "no behaviour change": 3,
        "no behavior change": 3, "broken into": 3, "break into": 3, "into smaller": 2,
        "smaller pieces": 2, "# line": 2, "out into": 2, "into a common": 2, "into shape": 3,
        "code duplication": 2, "more readable": 2, "turn it into": 2, "pattern": 1.5,
        "deprecated": 2, "nobody uses": 2, "unused": 2, "coupling": 3, "untangle": 3,
        "circular import*": 3, "circular dependenc*": 3,
    },
    IntentKind.test: {
        "test": 2.5, "tests": 4, "tested": 2, "testing": 2, "unit test*": 2,
        "integration test*": 2, "end to end test*": 2, "e2e": 2, "coverage": 3,
        "test cases": 2, "fixtures": 1.5, "pytest": 1.5, "mock*": 1.5,
        "property based": 1.5, "snapshot test*": 2, "smoke test*": 2, "load test*": 2,
        "regression test*": 2, "testcase*": 4, "cover": 1.5, "playwright": 1, "hypothesis": 1,
        "verify": 1,
    },
    IntentKind.review: {
        "review": 4, "reviews": 4, "pull request": 4, "merge request": 4, "pr": 3,
        "diff": 2.5, "code review": 2, "look over": 3, "look at": 1, "take a look": 2,
        "feedback": 2.5, "feedback on": 2, "critique": 3, "approve": 2.5,
        "request changes": 2, "sanity check": 3, "merg*": 2, "second pair of eyes": 4,
        "peer review": 2, "branch": 1, "changes": 1, "ready to go": 1.5, "tell me": 1.5,
        "what you would change": 2, "opened": 1, "check": 1, "go over": 3, "point out": 2,
        "what do you think": 2, "second opinion": 3, "once over": 3, "have a look": 2,
        "look through": 2, "commit": 1,
    },
    IntentKind.security_audit: {
        "audit": 4, "security": 3, "secur*": 2, "security review": 3, "vulnerab*": 5,
        "pen test": 5, "pentest": 5, "penetration": 4, "scan": 2, "cve*": 3,
        "owasp": 5, "exploit*": 3, "secrets": 2, "hardcoded": 2, "api keys": 1.5,
        "threat model*": 4, "threat": 2, "bypass": 2, "brute force": 2, "assess*": 2,
        "static analysis": 3, "bandit": 2, "soc2": 2, "injection": 2, "sql injection": 1,
        "xss": 1.5, "csrf": 1, "holes": 1.5, "httponly": 1, "samesite": 1,
        "findings": 1.5, "look for": 1, "check": 1, "check for": 1.5, "enforce": 2,
        "incident": 1.5, "exposing": 2, "expose*": 2, "pii": 3, "is it safe": 3,
        "safe to": 1.5, "safely": 2, "abuse*": 2, "attack*": 2, "protected against": 2,
        "leaked": 2, "dependencies": 1, "deps": 1, "for security": 2, "verify": 1,
        "audit log*": -4, "audit trail": -4,  # a feature to build, not an audit
    },
    IntentKind.optimize_performance: {
        "optimi*": 4, "speed up": 4, "faster": 4, "fast": 2, "more fast": 2, "slow": 5,
        "slow quer*": 1, "slower": 4, "slowness": 4, "performan*": 4, "perf": 3, "latency": 4,
        "p95": 3, "p99": 3, "throughput": 3, "memory usage": 3,
        "cpu usage": 3, "memory": 1, "bottleneck*": 3, "n+1": 4, "takes": 1,
        "seconds": 1, "minutes": 0.5, "hours": 0.5, "#ms": 2, "requests per second": 3,
        "rps": 2, "load time": 3, "to load": 1, "lazy load*": 4, "bundle": 2,
        "smaller": 1, "cold start": 3, "index*": 1.5, "cache": 2.5, "caching": 2.5,
        "tune": 3, "profiling": 3, "profiler": 3, "under load": 2, "timeouts": 1, "reduce": 1.5,
        "improve": 0.5, "expensive": 2, "batch": 1.5, "cant handle": 1.5,
        "efficien*": 3, "startup time": 2, "sluggish": 4, "laggy": 4, "lag": 2,
        "takes forever": 3, "footprint": 2, "quicker": 4, "more quickly": 3,
        "response time*": 3, "run faster": 2, "build time": 2, "in half": 1.5, "cpu": 2,
        "#s": 1,
    },
    IntentKind.deploy: {
        "deploy": 4, "redeploy": 4, "deployment": 2, "deployments": 1, "deploying": 2,
        "ship": 3, "release": 1.5, "roll out": 3, "rollout": 3, "rollback": 3,
        "roll back": 3, "promote": 2, "publish": 3, "push": 1.5, "go live": 4,
        "live": 1.5, "put ... live": 3, "staging": 2.5, "onto staging": 1.5,
        "production": 2, "prod": 2.5, "k8s": 1.5, "kubernetes": 1.5, "cluster": 1.5,
        "server": 1, "canary": 3, "blue green": 3, "heroku": 2, "aws": 1.5, "ecs": 1.5,
        "pypi": 3, "hotfix": 1, "downtime": 2, "regions": 1.5, "environment variables": 1,
        "github pages": 2, "tag": 1, "upgrade": 1,
    },
    IntentKind.document: {
        "document": 4, "documented": 1.5, "documenting": 3, "documentation": 4,
        "docs": 4, "doc": 2, "readme": 4, "docstring*": 4, "changelog": 4, "guide": 3,
        "migration guide": 2, "runbook": 4, "contributing": 3, "describ*": 2,
        "explain*": 2, "how to": 1.5, "mention": 1.5, "comments": 1,
        "code comments": 2, "help text": 3, "openapi": 1.5, "descriptions": 2,
        "examples": 1, "api reference": 3, "sphinx": 2, "wiki": 3, "tutorial": 3,
        "getting started": 3, "overview": 1.5, "outdated": 2, "screenshots": 1.5,
        "typo": 1.5, "release notes": 4, "adr": 4, "faq": 4, "decision record": 3,
        "usage examples": 2, "help": 1,
    },
}

# Verbs that, when they open the request, say what the user wants done:
# phrase -> extra weight on top of INTENT_CUES.
HEAD_VERBS: Final[dict[IntentKind, dict[str, float]]] = {
    IntentKind.implement_feature: {
        "add": 1.5, "implement": 2, "create": 2, "build": 2, "introduce": 2,
        "support": 2, "allow": 2, "enable": 2, "integrate": 2, "develop": 2, "let": 1.5,
        "hook up": 2, "new feature": 2,
    },
    IntentKind.fix_bug: {
        "fix": 2, "fx": 2, "correct": 2, "repair": 2, "resolve": 2, "debug": 2,
        "investigate": 2, "patch": 2,
    },
    IntentKind.refactor: {
        "refactor": 2, "clean up": 2, "extract": 2, "rename": 2, "restructure": 2,
        "reorganise": 2, "reorganize": 2, "simplify": 2, "split": 2, "decouple": 2,
        "consolidate": 2, "rewrite": 2, "modernize": 2, "modernise": 2, "convert": 2,
        "move": 2, "replace": 2, "migrate": 2, "dry up": 2, "deduplicate": 2,
        "break up": 2, "tidy": 2, "get rid of": 2, "remove": 1, "unify": 2,
        "switch": 1, "pull out": 1, "untangle": 2, "merge": 1,
    },
    IntentKind.test: {"test": 2, "cover": 2, "mock": 2, "verify": 1},
    IntentKind.review: {
        "review": 2, "look over": 2, "look at": 2, "take a look": 2, "critique": 2,
        "approve": 2, "sanity check": 2, "give me feedback": 2, "check": 1,
        "go over": 2, "look through": 2,
    },
    IntentKind.security_audit: {
        "audit": 2, "pen test": 2, "pentest": 2, "scan": 2, "assess": 2,
        "look for": 1, "check": 1, "verify": 1,
    },
    IntentKind.optimize_performance: {
        "optimize": 2, "optimise": 2, "speed up": 2, "tune": 2, "profile": 2,
        "reduce": 2, "cache": 2, "lazy load": 2, "improve performance": 2,
    },
    IntentKind.deploy: {
        "deploy": 2, "redeploy": 2, "ship": 2, "release": 2, "roll out": 2,
        "rollback": 2, "roll back": 2, "promote": 2, "publish": 2, "push": 2,
        "tag": 2, "go live": 2,
    },
    IntentKind.document: {"document": 2, "describe": 2, "explain": 2},
}

# When scores tie, the more specific intent wins; generic "build it" is last.
TIE_ORDER: Final[tuple[IntentKind, ...]] = (
    IntentKind.security_audit, IntentKind.optimize_performance, IntentKind.test,
    IntentKind.document, IntentKind.review, IntentKind.deploy, IntentKind.refactor,
    IntentKind.fix_bug, IntentKind.implement_feature,
)

# Words that open a request without saying what it is; skipped before the verb.
FILLER_PHRASES: Final[tuple[str, ...]] = (
    "please to", "please", "pls", "plz", "kindly", "hi", "hey", "hello",
    "can you", "could you", "would you", "can u", "could u", "can we", "could we", "can someone",
    "we need to", "we need", "need to", "i need you to", "i want to", "i want",
    "id like to", "i would like to", "we should", "lets", "let us", "go ahead and",
    "someone", "also", "just", "quickly", "do a", "do an", "do", "run a", "run an",
    "is our", "is the", "is this", "why does", "why is", "how do i", "we want to",
    "to",
)

# Openers of a request: with no cue at all, "we want X" still asks to build X.
REQUEST_OPENERS: Final[tuple[str, ...]] = (
    "please", "can you", "could you", "would you", "we want", "i want", "we need",
    "i need", "id like", "we would like", "i would like", "can the", "can it",
    "could the", "could it", "is it possible", "it would be", "we should", "lets",
)

# Generic verbs stripped from the feature name though they pick no intent.
GENERIC_VERBS: Final[tuple[str, ...]] = (
    "add", "write", "make", "update", "improve", "set up", "setup", "get", "give me",
    "increase", "bring", "find", "run", "generate", "put", "have", "create",
)

# Words that carry no name, dropped from both ends of the feature name.
DETERMINERS: Final[frozenset[str]] = frozenset({
    "a", "an", "the", "our", "my", "this", "that", "these", "those", "some", "all",
    "its", "their", "your", "it", "them", "of", "for", "on", "to", "in", "and", "with",
})

# Nouns naming the kind of work rather than its object, dropped from the
# front of the feature name ("tests for the payment module" -> "payment module").
WORK_NOUNS: Final[tuple[str, ...]] = (
    "tests", "test", "unit tests", "integration tests", "regression tests", "test cases",
    "docs", "documentation", "review", "code review", "security review", "security audit",
    "audit", "fix", "small fix", "quick fix", "bug", "regression", "tech debt", "hotfix",
    "new feature", "feature", "support", "perf", "ticket", "summary", "description",
    "story", "task", "hi", "hello", "hey", "quick", "small", "simple", "new",
)

# When the opening verb is generic ("add", "write"), its object tells the
# intent: "add docstrings" documents, "create regression tests" tests.
OBJECT_NOUNS: Final[dict[IntentKind, tuple[str, ...]]] = {
    IntentKind.test: ("tests", "test", "test cases", "coverage"),
    IntentKind.document: ("docs", "documentation", "readme", "docstring*", "changelog",
                          "guide", "runbook", "comments", "help text", "document", "examples",
                          "release notes"),
    IntentKind.review: ("review",),
    IntentKind.security_audit: ("security audit", "audit", "threat model", "security review",
                                "pen test"),
    IntentKind.optimize_performance: ("cache", "index", "indexes"),
    IntentKind.refactor: ("duplication", "code duplication", "tech debt", "dead code", "coupling",
                          "complexity"),
}
OBJECT_BONUS: Final[float] = 2.0
OBJECT_WINDOW: Final[int] = 4  # words after the verb that may hold its object

# Where a feature name ends: the words after these describe constraints.
CLAUSE_BREAKERS: Final[frozenset[str]] = frozenset({
    "ensure", "ensuring", "so", "because", "while", "without", "when", "after",
    "before", "since", "but", "which", "must", "should", "please", "asap",
    "making", "using", "via",
})
# These end the feature name only when a requirement or cue follows them.
SOFT_BREAKERS: Final[frozenset[str]] = frozenset({"with", "for", "and", "to", "in"})

LOW_COMPLEXITY_CUES: Final[tuple[str, ...]] = (
    "typo", "tiny", "small", "quick", "quickly", "simple", "minor", "trivial", "short",
    "one line", "one liner", "oneliner", "single line", "cosmetic", "little", "wording",
    "changelog", "release notes", "update the readme",
)
# A deploy only to a rehearsal environment is routine; one touching these is not.
REHEARSAL_ENVIRONMENTS: Final[tuple[str, ...]] = (
    "staging", "test environment", "qa environment", "dev environment", "preview",
)
LIVE_ENVIRONMENTS: Final[tuple[str, ...]] = ("production", "prod", "live", "customers", "all users")
HIGH_COMPLEXITY_CUES: Final[tuple[str, ...]] = (
    "entire", "whole", "across", "migrate", "distributed", "multi tenant",
    "multitenant", "all regions", "all services", "microservices", "overhaul",
    "from scratch", "everywhere", "all databases", "zero downtime", "without downtime",
    "monolith", "big change", "large scale", "system wide", "complete rewrite",
    "every service", "all three regions",
)

# The only words typos are corrected towards: the long, meaning-bearing words
# people misspell. A short list keeps ordinary words ("could", "script") from
# being "corrected" into cue words ("cold", "scrypt").
TYPO_TARGETS: Final[tuple[str, ...]] = (
    "implement", "feature", "integrate", "introduce", "support", "refactor", "restructure",
    "reorganize", "reorganise", "simplify", "consolidate", "extract", "rename", "migrate",
    "security", "secure", "vulnerability", "vulnerabilities", "vulnerable", "audit",
    "performance", "optimize", "optimise", "latency", "throughput", "faster", "caching",
    "document", "documentation", "readme", "docstring", "docstrings", "changelog",
    "deploy", "deployment", "release", "rollback", "production", "staging",
    "review", "request", "coverage", "testing", "tests", "broken", "crashes", "exception",
    "authentication", "authorization", "permissions", "validation", "encryption",
    "accessibility", "pagination", "internationalization", "localization", "logging",
    "monitoring", "backward", "compatibility", "compatible", "injection",
)
TYPO_MIN_LENGTH: Final[int] = 6

# Ordinary words that resemble a target closely enough to be "corrected" wrongly.
NOT_TYPOS: Final[frozenset[str]] = frozenset({
    "latest", "reverse", "revert", "section", "sections", "broker", "brokers", "auditor",
    "catching", "converge", "converges", "throughout", "recognizer", "computable", "excepting",
})
