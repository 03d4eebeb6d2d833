//! Exit codes for engines: the s6 convention, which jawasd logs and the
//! docs (engine-protocol.md) promise. Only these four are used by the
//! runtime; an engine should not invent others.

/// Done: the connection was served, or `--help`/`--version`/`--check`
/// succeeded.
pub const OK: i32 = 0;
/// The peer broke the protocol or went away.
pub const PEER: i32 = 1;
/// Usage or configuration error: permanent, retrying will not help.
pub const USAGE: i32 = 100;
/// Temporary system failure (out of descriptors, a target refusing, ...).
pub const SYSTEM: i32 = 111;
