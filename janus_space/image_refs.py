"""Images an agent refers to by id: a bounded shelf both Janus tools share, and reference lookup.

An agent built on a text-only model cannot pass pictures around, only words. The image
generator puts what it draws on an :class:`ImageShelf` and answers with the ids; the
image-question tool takes an id (or an http(s) URL, a ``data:`` URL, or a file path inside a
folder the application allowed) and asks Janus about that picture. Applications add the
user's own pictures with :meth:`ImageShelf.add` and tell the agent their ids.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .errors import InvalidInputError
from .media import ImageData, is_url, load_image

__all__ = ["DEFAULT_SHELF_SIZE", "ImageReferenceError", "ImageShelf", "resolve_image_reference"]

DEFAULT_SHELF_SIZE = 64
"""Images a shelf keeps; adding more forgets the oldest (an agent loop must not grow memory)."""
_ID = re.compile(r"img-(\d+)")
_QUOTES = "'\"`<> \t\r\n"


class ImageReferenceError(InvalidInputError):
    """An image reference that names no image this tool may read (raised before any request)."""


Stored = ImageData | str  # image bytes, or an http(s) URL the client fetches when asked


class ImageShelf:
    """Images by id (``img-1``, ``img-2``, ...), newest kept; safe to share between threads.

    A copy of a tool (``copy.deepcopy``, ``model_copy``) keeps sharing its shelf: the ids it
    handed out stay valid. Pickling keeps the images but not the lock.
    """

    def __init__(self, max_images: int = DEFAULT_SHELF_SIZE) -> None:
        if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
            raise InvalidInputError(f"max_images must be a positive integer, not {max_images!r}")
        self.max_images = max_images
        self._images: OrderedDict[str, Stored] = OrderedDict()
        self._counter = 0
        self._lock = threading.Lock()

    def add(self, image: Any) -> str:
        """Keep ``image`` (bytes, ``ImageData``, a path, a data URL or an http(s) URL); its id."""
        stored: Stored
        if isinstance(image, str) and is_url(image.strip()):
            stored = image.strip()
        else:
            stored = load_image(image)  # checked bytes: a bad image fails here, not later
        with self._lock:
            self._counter += 1
            image_id = f"img-{self._counter}"
            self._images[image_id] = stored
            while len(self._images) > self.max_images:
                self._images.popitem(last=False)
        return image_id

    def get(self, image_id: str) -> Stored:
        """The image with this id; ``ImageReferenceError`` naming the known ids otherwise."""
        with self._lock:
            found = self._images.get(image_id)
            known = list(self._images)
            forgotten = _forgotten(image_id, self._counter, known)
        if found is not None:
            return found
        if forgotten:
            raise ImageReferenceError(
                f"image {image_id!r} was forgotten: only the latest {self.max_images} images are "
                f"kept (known ids: {_listing(known)})"
            )
        raise ImageReferenceError(f"there is no image {image_id!r} (known ids: {_listing(known)})")

    def ids(self) -> list[str]:
        """The ids of the images kept, oldest first."""
        with self._lock:
            return list(self._images)

    def __contains__(self, image_id: object) -> bool:
        with self._lock:
            return image_id in self._images

    def __len__(self) -> int:
        with self._lock:
            return len(self._images)

    def __repr__(self) -> str:
        return f"ImageShelf({len(self)} of {self.max_images} images)"

    def __deepcopy__(self, memo: dict[int, Any]) -> ImageShelf:
        return self  # shared on purpose: ids handed out by one copy stay valid in the others

    def __copy__(self) -> ImageShelf:
        return self

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {
                "max_images": self.max_images,
                "images": list(self._images.items()),
                "counter": self._counter,
            }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.max_images = state["max_images"]
        self._images = OrderedDict(state["images"])
        self._counter = state["counter"]
        self._lock = threading.Lock()


def _forgotten(image_id: str, counter: int, known: list[str]) -> bool:
    match = _ID.fullmatch(image_id)
    return match is not None and 0 < int(match.group(1)) <= counter and image_id not in known


def _listing(ids: list[str]) -> str:
    if not ids:
        return "none yet"
    return ", ".join(ids) if len(ids) <= 8 else f"{ids[0]} ... {ids[-1]}"


def resolve_image_reference(
    reference: str,
    shelf: ImageShelf | None = None,
    *,
    image_root: str | os.PathLike[str] | None = None,
) -> ImageData | str:
    """What an agent's image reference names: ``ImageData``, or an http(s) URL for the client.

    Accepted: an id on ``shelf``; an http(s) URL (fetched by the client, with its size cap); a
    ``data:`` URL; a file path, only inside ``image_root`` (symbolic links resolved), because the
    reference comes from a model and must not make the tool read and upload arbitrary files.
    Anything else raises ``ImageReferenceError`` saying what is accepted.
    """
    if not isinstance(reference, str):
        raise ImageReferenceError(
            f"the image reference must be text, not {type(reference).__name__}"
        )
    text = reference.strip(_QUOTES)
    if not text:
        raise ImageReferenceError("the image reference is empty: give an image id or URL")
    if shelf is not None and (text in shelf or _ID.fullmatch(text)):
        return shelf.get(text)
    if _ID.fullmatch(text):
        raise ImageReferenceError(
            f"there is no image {text!r}: no images are shared with this tool"
        )
    if is_url(text):
        return text
    if text[:5].lower() == "data:":
        try:
            return load_image(text)
        except InvalidInputError as exc:
            raise ImageReferenceError(f"the data URL is not a usable image: {exc}") from None
    if "://" in text[:16]:
        raise ImageReferenceError(
            f"image URL scheme {text.split('://', 1)[0]!r} is not supported: use http(s) or data:"
        )
    return _local_file(text, image_root)


def _local_file(text: str, image_root: str | os.PathLike[str] | None) -> ImageData:
    shown = text[:120]
    if image_root is None:
        raise ImageReferenceError(
            f"{shown!r} is not an image id or URL, and local files are not allowed for this tool "
            "(the application can allow a folder with image_root)"
        )
    root = Path(image_root).expanduser().resolve()
    try:
        candidate = Path(text).expanduser()
        path = (candidate if candidate.is_absolute() else root / candidate).resolve()
    except (OSError, ValueError) as exc:
        raise ImageReferenceError(f"{shown!r} is not a usable path: {exc}") from None
    if not path.is_relative_to(root):
        raise ImageReferenceError(f"{shown!r} is outside the folder this tool may read ({root})")
    try:
        return load_image(path)
    except InvalidInputError as exc:
        raise ImageReferenceError(str(exc)) from None
