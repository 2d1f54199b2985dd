"""Generators: a plain function becomes a tool only if it takes ``(prompt, seed)``, and the arrays a
tool returns become RGB images with their pixel values kept, or a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from genagent_env.tools.base import FunctionGenerator, as_rgb_image


@pytest.mark.parametrize("array, expected", [(np.full((4, 4, 3), 200, dtype=np.int64), 200),
                                             (np.full((4, 4, 3), 200.0), 200), (np.full((4, 4, 3), 0.5), 128),
                                             (np.full((4, 4), 7, dtype=np.uint16), 7)])
def test_arrays_keep_their_pixel_values(array, expected):
    assert np.asarray(as_rgb_image(array))[0, 0, 0] == expected


@pytest.mark.parametrize("array, fragment", [(np.ones((4, 4, 3), dtype=bool), "bool"),
                                             (np.full((4, 4, 3), 300.0), "neither"),
                                             (np.full((4, 4, 3), -3, dtype=np.int32), "outside")])
def test_arrays_that_are_not_pixels_are_refused(array, fragment):
    with pytest.raises(ValueError, match=fragment):
        as_rgb_image(array)


def test_a_function_must_take_a_prompt_and_a_seed():
    with pytest.raises(TypeError, match="must take"):
        FunctionGenerator(lambda prompt: None, name="one_arg")
