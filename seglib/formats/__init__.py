"""Label folders to and from the formats other tools read.

- :mod:`~seglib.formats.registry`: ``FORMATS``, one entry per export format (the
  ``--format`` choices).
- :mod:`~seglib.formats.export`: ``export_labels``, choosing the photos and their split, and
  the ``seglib-export.json`` bookkeeping of the ``--out`` folder.
- :mod:`~seglib.formats.items`: the shared loop every writer runs its photos through.
- :mod:`~seglib.formats.polygons`: masks as polygons (COCO polygons, YOLO).
- :mod:`~seglib.formats.coco`: COCO read and write (export, ``read_coco``, ``import_coco``).
- :mod:`~seglib.formats.yolo`, :mod:`~seglib.formats.oxford_pet`, :mod:`~seglib.formats.voc`:
  the other export formats.
"""
