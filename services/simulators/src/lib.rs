//! simulators
