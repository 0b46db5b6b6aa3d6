"""Suite-wide collection order."""


def pytest_collection_modifyitems(items):
    """The end-to-end files (marked slow) first, each kept whole: with two xdist workers
    the longest files then start at once instead of last, while the short unit-test
    files fill in around them."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
