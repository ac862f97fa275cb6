"""Read latency of the API under polling load: ``GET /api/v1/operations/{id}``.

Issue target: p99 under 50 ms and no errors with 200 clients each polling every 0.5 s.

    python benchmarks/bench_api.py [--seconds 30] [--clients 200] [--interval 0.5]
                                   [--pace rate|gap] [--client raw|httpx]
                                   [--http auto|h11|httptools]
                                   [--server-loop auto|asyncio|uvloop]
                                   [--client-loop auto|asyncio|uvloop]

Starts ``uvicorn stratforge.api.app:create_app --factory`` in a subprocess on 127.0.0.1 (a
free port) against a temporary home and its SQLite database, creates one operation with
three children (so the read includes the children's aggregate), then runs ``--clients``
clients in one event loop, each on its own keep-alive connection. The clients are made and
each connected by one poll before the clock starts (connection set-up is not measured);
then, for ``--seconds``, each polls the operation every ``--interval`` seconds on its own
clock (random phase). ``--pace rate`` (default) starts a poll every interval, as a
dashboard's ``setInterval`` does, skipping ticks it is late for; ``--pace gap`` waits the
interval after each answer instead.

The clients share the machine with the server, and latency runs from the send to the parsed
answer, so the harness's own time per request is part of every figure. ``--client raw``
(default) is a minimal HTTP/1.1 client on asyncio streams (about a fifth of a core for all
200); ``--client httpx`` is one ``httpx.AsyncClient`` each (more than half a core, which the
server then competes with). Both are printed in docs/api.md. A request counts as an error
unless it answers 200 with the operation's id.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import math
import os
import random
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path, port: int, http: str, loop: str) -> subprocess.Popen:
    env = {**os.environ, "STRATFORGE_HOME": str(home)}
    env.pop("STRATFORGE_DATABASE_URL", None)
    env.pop("STRATFORGE_API_TOKEN", None)
    return subprocess.Popen([sys.executable, "-m", "uvicorn", "stratforge.api.app:create_app",
                             "--factory", "--host", "127.0.0.1", "--port", str(port),
                             "--http", http, "--loop", loop, "--log-level", "warning",
                             "--no-access-log"],
                            env=env)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CREATE = """
import sys
from stratforge.ops.db import open_database
from stratforge.ops.operations import create_operation
db = open_database()
parent = create_operation(db, "sleep", {"seconds": 1})
for _ in range(3):
    create_operation(db, "sleep", {"seconds": 1}, parent_id=parent.id)
print(parent.id)
"""


def create_operations(home: Path) -> str:
    """The polled operation and its three children, made by another process (so this one
    stays small: its garbage collections are part of every latency it measures)."""
    env = {**os.environ, "STRATFORGE_HOME": str(home)}
    env.pop("STRATFORGE_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", CREATE], env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def wait_ready(base: str, server: subprocess.Popen, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the API server exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the API did not answer within {timeout:.0f} s")


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: the harness's own cost per
    request is a fraction of httpx's, so the latency measured is mostly the server's."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        """Status and body of ``GET path`` (connects, or reconnects, when needed)."""
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
        length = next((int(v) for k, v in headers.items() if k.lower() == "content-length"),
                      None)
        if length is None:
            raise RuntimeError("answer without Content-Length (chunked answers not read)")
        return status, await self.reader.readexactly(length)

    async def aclose(self) -> None:
        """Close the connection."""
        if self.writer is not None:
            self.writer.close()


class HttpxClient:
    """``httpx.AsyncClient`` behind the same ``get`` as :class:`RawClient`."""

    def __init__(self, base: str, tls: ssl.SSLContext) -> None:
        import httpx

        self.http = httpx.AsyncClient(base_url=base, timeout=10.0, verify=tls)

    async def get(self, path: str) -> tuple[int, bytes]:
        """Status and body of ``GET path``."""
        response = await self.http.get(path)
        return response.status_code, response.content

    async def aclose(self) -> None:
        """Close the client."""
        await self.http.aclose()


async def client(http, path: str, op_id: str, until: float, args: argparse.Namespace,
                 latencies: list[float], errors: list[str]) -> None:
    interval = args.interval
    due = time.perf_counter() + random.uniform(0.0, interval)
    while True:
        if args.pace == "rate":  # the next tick of this client's own clock
            now = time.perf_counter()
            due += max(0, math.ceil((now - due) / interval)) * interval
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if time.perf_counter() >= until:
            return
        started = time.perf_counter()
        try:
            status, body = await asyncio.wait_for(http.get(path), 10.0)
            ok = status == 200 and json.loads(body).get("id") == op_id
            if not ok:
                errors.append(f"{status} {body[:80]!r}")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            await http.aclose()
        latencies.append(time.perf_counter() - started)
        due = time.perf_counter() + interval if args.pace == "gap" else due + interval


async def load(port: int, op_id: str, args: argparse.Namespace
               ) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    errors: list[str] = []
    path = f"/api/v1/operations/{op_id}"
    if args.client == "raw":
        clients = [RawClient("127.0.0.1", port) for _ in range(args.clients)]
    else:
        tls = ssl.create_default_context()  # built once: each client would build its own
        clients = [HttpxClient(f"http://127.0.0.1:{port}", tls) for _ in range(args.clients)]
    gate = asyncio.Semaphore(20)

    async def connect(http) -> None:
        async with gate:
            await http.get(path)

    await asyncio.gather(*(connect(http) for http in clients))  # connection set-up: unmeasured
    gc.collect()
    gc.freeze()  # the set-up's objects: no full collection walks them during the run
    started = time.perf_counter()
    until = started + args.seconds
    await asyncio.gather(*(client(http, path, op_id, until, args, latencies, errors)
                           for http in clients))
    wall = time.perf_counter() - started
    for http in clients:
        await http.aclose()
    return latencies, errors, wall


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.5,
                        help="seconds a client waits between two polls")
    parser.add_argument("--pace", choices=("rate", "gap"), default="rate",
                        help="rate: a poll starts every interval on each client's own clock "
                             "(as setInterval does); gap: the interval runs from the end of "
                             "one poll to the start of the next")
    parser.add_argument("--http", choices=("auto", "h11", "httptools"), default="auto",
                        help="uvicorn's HTTP parser (auto: httptools when installed)")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="raw: a minimal HTTP/1.1 keep-alive client on asyncio streams "
                             "(little harness cost); httpx: one httpx.AsyncClient per client")
    parser.add_argument("--server-loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                        help="uvicorn's event loop (auto: uvloop when installed)")
    parser.add_argument("--client-loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                        help="the clients' event loop (auto: uvloop when installed)")
    args = parser.parse_args()
    loop_name = args.client_loop if args.client_loop != "auto" else \
        ("uvloop" if importlib.util.find_spec("uvloop") else "asyncio")
    parser_name = args.http if args.http != "auto" else \
        ("httptools" if importlib.util.find_spec("httptools") else "h11")

    import httpx

    with tempfile.TemporaryDirectory(prefix="sf_bench_api_") as folder:
        home = Path(folder) / "home"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(home, port, args.http, args.server_loop)
        try:
            wait_ready(base, server)
            op_id = create_operations(home)
            assert httpx.get(f"{base}/api/v1/operations/{op_id}").status_code == 200
            server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
            loop_factory = None
            if loop_name == "uvloop":
                import uvloop

                loop_factory = uvloop.new_event_loop
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                latencies, errors, wall = runner.run(load(port, op_id, args))
            client_cpu = time.process_time() - client_cpu
            after = cpu_seconds(server.pid)
            server_cpu = after - server_cpu if after is not None and server_cpu is not None \
                else None
        finally:
            server.terminate()
            server.wait(10)
    ms = [v * 1000 for v in latencies]
    pace = "a poll starts every" if args.pace == "rate" else "a pause between polls of"
    print(f"GET /api/v1/operations/{{id}}: {args.clients} clients, {pace} {args.interval:g} s "
          f"each, {args.seconds:g} s; uvicorn (1 process, {parser_name}, loop "
          f"{args.server_loop}) + SQLite; {args.client} clients on {loop_name}")
    print(f"requests      {len(ms)}")
    print(f"errors        {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    print(f"requests/s    {len(ms) / wall:.1f}")
    if ms:
        print(f"latency ms    p50 {percentile(ms, 50):.2f}  p95 {percentile(ms, 95):.2f}  "
              f"p99 {percentile(ms, 99):.2f}  max {max(ms):.2f}  "
              f"mean {statistics.fmean(ms):.2f}")
        server = f"{server_cpu / wall:.0%}" if server_cpu is not None else "?"
        print(f"cpu           server {server} of a core, clients {client_cpu / wall:.0%} "
              f"(machine: {os.cpu_count()} cores)")
        target = "met" if percentile(ms, 99) < 50 and not errors else "NOT met"
        print(f"target (p99 < 50 ms, no errors): {target}")


if __name__ == "__main__":
    main()
