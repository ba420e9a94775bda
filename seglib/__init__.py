"""seglib: label a folder of photos with Segment Anything and train a segmentation CNN on them.

Modules, one job each:
- ``trimap``: mask -> Oxford-IIIT-Pet-style trimap (1 object, 2 background, 3 border).
- ``io``: listing, reading and atomically writing images.
- ``sample``: the embedded synthetic sample with known masks.
- ``candidates``: the candidate-mask set every labeling backend produces.
- ``device``: picks cuda/mps/cpu and the autocast dtype.
"""

__version__ = "0.1.0"
