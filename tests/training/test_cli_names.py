"""gan-sample takes the service's names for truncation and class, and the short aliases."""

from __future__ import annotations

import pytest

from training.cli import build_sample_parser


@pytest.mark.parametrize(
    "flags",
    [
        ["--truncation-psi", "0.5", "--class-label", "2"],  # the API's names
        ["--psi", "0.5", "--class", "2"],  # the aliases (StyleGAN's --class)
    ],
)
def test_sample_flags_match_the_api_names(flags: list[str]) -> None:
    args = build_sample_parser().parse_args(["models/x", *flags, "--grid", "g.png"])
    assert args.psi == 0.5 and args.class_label == 2
