"""The seed model is a faithful port of the Keras model; the U-Net is smaller and cheaper."""

from __future__ import annotations

import pytest
import torch

from seglib.training.models import (
    SameConv2d,
    SameConvTranspose2d,
    build_model,
    count_flops,
    count_params,
    seed_cnn,
    unet,
)


def keras_conv(cin: int, cout: int, k: int = 3) -> int:
    """Parameters of Keras Conv2D / Conv2DTranspose: k·k·cin·cout weights + cout biases."""
    return k * k * cin * cout + cout


def keras_seed_params(num_classes: int) -> int:
    layers = [
        (3, 64), (64, 64), (64, 128), (128, 128), (128, 256),  # Conv2D encoder
        (256, 256), (256, 256), (256, 128), (128, 128), (128, 64), (64, 64),  # Conv2DTranspose
        (64, num_classes),  # Conv2D head (softmax has no parameters)
    ]
    return sum(keras_conv(i, o) for i, o in layers)


@pytest.mark.parametrize("num_classes", [3, 5])
def test_seed_parameter_count_matches_keras(num_classes):
    assert keras_seed_params(3) == 2_290_563
    assert count_params(seed_cnn(num_classes)) == keras_seed_params(num_classes)


def test_seed_output_shape_200():
    m = seed_cnn().eval()
    with torch.no_grad():
        y = m(torch.rand(2, 3, 200, 200) * 255)
    assert y.shape == (2, 3, 200, 200)
    assert torch.isfinite(y).all()


def test_seed_layer_sizes_follow_keras_same_padding():
    m = seed_cnn()
    sizes = []
    x = torch.zeros(1, 3, 200, 200)
    for layer in list(m.encoder) + list(m.decoder):
        x = layer(x)
        sizes.append(x.shape[-1])
    assert sizes == [100, 100, 50, 50, 25, 25, 50, 50, 100, 100, 200]


def test_seed_odd_size_is_cropped_back():
    with torch.no_grad():
        y = seed_cnn()(torch.zeros(1, 3, 52, 36))
    assert y.shape == (1, 3, 52, 36)


def test_strided_same_conv_pads_bottom_right_like_tensorflow():
    conv = SameConv2d(1, 1, stride=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0  # centre tap: output = the centre input pixel
        conv.bias.zero_()
        x = torch.arange(36.0).view(1, 1, 6, 6)
        y = conv(x)
    # TensorFlow pads (0, 1) for an even input, so the centres fall on odd rows/columns
    assert torch.equal(y, x[..., 1::2, 1::2])


def test_strided_same_transposed_conv_doubles_and_keeps_first_row():
    up = SameConvTranspose2d(1, 1, stride=2)
    with torch.no_grad():
        up.weight.zero_()
        up.weight[0, 0, 0, 0] = 1.0  # top-left tap: input (i, j) lands on (2i, 2j)
        up.bias.zero_()
        x = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
        y = up(x)
    assert y.shape == (1, 1, 6, 6)
    assert torch.equal(y[..., ::2, ::2], x)
    assert y[..., 1::2, :].abs().sum() == 0


def test_unet_shapes_for_any_size():
    m = unet().eval()
    with torch.no_grad():
        for h, w in [(32, 32), (50, 70), (33, 17)]:
            assert m(torch.zeros(1, 3, h, w)).shape == (1, 3, h, w)


def test_unet_has_at_most_a_quarter_of_seed_flops():
    s, u = count_flops(seed_cnn(), 200), count_flops(unet(), 200)
    assert u <= s / 4
    assert s > 8e9  # ~4.1 G multiply-adds at 200×200


def test_count_flops_of_one_conv():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    assert count_flops(conv, (10, 12)) == 2 * 3 * 8 * 9 * 10 * 12


def test_build_model_by_name():
    assert isinstance(build_model("seed"), type(seed_cnn()))
    assert isinstance(build_model("unet"), type(unet()))
    with pytest.raises(ValueError, match="unknown arch"):
        build_model("resnet")
