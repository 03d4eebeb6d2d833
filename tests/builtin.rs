//! builtin tests (stub).
