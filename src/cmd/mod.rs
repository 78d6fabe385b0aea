//! The commands of the `zkparity` binary, one file each.

pub mod demo;
