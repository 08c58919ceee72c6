"""The store layer: all SQL, parameterized, as named constants next to the functions that run it."""
