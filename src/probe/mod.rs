//! Ensemble health from ZooKeeper's four-letter words.
//!
//! - [`parse`]: parsers for every answer format from 3.4 to 3.9.

pub mod parse;
