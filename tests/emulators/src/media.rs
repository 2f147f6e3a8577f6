//! Files the platforms serve with their messages, as each serves them:
//!
//! - **X**: a DM's image is served under `/1.1/ton/data/dm/{dm id}/{media id}/{name}` only
//!   to a request with the bearer token of one of the DM's two participants (401 without a
//!   known token, 403 for anyone else), as `ton.twitter.com` does
//!   ([`crate::XApi::add_dm_media`]).
//! - **Messenger**: an attachment's `payload.url` is a signed content-network address
//!   that works without a token until the time in its `oe` parameter (hex epoch seconds),
//!   then answers 403 `URL signature expired` ([`crate::GraphApi::add_attachment`],
//!   [`crate::GraphApi::expire_attachments`]).

use axum::response::Response;

/// One file on the shelf.
#[derive(Clone, Debug)]
pub(crate) struct Shelved {
    pub(crate) path: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) content_type: String,
    /// Who may fetch it (X: the DM's participants); empty: anyone with the address.
    pub(crate) readers: Vec<String>,
    /// Epoch seconds after which the address is refused (Messenger's `oe`).
    pub(crate) expires_at: Option<u64>,
    /// Times it was served.
    pub(crate) served: u32,
}

/// The files an emulator serves.
#[derive(Clone, Debug, Default)]
pub(crate) struct Shelf {
    pub(crate) files: Vec<Shelved>,
}

impl Shelf {
    /// The file at `path`, if any.
    pub(crate) fn find(&mut self, path: &str) -> Option<&mut Shelved> {
        self.files.iter_mut().find(|f| f.path == path)
    }
}

/// A file's bytes as a 200.
pub(crate) fn serve(file: &mut Shelved) -> Response {
    file.served += 1;
    Response::builder()
        .status(200)
        .header("content-type", file.content_type.clone())
        .header("content-length", file.bytes.len().to_string())
        .body(axum::body::Body::from(file.bytes.clone()))
        .unwrap_or_default()
}

/// A plain-text refusal, as content networks answer.
pub(crate) fn refuse(status: u16, text: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(axum::body::Body::from(text.to_string()))
        .unwrap_or_default()
}

/// Epoch seconds now.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
