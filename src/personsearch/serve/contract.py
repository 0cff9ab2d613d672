"""What the OpenAPI document promises beyond the route signatures, in one place: the error answers
of every route (one shape, ``ErrorOut``), the schema of uploaded image parts and of the box field,
and the multipart encoding that names the image media types.

The server checks exactly what is written here (``uploads.probe_image``, ``uploads.parse_box``), so
a client generated from the document, or a schema-driven tester, is never surprised.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Callable

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from .schemas import ErrorOut

IMAGE_TYPES = ("image/jpeg", "image/png", "image/bmp")
NUMBER = r"[0-9]+(?:\.[0-9]+)?"  # ASCII digits only: what JSON Schema (ECMA-262) and Python agree on
_COMMA = " *, *"
BOX_TEXT = rf" *{NUMBER}{_COMMA}{NUMBER}{_COMMA}{NUMBER}{_COMMA}{NUMBER} *"  # a box, as the server reads it
BOX_PATTERN = rf"^(?:{BOX_TEXT}| *)$"  # or blank: no box (the most confident detection is used)
MAX_CAMERA_CHARS = 200

ERRORS = {
    400: "the request's Host is not a name this server answers to (see --allow-host)",
    403: "a cross-origin write from a page of another site (see --allow-origin)",
    404: "person_id: no person with that id in the index, or their image can no longer be read",
    408: "the request body did not arrive in time (see --body-timeout)",
    409: "the index is busy (another process writes it, or it is being adapted: try again when that is done), "
         "or an adaptation cannot start or stop now (the message says why)",
    413: "the body is over the upload limit (--max-upload-mb), an image over the pixel limit "
         "(--max-image-mp), or more pixels in one request than the server's budget",
    415: "a file that is empty, not an image, or not decodable as one",
    422: "a field is missing or invalid (the message starts with its name), an image under 8x8 pixels, "
         "a box outside the image, or no person found in the query image",
    503: "the server is busy decoding other images: try again shortly",
    507: "the index could not be written (disk full?)",
}
ALWAYS = (400,)  # any route, whatever it is asked
UPLOAD = (403, 408, 413, 415, 422, 503)  # any POST with images

IMAGE_HELP = ("a JPEG, PNG or BMP image of at least 8x8 pixels, at most the server's --max-image-mp megapixels "
              "and --max-upload-mb for the whole request (GET /api/stats: max_image_pixels, max_upload_bytes)")
IMAGE_PART: dict[str, Any] = {"format": "binary", "minLength": 1}
BOX_HELP = ("the query person's box 'x1,y1,x2,y2' in pixels of the image as shown (EXIF orientation applied): "
            "four non-negative numbers, x1 < x2 and y1 < y2, inside the image; empty or left out: the most "
            "confident detection is used")
BOX_FIELD: dict[str, Any] = {"pattern": BOX_PATTERN, "format": "box"}  # "box": an annotation clients may ignore


def _wire_bool(value: Any) -> Any:
    """Form fields and query parameters declared boolean are spelled ``true`` or ``false`` (as JSON
    spells them); pydantic would also take 0, 1, yes, on..., which the document does not promise."""
    if isinstance(value, str) and value not in ("true", "false"):
        raise PydanticCustomError("bool_parsing", "Input should be true or false")
    return value


WireBool = Annotated[bool, BeforeValidator(_wire_bool)]

_DECIMAL = re.compile(r"-?[0-9]+")


def _wire_int(value: Any) -> Any:
    """Path, query and form integers are spelled as plain decimal digits (JSON's integer syntax);
    pydantic would also take ``+0.0``, ``1e3`` or `` 7 ``, which the document does not promise."""
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        raise PydanticCustomError("int_parsing", "Input should be an integer written in decimal digits")
    return value


DECIMAL_INT = BeforeValidator(_wire_int)  # the last item of an ``Annotated[int, Query(...), ...]``


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entry of a route for these error statuses, each with the ``ErrorOut`` body."""
    return {code: {"model": ErrorOut, "description": ERRORS[code]} for code in sorted(codes)}


def image_encoding(*fields: str) -> dict[str, Any]:
    """``openapi_extra`` naming the media types of the multipart image parts ``fields``."""
    encoding = {field: {"contentType": ", ".join(IMAGE_TYPES)} for field in fields}
    return {"requestBody": {"content": {"multipart/form-data": {"encoding": encoding}}}}


def closed_forms(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """Wrap ``app.openapi``: every form body is declared closed (``additionalProperties: false``), as
    the routes refuse fields they do not declare (``routes.checked_form``)."""

    def openapi() -> dict[str, Any]:
        schema = build()
        for name, body in schema.get("components", {}).get("schemas", {}).items():
            if name.startswith("Body_"):
                body["additionalProperties"] = False
        return schema

    return openapi
