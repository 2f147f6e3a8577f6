//! Host side of the contract's imports, one file per interface: `log`, `clock`, `http`
//! (allow-listed hosts, credentials attached by the host, rate limits) and `signing`
//! (HMAC with granted secrets). Each checks the instance's
//! [`Grants`](crate::capabilities::Grants) before doing anything.

mod clock;
mod http;
mod log;
mod signing;
pub(crate) mod stdio;

pub use http::{FetchedMedia, MediaFetchError, MediaFetcher};
pub(crate) use http::{HttpContext, HttpTransport, RateLimitBook};
