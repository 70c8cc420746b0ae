"""A loopback TCP forwarder the tests can stop and start: stopping it is, for the client, exactly a server that
went away (connections reset, new ones refused), without losing the real server's state.

The forwarding runs in a process of its own (``python -m tests.tcp_proxy``): in the test's process its threads
would wait for the GIL behind the pipeline the test runs, and every round trip to PostgreSQL or Redis would
wait with them. Stopping kills that process, so the kernel closes its listener and every connection at once.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


class TcpProxy:
    def __init__(self, upstream: tuple[str, int], port: int = 0):
        self.upstream = upstream
        self.port = port
        self._proc: subprocess.Popen | None = None

    def start(self) -> TcpProxy:
        host, upstream_port = self.upstream
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.tcp_proxy", str(self.port), host, str(upstream_port)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        line = self._proc.stdout.readline()  # the port it listens on, once it does
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the TCP proxy to {host}:{upstream_port} did not start")
        self.port = int(line)
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=10)
            self._proc.stdout.close()
            self._proc = None


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _serve(port: int, upstream: tuple[str, int]) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for attempt in range(50):  # the previous proxy on this port may still be closing
        try:
            listener.bind(("127.0.0.1", port))
            break
        except OSError:
            if attempt == 49:
                raise
            time.sleep(0.1)
    listener.listen(128)
    print(listener.getsockname()[1], flush=True)
    while True:
        client, _ = listener.accept()
        try:
            server = socket.create_connection(upstream, timeout=5)
            server.settimeout(None)
        except OSError:
            client.close()
            continue
        for a, b in ((client, server), (server, client)):
            a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), (sys.argv[2], int(sys.argv[3])))
