"""What an MCP client does with the example MCP servers, as data to compare across servers.

``run_scenario()`` connects the MCP SDK's own ``Client`` to a streamable-HTTP URL and,
in one session: lists the tools, adds three items, lists them, runs the slow tool that
reports progress after each item (recording when each notification *arrived*, by the
client's clock), and calls ``server_info`` four times at once. ``Outcome.comparable()``
drops what differs between two correct servers (ids, clocks, pids, loop identities)
and keeps what must not: the protocol, the tools, the results, the progress messages,
and the facts about lifespans and loops.

Every wait is bounded: the whole scenario runs under ``anyio.fail_after``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp import Client

#: The slow tool's pause after each item: 3 items, 0.75 s in all.
PAUSE = 0.25
SCENARIO_TIMEOUT = 60.0


@dataclass(frozen=True)
class ExampleTools:
    """The names of an example's tools (the Flask and Django examples differ)."""

    add: str
    list: str
    slow: str  # reports progress after each item; its result has ``finished_at``
    slow_count: str  # the result key counting the items


@dataclass
class Progress:
    received_at: float  # time.time() in the client when the notification arrived
    progress: float
    total: float | None
    message: str | None


@dataclass
class Outcome:
    protocol: str
    tools: list[str]
    added: list[str]
    listed: list[str]
    slow_result: dict[str, Any]
    progress: list[Progress] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)

    def comparable(self, tag: str) -> dict[str, Any]:
        def untagged(text: str | None) -> str | None:
            return None if text is None else text.replace(tag, "TAG")

        count_keys = {k: v for k, v in self.slow_result.items() if isinstance(v, int)}
        return {
            "protocol": self.protocol,
            "tools": self.tools,
            "added": [untagged(t) for t in self.added],
            "listed": [untagged(t) for t in self.listed],
            "slow_result_counts": count_keys,
            "progress": [(p.progress, p.total, untagged(p.message)) for p in self.progress],
            "lifespans_started": sorted({info["lifespans_started"] for info in self.infos}),
            "lifespans_seen": len({info["lifespan_started_at"] for info in self.infos}),
            "loops_seen": len({info["event_loop"] for info in self.infos}),
            "pids_seen": len({info["pid"] for info in self.infos}),
        }


def _structured(result: Any) -> Any:
    assert not result.is_error, result
    content = result.structured_content
    assert content is not None, result
    return content


async def scenario(url: str, tools: ExampleTools, mode: str, tag: str) -> Outcome:
    received: list[Progress] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        received.append(Progress(time.time(), progress, total, message))

    async with Client(url, mode=mode, read_timeout_seconds=30.0) as client:
        names = sorted(tool.name for tool in (await client.list_tools()).tools)
        added = []
        for n in range(3):
            item = _structured(await client.call_tool(tools.add, {"title": f"{tag} {n}"}))
            added.append(item["title"])
        listed = _structured(await client.call_tool(tools.list, {"search": tag}))["result"]
        slow = _structured(
            await client.call_tool(
                tools.slow, {"search": tag, "pause": PAUSE}, progress_callback=on_progress
            )
        )
        infos: list[dict[str, Any]] = []

        async def info() -> None:
            infos.append(_structured(await client.call_tool("server_info", {"wait": 0.5})))

        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(info)
        return Outcome(
            protocol=client.protocol_version,
            tools=names,
            added=added,
            listed=[item["title"] for item in listed],
            slow_result=slow,
            progress=received,
            infos=infos,
        )


def run_scenario(url: str, tools: ExampleTools, mode: str, tag: str) -> Outcome:
    async def bounded() -> Outcome:
        with anyio.fail_after(SCENARIO_TIMEOUT):
            return await scenario(url, tools, mode, tag)

    return anyio.run(bounded)


def run_stateless_clients(url: str, mode: str, *, clients: int, calls: int) -> list[dict[str, Any]]:
    """``clients`` clients at once (each its own connections), ``calls`` calls of
    ``server_info`` each; what the calls answered."""
    infos: list[dict[str, Any]] = []

    async def one_client() -> None:
        async with Client(url, mode=mode, read_timeout_seconds=30.0) as client:
            assert "server_info" in {tool.name for tool in (await client.list_tools()).tools}
            for _ in range(calls):
                infos.append(_structured(await client.call_tool("server_info", {})))

    async def together() -> None:
        with anyio.fail_after(SCENARIO_TIMEOUT):
            async with anyio.create_task_group() as group:
                for _ in range(clients):
                    group.start_soon(one_client)

    anyio.run(together)
    return infos
