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
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..serve import create_app

    if args.max_upload_mb <= 0:
        raise ValueError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    print(f"loading the index {args.index} and its model ...", flush=True)
    app = create_app(args.index, max_upload_bytes=int(args.max_upload_mb * 2**20))
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"personsearch: web page http://{host}:{args.port}/ , API docs http://{host}:{args.port}/docs", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
