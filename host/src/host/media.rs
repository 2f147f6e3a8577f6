//! Files of messages: the media fetcher (a supervised background task) that brings the
//! files of inbound messages into the store, the limits it keeps, and what the CRM reads.
//!
//! A customer's message is stored and delivered first; its files are recorded in the same
//! transaction as `fetching` (see `store/media.rs`). The fetcher claims due files every
//! few hundred milliseconds, fetches each through its connector's
//! [`MediaFetcher`](crate::runtime::MediaFetcher) (the connector's allow-list, rate-limit
//! book and caps; the account's credential attached by the host when it is a header), and
//! settles it: `stored`; tried again after [`crate::retry::MEDIA_FETCH`] on a temporary
//! failure, until [`crate::retry::MEDIA_FETCH_TRIES`] tries; or `failed` with the reason
//! (refused by the grants, over a limit, gone from the platform).

use std::sync::Weak;
use std::time::Duration;

use super::{Host, HostInner};
use crate::error::Error;
use crate::runtime::MediaFetchError;
use crate::store::media::DueMedia;
use crate::store::{MediaContent, MediaRecord};

/// How much media the host keeps: a cap per file and a quota per tenant (the sum of its
/// stored files). Defaults: [`MediaLimits::DEFAULT_FILE_BYTES`] and
/// [`MediaLimits::DEFAULT_TENANT_BYTES`]. A file of an inbound message is also capped by its
/// connector's `http_max_response_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MediaLimits {
    /// Largest file kept or sent, in bytes.
    pub max_file_bytes: u64,
    /// Most bytes of stored files per tenant.
    pub max_tenant_bytes: u64,
}

impl MediaLimits {
    /// Default largest file: 5 MiB (X's limit for an image; Messenger takes 25 MB).
    pub const DEFAULT_FILE_BYTES: u64 = 5 << 20;
    /// Default quota per tenant: 1 GiB.
    pub const DEFAULT_TENANT_BYTES: u64 = 1 << 30;

    /// Limits of `max_file_bytes` per file and `max_tenant_bytes` per tenant.
    pub fn new(max_file_bytes: u64, max_tenant_bytes: u64) -> Self {
        MediaLimits {
            max_file_bytes,
            max_tenant_bytes,
        }
    }
}

impl Default for MediaLimits {
    fn default() -> Self {
        MediaLimits::new(Self::DEFAULT_FILE_BYTES, Self::DEFAULT_TENANT_BYTES)
    }
}

/// Files claimed per pass.
const CLAIM_PER_PASS: usize = 16;

/// How long a file of a disabled connector waits before the fetcher looks again.
const DISABLED_RECHECK_MS: u64 = 60_000;

/// The pause between passes of the fetcher when it found nothing due.
const IDLE: Duration = Duration::from_millis(200);

/// Fetches due inbound files until the host is dropped.
pub(super) async fn media_fetcher(host: Weak<HostInner>) {
    loop {
        let Some(inner) = host.upgrade() else { return };
        let busy = match pass(&inner).await {
            Ok(claimed) => claimed > 0,
            Err(e) => {
                tracing::error!("media fetcher: {e:#}");
                false
            }
        };
        drop(inner);
        if !busy {
            tokio::time::sleep(IDLE).await;
        }
    }
}

/// One pass: claims due files and settles each; returns how many it claimed.
async fn pass(inner: &HostInner) -> anyhow::Result<usize> {
    let due = inner.store.claim_due_media(CLAIM_PER_PASS).await?;
    for file in &due {
        fetch_one(inner, file).await?;
    }
    Ok(due.len())
}

async fn fetch_one(inner: &HostInner, file: &DueMedia) -> anyhow::Result<()> {
    let store = &inner.store;
    let Some(connector) = inner
        .connectors
        .get(&(file.tenant.clone(), file.channel.clone()))
    else {
        return store
            .media_failed(
                &file.id,
                &format!(
                    "no connector `{}` in tenant `{}` to fetch the file with",
                    file.channel, file.tenant
                ),
            )
            .await;
    };
    // A disabled connector takes no calls, and its platform sees no requests from it.
    if !connector.is_enabled() {
        let at = store.now_ms().saturating_add(DISABLED_RECHECK_MS);
        return store
            .media_wait(
                &file.id,
                "the connector is disabled: the file waits until it is enabled",
                at,
            )
            .await;
    }
    let limits = inner.media_limits;
    let max = usize::try_from(limits.max_file_bytes).unwrap_or(usize::MAX);
    let fetched = connector
        .media_fetcher()
        .fetch(&file.account, &file.url, max)
        .await;
    match fetched {
        Ok(media) => {
            let kept = store
                .media_fetched(
                    file,
                    media.content_type.as_deref(),
                    &media.body,
                    limits.max_tenant_bytes,
                )
                .await?;
            if kept {
                tracing::debug!(tenant = %file.tenant, connector = %file.channel, bytes = media.body.len(), "stored an inbound file");
            } else {
                tracing::warn!(tenant = %file.tenant, "an inbound file was not kept: the tenant is at its media quota");
            }
            Ok(())
        }
        Err(MediaFetchError::Temporary(why))
            if file.attempts.saturating_add(1) < crate::retry::MEDIA_FETCH_TRIES =>
        {
            let wait = crate::retry::MEDIA_FETCH.delay_ms(u64::from(file.attempts));
            store
                .media_retry(&file.id, &why, store.now_ms().saturating_add(wait))
                .await
        }
        Err(e) => {
            let why = match e {
                MediaFetchError::Temporary(why) => format!(
                    "gave up after {} tries: {why}",
                    crate::retry::MEDIA_FETCH_TRIES
                ),
                other => other.to_string(),
            };
            tracing::warn!(tenant = %file.tenant, connector = %file.channel, "an inbound file was not fetched: {why}");
            store.media_failed(&file.id, &why).await
        }
    }
}

impl Host {
    /// The files kept for `owners` (message ids, or outbox entry ids for a reply's
    /// images) of `tenant`, in each owner's order: where each is (`stored`, `fetching`,
    /// `failed` and why).
    pub async fn media_of(
        &self,
        tenant: &str,
        owners: &[String],
    ) -> Result<Vec<MediaRecord>, Error> {
        Ok(self.inner.store.media_of(tenant, owners).await?)
    }

    /// A file of `tenant` with its bytes (empty until it is `stored`); `None` if the
    /// tenant has no file of that id.
    pub async fn media(&self, tenant: &str, id: &str) -> Result<Option<MediaContent>, Error> {
        Ok(self.inner.store.media_content(tenant, id).await?)
    }

    /// The limits the host keeps media within.
    pub fn media_limits(&self) -> MediaLimits {
        self.inner.media_limits
    }
}

/// An image an operator's reply carries ([`Host::reply_with_images`]).
///
/// Accepted: `image/jpeg`, `image/png`, `image/gif` and `image/webp` whose bytes are that
/// type (their signature is checked), from 1 byte to the host's per-file limit
/// ([`MediaLimits::max_file_bytes`]), named by a file name without a path (1 to
/// [`MAX_FILE_NAME_CHARS`] characters); at most [`MAX_REPLY_IMAGES`] per reply.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplyImage {
    /// `image/jpeg`, `image/png`, `image/gif` or `image/webp`.
    pub mime_type: String,
    /// The name sent with the upload (`modem.jpg`).
    pub file_name: String,
    /// The image.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for ReplyImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyImage")
            .field("mime_type", &self.mime_type)
            .field("file_name", &self.file_name)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// Most images one reply carries (X takes four per post; a connector refuses what its
/// platform takes fewer of).
pub const MAX_REPLY_IMAGES: usize = 4;

/// Longest file name of a reply's image, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 200;

/// The image types a reply carries, with the signature their bytes start with.
const IMAGE_TYPES: &[(&str, &[u8])] = &[
    ("image/jpeg", b"\xFF\xD8\xFF"),
    ("image/png", b"\x89PNG\r\n\x1A\n"),
    ("image/gif", b"GIF8"),
    ("image/webp", b"RIFF"),
];

impl ReplyImage {
    /// An image of type `mime_type`, named `file_name`.
    pub fn new(
        mime_type: impl Into<String>,
        file_name: impl Into<String>,
        data: impl Into<Vec<u8>>,
    ) -> Self {
        ReplyImage {
            mime_type: mime_type.into(),
            file_name: file_name.into(),
            data: data.into(),
        }
    }

    /// How the reply's payload in the outbox describes it: without its bytes, which are
    /// kept beside it (`store/media.rs`) and put back when the reply is sent.
    pub(crate) fn described(&self) -> crate::types::OutboundAttachment {
        crate::types::OutboundAttachment {
            kind: crate::types::MediaKind::Image,
            mime_type: self.mime_type.clone(),
            file_name: self.file_name.clone(),
            data: Vec::new(),
        }
    }

    /// What is wrong with it, if anything.
    fn problem(&self, max_bytes: u64) -> Option<String> {
        let name = &self.file_name;
        if name.is_empty() || name.chars().count() > MAX_FILE_NAME_CHARS {
            return Some(format!(
                "an image's file name must have 1 to {MAX_FILE_NAME_CHARS} characters"
            ));
        }
        if name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
        {
            return Some(format!(
                "image `{name}`: a file name has no path and no control characters"
            ));
        }
        let Some((_, signature)) = IMAGE_TYPES.iter().find(|(t, _)| *t == self.mime_type) else {
            let types: Vec<&str> = IMAGE_TYPES.iter().map(|(t, _)| *t).collect();
            return Some(format!(
                "image `{name}`: type `{}` is not one a reply carries ({})",
                self.mime_type,
                types.join(", ")
            ));
        };
        if self.data.is_empty() {
            return Some(format!("image `{name}` is empty"));
        }
        if self.data.len() as u64 > max_bytes {
            return Some(format!(
                "image `{name}` has {} bytes, more than the host's limit of {max_bytes} \
                 (host.media_max_file_kib)",
                self.data.len()
            ));
        }
        let webp = self.mime_type != "image/webp" || self.data.get(8..12) == Some(b"WEBP");
        if !self.data.starts_with(signature) || !webp {
            return Some(format!(
                "image `{name}` says it is `{}`, but its bytes are not",
                self.mime_type
            ));
        }
        None
    }
}

/// Refuses a reply's images that are not acceptable, naming the first problem.
pub(crate) fn check_images(images: &[ReplyImage], limits: MediaLimits) -> Result<(), Error> {
    if images.len() > MAX_REPLY_IMAGES {
        return Err(Error::Refused(format!(
            "a reply carries at most {MAX_REPLY_IMAGES} images, not {}",
            images.len()
        )));
    }
    match images
        .iter()
        .find_map(|image| image.problem(limits.max_file_bytes))
    {
        Some(problem) => Err(Error::Refused(problem)),
        None => Ok(()),
    }
}
