//! Nagios and Icinga check logic (`zkparity check ...`; the command line is
//! in the binary's `cmd/check.rs`).
//!
//! Every check follows the monitoring-plugins guidelines: exit 0/1/2/3, one
//! status line with perfdata, long output after it, `-w`/`-c` ranges and a
//! `-t` timeout of its own. Whatever goes wrong inside — a bad argument, an
//! unreachable ensemble, a timeout — answers UNKNOWN with the reason; a check
//! never panics and never exits above 3.
//!
//! - [`range`]: the `[@][start:][end]` threshold syntax.
//! - [`output`]: states, perfdata and the printed answer.
//! - [`parity`]: `check parity`, the comparison as a check.
//! - [`health`]: `check health`, each ensemble's health from the probes.
//! - [`counts`]: `check counts`, the znode-count delta between ensembles.
//! - [`znode`]: `check znode`, one path on one or both ensembles.
//! - [`ephemerals`]: `check ephemerals`, the applications' registrations
//!   back on the new ensemble after a cutover.
//! - `passive`: results sent to Nagios rather than asked by it, through its
//!   external command file (the agent's rounds and probes, sync's outputs).

pub mod counts;
pub mod ephemerals;
pub mod health;
pub mod output;
pub mod parity;
pub(crate) mod passive;
pub mod range;
pub mod znode;
