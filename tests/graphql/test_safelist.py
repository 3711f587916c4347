"""Safelist mode (FLOWSYNC_GRAPHQL_SAFELIST), through a real server: registered operations
run, sent in full or by hash, over POST, GET, both websocket protocols and SSE; any other
is refused with `operation_not_allowed` (403 over HTTP, an error for that operation on a
socket that stays open) and never runs, and clients cannot register one. Then the
`flowsync graphql register` command (all or nothing), and the dashboard's shipped
manifest against what the dashboard sends."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from flowsync.cli import main
from flowsync.config import Settings
from flowsync.errors import ConfigurationError
from flowsync.schema.safelist import (
    DASHBOARD_MANIFEST,
    Operation,
    allowed_documents,
    digest,
    document_check,
    operations_of,
    read_manifest,
    write_manifest,
)
from tests.graphql.conftest import Api, serve
from tests.graphql.test_http_subscriptions import MULTIPART, SSE, sse_results
from tests.support.graphs import fan
from tests.web.test_build import ui_operations, web_dir

ALLOWED = """query Names { workflows(first: 5) { edges { node { name } } } }
subscription Queue { queueStatsUpdated { queued } }
"""
MADE = 'mutation Make($d: JSON!) { createWorkflow(input: {name: "nope", definition: $d}) { __typename } }'  # noqa: E501
OTHER = "query Other { workflows(first: 1) { edges { cursor } } }"
NOT_ALLOWED = "operation_not_allowed"


def settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def safelist(tmp_path: Path) -> tuple[Path, dict[str, Operation]]:
    source = tmp_path / "allowed.graphql"
    source.write_text(ALLOWED)
    registered = operations_of([source], settings())
    path = tmp_path / "safelist.json"
    write_manifest(path, registered)
    return path, {op.name: op for op in registered}


def persisted(hash_: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": hash_}}


def codes(reply: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in reply.json().get("errors", [])]


async def test_only_registered_operations_run_over_post_and_get(
    db_url: str, tmp_path: Path
) -> None:
    path, ops = safelist(tmp_path)
    names = ops["Names"]
    async with serve(db_url, graphql_safelist=path) as api, httpx.AsyncClient() as client:
        me = await api.owner()
        auth = {"Authorization": f"Bearer {me.key}"}

        async def post(body: dict[str, Any]) -> httpx.Response:
            return await client.post(api.http_url, json=body, headers=auth)

        async def get(**params: Any) -> httpx.Response:
            query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
            return await client.get(api.http_url, params=query, headers=auth)

        empty = {"workflows": {"edges": []}}
        # Registered: in full, by hash alone (POST and GET), or both.
        for reply in [
            await post({"query": names.body}),
            await post({"extensions": persisted(names.id)}),
            await post({"query": names.body, "extensions": persisted(names.id)}),
            await get(extensions=persisted(names.id)),
            await get(query=names.body),
        ]:
            assert reply.status_code == 200 and reply.json()["data"] == empty, reply.text
        # The dashboard's own operations are allowed beside the file's.
        dashboard = {op.name: op for op in read_manifest(DASHBOARD_MANIFEST)}["WorkflowNames"]
        reply = await post({"extensions": persisted(dashboard.id)})
        assert reply.status_code == 200 and "errors" not in reply.json(), reply.text

        # Not registered: refused, whatever the transport and the form.
        other = digest(OTHER)
        for reply in [
            await post({"query": OTHER}),
            await post({"query": names.body + " "}),  # not the exact document registered
            await post({"extensions": persisted(other)}),
            await post({"query": OTHER, "extensions": persisted(other)}),  # no registering
            await post({"extensions": persisted(other)}),
            await get(extensions=persisted(other)),
            await get(query=OTHER),
        ]:
            assert reply.status_code == 403, reply.text
            assert reply.json()["data"] is None and codes(reply) == [NOT_ALLOWED], reply.text
            assert "flowsync graphql register" in reply.json()["errors"][0]["message"]
        # A refused mutation never ran.
        made = await post({"query": MADE, "variables": {"d": fan(2)}})
        assert made.status_code == 403 and codes(made) == [NOT_ALLOWED]
        assert (await post({"query": names.body})).json()["data"] == empty
        # A hash that is not the document's is still `invalid_input`.
        wrong = await post({"query": names.body, "extensions": persisted(other)})
        assert codes(wrong) == ["invalid_input"]

        # GraphiQL is off in safelist mode although the test server turns it on.
        page = await client.get(api.http_url, headers={"Accept": "text/html"})
        assert page.status_code == 404


async def _ws(api: Api, key: str, protocol: str) -> ClientConnection:
    socket = await connect(api.ws_url, subprotocols=[Subprotocol(protocol)])
    await socket.send(json.dumps({"type": "connection_init",
                                  "payload": {"Authorization": f"Bearer {key}"}}))  # fmt: skip
    ack = json.loads(await socket.recv())
    assert ack["type"] == "connection_ack", ack
    return socket


async def _outcome(socket: ClientConnection, oid: str) -> dict[str, Any]:
    """The first `next`/`data` or `error` message of operation `oid` (keep-alives and
    other operations' messages skipped)."""
    async with asyncio.timeout(10):
        while True:
            message = json.loads(await socket.recv())
            if message.get("id") == oid and message["type"] in ("next", "data", "error"):
                return dict(message)


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_websockets_run_registered_operations_and_refuse_others(
    db_url: str, tmp_path: Path, protocol: str
) -> None:
    path, ops = safelist(tmp_path)
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    async with serve(db_url, graphql_safelist=path) as api:
        me = await api.owner()
        socket = await _ws(api, me.key, protocol)
        try:
            # The legacy protocol carries subscriptions only: Queue is one.
            payloads = {
                "full": {"query": ops["Queue"].body},
                "hash": {"extensions": persisted(ops["Queue"].id)},
                "other": {"query": OTHER},
                "other-hash": {"query": OTHER, "extensions": persisted(digest(OTHER))},
                "unknown-hash": {"extensions": persisted(digest(OTHER))},
                "mutation": {"query": MADE, "variables": {"d": fan(2)}},
                "after": {"query": ops["Queue"].body},  # the socket still serves
            }
            if protocol == "graphql-transport-ws":  # queries too
                payloads["query-hash"] = {"extensions": persisted(ops["Names"].id)}
            for oid, payload in payloads.items():
                await socket.send(json.dumps({"id": oid, "type": start, "payload": payload}))
                got = await _outcome(socket, oid)
                if oid in ("full", "hash", "after"):
                    stats = (got["payload"].get("data") or {}).get("queueStatsUpdated")
                    assert stats is not None and "queued" in stats, (oid, got)
                elif oid == "query-hash":
                    assert got["payload"]["data"] == {"workflows": {"edges": []}}, got
                else:
                    assert got["type"] == "error", got
                    errors = got["payload"]
                    first = errors[0] if isinstance(errors, list) else errors
                    assert first["extensions"]["code"] == NOT_ALLOWED, got
        finally:
            await socket.close()
        page = await api.services.workflows.list(me.principal, limit=5)
        assert not page.items, "a refused mutation ran"


async def test_http_streams_run_a_registered_subscription_and_refuse_others(
    db_url: str, tmp_path: Path
) -> None:
    path, ops = safelist(tmp_path)
    async with serve(db_url, graphql_safelist=path) as api, httpx.AsyncClient(timeout=30) as c:
        me = await api.owner()
        headers = {"Authorization": f"Bearer {me.key}", "Accept": SSE}
        body = {"extensions": persisted(ops["Queue"].id)}
        async with c.stream("POST", api.http_url, json=body, headers=headers) as response:
            assert response.status_code == 200
            first = await anext(sse_results(response))
            assert first is not None and "queued" in first["data"]["queueStatsUpdated"]
        other = "subscription Other { queueStatsUpdated { running } }"
        for accept in (SSE, MULTIPART):
            for sent in ({"query": other}, {"extensions": persisted(digest(other))}):
                refused = await c.post(
                    api.http_url, json=sent, headers={**headers, "Accept": accept}
                )
                assert refused.status_code == 403, refused.text
                assert codes(refused) == [NOT_ALLOWED]


def test_a_missing_or_forged_safelist_stops_the_start(tmp_path: Path) -> None:
    missing = Settings(_env_file=None, graphql_safelist=tmp_path / "none.json")  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="flowsync graphql register"):
        allowed_documents(missing)
    forged = tmp_path / "forged.json"
    write_manifest(forged, [Operation("0" * 64, "Names", "query", "query Names { health }")])
    with pytest.raises(ConfigurationError, match="not the SHA-256 of body"):
        allowed_documents(Settings(_env_file=None, graphql_safelist=forged))  # type: ignore[call-arg]
    # Unset (or blank): no safelist, the dashboard's documents only.
    blank = Settings(_env_file=None, graphql_safelist="  ")  # type: ignore[call-arg]
    assert blank.graphql_safelist is None
    assert set(allowed_documents(blank)) == {op.id for op in read_manifest(DASHBOARD_MANIFEST)}


# --- flowsync graphql register ------------------------------------------------------


def test_register_adds_each_operation_with_its_fragments_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ops.graphql").write_text(
        "query Mine { workflows(first: 2) { edges { node { ...Wf } } } }\n"
        "mutation Drop($id: ID!) { deleteWorkflow(id: $id) { __typename } }\n"
    )
    (tmp_path / "fragments.graphql").write_text(
        "fragment Wf on Workflow { id name }\nfragment Unused on Workflow { id }\n"
    )
    target = tmp_path / "lists" / "safelist.json"
    files = [str(tmp_path / "ops.graphql"), str(tmp_path / "fragments.graphql")]
    assert main(["graphql", "register", *files, "--safelist", str(target)]) == 0
    listed = {op.name: op for op in read_manifest(target)}
    assert set(listed) == {"Mine", "Drop"}
    assert listed["Mine"].type == "query" and listed["Drop"].type == "mutation"
    assert "fragment Wf on Workflow" in listed["Mine"].body
    assert "Unused" not in listed["Mine"].body
    assert listed["Mine"].id == hashlib.sha256(listed["Mine"].body.encode()).hexdigest()
    assert listed["Mine"].id in capsys.readouterr().out
    before = target.read_bytes()
    # Registering again changes nothing.
    assert main(["graphql", "register", *files, "--safelist", str(target)]) == 0
    assert target.read_bytes() == before
    assert "already registered" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("query Broken {", "Syntax Error"),
        (
            "query Wrong { noSuchField }",
            "Wrong: line 1, column 15: Cannot query field 'noSuchField'",
        ),
        ("{ health { status } }", "every operation needs a name"),
        (
            "query Lost { workflows { edges { node { ...Missing } } } }",
            "Unknown fragment 'Missing'",
        ),
        (None, "cannot read"),
    ],
    ids=["unparsable", "invalid", "anonymous", "unknown-fragment", "missing-file"],
)
@pytest.mark.parametrize("existing", [True, False], ids=["existing", "new"])
def test_a_bad_document_registers_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str | None,
    problem: str,
    existing: bool,
) -> None:
    good = tmp_path / "good.graphql"
    good.write_text("query Fine { health { status } }\n")
    bad = tmp_path / "bad.graphql"
    if text is not None:
        bad.write_text(text)
    target = tmp_path / "safelist.json"
    if existing:
        assert main(["graphql", "register", str(good), "--safelist", str(target)]) == 0
    before = target.read_bytes() if existing else None
    capsys.readouterr()
    status = main(["graphql", "register", str(good), str(bad), "--safelist", str(target)])
    assert status != 0
    err = capsys.readouterr().err
    assert f"{bad}: " in err and problem in err, err
    assert "nothing was registered" in err
    assert (target.read_bytes() if existing else None) == before
    assert target.exists() == existing


def test_register_needs_a_target_and_refuses_a_malformed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "good.graphql"
    good.write_text("query Fine { health { status } }\n")
    monkeypatch.delenv("FLOWSYNC_GRAPHQL_SAFELIST", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    assert main(["graphql", "register", str(good)]) == 2
    assert "--safelist PATH or FLOWSYNC_GRAPHQL_SAFELIST" in capsys.readouterr().err
    junk = tmp_path / "junk.json"
    junk.write_text('{"format": "something else"}')
    assert main(["graphql", "register", str(good), "--safelist", str(junk)]) == 1
    assert "not a persisted query manifest" in capsys.readouterr().err
    assert junk.read_text() == '{"format": "something else"}'
    # The setting names the default target.
    target = tmp_path / "from-env.json"
    monkeypatch.setenv("FLOWSYNC_GRAPHQL_SAFELIST", str(target))
    assert main(["graphql", "register", str(good)]) == 0
    assert [op.name for op in read_manifest(target)] == ["Fine"]


# --- the dashboard's manifest ------------------------------------------------------


_SENT_HASH = re.compile(r'"__meta__":\{"hash":"([0-9a-f]{64})"\}')


def dashboard_gaps(web: Path, manifest: Path) -> list[str]:
    """What the dashboard in `web` sends that `manifest` does not allow: every hash its
    generated documents carry (web/src/gql/graphql.ts) and every operation of its
    .graphql sources (by name), with each listed body valid against the schema."""
    listed = {op.id: op for op in read_manifest(manifest)}
    sent = _SENT_HASH.findall((web / "src" / "gql" / "graphql.ts").read_text())
    assert sent, "no hashes in web/src/gql/graphql.ts: is persistedDocuments on?"
    gaps = [f"hash {h} (web/src/gql/graphql.ts) is not in {manifest.name}"
            for h in sent if h not in listed]  # fmt: skip
    names = {op.name for op in listed.values()}
    for key in ui_operations(web):
        name = key.rsplit(": ", 1)[1]
        if name not in names:
            gaps.append(f"{key} is not in {manifest.name}")
    bodies = json.loads((web / "src" / "gql" / "persisted-documents.json").read_text())
    if bodies != {op.id: op.body for op in listed.values()}:
        gaps.append(f"{manifest.name} is not web/src/gql/persisted-documents.json: rebuild")
    return gaps


def test_the_shipped_manifest_covers_what_the_dashboard_sends() -> None:
    gaps = dashboard_gaps(web_dir(), DASHBOARD_MANIFEST)
    assert not gaps, "run ./run build-web:\n" + "\n".join(gaps)
    # Each body is valid against the schema as the server validates what it runs.
    check = document_check(settings())
    for op in read_manifest(DASHBOARD_MANIFEST):
        problems = check.problems(check.parse(op.body))
        assert not problems, f"{op.name}: {problems}"


def test_a_manifest_missing_a_dashboard_operation_is_reported(tmp_path: Path) -> None:
    listed = read_manifest(DASHBOARD_MANIFEST)
    dropped = next(op for op in listed if op.name == "WorkflowNames")
    partial = tmp_path / "partial.json"
    write_manifest(partial, [op for op in listed if op is not dropped])
    gaps = "\n".join(dashboard_gaps(web_dir(), partial))
    assert f"hash {dropped.id}" in gaps
    assert ": WorkflowNames is not in partial.json" in gaps
    assert "is not web/src/gql/persisted-documents.json" in gaps
