"""A fast loopback webhook receiver, in a process of its own: answers 200 and notes arrivals.

    python bench/receiver.py --port-file PATH --out PATH

Binds 127.0.0.1 on a port the kernel picks and writes it to ``--port-file``. For each POST it
reads the body, answers ``200 ok`` at once and notes ``(webhook-id, wall-clock time)``; on
SIGTERM it writes one ``id<TAB>time`` line per arrival to ``--out`` and exits. It checks no
signature (the benchmarks measure the sender; the tests check the signatures), so it costs the
sender as little as a receiver can.
"""

import argparse
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

arrivals: list[tuple[str, float]] = []
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as production HTTP servers set it (nginx, gunicorn, uvicorn): the answer
    # goes out as two writes (head, then body), and on a kept-alive connection Nagle would hold
    # the body until the sender's delayed ACK, about 40 ms later.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        now = time.time()
        with lock:
            arrivals.append((self.headers.get("webhook-id", ""), now))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    server = Server(("127.0.0.1", 0), Handler)

    def stop(*_) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    Path(args.port_file).write_text(str(server.server_address[1]))
    server.serve_forever(poll_interval=0.2)
    with lock:
        lines = [f"{event_id}\t{at:.6f}\n" for event_id, at in arrivals]
    Path(args.out).write_text("".join(lines))
    sys.exit(0)


if __name__ == "__main__":
    main()
