"""The gallery index: people detected in images and videos, searchable by embedding.

    from personsearch.index import PersonIndex
    idx = PersonIndex.create("gallery", model="pretrained", dim=1280)
    searcher = idx.load_searcher()
    idx.add_video(searcher, "cam1.mp4", every=5, camera="cam1")
    hits = idx.search(searcher.extract_query(image, [box])[0], top_k=10)

FAISS holds the vectors (exact or approximate by gallery size), SQLite the metadata and the truth.
"""

from .model import embedding_dim, load_model, model_spec
from .query import QueryPerson, parse_box, query_person
from .records import (AddReport, DimensionError, EmptyIndexError, IndexCorruptError, IndexFrame, IndexHit,
                      IndexWriteError)
from .store import PersonIndex
from .vectors import INDEX_TYPES, VectorSettings

__all__ = ["AddReport", "DimensionError", "EmptyIndexError", "INDEX_TYPES", "IndexCorruptError", "IndexFrame",
           "IndexHit", "IndexWriteError",
           "PersonIndex", "QueryPerson", "VectorSettings", "embedding_dim", "load_model", "model_spec",
           "parse_box", "query_person"]
