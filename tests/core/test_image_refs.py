"""Image references an agent passes to the Janus tools: the shared shelf, and what is refused."""

from __future__ import annotations

import base64
import copy
import io
import pickle
import threading
from pathlib import Path

import pytest
from PIL import Image

from janus_space.image_refs import ImageReferenceError, ImageShelf, resolve_image_reference
from janus_space.media import ImageData


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def test_ids_name_the_images_in_order_and_resolve_to_them() -> None:
    shelf = ImageShelf()
    first, second = shelf.add(png(10, 10)), shelf.add(png(20, 10))
    assert (first, second) == ("img-1", "img-2")
    found = resolve_image_reference(" 'img-2' ", shelf)  # models quote ids now and then
    assert isinstance(found, ImageData) and found.data == png(20, 10)
    assert shelf.ids() == ["img-1", "img-2"] and len(shelf) == 2


def test_a_full_shelf_forgets_the_oldest_and_says_so() -> None:
    shelf = ImageShelf(max_images=3)
    ids = [shelf.add(png(8, 8)) for _ in range(5)]
    assert shelf.ids() == ids[2:]
    with pytest.raises(ImageReferenceError, match=r"'img-1' was forgotten: only the latest 3"):
        resolve_image_reference("img-1", shelf)
    with pytest.raises(ImageReferenceError, match=r"no image 'img-9' \(known ids: img-3, img-4"):
        resolve_image_reference("img-9", shelf)


def test_many_threads_adding_get_distinct_ids() -> None:
    shelf = ImageShelf(max_images=1000)
    picture = png(4, 4)
    found: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [shelf.add(picture) for _ in range(50)]
        with lock:
            found.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(found) == sorted(f"img-{n}" for n in range(1, 401))


def test_copies_share_the_shelf_and_pickles_keep_its_images() -> None:
    shelf = ImageShelf()
    shelf.add(png(6, 6))
    assert copy.deepcopy(shelf) is shelf and copy.copy(shelf) is shelf
    restored = pickle.loads(pickle.dumps(shelf))
    assert restored.ids() == ["img-1"] and restored.add(png(6, 6)) == "img-2"


def test_urls_pass_through_and_data_urls_are_decoded() -> None:
    assert resolve_image_reference("https://example.com/cat.png") == "https://example.com/cat.png"
    data_url = "data:image/png;base64," + base64.b64encode(png(12, 9)).decode()
    found = resolve_image_reference(data_url)
    assert isinstance(found, ImageData) and found.mime_type == "image/png"
    shelf = ImageShelf()
    assert shelf.get(shelf.add("https://example.com/dog.png")) == "https://example.com/dog.png"


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("", "empty"),
        ("img-1", "no images are shared with this tool"),
        ("ftp://example.com/cat.png", "scheme 'ftp' is not supported"),
        ("data:image/png;base64,bm90IGFuIGltYWdl", "data URL is not a usable image"),
        ("/etc/passwd", "local files are not allowed"),
        ("cat.png", "local files are not allowed"),
    ],
)
def test_unusable_references_are_refused_with_the_reason(reference: str, problem: str) -> None:
    with pytest.raises(ImageReferenceError, match=problem):
        resolve_image_reference(reference)


def test_files_are_read_only_inside_the_allowed_folder(tmp_path: Path) -> None:
    allowed = tmp_path / "pictures"
    allowed.mkdir()
    (allowed / "cat.png").write_bytes(png(30, 20))
    (tmp_path / "secret.png").write_bytes(png(5, 5))
    (allowed / "link.png").symlink_to(tmp_path / "secret.png")
    found = resolve_image_reference("cat.png", image_root=allowed)
    assert isinstance(found, ImageData) and found.data == png(30, 20)
    assert resolve_image_reference(str(allowed / "cat.png"), image_root=allowed) == found
    for escape in ("../secret.png", str(tmp_path / "secret.png"), "link.png"):
        with pytest.raises(ImageReferenceError, match="outside the folder"):
            resolve_image_reference(escape, image_root=allowed)
    with pytest.raises(ImageReferenceError, match="not found"):
        resolve_image_reference("dog.png", image_root=allowed)
