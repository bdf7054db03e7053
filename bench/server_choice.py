#!/usr/bin/env python3
"""Why ``serve`` runs on its own server (asyncio + httptools): throughput and behaviour under slow clients.

    pip install --target /tmp/srvbench waitress gunicorn cheroot granian uvloop   # candidates we do not ship
    python3 bench/server_choice.py --extra-path /tmp/srvbench

For each installed server, one process serves a trivial WSGI app on 127.0.0.1: cfsslpy's own server
(:mod:`cfsslpy.api.server`, the app on the event-loop thread as serve runs signing, and in a pool thread as
it runs blocking work), the same with uvloop as the event loop, waitress (the previous choice), gunicorn
with gthread workers, cheroot and granian (Rust, WSGI interface). Threaded servers get 8 threads. Two
measurements, same client for all:

1. throughput: POST requests per second over 8 keep-alive connections, measured with ``wrk -t1 -c8`` (the
   Python client of ``--python-client`` saturates long before the faster servers do);
2. slow clients: 32 connections send request headers at 1 byte per second; meanwhile one normal request is
   timed (8 s limit). A server that gives each connection a thread stalls here; one that buffers requests in
   an event loop does not.

Servers that are not importable are reported as skipped.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

APP = '''
def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    body = b'{"success":true}'
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
'''

OURS = (
    "import sys; from app import app; from cfsslpy.api import server as srv; {prelude}"
    "listener = srv.bind('127.0.0.1', int(sys.argv[1])); "
    "srv.Worker(app, srv.ServerOptions(threads=8, inline={inline}), listener, None, multiprocess=False).run()"
)
UVLOOP = "import asyncio, uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy()); "

LAUNCH = {
    "cfsslpy, on the loop": ("httptools", ["-c", OURS.format(prelude="", inline="lambda m, p: True")]),
    "cfsslpy, 8 pool threads": ("httptools", ["-c", OURS.format(prelude="", inline="None")]),
    "cfsslpy + uvloop, on the loop": ("uvloop", ["-c", OURS.format(prelude=UVLOOP, inline="lambda m, p: True")]),
    "granian wsgi, 1 worker": (
        "granian",
        ["-c", "import sys; from granian import Granian; Granian('app:app', address='127.0.0.1', port=int(sys.argv[1]), "
         "interface='wsgi', workers=1, log_enabled=False).serve()"],
    ),  # fmt: skip
    "waitress 8 threads": (
        "waitress",
        ["-c", "import sys; from app import app; from waitress import serve; serve(app, host='127.0.0.1', port=int(sys.argv[1]), threads=8)"],
    ),
    "gunicorn gthread 8 threads": (
        "gunicorn",
        ["-c", "import sys; from gunicorn.app.wsgiapp import run; sys.argv = ['gunicorn', '-k', 'gthread', '--threads', '8', '-w', '1', "
         "'-b', '127.0.0.1:' + sys.argv[1], '--log-level', 'error', 'app:app']; run()"],
    ),  # fmt: skip
    "cheroot 8 threads": (
        "cheroot",
        ["-c", "import sys; from app import app; from cheroot.wsgi import Server; Server(('127.0.0.1', int(sys.argv[1])), app, numthreads=8).start()"],
    ),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def wrk_throughput(port: int, connections: int, seconds: float, script_dir: str) -> float:
    script = Path(script_dir, "post.lua")
    script.write_text('wrk.method = "POST"\nwrk.body = \'{"certificate_request":"x"}\'\nwrk.headers["Content-Type"] = "application/json"\n')
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = next(line for line in out.splitlines() if line.startswith("Requests/sec:"))
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError("wrk saw errors:\n" + out)
    return float(rate.split()[1])


def throughput(port: int, concurrency: int, seconds: float) -> float:
    stop = time.monotonic() + seconds
    counts = [0] * concurrency

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            while time.monotonic() < stop:
                conn.request("POST", "/", body=b'{"certificate_request":"x"}', headers={"Content-Type": "application/json"})
                conn.getresponse().read()
                counts[i] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - start)


def latency_under_slow_clients(port: int, slow: int, limit: float) -> float | None:
    """Seconds for one normal request while ``slow`` clients dribble headers; None if it took over ``limit``."""
    stop = threading.Event()
    header = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Padding: " + b"a" * 64

    def dribble() -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                for byte in header:
                    if stop.is_set():
                        return
                    sock.sendall(bytes([byte]))
                    stop.wait(1.0)
        except OSError:
            pass

    threads = [threading.Thread(target=dribble, daemon=True) for _ in range(slow)]
    for t in threads:
        t.start()
    time.sleep(1.5)  # every slow connection is open and has sent something
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=limit)
        start = time.monotonic()
        try:
            conn.request("POST", "/", body=b"{}")
            conn.getresponse().read()
            return time.monotonic() - start
        except OSError:
            return None
        finally:
            conn.close()
    finally:
        stop.set()
        for t in threads:
            t.join(3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--extra-path", default="", help="directory with gunicorn/cheroot installed (pip install --target)")
    parser.add_argument("--seconds", type=float, default=3.0, help="throughput measurement per server")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per server (median)")
    parser.add_argument("--slow", type=int, default=32, help="slow-header clients")
    parser.add_argument("--limit", type=float, default=8.0, help="how long the normal request may take")
    parser.add_argument("--python-client", action="store_true", help="measure throughput with 16 Python threads, not wrk")
    args = parser.parse_args()
    use_wrk = not args.python_client and shutil.which("wrk") is not None
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "app.py").write_text(APP)
        root = str(Path(__file__).resolve().parents[1])  # cfsslpy from this tree
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (tmp, root, args.extra_path) if p)}
        client = "wrk -t1 -c8" if use_wrk else "16 Python threads"
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; client {client}, keep-alive; {args.slow} slow-header clients\n")
        print(f"{'server':<28} {'req/s':>8}   normal request under slow clients")
        for name, (module, argv) in LAUNCH.items():
            probe = subprocess.run([sys.executable, "-c", f"import {module}"], env=env, capture_output=True)
            if probe.returncode != 0:
                print(f"{name:<28} {'-':>8}   skipped: {module} is not installed (see --extra-path)")
                continue
            port = free_port()
            proc = subprocess.Popen([sys.executable, *argv, str(port)], env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_for(port)
                if use_wrk:
                    wrk_throughput(port, 8, 1, tmp)  # warm-up
                    rate = statistics.median(wrk_throughput(port, 8, args.seconds, tmp) for _ in range(args.rounds))
                else:
                    throughput(port, 16, 0.5)  # warm-up
                    rate = statistics.median(throughput(port, 16, args.seconds) for _ in range(args.rounds))
                latency = latency_under_slow_clients(port, args.slow, args.limit)
                verdict = f"no answer within {args.limit:.0f} s" if latency is None else f"{latency * 1000:.1f} ms"
                print(f"{name:<28} {rate:8.0f}   {verdict}")
            finally:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
