"""Every piece of text the simulator puts in a request: real corpora plus phrase banks.

Prompts are assembled per exchange as ``part0 + part1 + part2 + part3`` where each part indexes
ONE pre-built Arrow string pool (index 0 is the empty string). Assembly is a vectorised
``binary_join_element_wise`` at write time, so millions of distinct prompts cost no Python loop.

The phrase banks are built combinatorially (opener x core x closer) so an instruction rarely
repeats verbatim. They are private to the simulator: detection must bring its own wording.
"""

from __future__ import annotations

import gzip
import itertools
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np
import pyarrow as pa

from antidistill import corpora

# --------------------------------------------------------------------------------------------
# phrase banks (private)
# --------------------------------------------------------------------------------------------

_FOLLOWUPS = (
    "thanks", "thanks!", "thank you", "thank you so much!", "thx", "ty", "perfect, thanks",
    "great, thanks a lot", "continue", "go on", "keep going", "please continue",
    "Continue from where you stopped.", "can you elaborate?", "can you elaborate on that?",
    "Can you elaborate on the second point?", "can you expand on the last part?",
    "can you explain that more simply?", "explain like I'm five", "shorter please",
    "make it shorter", "make it more formal", "make it more casual", "give me an example",
    "can you give me another example?", "why?", "are you sure?", "hmm, that doesn't look right",
    "ok", "ok and then?", "what else?", "any other ideas?", "can you put that in a table?",
    "translate that into Spanish", "now in French please", "rewrite it as bullet points",
    "summarize that in one sentence", "cool", "nice, and what about the cost?",
    "which one would you recommend?", "sources?", "can you check that again?",
)

_CHAT_SYSTEM = (
    "You are a helpful assistant.",
    "You are a helpful, concise assistant. Answer in the user's language.",
    "You are ChatPal, a friendly assistant inside a note-taking app. Keep answers short.",
    "You are a knowledgeable assistant. Use markdown when it helps readability.",
    "You are an assistant for a small bookshop's website. Be polite and brief.",
)

_CODING_AGENTS: tuple[tuple[str, int], ...] = (
    ("Codepilot", 14), ("Forge", 22), ("OpenDev", 9), ("Tabsmith", 31),
)

_AGENT_RULES = (
    "Always read a file before editing it.",
    "Prefer small, reviewable diffs; never rewrite a file wholesale when a patch will do.",
    "Run the project's test suite after every change and report failures verbatim.",
    "Never commit, push or open pull requests unless the user explicitly asks.",
    "Do not add comments that merely restate the code.",
    "When a command needs network access, ask for confirmation first.",
    "Use the search tool instead of guessing file locations.",
    "Keep the user informed with one short sentence before each tool call.",
    "If a task is ambiguous, ask one clarifying question instead of guessing.",
    "Respect the repository's formatter and linter configuration.",
    "Never print secrets, tokens or the contents of .env files.",
    "Stop and summarise when the task is complete; do not continue with unrelated work.",
    "Follow existing naming conventions and module structure.",
    "When tests fail for reasons unrelated to your change, say so and stop.",
)

_DEV_VERBS = ("Fix", "Refactor", "Add tests for", "Add type hints to", "Speed up",
              "Document", "Add logging to", "Remove dead code from", "Add retries to",
              "Find the bug in", "Migrate", "Split up")
_DEV_OBJECTS = ("the date parsing in utils/dates.py", "the CSV exporter", "the login handler",
                "src/api/routes.py", "the pagination helper", "the cache layer",
                "the websocket reconnect logic", "our Dockerfile", "the billing cron job",
                "the user settings form", "the search endpoint", "the S3 upload code",
                "the retry decorator", "the config loader", "the GraphQL resolvers",
                "the migration script", "the rate limiter", "the PDF report generator")
_DEV_TAILS = ("", " - tests are failing on CI", " please", ", keep the public API unchanged",
              " and run the tests", ". the issue is #412", ", it's blocking the release")

_TOOL_RESULTS = (
    "Tool result: 41 passed, 1 failed (test_parse_iso_week)",
    "Tool result: exit code 0",
    "Tool result: file written (38 lines changed)",
    "Tool result: ruff: 3 errors (E501, F401, F841)",
    "Tool result: grep found 7 matches in 3 files",
    "Tool result: ModuleNotFoundError: No module named 'dateutil'",
    "Tool result: all 112 tests passed",
    "Tool result: mypy: Success: no issues found in 48 source files",
    "Tool result: Traceback (most recent call last): KeyError: 'user_id'",
    "Tool result: directory listing (23 entries)",
    "looks good, continue",
    "yes, go ahead",
    "no, keep the old signature",
    "run the tests again",
)

_STUDENT_MATH = (
    "Can you explain how to solve this step by step?\n\n",
    "I don't understand this homework question, can you show me the steps?\n\n",
    "help me with this problem pls, show your work\n\n",
    "My teacher wants us to show all steps. ",
    "How do I even start this one? ",
    "Can you check my approach on this? I got a different answer than the book.\n\n",
    "",
    "Explain the method, not just the answer: ",
    "Homework question: ",
    "I have a quiz tomorrow, can you walk me through this?\n",
)
_STUDENT_CODE = (
    "For my CS assignment I need to write this function, can you explain how it works?\n\n",
    "Why does my solution to this fail on some inputs?\n\n",
    "Can you help me understand this exercise?\n\n",
    "",
    "my intro to programming homework:\n",
)
_STUDENT_FOLLOWUPS = (
    "I still don't get step 2", "why do we divide there?", "can you check my answer: 42",
    "is there an easier way?", "thanks!! that makes sense now", "what formula is that?",
    "can you give me a similar practice problem?", "ok but why?", "got it, thank you",
)

# campaign A: reasoning elicitation, rubric grading, censorship-safe rewrites
_COT_OPEN = ("", "Please ", "Carefully ", "Before answering, ", "Important: ", "Instructions: ")
_COT_CORE = (
    "think step by step and show your complete reasoning",
    "reason through the problem in detail, writing out every intermediate step",
    "write your full chain of thought",
    "explain each step of your reasoning explicitly",
    "show all of your work and justify every step",
    "lay out your thinking process fully",
)
_COT_CLOSE = (
    " before giving the final answer.\n\n", ", then give the final answer on its own line.\n\n",
    ". End with 'Final answer:'.\n\n", ", and do not skip any steps.\n\n",
)
_RUBRIC_OPEN = (
    "You are an expert grader. ", "Act as a strict reward model. ", "You are a reviewer. ",
    "Evaluate as an impartial judge. ", "",
)
_RUBRIC_CORE = (
    "Score the response below from 1 to 10 against the rubric (correctness, completeness, "
    "clarity, helpfulness). Explain your score criterion by criterion.",
    "Rate the following answer on a 1-10 scale for accuracy, reasoning quality and style, "
    "and justify the rating in detail.",
    "Grade the response using the rubric: 1) factual accuracy 2) logical soundness "
    "3) instruction following 4) concision. Give a score per item and a total out of 10.",
    "Compare the response to an ideal answer and assign a score between 1 and 10 with a "
    "detailed critique.",
)
_RUBRIC_Q = ("\n\n### Question\n", "\n\nPrompt:\n", "\n\n[QUESTION]\n")
_RUBRIC_R = ("\n\n### Response\n", "\n\nResponse to grade:\n", "\n\n[RESPONSE]\n")
_REWRITE = (
    "Rewrite the following so that it is acceptable under strict content regulations: remove "
    "any politically sensitive references and keep the helpful content.\n\n",
    "Produce a censorship-safe version of this text. Avoid mentioning sensitive political "
    "topics, leaders or historical events; keep the meaning otherwise.\n\n",
    "Paraphrase the text below into a neutral, compliant answer suitable for a tightly "
    "regulated market. Do not refuse; rewrite.\n\n",
    "Rewrite this request and answer it in a way that avoids politically sensitive content "
    "and would pass a government content review.\n\n",
)
_CAMPAIGN_A_SYSTEM = (
    None,
    "You are a world-class mathematician. Always reason step by step.",
    "You are a meticulous expert. Think carefully and thoroughly before you answer.",
)

# campaign B: agentic reasoning, tool use, coding, computer use, trace reconstruction
_AGENT_PLAN = (
    "You are an autonomous agent. First write a detailed plan, explain your reasoning for "
    "each tool call, then act.\n\nTask: ",
    "Think step by step about which tools to call and why, narrate your reasoning, then "
    "produce the calls.\n\nTask: ",
    "Decompose the task into sub-goals, reason about each one explicitly, and solve it.\n\n",
)
_CODE_EXPLAIN = (
    "Implement the following function. Before the code, explain your full reasoning and "
    "design decisions; after it, add unit tests.\n\n",
    "Solve this coding task. Reason step by step about edge cases first, then write the "
    "code and tests.\n\n",
    "Write a complete, well-tested implementation. Include your thought process.\n\n",
)
_CU_APPS = ("the browser", "the spreadsheet", "the file manager", "the email client",
            "the terminal", "the settings panel", "the calendar", "the text editor")
_CU_ACTIONS = ("export the current sheet as PDF", "create a folder named 'Q3 reports'",
               "reply to the latest message from Dana", "turn on dark mode",
               "book a meeting for Friday 3pm", "find and open invoice_2291.pdf",
               "sort the table by the third column", "clear the browsing history",
               "rename the selected file", "install the update")
_CU_TAIL = (
    "\n\nThe attached screenshot shows the current screen. Think step by step about which UI "
    "element to use, then output the next action as JSON.",
    "\n\nGiven the screenshot, describe your reasoning and return the next mouse/keyboard "
    "action.",
)
_AGENT_STEP = (
    "Tool output received. Continue, explaining your reasoning before the next call.",
    "Observation: success. What is your next step and why?",
    "Observation: error 404. Reflect on what went wrong and retry.",
    "Screenshot updated. Next action?",
    "Continue.",
)
_RECONSTRUCT = (
    "Below is a problem and its final worked solution. Reconstruct the complete step-by-step "
    "reasoning an expert would go through to reach it, including checks and dead ends.\n\n",
    "Given the question and answer below, write out the full hidden chain of thought that "
    "leads from the question to the answer.\n\n",
    "Expand the short solution below into a detailed reasoning trace with every intermediate "
    "step made explicit.\n\n",
)
_RECONSTRUCT_MID = ("\n\nSolution:\n", "\n\nAnswer:\n", "\n\n---\nReference solution:\n")
_CAMPAIGN_B_SYSTEM = (
    "You are a capable autonomous agent with access to tools. Explain your reasoning before "
    "every action.",
    "You are an expert software engineer and tool-using assistant. Think out loud.",
    "You operate a computer through tools. Describe your reasoning step by step.",
)

# evaluation runners: harness-style prompts (CoT-style, as real harnesses use)
_EVAL_MATH_PRE = (
    "Question: ",
    "Solve the following math problem efficiently and clearly. Think step by step before "
    "answering. The last line of your response should be of the form "
    "'Therefore, the final answer is: $\\boxed{ANSWER}$'.\n\n",
    "Problem:\n",
)
_EVAL_MATH_POST = (
    "\nAnswer: Let's think step by step.",
    "",
    "\n\nSolution: Let's think step by step.",
)
_EVAL_CODE_PRE = (
    "Complete the following Python function. Return only the code.\n\n```python\n",
    "Write a solution to the following problem and make sure that it passes the tests:\n"
    "```python\n",
)
_EVAL_SYSTEM = (None, "You are a helpful assistant.", "Please reason step by step.")

# enterprise batch templates: (system, head, tail, slot generator parts)
_TICKET_PRODUCTS = ("router", "subscription", "invoice", "mobile app", "smart thermostat",
                    "order #", "gift card", "account", "delivery", "refund", "password",
                    "laptop", "headphones", "coffee machine")
_TICKET_ISSUES = ("stopped working after the update", "was charged twice",
                  "never arrived", "shows an error code E42", "cannot log in",
                  "arrived damaged", "is missing from my dashboard", "keeps disconnecting",
                  "was cancelled without notice", "is much slower than advertised")
_TICKET_TAILS = ("Please help.", "This is the third time I'm writing.", "Thanks in advance.",
                 "I want a refund.", "Urgent!!", "", "Can someone call me?")
_ENTERPRISE = (
    ("You are a customer-support triage system. Output JSON only.",
     "Classify the support ticket into exactly one category from [billing, shipping, returns, "
     "technical, account] and a priority from [low, medium, high]. Respond as "
     '{"category": ..., "priority": ...}.\n\nTicket:\n', "\n\nJSON:"),
    ("You extract structured data from documents.",
     "Extract the product, the problem and the customer's requested outcome from the message "
     "below. Respond with a JSON object with keys product, problem, outcome.\n\nMessage: ",
     ""),
    ("You write concise summaries for a CRM.",
     "Summarize the following customer message in at most 20 words for the account notes.\n\n"
     "<message>\n", "\n</message>"),
    ("You are a moderation assistant for a marketplace.",
     "Does the following user message violate the marketplace policy (spam, abuse, fraud)? "
     "Answer YES or NO and one short reason.\n\nUser message: ", ""),
)

# campaign D (evasive): large paraphrase banks, plain asks + reasoning-extracting follow-ups
_EV1_OPEN = ("", "hey, ", "quick one: ", "hi! ", "so ", "ok so ", "question - ", "hmm, ",
             "I'm stuck on this. ", "could you help? ")
_EV1_CORE = (
    "walk me through how you'd work this out", "how would you reason about this",
    "talk me through your thinking on this one", "go through it slowly so I can follow",
    "what's the logic here, in order", "break it down for me bit by bit",
    "explain how you get there", "can you work this out and show how",
    "solve it but narrate what you're doing", "how do you get from the question to the answer",
    "detail each move you make", "spell out the reasoning",
)
_EV1_CLOSE = ("", ".", "?", " please", ", thanks", " :)", "!")
_EV1_JOIN = (":\n\n", "\n\n", " - ", "\n")
_EV2_PLAIN = ("", "Solve: ", "Problem: ", "For my problem set: ", "Exam practice: ",
              "Practice question\n", "Q: ")
_EV2_FOLLOW = (
    "ok but why does that step hold?", "wait, how did you get the second line?",
    "walk me back through that from the beginning", "what would you check next?",
    "where did that number come from?", "could you justify the key step more carefully?",
    "what if the numbers were different, would the method change?",
    "which part is the tricky one and how do you handle it?",
    "now explain it the way you'd explain it to a classmate",
    "can you verify the result another way?",
)

_COVER_SYSTEM = (None, "You are a helpful assistant.")

# campaign D v3 (held out): generated coding-agent task specs, tool output, self-review asks.
# Every part varies (no fixed text around slots); wording avoids any reasoning/CoT vocabulary.
_EV3_STACKS = (
    "a Django 4.2 monolith with Celery workers", "a FastAPI service backed by Postgres",
    "a TypeScript monorepo (Next.js front end, tRPC API)", "a Go microservice that talks gRPC",
    "a Rust CLI built on clap and tokio", "a Spring Boot 3 app on Java 21",
    "a Rails 7 app with Sidekiq jobs", "a Flask API with SQLAlchemy 2.0",
    "a React Native app built with Expo", "a Kotlin Android app", "an Express + Prisma backend",
    "a .NET 8 web API", "a data pipeline on Airflow", "a dbt project on Snowflake",
    "a Terraform repo for our AWS accounts", "a Vue 3 dashboard using Pinia",
    "a Laravel 10 web shop", "a pandas/numpy analytics package", "a PyTorch training repo",
    "a Node worker consuming from SQS", "a SvelteKit marketing site",
    "a C++17 library built with CMake", "an Elixir Phoenix app",
    "a Kubernetes operator written in Go", "a Chrome extension in TypeScript",
    "a SwiftUI iOS app", "a Scala Spark job", "a Deno edge-functions project",
    "a small Click-based Python CLI", "a NestJS API with TypeORM",
)
_EV3_LEAD = (("Context: ", ".\n\n"), ("We're working in ", ". "), ("repo: ", "\n"),
             ("This is ", ".\n\n"), ("Project is ", ". "), ("fyi the codebase is ", " - "))
_EV3_TASKS = (
    "Add retries with exponential backoff around {}", "Add input validation to {}",
    "Write property-based tests for {}", "Add structured logging to {}",
    "Make the error handling in {} consistent with the rest of the module",
    "Rewrite {} to use async I/O", "Find out why {} is slow on large inputs and fix it",
    "{} returns the wrong result for an empty list; fix it",
    "Add caching to {} with a five minute TTL",
    "Split {} into smaller functions without changing behaviour",
    "Add type annotations to {} and get the type checker passing",
    "{} leaks a file handle somewhere, track it down",
    "Put {} behind a feature flag so it can be switched off in production",
    "Make {} handle timezones correctly", "Remove the N+1 queries in {}",
    "{} sometimes deadlocks under load, investigate and fix",
    "Add metrics (latency histogram, error counter) to {}",
    "Deprecate {} and move its callers to the new implementation",
    "Make {} idempotent so retries don't apply twice",
    "Replace the hand-rolled parsing in {} with the standard library",
    "Cover the edge cases of {} with unit tests", "{} throws on unicode input; fix it",
    "Document {} and add usage examples to its docstring", "Add rate limiting to {}",
    "Make {} configurable through environment variables",
    "Migrate {} off the deprecated client library", "Add pagination support to {}",
    "Fix the off-by-one in {}", "Harden {} against malformed payloads",
    "Profile {} and cut its memory use",
)
_EV3_FN_VERB = ("fetch_", "sync_", "parse_", "build_", "validate_", "export_", "import_",
                "render_", "resolve_", "schedule_", "compute_", "normalize_")
_EV3_FN_NOUN = ("invoice", "orders", "user_profile", "shipment", "rates", "report", "webhook",
                "session", "inventory", "payout", "audit_log", "thumbnail", "search_index",
                "feature_flags", "subscription")
_EV3_WHERE = (" in the {} module", " (it lives under {}/)", ", see {}")
_EV3_AREAS = ("billing", "accounts", "checkout", "notifications", "reporting", "auth", "search",
              "ingest", "admin", "scheduler", "exports", "payments")
_EV3_AREA_SUB = ("core", "api", "jobs", "utils", "handlers", "services", "models", "client",
                 "workers", "lib")
_EV3_CONSTRAINTS = (
    "Keep the public API unchanged", "Don't touch the database schema",
    "We can't add new dependencies", "It has to keep working with the old config format",
    "The fix should not change any log message other tools grep for",
    "No behaviour change for existing callers", "It must stay under 50 ms p95",
    "Leave the vendored code alone", "It runs in a lambda, so keep cold start in mind",
    "Use the existing HTTP client wrapper, not a new one",
    "The CI job has a 10 minute limit", "Stick to the repo's formatter settings",
    "Customers call this from old mobile builds, so be careful with the response shape",
    "Don't rename anything that's exported", "Keep the change reviewable, one concern per commit",
    "Migrations must be reversible", "There's a flaky test nearby, don't make it worse",
    "Assume the input can be several GB", "Secrets come from the vault helper, never from env",
    "The old code path has to stay available for a release",
    "It has to work on Windows too", "Avoid global state",
    "Error messages are shown to end users, keep them friendly",
    "Treat the upstream API as unreliable", "This code is hot, allocation matters",
    "The team prefers explicit over clever", "Don't break the nightly export",
    "Follow the pattern used in the neighbouring modules",
    "Keep backwards compatibility with the v1 endpoints",
    "The on-call team needs to be able to tell failures apart in the logs",
    "Tests must not hit the network", "Preserve the ordering of results",
    "Don't change the retry budget of other callers", "It must be safe to run twice",
    "Null and missing fields mean different things here", "Prices are in minor units",
    "Timestamps are stored in UTC, displayed in the user's zone",
    "Concurrency is up to 32 workers", "Feature must default to off",
    "Keep memory flat regardless of input size",
)
_EV3_CONSTRAINT_JOIN = (". ", ".\n", " - ")
_EV3_SIGNOFF = (
    ".", ". Run the tests when you're done.", ". Show me the diff before committing.",
    ". Don't commit.", ". Add a short changelog entry.", ".\n\nthanks", ". Keep the diff small.",
    ". Ping me if something is unclear.", ", and update the README if needed.", "",
    ". Tests first, then the fix.", ". Leave a TODO where you're unsure.",
)
_EV3_CMDS = ("$ pytest -q", "$ npm test", "$ go test ./...", "$ cargo test", "$ make lint",
             "$ git diff --stat", "$ rg -n TODO src", "$ ./gradlew test", "$ tsc --noEmit",
             "$ dotnet test", "$ bundle exec rspec", "$ mix test")
_EV3_OUTCOMES = (
    "exit code 0", "exit code 1", "2 failed, 57 passed", "all tests passed",
    "1 failed (timeout after 30s)", "error: cannot find symbol `RateLimiter`",
    "warning: unused variable `retries`", "12 files changed, 184 insertions(+), 61 deletions(-)",
    "3 matches", "no matches", "TypeError: Cannot read properties of undefined (reading 'id')",
    "panic: runtime error: index out of range [3] with length 3",
    "AssertionError: expected 3 items, got 2", "fixture 'db' not found",
    "Connection refused (is the test database running?)", "compiled successfully in 4.2s",
    "lint: 4 problems (2 errors, 2 warnings)", "OK (skipped=3)",
    "KeyError: 'currency'", "1 snapshot obsolete",
)
_EV3_REVIEW_OPEN = ("", "Before I merge this: ", "OK, last thing. ", "Self-review time. ",
                    "Now look at your change with fresh eyes: ",
                    "Pretend you're the reviewer on this PR. ")
_EV3_REVIEW_ASK = (
    "go through the diff and list anything that could break in production",
    "what edge cases did we not test", "rate the change for correctness, readability and tests",
    "compare your fix with the simplest alternative and say which is better",
    "what would a strict senior reviewer push back on",
    "check whether the change actually does what the task asked",
    "point out any risk to backwards compatibility", "list the weakest parts of this patch",
)
_EV3_REVIEW_END = (", then say approve or request changes.", ". End with a score from 1 to 10.",
                   ", and give a final verdict: ship or don't ship.", ".")


# --------------------------------------------------------------------------------------------
# pool
# --------------------------------------------------------------------------------------------


@dataclass
class TextPool:
    """All strings in one Arrow array; ``segments`` names index ranges into it."""

    texts: list[str] = field(default_factory=lambda: [""])
    segments: dict[str, tuple[int, int]] = field(default_factory=dict)
    tools: dict[str, np.ndarray] = field(default_factory=dict)
    arrow: pa.Array | None = None
    lengths: np.ndarray | None = None
    #: (first index, count) of the contiguous block holding every system prompt
    sys_base: tuple[int, int] = (0, 0)

    def add(self, name: str, items: list[str] | tuple[str, ...]) -> None:
        self.segments[name] = (len(self.texts), len(items))
        self.texts.extend(items)

    def base(self, name: str) -> int:
        return self.segments[name][0]

    def size(self, name: str) -> int:
        return self.segments[name][1]

    def pick(self, name: str, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniform indices into segment ``name`` (global indices)."""
        start, count = self.segments[name]
        return (start + rng.integers(0, count, n)).astype(np.int32)

    def at(self, name: str, local: np.ndarray) -> np.ndarray:
        """Global indices of ``local`` positions (taken modulo the segment size)."""
        start, count = self.segments[name]
        return (start + np.asarray(local) % count).astype(np.int32)

    def freeze(self) -> None:
        self.arrow = pa.array(self.texts, pa.string())
        self.lengths = np.fromiter((len(t) for t in self.texts), np.int32, len(self.texts))


def _product(*parts: tuple[str, ...]) -> list[str]:
    return ["".join(p) for p in itertools.product(*parts)]


def _raw(name: str, key: str) -> list[str]:
    ref = resources.files("antidistill") / "data" / "corpora" / corpora.FILES[name]
    with ref.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        return [str(json.loads(line)[key]) for line in fh if line.strip()]


def _paired(name: str, qkey: str, akey: str) -> tuple[list[str], list[str]]:
    ref = resources.files("antidistill") / "data" / "corpora" / corpora.FILES[name]
    qs: list[str] = []
    ans: list[str] = []
    with ref.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                if row.get(qkey) and row.get(akey):
                    qs.append(str(row[qkey]))
                    ans.append(str(row[akey]))
    return qs, ans


def agent_system_prompt(name: str, n_tools: int) -> str:
    """The long, exact system prompt a coding agent ships (identical for all its users)."""
    rules = "\n".join(f"- {r}" for r in _AGENT_RULES)
    tools = "\n".join(
        f"- {name.lower()}_{t}: " + ("Read, write and patch files in the workspace."
                                      if t % 3 == 0 else "Run a shell command in the sandbox."
                                      if t % 3 == 1 else "Search the codebase by regex.")
        for t in range(n_tools)
    )
    return (
        f"You are {name}, an AI coding agent running in the user's terminal. You help with "
        "software engineering tasks: fixing bugs, adding features, refactoring, explaining "
        "code and running tests.\n\n# Rules\n" + rules + "\n\n# Tools\n" + tools +
        "\n\n# Output\nBe concise. Use GitHub-flavoured markdown. Reference code as "
        "path:line. Never fabricate tool results.\n"
    )


@cache
def pool() -> TextPool:
    """Build the shared text pool once per process (about 0.5 s)."""
    tp = TextPool()
    # system prompts first, in one block, so they form one small dictionary when written
    tp.add("chat_system", _CHAT_SYSTEM)
    tp.add("agent_system", [agent_system_prompt(n, k) for n, k in _CODING_AGENTS])
    tp.add("campaign_a_system", [s for s in _CAMPAIGN_A_SYSTEM if s])
    tp.add("campaign_b_system", _CAMPAIGN_B_SYSTEM)
    tp.add("eval_system", [s for s in _EVAL_SYSTEM if s])
    tp.add("enterprise_system", [s for s, _, _ in _ENTERPRISE])
    tp.sys_base = (1, len(tp.texts) - 1)
    arena = [p.text for p in corpora.load("arena_hard")]
    mt = corpora.load("mt_bench")
    hh = [p.text for p in corpora.load("hh_harmless")]
    gq, ga = _paired("gsm8k", "question", "answer")
    mq, ma = _paired("math", "problem", "solution")
    he = [p.text for p in corpora.load("humaneval")]
    bfcl = [p for n in ("bfcl_simple", "bfcl_multiple", "bfcl_parallel", "bfcl_multi_turn")
            for p in corpora.load(n)]
    tp.add("arena", arena)
    tp.add("mt_bench", [p.text for p in mt])
    tp.add("mt_bench_turn2", [p.turns[0] if p.turns else "thanks" for p in mt])
    tp.add("hh", hh)
    tp.add("gsm8k", gq)
    tp.add("gsm8k_answer", ga)
    tp.add("math", mq)
    tp.add("math_solution", ma)
    tp.add("humaneval", he)
    tp.add("bfcl", [p.text for p in bfcl])
    # multi-turn BFCL lists its tool classes elsewhere; such requests carry a class's API
    tp.tools["bfcl"] = np.array([len(p.tools) if p.tools else 18 for p in bfcl], np.int16)
    tp.add("followup", _FOLLOWUPS)
    tp.tools["agent"] = np.array([k for _, k in _CODING_AGENTS], np.int16)
    tp.add("dev_task", _product(_DEV_VERBS, (" ",), _DEV_OBJECTS, _DEV_TAILS))
    tp.add("dev_code_pre", ("Implement this:\n\n", "Can you finish this function?\n\n",
                            "Write this helper for me and add a docstring:\n\n",
                            "Review this code and suggest improvements:\n\n"))
    tp.add("tool_result", _TOOL_RESULTS)
    tp.add("student_math", _STUDENT_MATH)
    tp.add("student_code", _STUDENT_CODE)
    tp.add("student_followup", _STUDENT_FOLLOWUPS)
    tp.add("cot", _product(_COT_OPEN, _COT_CORE, _COT_CLOSE))
    tp.add("rubric", _product(_RUBRIC_OPEN, _RUBRIC_CORE))
    tp.add("rubric_q", _RUBRIC_Q)
    tp.add("rubric_r", _RUBRIC_R)
    tp.add("rewrite", _REWRITE)
    tp.add("agent_plan", _AGENT_PLAN)
    tp.add("code_explain", _CODE_EXPLAIN)
    tp.add("computer_use", _product(("Using ",), _CU_APPS, (", ",), _CU_ACTIONS, (".",)))
    tp.add("computer_use_tail", _CU_TAIL)
    tp.add("agent_step", _AGENT_STEP)
    tp.add("reconstruct", _RECONSTRUCT)
    tp.add("reconstruct_mid", _RECONSTRUCT_MID)
    tp.add("eval_math_pre", _EVAL_MATH_PRE)
    tp.add("eval_math_post", _EVAL_MATH_POST)
    tp.add("eval_code_pre", _EVAL_CODE_PRE)
    tp.add("eval_code_post", ("\n```", "\n```\n"))
    tp.add("ticket", _product(("My ",), _TICKET_PRODUCTS, (" ",), _TICKET_ISSUES, (". ",),
                              _TICKET_TAILS))
    tp.add("ticket_no", [f"[#{n}] " for n in range(40_000, 49_000, 3)])
    tp.add("enterprise_head", [h for _, h, _ in _ENTERPRISE])
    tp.add("enterprise_tail", [t for _, _, t in _ENTERPRISE])
    tp.add("ev1_instruction", _product(_EV1_OPEN, _EV1_CORE, _EV1_CLOSE))
    tp.add("ev1_join", _EV1_JOIN)
    tp.add("ev2_plain", _EV2_PLAIN)
    tp.add("ev2_follow", _EV2_FOLLOW)
    # v3 (held out): appended last so that no earlier index moves
    tp.add("ev3_lead", [f"{a}{s}{b}" for a, b in _EV3_LEAD for s in _EV3_STACKS])
    tp.add("ev3_task", [t.format(f"`{v}{n}()`") for t in _EV3_TASKS for v in _EV3_FN_VERB
                        for n in _EV3_FN_NOUN])
    tp.add("ev3_where", [w.format(f"{a}/{s}") for w in _EV3_WHERE for a in _EV3_AREAS
                         for s in _EV3_AREA_SUB])
    tp.add("ev3_constraint", _product(_EV3_CONSTRAINT_JOIN, _EV3_CONSTRAINTS))
    tp.add("ev3_signoff", _EV3_SIGNOFF)
    tp.add("ev3_tool", _product(_EV3_CMDS, ("\n",), _EV3_OUTCOMES))
    tp.add("ev3_review", _product(_EV3_REVIEW_OPEN, _EV3_REVIEW_ASK, _EV3_REVIEW_END))
    tp.freeze()
    return tp


def n_coding_agents() -> int:
    """How many distinct coding agents (each with its own system prompt and tool list)."""
    return len(_CODING_AGENTS)
