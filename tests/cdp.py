"""A small Chrome DevTools Protocol client over `websockets`: headless Chromium driven by tests
(open a page, evaluate script, wait for a condition, click and type, emulate a width or colour
scheme, take a screenshot; every request a page makes and every Content-Security-Policy
violation it meets are recorded) without a browser-automation library."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import websockets

# Recorded in every page before any of its scripts run (CDP's scripts are exempt from its CSP).
_WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


class CdpError(RuntimeError):
    """A DevTools command failed, or a page script threw."""


def chromium_binary() -> str:
    """Debian's chromium (make test installs it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("Debian's chromium is needed: apt-get install chromium")
    return found


class Browser:
    """One headless Chromium process and its DevTools connection (flattened sessions)."""

    def __init__(self, process: asyncio.subprocess.Process, socket: Any) -> None:
        self._process = process
        self._socket = socket
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self._socket:
            message = orjson.loads(raw)
            waiter = self._pending.pop(message["id"], None) if "id" in message else None
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
            elif "method" in message:
                self.events.append(message)

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Run one DevTools command; its result."""
        command_id = next(self._ids)
        command: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        waiter = asyncio.get_running_loop().create_future()
        self._pending[command_id] = waiter
        await self._socket.send(orjson.dumps(command).decode())
        answer = await asyncio.wait_for(waiter, 60)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def new_page(self, width: int = 1440, height: int = 900) -> Page:
        """A fresh tab, attached, with its domains enabled and en-US number formats."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        for domain in ("Page", "Runtime", "Network", "Log"):
            await page.send(f"{domain}.enable")
        await page.send("Page.addScriptToEvaluateOnNewDocument", {"source": _WATCH_CSP})
        await page.send("Emulation.setLocaleOverride", {"locale": "en-US"})
        await page.resize(width, height)
        return page

    def log_entries(self, session: str) -> list[dict[str, Any]]:
        """The console and browser log entries of a page so far."""
        return [
            e["params"]["entry"]
            for e in self.events
            if e.get("sessionId") == session and e["method"] == "Log.entryAdded"
        ] + [
            {"level": e["params"]["type"], "text": str(e["params"].get("args"))}
            for e in self.events
            if e.get("sessionId") == session and e["method"] == "Runtime.consoleAPICalled"
        ]

    def requests(self, session: str) -> list[str]:
        """The URLs a page has requested so far."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("sessionId") == session and e["method"] == "Network.requestWillBeSent"
        ]

    async def close(self) -> None:
        """Close the connection and stop the process."""
        self._reader.cancel()
        with contextlib.suppress(Exception):
            await self._socket.close()
        self._process.terminate()
        try:
            await asyncio.wait_for(self._process.wait(), 15)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
        # Its helper processes (its own session) may outlive it a moment: end them too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)


class Page:
    """One tab of the browser."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A DevTools command for this tab."""
        return await self.browser.send(method, params, self.session)

    async def resize(self, width: int, height: int = 900) -> None:
        """Emulate a viewport width x height (a phone's touch and scale below 500 px)."""
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500},
        )

    async def color_scheme(self, scheme: str) -> None:
        """Emulate prefers-color-scheme: light or dark."""
        await self.send(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )

    async def goto(self, url: str) -> None:
        """Navigate and wait until the document (and its deferred scripts) has loaded."""
        await self.send("Page.navigate", {"url": url})
        await self.wait_for("document.readyState === 'complete'")

    async def eval(self, expression: str) -> Any:
        """The JSON value of a script expression (promises awaited); CdpError if it throws."""
        answer = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise CdpError(details.get("exception", {}).get("description") or str(details))
        return answer["result"].get("value")

    async def wait_for(self, expression: str, seconds: float = 30.0) -> Any:
        """Poll a script expression until it is truthy; its value. TimeoutError after seconds."""
        deadline = time.monotonic() + seconds
        while True:
            with contextlib.suppress(CdpError):
                value = await self.eval(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {seconds} s: {expression}")
            await asyncio.sleep(0.05)

    async def click(self, selector: str) -> None:
        """Click the first element matching selector (scrolled into view)."""
        found = await self.eval(
            f"(() => {{ const e = document.querySelector({orjson.dumps(selector).decode()});"
            " if (!e) return false; e.scrollIntoView(); e.click(); return true; })()"
        )
        assert found, f"nothing matches {selector}"

    async def type_into(self, selector: str, text: str) -> None:
        """Focus the element matching selector and type text as a user would."""
        found = await self.eval(
            f"(() => {{ const e = document.querySelector({orjson.dumps(selector).decode()});"
            " if (!e) return false; e.focus(); return true; })()"
        )
        assert found, f"nothing matches {selector}"
        await self.send("Input.insertText", {"text": text})

    @property
    def requests(self) -> list[str]:
        """The URLs this page has requested so far."""
        return self.browser.requests(self.session)

    async def csp_violations(self) -> list[str]:
        """The Content-Security-Policy violations the page met."""
        return list(await self.eval("window.__cspViolations || []"))

    async def hover(self, x: float, y: float) -> None:
        """Move the mouse to (x, y) of the viewport."""
        await self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    async def press(self, key: str) -> None:
        """Press and release a key (ArrowLeft, Enter, …) on whatever has the focus."""
        codes = {"Enter": 13, "ArrowLeft": 37, "ArrowRight": 39, "Home": 36, "End": 35}
        base = {"key": key, "code": key, "windowsVirtualKeyCode": codes.get(key, 0)}
        if key == "Enter":
            base["text"] = "\r"
        await self.send("Input.dispatchKeyEvent", {"type": "keyDown", **base})
        await self.send("Input.dispatchKeyEvent", {"type": "keyUp", **base})

    async def screenshot(self, path: Path) -> None:
        """A PNG of the whole page (beyond the viewport) at path."""
        width, height = await self.eval(
            "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
        )
        shot = await self.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": width,
                    "height": height,
                    "scale": 1,
                },
            },
        )
        await asyncio.to_thread(_save, path, base64.b64decode(shot["data"]))


def _save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def _devtools_address(profile: Path, process: asyncio.subprocess.Process) -> str:
    """The browser's DevTools WebSocket, from the DevToolsActivePort file Chromium writes."""
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}")
        lines = port_file.read_text().split() if port_file.exists() else []
        if len(lines) >= 2:
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        await asyncio.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium for the duration of the block."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = await asyncio.create_subprocess_exec(
            *[
                chromium_binary(),
                "--headless",
                "--no-sandbox",  # tests may run as root
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--lang=en-US",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            address = await _devtools_address(Path(profile), process)
            socket = await websockets.connect(address, max_size=None)
            opened = Browser(process, socket)
        except BaseException:
            process.kill()
            await process.wait()
            raise
        try:
            yield opened
        finally:
            await opened.close()
