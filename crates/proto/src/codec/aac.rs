//! INTERFACE STUB: being written.
