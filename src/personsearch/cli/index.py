"""`personsearch index build|add|stats`: a searchable gallery of the people in images and videos."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

LOG = logging.getLogger("personsearch.cli")

INDEX_TYPES = ("auto", "exact", "hnsw", "ivf", "ivfsq")  # personsearch.index.INDEX_TYPES, without importing FAISS


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=Path, nargs="+", default=[], metavar="DIR",
                        help="folders of images (searched recursively)")
    parser.add_argument("--video", type=Path, nargs="+", default=[], metavar="FILE",
                        help="video files (any format OpenCV reads)")
    parser.add_argument("--every", type=int, default=1, metavar="N", help="video: index every N-th frame (default 1)")
    parser.add_argument("--start", type=int, default=0, metavar="F", help="video: first frame to index (default 0)")
    parser.add_argument("--stop", type=int, default=None, metavar="F", help="video: stop before this frame")
    parser.add_argument("--camera", default=None, metavar="NAME", help="camera name recorded with these people")
    parser.add_argument("--commit-every", type=int, default=32, metavar="K",
                        help="commit progress every K images/frames (a killed run loses at most K); with "
                             "several inputs or workers, each unit is committed whole instead")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="index with N worker processes (default 1); inputs are cut into units of frames "
                             "or files, committed in a fixed order: the same ids whatever N")
    parser.add_argument("--engine", choices=("processes", "ray"), default="processes",
                        help="where workers run: local processes (default) or Ray tasks (pip install "
                             "'personsearch[ray]'; see --ray-address)")
    parser.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                        help="a running Ray cluster (default: a local instance with one worker per core)")
    parser.add_argument("--json", action="store_true", help="print the outcome as one JSON object")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="index_command", metavar="COMMAND")
    sub.required = True
    build = sub.add_parser("build", help="index images or a video into a new index (or continue a killed build)",
                           description="Detect and embed every person; rerun the same command to continue a killed build.")
    build.add_argument("--model", default="pretrained",
                       help="'pretrained' (default: NanoDet + zero-shot ImageNet MobileNetV2; pretrained@OPTIONS, see "
                            "the README), a training run folder "
                            "or checkpoint, or py:MODULE:FACTORY")
    build.add_argument("--index", type=Path, required=True, metavar="INDEX", help="index folder to create")
    build.add_argument("--index-type", choices=INDEX_TYPES, default="auto",
                       help="exact (brute force), hnsw or ivf (approximate), ivfsq (approximate, 8-bit vectors: "
                            "4x less memory, for 10M+ people); auto: exact while small, then hnsw, "
                            "then ivfsq above 2M 128-d people (default)")
    build.add_argument("--score-threshold", type=float, default=0.5, help="drop weaker detections (default 0.5)")
    _add_inputs(build)
    add = sub.add_parser("add", help="add images or a video to an index (files already indexed are skipped)")
    add.add_argument("--index", type=Path, required=True, metavar="INDEX", help="index folder to extend")
    _add_inputs(add)
    stats = sub.add_parser("stats", help="print what an index holds")
    stats.add_argument("--index", type=Path, required=True, metavar="INDEX", help="index folder")
    stats.add_argument("--json", action="store_true", help="print one JSON object")


def _open_or_create(args: argparse.Namespace):
    from ..index import PersonIndex, embedding_dim, load_model, model_spec
    from ..index.metadata import DB_NAME

    spec = model_spec(args.model)
    if (args.index / DB_NAME).exists():
        index = PersonIndex.open(args.index)
        if index.model != spec:
            raise ValueError(f"{args.index} holds an index built with model {index.model}, not {spec}: "
                             f"choose another --index (or `personsearch index add --index {args.index} ...`)")
        LOG.info("%s: index exists (%d people): continuing, files already indexed are skipped", args.index, len(index))
        return index, index.load_searcher()
    searcher = load_model(spec, args.score_threshold)
    index = PersonIndex.create(args.index, model=spec, dim=embedding_dim(searcher), index_type=args.index_type,
                               score_threshold=args.score_threshold)
    return index, searcher


def _inputs(args: argparse.Namespace) -> tuple[list[Path], list[Path]]:
    """(videos, images) to index, checked before any index is created."""
    from ..data.folder import list_images

    if not args.images and not args.video:
        raise ValueError("give --images DIR... and/or --video FILE...")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    for video in args.video:
        if not video.is_file():
            raise FileNotFoundError(f"{video}: no such video file")
    return list(args.video), [path for folder in args.images for path in list_images(folder)]


def _engine(args: argparse.Namespace, index, searcher):
    from ..index import parallel

    spec, threshold = index.model, index.meta.get("score_threshold", 0.5)
    if args.engine == "ray":
        return parallel.RayEngine(spec, threshold, index.dim, address=args.ray_address)
    if args.workers == 1:
        return parallel.InlineEngine(spec, threshold, index.dim, searcher)
    return parallel.ProcessEngine(spec, threshold, index.dim, workers=args.workers)


def _index_inputs(index, searcher, videos: list[Path], images: list[Path], args: argparse.Namespace) -> int:
    progress = True  # the CLI's -q turns every progress report off
    unit = "frames" if videos and not images else "images" if images and not videos else "images and frames"
    if searcher is None or args.workers > 1 or args.engine == "ray" or len(videos) + bool(images) > 1:
        from ..index.parallel import add_parallel

        report = add_parallel(index, _engine(args, index, searcher), videos, images, every=args.every, start=args.start,
                              stop=args.stop, camera=args.camera, progress=progress)
    elif images:
        report = index.add_images(searcher, images, camera=args.camera, progress=progress,
                                  commit_every=args.commit_every)
    else:
        report = index.add_video(searcher, videos[0], every=args.every, camera=args.camera, progress=progress,
                                 start=args.start, stop=args.stop, commit_every=args.commit_every)
    if args.json:
        print(json.dumps({"index": str(args.index), "unit": unit, "indexed": report.images, "people": report.people,
                          "already": report.already, "skipped": [[str(p), r] for p, r in report.skipped],
                          "total_people": len(index), "search": index.index_type}))
        return 0
    print(f"indexed {report.images} {unit} ({report.people} people); {report.already} {unit} already indexed; "
          f"{len(report.skipped)} skipped; the index holds {len(index)} people ({index.index_type} search)")
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from ..index import PersonIndex

    stats = PersonIndex.open(args.index).stats()
    if args.json:
        print(json.dumps(stats))
        return 0
    for key, value in stats.items():
        if key != "skipped_files":
            size = f" ({value / 2**20:.1f} MB)" if key.endswith("bytes") else ""
            print(f"{key:>21}: {value}{size}")
    for path, reason in stats["skipped_files"]:
        print(f"  skipped {path}: {reason}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.index_command == "stats":
        return _stats(args)
    if args.images and not args.video and (args.every != 1 or args.start or args.stop is not None):
        raise ValueError("--every, --start and --stop apply to --video only")
    if args.every < 1 or args.start < 0 or args.commit_every < 1:
        raise ValueError("--every and --commit-every must be >= 1 and --start >= 0")
    videos, images = _inputs(args)
    if args.index_command == "build":
        index, searcher = _open_or_create(args)
    else:
        from ..index import PersonIndex

        index = PersonIndex.open(args.index)
        searcher = None
    with index:
        parallel = args.workers > 1 or args.engine == "ray" or len(videos) + bool(images) > 1
        if searcher is None and not parallel:
            searcher = index.load_searcher()
        return _index_inputs(index, searcher, videos, images, args)
