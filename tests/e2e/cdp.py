"""A small Chrome DevTools Protocol client: headless Chromium with one page, driven over its
remote-debugging WebSocket (navigate, evaluate, type), recording every request the page makes
and every Content-Security-Policy violation it meets."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import websockets

# Recorded in the page before any of its scripts run (CDP's scripts are exempt from its CSP).
_WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def chromium() -> str:
    """Debian's chromium."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is needed (make test installs it: apt-get install chromium)"
    return found


class Page:
    """One page of a headless Chromium, over CDP."""

    def __init__(self, socket: websockets.ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.requests: list[str] = []
        self.console: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command; its result."""
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        await self._socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, 60)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, seconds: float = 30.0) -> Any:
        """The first truthy value of expression, polled for at most seconds."""
        deadline = time.monotonic() + seconds
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not true after {seconds}s: {expression}")
            await asyncio.sleep(0.1)

    async def click(self, selector: str) -> None:
        """Click the first element matching selector."""
        found = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return false; e.scrollIntoView(); e.click(); return true; })()"
        )
        assert found, f"nothing matches {selector}"

    async def type_into(self, selector: str, text: str) -> None:
        """Focus the element matching selector and type text as a user would."""
        found = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return false; e.focus(); return true; })()"
        )
        assert found, f"nothing matches {selector}"
        await self.call("Input.insertText", text=text)

    async def open(self, url: str) -> None:
        """Navigate to url and wait for its load event."""
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def csp_violations(self) -> list[str]:
        """The CSP violations the page met."""
        return list(await self.evaluate("window.__cspViolations || []"))

    async def _read(self) -> None:
        async for raw in self._socket:
            message = json.loads(raw)
            if "id" in message:
                future = self._waiting.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            elif message.get("method") == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])
            elif message.get("method") == "Runtime.consoleAPICalled":
                args = message["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", "")) for a in args))
            elif message.get("method") == "Log.entryAdded":
                entry = message["params"]["entry"]
                self.console.append(f"{entry.get('source')}: {entry.get('text')}")


def _devtools_port(profile: Path, seconds: float = 30.0) -> int:
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + seconds
    while not active.exists() or not active.read_text().strip():
        if time.monotonic() > deadline:
            raise TimeoutError("chromium did not open its debugging port")
        time.sleep(0.05)
    return int(active.read_text().splitlines()[0])


@contextlib.asynccontextmanager
async def browser_page() -> AsyncIterator[Page]:
    """A headless Chromium with one blank page, watching requests and CSP violations."""
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            *[
                chromium(),
                "--headless",
                "--no-sandbox",  # tests may run as root
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "--window-size=1280,2000",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = await asyncio.to_thread(_devtools_port, Path(profile))
            async with httpx.AsyncClient() as client:
                targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with websockets.connect(url, max_size=None) as socket:
                page = Page(socket)
                for domain in ("Page", "Runtime", "Network", "Log"):
                    await page.call(f"{domain}.enable")
                await page.call("Page.addScriptToEvaluateOnNewDocument", source=_WATCH_CSP)
                try:
                    yield page
                finally:
                    page._reader.cancel()
        finally:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
