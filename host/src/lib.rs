//! centralino
