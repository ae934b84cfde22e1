//! The `Srv` helpers now live in tests/common/srv.rs; this re-export keeps
//! `mod support;` working for the test files that still name it.
#![allow(unused_imports)]

pub use crate::common::srv::*;
