import pytest

from helpers import random_problem


@pytest.fixture
def problem():
    return random_problem
