"""Seed strings and the seed-to-noise rule."""

import threading

import numpy as np
import pytest

from gan_contract.errors import ContractError
from gan_contract.seeds import MAX_SEED, parse_seeds, seeds_to_z


def test_ranges_and_single_seeds_in_order():
    assert parse_seeds("0-3,12,20-21", 100) == [0, 1, 2, 3, 12, 20, 21]
    assert parse_seeds(" 7 - 9 , 1", 100) == [7, 8, 9, 1]  # spaces around numbers are fine
    assert parse_seeds("4294967295", 1) == [MAX_SEED]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "not a seed or a range"),
        ("1,,2", "not a seed or a range"),
        ("a", "not a seed or a range"),
        ("-1", "not a seed or a range"),
        ("+3", "not a seed or a range"),
        ("1_000", "not a seed or a range"),  # int() would read it as 1000
        ("\u0663", "not a seed or a range"),  # an Arabic-Indic 3: int() reads it, the rule not
        ("3-1", "runs backwards"),
        ("4294967296", "out of range"),
    ],
)
def test_bad_seed_strings_name_the_problem(text: str, words: str):
    with pytest.raises(ContractError, match=words):
        parse_seeds(text, 100)
    assert issubclass(ContractError, ValueError)


def test_the_count_limit_is_total_and_checked_before_expanding():
    assert len(parse_seeds("0-9,10-19", 20)) == 20
    with pytest.raises(ContractError, match="more than 20 seeds"):
        parse_seeds("0-9,10-20", 20)  # each range is short; together they are too many
    with pytest.raises(ContractError, match="more than 64 seeds"):
        parse_seeds(f"0-{MAX_SEED}", 64)  # refused without building four billion ints


def test_seed_convention_is_stylegan_s():
    z = seeds_to_z([7, 8, 7], 5)
    assert z.dtype == np.float32 and z.shape == (3, 5)
    # Bytes are compared: the same RandomState stream cast to float32 on every machine.
    np.testing.assert_array_equal(z[0], np.random.RandomState(7).randn(5).astype("float32"))
    np.testing.assert_array_equal(z[1], np.random.RandomState(8).randn(5).astype("float32"))
    np.testing.assert_array_equal(z[0], z[2])
    assert seeds_to_z([], 4).shape == (0, 4)
    with pytest.raises(ContractError, match="out of range"):
        seeds_to_z([MAX_SEED + 1], 4)


def test_threads_draw_independent_streams():
    # Each thread reuses its own RandomState: concurrent calls must not interleave their seeding.
    expected = {seed: np.random.RandomState(seed).randn(64).astype("float32") for seed in range(8)}
    wrong: list[int] = []

    def work(seed: int) -> None:
        for _ in range(200):
            if not np.array_equal(seeds_to_z([seed], 64)[0], expected[seed]):
                wrong.append(seed)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in expected]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
