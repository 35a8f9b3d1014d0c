//! msyncdump: a dissector and analyzer for MSync, the protobuf protocol of the Easemob IM SDKs.
//!
//! Data flows one way: [`capture`] (timestamped link-layer packets) → [`net`] (L2–L4 parsing,
//! connection table, TCP reassembly) → [`frame`] (splitting byte streams into MSync messages) →
//! [`msync`] (typed decoding, rendering) → consumers ([`analysis`], [`report`], printers), wired
//! together by [`pipeline`]. [`synth`] writes captures for samples, tests and benchmarks.

// Test code indexes freely: a panic there is a failed test, not a crash on input.
#![cfg_attr(test, allow(clippy::indexing_slicing))]

pub mod analysis;
pub mod capture;
pub mod frame;
pub mod hint;
pub mod msync;
pub mod net;
pub mod pipeline;
pub mod report;
pub mod synth;
pub mod time;
