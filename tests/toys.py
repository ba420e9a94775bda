"""Tiny test inputs: photo/trimap folders for the training, prediction and data tests, and a
SAM with random weights for the SAM tests."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from seglib.core.files import write_png_atomic
from seglib.masks.trimap import mask_to_trimap

if TYPE_CHECKING:
    import torch


def toy_pairs(root: Path, n: int, h: int = 30, w: int = 40, seed: int = 0) -> tuple[Path, Path]:
    """``n`` photos of a dark ellipse on a light background, with their trimaps."""
    rng = np.random.default_rng(seed)
    images, trimaps = root / "images", root / "trimaps"
    for i in range(n):
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, (int(rng.integers(12, w - 12)), int(rng.integers(10, h - 10))),
                    (int(rng.integers(5, 10)), int(rng.integers(4, 8))), 0, 0, 360, 1, -1)
        img = np.full((h, w, 3), 200, np.uint8)
        img[m > 0] = (30, 60, 90)
        write_png_atomic(images / f"p{i:03d}.png", img)
        write_png_atomic(trimaps / f"p{i:03d}.png", mask_to_trimap(m))
    return images, trimaps


def tiny_sam(
    img_size: int = 256,
    embed_dim: int = 64,
    depth: int = 2,
    num_heads: int = 2,
    prompt_dim: int = 32,
    seed: int | None = 0,
) -> torch.nn.Module:
    """A very small SAM with random weights, built from segment_anything's own modules.

    For the tests: it runs the same code paths as a real SAM (encoder, prompt encoder, mask
    decoder, predictor, automatic mask generator) in milliseconds. Its masks are meaningless.
    """
    import torch
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    if prompt_dim % 8:
        raise ValueError("prompt_dim must be a multiple of 8")
    if seed is not None:
        torch.manual_seed(seed)
    patch = 16
    grid = img_size // patch
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=img_size, patch_size=patch, embed_dim=embed_dim, depth=depth,
            num_heads=num_heads, mlp_ratio=2, out_chans=prompt_dim, qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True, window_size=4,
            global_attn_indexes=(depth - 1,),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim, image_embedding_size=(grid, grid),
            input_image_size=(img_size, img_size), mask_in_chans=8,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=1, embedding_dim=prompt_dim, mlp_dim=2 * prompt_dim, num_heads=2
            ),
            transformer_dim=prompt_dim, iou_head_depth=2, iou_head_hidden_dim=prompt_dim,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


def tiny_hf_sam(folder: Path, family: str = "sam2", img_size: int = 128, seed: int = 0) -> Path:
    """A very small SAM 2.1 (``family="sam2"``, Hiera), EdgeTAM (``"edgetam"``: the real
    RepViT-M1 image encoder from timm, small prompt encoder and decoder) or SAM-1-style
    (``"sam"``, the SlimSAM architecture) ``transformers`` model with random weights, saved as
    a checkpoint folder (config.json + model.safetensors) like the ones ``seglib weights``
    downloads."""
    import torch
    from transformers import Sam2Config, Sam2Model, SamConfig, SamModel

    torch.manual_seed(seed)
    grid = img_size // 16
    prompt = dict(hidden_size=32, image_size=img_size, mask_input_channels=8)
    decoder = dict(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32)
    if family == "sam2":
        backbone = dict(model_type="sam2_hiera_det_model", hidden_size=16,
                        num_attention_heads=1, blocks_per_stage=[1, 1, 2, 1],
                        embed_dim_per_stage=[16, 32, 64, 128], global_attention_blocks=[3],
                        window_size_per_stage=[4, 4, 4, 4], image_size=[img_size, img_size],
                        window_positional_embedding_background_size=[2, 2])
        vision = dict(backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16],
                      fpn_hidden_size=32,
                      backbone_feature_sizes=[[4 * grid] * 2, [2 * grid] * 2, [grid] * 2])
        model = Sam2Model(Sam2Config(vision_config=vision, prompt_encoder_config=prompt,
                                     mask_decoder_config=decoder))
    elif family == "edgetam":
        from transformers import EdgeTamConfig, EdgeTamModel, TimmWrapperConfig

        backbone = TimmWrapperConfig(architecture="repvit_m1.dist_in1k", do_pooling=False,
                                     model_args=dict(in_chans=3, features_only=True,
                                                     out_indices=[0, 1, 2, 3]))
        vision = dict(backbone_config=backbone, fpn_hidden_size=32,
                      backbone_feature_sizes=[[4 * grid] * 2, [2 * grid] * 2, [grid] * 2])
        model = EdgeTamModel(EdgeTamConfig(vision_config=vision, prompt_encoder_config=prompt,
                                           mask_decoder_config=decoder))
    else:
        vision = dict(hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2,
                      global_attn_indexes=[1], output_channels=32, image_size=img_size,
                      window_size=4, num_pos_feats=16)
        model = SamModel(SamConfig(vision_config=vision, prompt_encoder_config=prompt,
                                   mask_decoder_config=decoder))
    model.eval().save_pretrained(folder)
    return folder
