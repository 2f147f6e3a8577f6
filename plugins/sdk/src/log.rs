//! Logging into the host's log, tagged there with the plugin's name and version.
//!
//! Use the macros ([`info!`](crate::info), [`warn!`](crate::warn), …) like `format!`; the
//! functions here take a finished line. The host caps how much a plugin may write.

pub use crate::bindings::channel::centralino::plugin::log::Level;
use crate::bindings::channel::centralino::plugin::log::write as host_write;

/// Writes one line at `level`.
pub fn write(level: Level, message: &str) {
    host_write(level, message);
}

/// Writes one line at `debug`.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Writes one line at `info`.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Writes one line at `warn`.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Writes one line at `error`.
pub fn error(message: &str) {
    write(Level::Error, message);
}

/// Logs a `format!` line at `trace`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Trace, &format!($($arg)*)) };
}

/// Logs a `format!` line at `debug`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Debug, &format!($($arg)*)) };
}

/// Logs a `format!` line at `info`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, &format!($($arg)*)) };
}

/// Logs a `format!` line at `warn`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Warn, &format!($($arg)*)) };
}

/// Logs a `format!` line at `error`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, &format!($($arg)*)) };
}
