"""A version stored before a validation rule existed still runs, and its workflow can
still be renamed: the rules added since versions were first stored (a step read must
be upstream, a node's settings go in `data`) apply when a definition is saved, not when
a stored one is compiled to run (the worker's WorkflowCache) or kept unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from flowsync.errors import DefinitionInvalid
from flowsync.services.workflows import WorkflowUpdate
from tests.support.env import Env
from tests.support.graphs import fan


def reading(expression: str) -> dict[str, Any]:
    """fan(2) whose branch b1's output reads `expression`."""
    definition = fan(2)
    [b1] = [n for n in definition["nodes"] if n["id"] == "b1"]
    b1["data"] = {"output": {"saw": f"{{{{ {expression} }}}}"}}
    return definition


# Branch b1 reads its sibling b0's step: refused when saved now.
READS_SIBLING = reading("has(steps.b0)")


async def test_a_version_stored_before_the_step_read_rule_still_runs(running: Env) -> None:
    env = running
    with pytest.raises(DefinitionInvalid) as refused:
        await env.create(READS_SIBLING)
    assert [p.path for p in refused.value.details] == ["$.definition.nodes[5].data.output.saw"]
    # As if saved before the rule: a valid workflow whose stored version is then the
    # one above (the rule's check is the only difference).
    wid = await env.create(reading("has(input.a)"))
    await env.services.pool.execute(
        "UPDATE workflow_versions SET definition = $2 WHERE workflow_id = $1",
        wid,
        READS_SIBLING,
    )
    run = await env.start(wid)
    done = await env.wait(run)
    assert done.status == "COMPLETED", done.error
    steps = await env.steps(run)
    assert steps["b1"].status == "COMPLETED" and isinstance(steps["b1"].output["saw"], bool)
    # Renaming it keeps its definition as stored; saving that definition again is refused.
    renamed = await env.services.workflows.update(env.me, wid, WorkflowUpdate(name="renamed"))
    assert renamed.name == "renamed"
    with pytest.raises(DefinitionInvalid):
        await env.services.workflows.update(env.me, wid, WorkflowUpdate(definition=READS_SIBLING))
