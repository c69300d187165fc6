"""Analytics over tagged feedback: trends, comparisons, drivers, aggregates."""
