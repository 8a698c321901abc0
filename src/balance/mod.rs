//! balance (in progress)
