//! The callback corpus in `tests/fixtures/callbacks/`.
