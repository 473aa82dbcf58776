"""Schemathesis against the app in-process, on real PostgreSQL and Redis.

Reliability matrix #20 (and the C column of #13, #15, #19): every phase
`schemathesis run` has (examples, coverage, fuzzing, stateful through the
OpenAPI links), every check, positive and negative data, signed in as a real
user. Zero failures. The run is bounded by a fixed seed and number of
examples, so it is the same run every time.

Schemathesis' pytest plugin loads fixture-based schemas through a private
pytest attribute that pytest 9.2 removed, so the run goes through the engine
that `schemathesis run` drives, and this test reads its events (the interface
Schemathesis documents for CLI extensions).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import Case, Response
from schemathesis.core.failures import Failure
from schemathesis.core.jsonschema.types import JsonValue
from schemathesis.engine import Status, StopReason, events, from_schema
from schemathesis.hooks import HookContext
from schemathesis.python import asgi
from schemathesis.specs.openapi.schemas import OpenApiSchema
from sqlalchemy import create_engine, text

from app.main import create_app
from app.platform.config import Settings
from tests.support.api import PASSWORD, account, create_product
from tests.support.surface import Exposure

SEED = 20_251_201
# Per operation and phase; the whole run stays well under a minute here.
MAX_EXAMPLES = 60
CONFIG: dict[str, Any] = {
    "seed": SEED,
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
    # Stateful: more sequences than the per-operation phases, so every link is walked.
    "phases": {"stateful": {"max-steps": 10, "generation": {"max-examples": 3 * MAX_EXAMPLES}}},
    # Every check, none turned off.
    "checks": {"enabled": True},
}
# Checks that must have judged at least one response (so the run cannot pass by not checking).
REQUIRED_CHECKS = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "missing_required_header",
    "ignored_auth",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
}
# The stateful phase must walk a created product to every operation its 201
# links to (app/products/router.py), by its declared link or by the one
# Schemathesis infers from the Location header: which of the two a run draws
# is luck, even with a fixed seed (test_the_links_of_a_created_product_lead_to_it
# walks the declared ones every time). Orders and users carry links too, but
# whether a random sequence creates one depends on stock and keys drawn, so
# the summary reports them without making the run depend on luck.
CREATED_PRODUCT = "POST /products/ -> [201] "
REQUIRED_LINK_TARGETS = {"GET /products/{product_id}", "PATCH /products/{product_id}", "DELETE /products/{product_id}"}
DECLARED_PRODUCT_LINKS = {"GetProductById": 200, "UpdateProductById": 200, "DeleteProductById": 204}
SPECIAL_USE_DOMAINS = (".test", ".local", ".localhost", ".invalid", ".onion", ".arpa")


def _same_value(value: object) -> object:
    # 7 and 7.0 are one product id; anything unhashable compares by its JSON.
    return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else json.dumps(value)


def _duplicate_products(body: object) -> bool:
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return False
    ids = [_same_value(item.get("product_id")) for item in items if isinstance(item, dict)]
    return len(ids) != len(set(ids))


def _inverted_price_range(query: dict[str, Any]) -> bool:
    try:
        return Decimal(str(query["min_price"])) > Decimal(str(query["max_price"]))
    except (KeyError, InvalidOperation):
        return False


def _special_use_email(body: object) -> bool:
    email = body.get("email") if isinstance(body, dict) else None
    return isinstance(email, str) and email.lower().endswith(SPECIAL_USE_DOMAINS)


def filter_case(context: HookContext, case: Case[Any]) -> bool:
    """Rules JSON Schema cannot state, documented in the operations' descriptions:
    an order names each product once, a price range is not inverted, and an
    e-mail address is not on a special-use domain (RFC 6761). Schemathesis would
    otherwise send such cases as "valid" and flag the 422 it gets."""
    label = context.operation.label if context.operation else ""
    if label == "POST /orders/":
        return not _duplicate_products(case.body)
    if label == "GET /products/":
        return not _inverted_price_range(dict(case.query or {}))
    if label == "POST /users/":
        return not _special_use_email(case.body)
    return True


# 422s a valid order gets from what is stored, not from what it says: the
# prices of its products make its total too large, or its Idempotency-Key was
# already used for another order (the IETF draft's 422). Schemathesis cannot
# know either, so these two problem types, and nothing else, are let through.
STATE_DEPENDENT_PROBLEMS = {
    "urn:storefront:problem:order-total-too-large",
    "urn:storefront:problem:idempotency-key-reused",
}


def filter_failure(context: HookContext, failure: Failure, case: Case[Any], response: Response) -> bool:
    if context.operation is None or context.operation.label != "POST /orders/" or response.status_code != 422:
        return True
    try:
        problem = json.loads(response.content)
    except ValueError:
        return True
    return not (isinstance(problem, dict) and problem.get("type") in STATE_DEPENDENT_PROBLEMS)


@dataclass
class Run:
    """What the engine reported."""

    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checks_run: set[str] = field(default_factory=set)
    links_followed: set[str] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)
    phases: dict[str, str] = field(default_factory=dict)
    stop_reason: StopReason | None = None
    seconds: float = 0.0
    exposure: Exposure = field(default_factory=Exposure)

    def summary(self) -> str:
        from_created = sorted(link for link in self.links_followed if "-> [201]" in link)
        return (
            f"{self.seconds:.1f} s, {sum(self.statuses.values())} responses {dict(sorted(self.statuses.items()))},"
            f" phases {self.phases}, {len(self.links_followed)} links followed, from created resources: {from_created}"
        )


def _record(run: Run, event: events.ScenarioFinished) -> None:
    recorder = event.recorder
    for interaction in recorder.interactions.values():
        if interaction.response is not None:
            status = interaction.response.status_code
            run.statuses[status] = run.statuses.get(status, 0) + 1
            run.exposure.seen.append(
                (
                    recorder.label,
                    str(interaction.response.headers),
                    interaction.response.content.decode(errors="replace"),
                )
            )
    for node in recorder.cases.values():
        if node.transition is not None and node.is_transition_applied:
            run.links_followed.add(node.transition.id)
    for case_id, checks in recorder.checks.items():
        for check in checks:
            run.checks_run.add(check.name)
            if check.status == Status.FAILURE and check.failure_info is not None:
                failure = check.failure_info.failure
                failed = recorder.interactions.get(case_id)
                answer = failed.response if failed is not None else None
                answered = f"{answer.status_code} {answer.content[:300]!r}" if answer is not None else "nothing"
                run.failures.append(
                    f"[{event.phase.value}] {check.name} on {failure.operation}: {failure.title}\n"
                    f"{failure.message}\n{check.failure_info.code_sample}\nanswered: {answered}"
                )


def execute(schema: OpenApiSchema) -> Run:
    run = Run()
    started = time.monotonic()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _record(run, event)
        elif isinstance(event, events.PhaseFinished):
            run.phases[event.phase.name.value] = event.status.value if event.status else "none"
        elif isinstance(event, events.NonFatalError):
            run.errors.append(f"{event.label}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            run.errors.append(repr(event.exception))
        elif isinstance(event, events.EngineFinished):
            run.stop_reason = event.stop_reason
            run.failures.extend(f"after run: {failure.title}: {failure.message}" for failure in event.failures)
    run.seconds = time.monotonic() - started
    return run


@pytest.fixture
def api_schema(settings: Settings) -> Iterator[OpenApiSchema]:
    """The app's own OpenAPI document, served in-process, with a signed-in user."""
    app = create_app(settings)
    config = schemathesis.Config.from_dict(CONFIG)
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
        user: dict[str, JsonValue] = {"email": "contract@example.com", "username": "contract", "password": PASSWORD}
        assert schema["/users/"]["POST"].Case(body=user).call().status_code == 201
        login = (
            schema["/auth/token"]["POST"]
            .Case(
                body={"username": user["username"], "password": PASSWORD},
                media_type="application/x-www-form-urlencoded",
            )
            .call()
        )
        assert login.status_code == 200, login.text
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        # One product plenty of any order can buy: GET /products/ offers it to
        # the stateful phase, so its orders can be created, read and cancelled.
        stocked: dict[str, JsonValue] = {"name": "Stocked", "price": "1.00", "stock": 10**9}
        assert schema["/products/"]["POST"].Case(body=stocked, headers=bearer).call().status_code == 201
        schema.config.update(headers=bearer)
        schema.hooks.register_hook_with_name(filter_case, "filter_case")
        schema.hooks.register_hook_with_name(filter_failure, "filter_failure")
        yield schema
    finally:
        # The app's lifespan runs on Schemathesis' event-loop thread: close its
        # pool before the test database is dropped.
        asgi.shutdown_lifespans()


def _stored_secrets(settings: Settings) -> list[str]:
    """Password hashes and refresh-token digests, read with a synchronous
    driver (the app's own loop belongs to Schemathesis' thread)."""
    engine = create_engine(settings.sqlalchemy_url.set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            return [
                *connection.execute(text("SELECT password_hash FROM users")).scalars(),
                *connection.execute(text("SELECT token_hash FROM refresh_tokens")).scalars(),
            ]
    finally:
        engine.dispose()


def test_schemathesis_finds_nothing(api_schema: OpenApiSchema, settings: Settings) -> None:
    run = execute(api_schema)
    print(run.summary())
    assert run.exposure.find(_stored_secrets(settings)) == []

    assert run.errors == []
    assert run.failures == [], f"{len(run.failures)} failures\n\n" + "\n\n".join(sorted(set(run.failures)))
    assert run.stop_reason == StopReason.COMPLETED
    assert {phase: run.phases.get(phase) for phase in ("coverage", "fuzzing", "stateful")} == {
        "coverage": "success",
        "fuzzing": "success",
        "stateful": "success",
    }
    assert run.checks_run >= REQUIRED_CHECKS, f"never ran: {REQUIRED_CHECKS - run.checks_run}"
    reached = {link.rpartition(" -> ")[2] for link in run.links_followed if link.startswith(CREATED_PRODUCT)}
    assert reached >= REQUIRED_LINK_TARGETS, f"never reached by a link: {REQUIRED_LINK_TARGETS - reached}"
    # The run was authenticated: protected operations answered 2xx, not only 401.
    assert run.statuses.get(201, 0) > 0


async def test_the_links_of_a_created_product_lead_to_it(client: httpx.AsyncClient) -> None:
    """Each link the OpenAPI document declares on a product's 201, followed
    as a client would: its operationRef names an operation that exists, and
    its parameters, read from the response, reach the created product."""
    owner = await account(client)
    spec = (await client.get("/openapi.json")).json()
    links = spec["paths"]["/products/"]["post"]["responses"]["201"]["links"]
    assert set(links) == set(DECLARED_PRODUCT_LINKS)
    created = await create_product(client, owner)
    for name, status in DECLARED_PRODUCT_LINKS.items():  # read, update, then delete
        pointer, _, method = links[name]["operationRef"].removeprefix("#/paths/").rpartition("/")
        path = pointer.replace("~1", "/").replace("~0", "~")
        assert method in spec["paths"][path], name
        arguments = {
            parameter: created[expression.removeprefix("$response.body#/")]
            for parameter, expression in links[name]["parameters"].items()
        }
        body = {"price": "2.50"} if method == "patch" else None
        response = await client.request(method, path.format(**arguments), json=body, headers=owner.headers)
        assert response.status_code == status, (name, response.text)
