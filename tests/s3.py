"""A real S3-protocol server on loopback for the tests, and a proxy that can cut it off.

:class:`S3Server` runs moto's standalone server (``python -m moto.server``, from
the ``moto[server]`` package) as a child process on a free loopback port; the
session fixture in ``tests/conftest.py`` starts it once and stops it by its PID.
Buckets are created and inspected over plain HTTP (moto accepts unsigned
requests), so the service's own client is the only S3 client under test.

:class:`CutOffProxy` forwards TCP to the server until told to refuse: then it
drops the connections it carries and closes every new one at once, which is
what an unreachable object store looks like to a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ntm-test-key",
    "AWS_SECRET_ACCESS_KEY": "ntm-test-secret",  # moto's server accepts any
    "AWS_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class S3Server:
    """moto's S3 server as a child process on 127.0.0.1, stopped by PID."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        env = {**os.environ, **CREDENTIALS}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto's S3 server exited with {self.process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.endpoint + "/", timeout=1).status_code < 500:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto's S3 server did not answer within 30 s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def new_bucket(self) -> str:
        name = f"ntm-{uuid.uuid4().hex[:16]}"
        response = httpx.put(f"{self.endpoint}/{name}", timeout=10)
        response.raise_for_status()
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key of ``bucket`` under ``prefix``, sorted."""
        keys: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"list-type": "2", "prefix": prefix}
            if token:
                params["continuation-token"] = token
            text = httpx.get(f"{self.endpoint}/{bucket}", params=params, timeout=10).text
            keys += re.findall(r"<Key>([^<]*)</Key>", text)
            found = re.search(r"<NextContinuationToken>([^<]*)</NextContinuationToken>", text)
            if not found:
                return sorted(keys)
            token = found.group(1)

    def multipart_uploads(self, bucket: str) -> list[str]:
        """Keys of the multipart uploads begun and neither completed nor aborted."""
        text = httpx.get(f"{self.endpoint}/{bucket}?uploads", timeout=10).text
        return re.findall(r"<Key>([^<]*)</Key>", text)

    def get(self, bucket: str, key: str) -> bytes:
        response = httpx.get(f"{self.endpoint}/{bucket}/{key}", timeout=30)
        response.raise_for_status()
        return response.content


class CutOffProxy:
    """TCP from a loopback port to the S3 server, cut off on demand (``refusing``).

    Runs in a thread of its own so that it serves whatever event loop, thread or
    process the client runs in; ``refuse()`` and ``restore()`` may be called from
    any thread (a processor's, say).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.refusing = False
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._thread: Any = None

    def __enter__(self) -> CutOffProxy:
        import threading

        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._accept, "127.0.0.1", self.port)
            )
            ready.set()
            try:
                self._loop.run_forever()
                pending = asyncio.all_tasks(self._loop)
                for task in pending:
                    task.cancel()
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self._loop.run_until_complete(self._server.wait_closed())
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="s3-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        def close() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(close)
        self._thread.join(10)

    def refuse(self) -> None:
        """From now on the store is unreachable: carried connections drop, new ones close."""
        self.refusing = True

        def drop() -> None:
            for writer in list(self._writers):
                writer.close()

        self._loop.call_soon_threadsafe(drop)

    def restore(self) -> None:
        self.refusing = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(256 * 1024):
                    if self.refusing:
                        break
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@contextlib.contextmanager
def credentials() -> Iterator[None]:
    """The test credentials in the environment (obstore reads them the standard way)."""
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
