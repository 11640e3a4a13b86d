import pytest

from shop import total


def test_total() -> None:
    assert total([1.0, 2.5]) == 3.5


def test_discount() -> None:
    assert total([10.0], discount=0.1) == 9.0


def test_bad_discount() -> None:
    with pytest.raises(ValueError):
        total([1.0], discount=1.5)
