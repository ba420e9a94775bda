"""Export as the Oxford-IIIT Pet data set (torchvision's ``OxfordIIITPet``).

``OUT/oxford-iiit-pet/images/*.jpg``, ``annotations/trimaps/*.png`` (the trimaps as they
are, border ring included) and the split lists ``annotations/trainval.txt`` and ``test.txt``.
"""

from __future__ import annotations

from pathlib import Path

from seglib.core.files import encode_png, write_bytes_atomic
from seglib.formats.items import ExportItem, ExportSummary, copy_photo, iter_items, unique_names

PET_ROOT = Path("oxford-iiit-pet")


def write_oxford_pet(items: list[ExportItem], out: Path, summary: ExportSummary, *,
                     category: str = "object",
                     spread: dict | None = None) -> Path:
    """``OUT/oxford-iiit-pet``: JPEG photos, the trimaps as they are, trainval/test lists."""
    root = out / PET_ROOT
    lists: dict[str, list[str]] = {"train": [], "val": []}
    named = dict((it.stem, name) for it, name in unique_names(items, summary))
    for it, trimap, image in iter_items([i for i in items if i.stem in named], summary,
                                        "oxford-pet", **(spread or {})):
        name = named[it.stem]
        copy_photo(it, image, root / "images" / name, jpeg=True)
        write_bytes_atomic(root / "annotations" / "trimaps" / f"{name}.png", encode_png(trimap))
        lists[it.split].append(name)
    # "IMAGE CLASS-ID SPECIES BREED-ID" as in the original list files; one class here
    for fname, split in (("trainval.txt", "train"), ("test.txt", "val")):
        text = "".join(f"{name} 1 1 1\n" for name in lists[split])
        write_bytes_atomic(root / "annotations" / fname, text.encode("utf-8"))
    return root
