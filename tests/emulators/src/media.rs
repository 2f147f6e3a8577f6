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
//!
//! And the files the platforms receive: [`multipart`] reads an upload's form, and each
//! emulator keeps what it accepted as [`Uploaded`] files (X's media upload, Messenger's
//! Attachment Upload API) with the checks the platforms make.

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

/// One part of a `multipart/form-data` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The form field's name.
    pub name: String,
    /// The file name, for a file part.
    pub file_name: Option<String>,
    /// The part's `content-type`, if it gave one.
    pub content_type: Option<String>,
    /// The part's bytes.
    pub body: Vec<u8>,
}

/// The parts of a `multipart/form-data` body (RFC 7578), or why it is not one: the
/// boundary from `content_type`, each part's headers up to a blank line, its body up to
/// the CRLF before the next delimiter.
pub fn multipart(content_type: Option<&str>, body: &[u8]) -> Result<Vec<Part>, String> {
    let content_type = content_type.unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err(format!(
            "expected multipart/form-data, got `{content_type}`"
        ));
    }
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or("multipart/form-data without a boundary")?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    let start = find(rest, &delimiter).ok_or("no multipart delimiter in the body")?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a multipart delimiter must end with CRLF")?;
        let head_end = find(rest, b"\r\n\r\n").ok_or("a part without a blank line")?;
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        rest = &rest[head_end + 4..];
        let mut closing = b"\r\n".to_vec();
        closing.extend_from_slice(&delimiter);
        let end = find(rest, &closing).ok_or("a part without a closing delimiter")?;
        let mut part = Part {
            name: String::new(),
            file_name: None,
            content_type: None,
            body: rest[..end].to_vec(),
        };
        for line in head.split("\r\n") {
            let Some((header, value)) = line.split_once(':') else {
                continue;
            };
            match header.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    for param in value.split(';').map(str::trim) {
                        if let Some(name) = param.strip_prefix("name=") {
                            part.name = name.trim_matches('"').to_string();
                        } else if let Some(file) = param.strip_prefix("filename=") {
                            part.file_name = Some(file.trim_matches('"').to_string());
                        }
                    }
                }
                "content-type" => part.content_type = Some(value.trim().to_string()),
                _ => {}
            }
        }
        if part.name.is_empty() {
            return Err("a part without a name in its content-disposition".to_string());
        }
        parts.push(part);
        rest = &rest[end + closing.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The image type of `bytes` by their signature, as the platforms sniff uploads.
pub(crate) fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\xFF\xD8\xFF") {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1A\n") {
        Some("image/png")
    } else if bytes.starts_with(b"GIF8") {
        Some("image/gif")
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some("image/webp")
    } else {
        None
    }
}

/// A file a platform received through its upload API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// The id the platform gave it (X's `media_id`, Messenger's `attachment_id`).
    pub id: String,
    /// Who uploaded it (the X user, the page).
    pub owner: String,
    /// X's `media_category` (`dm_image`, `tweet_image`), Messenger's attachment `type`.
    pub category: String,
    /// Its type, as sniffed from its bytes.
    pub content_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}
