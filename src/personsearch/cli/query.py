"""`personsearch query --index INDEX --image q.jpg`: find a person in an index; table, JSON, HTML report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=Path, required=True, help="index folder (`personsearch index build`)")
    parser.add_argument("--image", type=Path, required=True, help="query image")
    parser.add_argument("--box", default=None, metavar="X1,Y1,X2,Y2",
                        help="the person in the query image (default: the highest-scoring detected person, "
                             "or the whole image if none is detected)")
    parser.add_argument("--top-k", type=int, default=10, metavar="K", help="hits to return (default 10)")
    parser.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking of the nearest candidates")
    parser.add_argument("--report", type=Path, default=None, metavar="OUT.html",
                        help="write a self-contained HTML page with each hit's frame and box")
    parser.add_argument("--json", action="store_true", help="print the hits as one JSON object instead of a table")


def _table(hits) -> str:
    lines = [f"{'rank':>4} {'similarity':>10} {'person':>7}  {'source':<28} {'frame':>6} {'time s':>8} "
             f"{'camera':<10} {'det':>5}  box"]
    for rank, hit in enumerate(hits, start=1):
        frame = "-" if hit.frame is None else str(hit.frame)
        time = "-" if hit.timestamp is None else f"{hit.timestamp:.2f}"
        box = ",".join(f"{v:.0f}" for v in hit.box)
        lines.append(f"{rank:>4} {hit.similarity:>10.4f} {hit.person_id:>7}  {Path(hit.source).name[-28:]:<28} "
                     f"{frame:>6} {time:>8} {hit.camera or '-':<10} {hit.det_score:>5.2f}  {box}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..index import EmptyIndexError, PersonIndex, parse_box, query_person
    from ..index.report import query_report_html
    from ..pipelines.images import load_rgb

    box = parse_box(args.box) if args.box is not None else None
    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}")
    index = PersonIndex.open(args.index)
    if len(index) == 0:
        raise EmptyIndexError(f"index {args.index} is empty: add images or a video first")
    rgb = load_rgb(args.image).copy()  # writable: torch warns about read-only arrays
    person = query_person(index.load_searcher(), rgb, box, name=str(args.image))
    hits = index.search(person.embedding, top_k=args.top_k, rerank=args.rerank)
    score = "" if person.det_score is None else f" (detection score {person.det_score:.2f})"
    note = f"{person.how}{score}"
    if args.json:
        print(json.dumps({"index": str(args.index), "image": str(args.image), "query_box": list(person.box),
                          "query": note, "rerank": args.rerank, "hits": [h.to_dict() for h in hits]}))
    else:
        print(f"query: {args.image}, {note}, box [{', '.join(f'{v:.0f}' for v in person.box)}]")
        print(_table(hits))
    if args.report is not None:
        query_report_html(args.report, rgb, person.box, note, hits, lambda h: index.frame_image(h.person_id),
                          title=f"{args.image.name} in {args.index}")
        if not args.json:
            print(f"wrote {args.report}")
    index.close()
    return 0
