"""`personsearch serve --index INDEX`: the REST API and the web page over a gallery index."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=Path, required=True, help="index folder (from `personsearch index build`)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--max-upload-mb", type=float, default=20.0,
                        help="largest request body accepted, in MB (default 20); larger uploads get a 413")
    parser.add_argument("--max-image-mp", type=float, default=16.8, metavar="MP",
                        help="largest image accepted, in megapixels of its declared size (default 16.8: 4096x4096); "
                             "larger images get a 413 before they are decoded")
    parser.add_argument("--pixel-budget-mp", type=float, default=33.6, metavar="MP",
                        help="megapixels the server decodes at once over all requests (default 33.6: two "
                             "4096x4096 images); requests wait for their share, then get a 503. With the pretrained "
                             "model image work needs about 42 bytes per pixel of this budget")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="also serve requests whose Host header is NAME (repeatable; default: localhost, "
                             "127.0.0.1, ::1 and the --host address; '*' serves any name)")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="also accept POSTs from web pages of ORIGIN, e.g. http://myapp.example:3000 "
                             "(repeatable; default: only the server's own pages; '*' any)")
    parser.add_argument("--body-timeout", type=float, default=60.0, metavar="S",
                        help="a request body not received within S seconds gets a 408 (default 60)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..serve import create_app

    if args.max_upload_mb <= 0:
        raise ValueError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    if args.max_image_mp <= 0 or args.pixel_budget_mp < args.max_image_mp or args.body_timeout <= 0:
        raise ValueError("need --max-image-mp > 0, --pixel-budget-mp >= --max-image-mp and --body-timeout > 0")
    hosts = ["localhost", "127.0.0.1", "::1", *args.allow_host]
    if args.host not in ("0.0.0.0", "::"):
        hosts.append(args.host)
    print(f"loading the index {args.index} and its model ...", flush=True)
    app = create_app(args.index, max_upload_bytes=int(args.max_upload_mb * 2**20),
                     max_image_pixels=int(args.max_image_mp * 1e6), pixel_budget=int(args.pixel_budget_mp * 1e6),
                     allowed_hosts=hosts, allowed_origins=args.allow_origin, body_timeout_s=args.body_timeout)
    if args.host in ("0.0.0.0", "::") and not args.allow_host:
        print("note: requests are served only for the Host names localhost, 127.0.0.1 and ::1; add "
              "--allow-host NAME for the name or address other machines use", flush=True)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"personsearch: web page http://{host}:{args.port}/ , API docs http://{host}:{args.port}/docs", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
