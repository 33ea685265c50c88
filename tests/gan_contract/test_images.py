"""How an image is prepared for a model: the variants of one digit prepare to the same pixels."""

import numpy as np
import pytest
from PIL import Image

from gan_contract.errors import ContractError
from gan_contract.images import image_from_array, prepare_image, to_mode
from tests.gan_contract.variants import digit_variants, reopened


@pytest.mark.parametrize("resolution", [28, 16])
def test_every_variant_of_a_digit_prepares_to_the_digit(mnist_digits, resolution: int):
    # Integer steps only (crop, 16-bit scaling by integer rounding, compositing over black) up
    # to the one resize, which then sees identical input: the bytes agree on every machine.
    for digit in mnist_digits:
        expected = prepare_image(Image.fromarray(digit), resolution, 1)
        if resolution == 28:
            np.testing.assert_array_equal(expected[..., 0], digit)
        for name, image in digit_variants(digit).items():
            prepared = prepare_image(reopened(image), resolution, 1)
            np.testing.assert_array_equal(prepared, expected, err_msg=name)


def test_sixteen_bit_is_scaled_not_clipped():
    wide = Image.fromarray(np.array([[0, 257, 32768, 65535]], np.uint16))
    np.testing.assert_array_equal(np.asarray(to_mode(wide, "L")), [[0, 1, 128, 255]])
    dark = Image.fromarray(np.array([[0, 100, 200]], np.int32))  # mode I, of 8-bit range
    assert dark.mode == "I"
    np.testing.assert_array_equal(np.asarray(to_mode(dark, "L")), [[0, 100, 200]])
    bright = Image.fromarray(np.array([[0, 257 * 100, 65535, 70000]], np.int32))  # 16-bit range
    np.testing.assert_array_equal(np.asarray(to_mode(bright, "L")), [[0, 100, 255, 255]])
    floats = Image.fromarray(np.array([[0.0, 25700.0, 300.0]], np.float32))  # mode F, 16-bit range
    np.testing.assert_array_equal(np.asarray(to_mode(floats, "L")), [[0, 100, 1]])


def test_transparency_goes_black_in_every_mode():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 255, 0, 0))
    rgb = np.asarray(to_mode(rgba, "RGB"))
    assert rgb[0, 0].tolist() == [0, 0, 0] and rgb[1, 1].tolist() == [255, 0, 0]
    grey = np.asarray(to_mode(rgba, "L"))
    assert grey[0, 0] == 0 and grey[1, 1] == 76  # ITU-R 601 luma of pure red
    palette = Image.new("P", (2, 2), 1)
    palette.putpalette([0, 0, 0, 255, 255, 255] + [0, 0, 0] * 254)
    palette.info["transparency"] = 1  # the palette's white entry is transparent
    assert np.asarray(to_mode(palette, "L")).max() == 0


def test_non_square_images_are_centre_cropped_then_resized():
    wide = np.zeros((10, 15), np.uint8)
    wide[:, 2:12] = 200  # the centred square is columns 2..11
    wide[:, :2] = 255
    wide[:, 12:] = 255
    prepared = prepare_image(Image.fromarray(wide), 10, 3)
    assert prepared.shape == (10, 10, 3) and np.all(prepared == 200)
    small = prepare_image(Image.fromarray(wide), 5, 1)
    assert small.shape == (5, 5, 1) and np.all(small == 200)  # a flat square stays flat


def test_arrays_become_images_by_shape_and_dtype():
    assert image_from_array(np.zeros((3, 4), np.uint8)).mode == "L"
    assert image_from_array(np.zeros((3, 4, 1), np.uint8)).mode == "L"
    assert image_from_array(np.zeros((3, 4, 3), np.uint8)).mode == "RGB"
    assert image_from_array(np.zeros((3, 4, 4), np.uint8)).mode == "RGBA"
    assert image_from_array(np.zeros((3, 4), np.uint16)).mode.startswith("I;16")
    for bad in (np.zeros((3, 4, 2), np.uint8), np.zeros((3, 4), np.float32)):
        with pytest.raises(ContractError):
            image_from_array(bad)


def test_impossible_requests_are_contract_errors():
    with pytest.raises(ContractError, match="channels"):
        prepare_image(Image.new("L", (4, 4)), 4, 2)
    with pytest.raises(ContractError, match="resolution"):
        prepare_image(Image.new("L", (4, 4)), 0, 1)
    with pytest.raises(ContractError, match="L or RGB"):
        to_mode(Image.new("L", (4, 4)), "CMYK")
    with pytest.raises(ContractError, match="cannot be converted"):
        to_mode(Image.new("LAB", (4, 4)), "L")  # Pillow has no conversion from CIELab
