"""seglib: label a folder of photos with Segment Anything and train a segmentation CNN on them.

Subpackages by stage, each importing only the ones before it (docs/architecture.md):
``core`` (files, images, folders, settings, devices, the parallel map) → ``masks`` (trimaps,
candidates, shapes, the policy, metrics) → ``backends`` (the registry of proposers: SAM,
opencv) → ``labels`` (the label store, confidence, labeling, review) → ``training`` (data,
models, presets, the loop, checkpoints, predict) → ``refine`` (labels redrawn by a network
trained on them) → ``formats`` (export and import) → ``course`` (the notebook runner,
figures, widgets, the sample) → ``cli``.
"""

__version__ = "0.1.0"
