"""An asyncio event loop running in a daemon thread of its own: the world's,
and each mail store's with ``imap_threads``."""

from __future__ import annotations

import asyncio
import threading


def start(name: str) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    """A new loop, running in a new thread named ``name`` by the time this returns."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    ready.wait()
    return loop, thread


def stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread, timeout: float) -> None:
    """Stop the loop and wait for its thread; a loop whose thread is still
    running after ``timeout`` is left open rather than closed under it."""
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=timeout)
    if not thread.is_alive():
        loop.close()
