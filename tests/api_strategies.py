"""What a schema-driven client needs to know beyond JSON Schema to send requests the server accepts:
what an image of a person looks like, and a box that lies in any such image.

The OpenAPI document marks file parts ``format: binary`` (with their media types in the multipart
``encoding``) and the box field ``format: box`` (its syntax is the ``pattern``); schemathesis draws
those values from the strategies registered here. The images are JPEG, PNG or BMP scenes holding a
"person" the serve tests' fake searcher finds (``serve_fakes``), at least ``MIN_SIDE`` pixels a
side, so every box drawn here overlaps every image drawn here.

``SCHEMATHESIS_HOOKS=api_strategies`` (with tests/ on PYTHONPATH) loads them into the schemathesis
command line, with a workaround for one of its false positives (``schemathesis_workarounds``).
"""

from __future__ import annotations

from hypothesis import strategies as st

from serve_fakes import encode, scene

MIN_SIDE = 16  # the images' smallest side: every drawn box starts inside it
MAX_SIDE = 64
FORMATS = ("JPEG", "PNG", "BMP")  # the document's image media types


def images(fmt: str) -> st.SearchStrategy[bytes]:
    """Encoded scenes of random size and colours, each holding one person."""
    colour = st.tuples(*[st.integers(0, 255)] * 3)
    side = st.integers(MIN_SIDE, MAX_SIDE)
    return st.builds(lambda left, right, width, height: encode(scene(left, right, size=(width, height)), fmt),
                     colour, colour, side, side)


def _number(tenths: int) -> str:
    return str(tenths // 10) if tenths % 10 == 0 else f"{tenths / 10:.1f}"


@st.composite
def boxes(draw) -> str:
    """'x1,y1,x2,y2' (as the document's pattern spells it) with area, its top-left corner in every image."""
    x1, y1 = (draw(st.integers(0, 10 * (MIN_SIDE - 1))) for _ in range(2))
    x2, y2 = (corner + draw(st.integers(1, 10 * MAX_SIDE)) for corner in (x1, y1))
    comma = draw(st.sampled_from([",", ", ", " , "]))
    return comma.join(_number(v) for v in (x1, y1, x2, y2))


def register() -> None:
    """Tell schemathesis how to draw file parts (every file this API takes is an image) and boxes."""
    import schemathesis

    import schemathesis_workarounds

    schemathesis_workarounds.apply()
    schemathesis.openapi.format("binary", st.sampled_from(FORMATS).flatmap(images))
    schemathesis.openapi.format("box", boxes())


try:  # loaded as SCHEMATHESIS_HOOKS by the command line
    register()
except ImportError:  # schemathesis is a dev dependency: importing this module never needs it
    pass
