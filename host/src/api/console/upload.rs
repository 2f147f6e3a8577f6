//! Uploading a new version of a connector's plugin, and rolling it back.
//!
//! 1. The admin picks a connector and a `.wasm` file (`POST upload`, a
//!    `multipart/form-data` form). The file is only *inspected* ([`inspect`]: its
//!    header, world, contract version, metadata, imports; nothing is compiled): a file
//!    that is no component, a routing policy, or built against a contract this host does
//!    not serve is refused there with the reason. What passes is held for the session.
//! 2. The connectors page shows the inspection next to the running version; the admin
//!    confirms (or cancels).
//! 3. Confirming writes the file beside the running plugin, in `console-uploads/`
//!    (named after the plugin, its version and hash), and swaps it in with
//!    [`Host::reload_connector_spec`], exactly as `connectors reload` does: compiled,
//!    checked, configured with the connector's settings beside the running version; a
//!    failure at any step leaves the running version serving and is shown.
//! 4. The version it replaced is kept (its spec, so its file): **Roll back** swaps it in
//!    again the same way. The last [`KEPT_VERSIONS`] versions per connector are kept, in
//!    memory: a restart or a config reload serves what `centralino.toml` names.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::connectors::ConnectorSpec;
use crate::runtime::{Inspection, World, inspect};
use crate::{Host, PluginId};

use super::html::escape;
use super::i18n::Lang;

/// The largest plugin file the console takes.
pub(crate) const MAX_UPLOAD: usize = 64 << 20;
/// Earlier versions kept per connector for rollback.
pub(crate) const KEPT_VERSIONS: usize = 5;
/// The folder, beside the running plugin's file, that uploaded versions are written to.
const UPLOADS_DIR: &str = "console-uploads";

/// An inspected upload waiting for the admin's confirmation.
#[derive(Clone, Debug)]
pub(crate) struct Staged {
    pub(crate) tenant: String,
    pub(crate) name: String,
    pub(crate) filename: String,
    bytes: Arc<Vec<u8>>,
    pub(crate) inspection: Inspection,
    /// What serves now.
    pub(crate) running: PluginId,
}

/// A version an upload replaced.
#[derive(Clone, Debug)]
struct Previous {
    spec: ConnectorSpec,
    plugin: PluginId,
}

/// Uploads held for confirmation (per session) and the versions they replaced (per
/// connector).
#[derive(Default)]
pub(crate) struct Uploads {
    staged: Mutex<HashMap<String, Staged>>,
    history: Mutex<HashMap<(String, String), Vec<Previous>>>,
}

/// Sessions whose staged upload is kept at most; past it they are all dropped.
const MAX_STAGED: usize = 20;

impl Uploads {
    pub(crate) fn stage(&self, session: &str, staged: Staged) {
        let mut all = lock(&self.staged);
        if all.len() >= MAX_STAGED {
            all.clear();
        }
        all.insert(session.to_string(), staged);
    }

    pub(crate) fn staged(&self, session: &str) -> Option<Staged> {
        lock(&self.staged).get(session).cloned()
    }

    pub(crate) fn take(&self, session: &str) -> Option<Staged> {
        lock(&self.staged).remove(session)
    }

    /// The version a rollback of this connector would bring back.
    pub(crate) fn previous(&self, tenant: &str, name: &str) -> Option<PluginId> {
        lock(&self.history)
            .get(&(tenant.to_string(), name.to_string()))
            .and_then(|versions| versions.last())
            .map(|p| p.plugin.clone())
    }

    fn push(&self, tenant: &str, name: &str, previous: Previous) {
        let mut history = lock(&self.history);
        let versions = history
            .entry((tenant.to_string(), name.to_string()))
            .or_default();
        versions.push(previous);
        if versions.len() > KEPT_VERSIONS {
            versions.remove(0);
        }
    }

    fn pop(&self, tenant: &str, name: &str) -> Option<Previous> {
        lock(&self.history)
            .get_mut(&(tenant.to_string(), name.to_string()))
            .and_then(Vec::pop)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) name: String,
    pub(crate) filename: Option<String>,
    pub(crate) data: Vec<u8>,
}

/// The parts of a `multipart/form-data` body whose `Content-Type` is `content_type`.
pub(crate) fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or("not a multipart/form-data form (no boundary)")?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    let start = find(rest, &delimiter).ok_or("the form has no parts")?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a malformed part boundary")?;
        let header_end = find(rest, b"\r\n\r\n").ok_or("a part without headers")?;
        let headers = String::from_utf8_lossy(&rest[..header_end]).into_owned();
        rest = &rest[header_end + 4..];
        let mut closing = b"\r\n".to_vec();
        closing.extend_from_slice(&delimiter);
        let end = find(rest, &closing).ok_or("the form ends in the middle of a part")?;
        let data = rest[..end].to_vec();
        rest = &rest[end + closing.len()..];
        let disposition = headers
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .ok_or("a part without Content-Disposition")?;
        let parameter = |key: &str| {
            disposition.split(';').map(str::trim).find_map(|p| {
                p.strip_prefix(key)
                    .and_then(|v| v.strip_prefix('='))
                    .map(|v| v.trim_matches('"').to_string())
            })
        };
        parts.push(Part {
            name: parameter("name").ok_or("a part without a name")?,
            filename: parameter("filename"),
            data,
        });
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Inspects an uploaded file as a connector's plugin, compiling nothing: the reason when
/// it could never serve as one.
pub(crate) fn inspect_upload(filename: &str, bytes: &[u8]) -> Result<Inspection, String> {
    let path = Path::new(filename);
    let inspection = inspect(path, bytes).map_err(|e| e.to_string())?;
    inspection
        .ensure_loadable(path, Some(World::Channel))
        .map_err(|e| e.to_string())?;
    Ok(inspection)
}

impl Staged {
    pub(crate) fn new(
        tenant: &str,
        name: &str,
        filename: &str,
        bytes: Vec<u8>,
        inspection: Inspection,
        running: PluginId,
    ) -> Staged {
        Staged {
            tenant: tenant.to_string(),
            name: name.to_string(),
            filename: filename.to_string(),
            bytes: Arc::new(bytes),
            inspection,
            running,
        }
    }
}

/// `text` with anything but letters, digits, `.`, `-` and `_` replaced, for a file name.
fn file_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

/// Writes a confirmed upload beside the running plugin and swaps it in as `connectors
/// reload` does; the replaced version is kept for rollback. Answers the audit log's
/// description and the outcome.
pub(crate) async fn confirm(
    host: &Host,
    uploads: &Uploads,
    staged: Staged,
) -> (String, Result<(), String>) {
    let mut target = format!(
        "{}/{}: {} → {}",
        staged.tenant, staged.name, staged.running, staged.inspection.plugin
    );
    let Some(spec) = host.connector_spec(&staged.tenant, &staged.name) else {
        return (target, Err("the connector is gone".to_string()));
    };
    let written = write_upload(&spec.plugin, &staged).await;
    let file = match written {
        Ok(file) => file,
        Err(reason) => return (target, Err(reason)),
    };
    let _ = write!(target, " ({})", file.display());
    let mut new_spec = spec.clone();
    new_spec.plugin = file;
    match host.reload_connector_spec(new_spec).await {
        Ok(report) if report.swapped => {
            uploads.push(
                &staged.tenant,
                &staged.name,
                Previous {
                    spec,
                    plugin: report.previous,
                },
            );
            (target, Ok(()))
        }
        Ok(report) => (
            target,
            Err(report
                .error
                .unwrap_or_else(|| "the new version was not swapped in".to_string())),
        ),
        Err(e) => (target, Err(e.to_string())),
    }
}

async fn write_upload(running: &Path, staged: &Staged) -> Result<PathBuf, String> {
    let dir = running
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(UPLOADS_DIR);
    let sha = staged.inspection.sha256.get(..12).unwrap_or_default();
    let file = dir.join(format!(
        "{}-{}-{sha}.wasm",
        file_safe(&staged.inspection.plugin.name),
        file_safe(&staged.inspection.plugin.version),
    ));
    let partial = file.with_extension("wasm.partial");
    let bytes = staged.bytes.clone();
    let (dir_shown, file_shown) = (dir.display().to_string(), file.display().to_string());
    let target = file.clone();
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {dir_shown}: {e}"))?;
        std::fs::write(&partial, bytes.as_slice())
            .map_err(|e| format!("writing {file_shown}: {e}"))?;
        std::fs::rename(&partial, &target).map_err(|e| format!("writing {file_shown}: {e}"))
    })
    .await
    .map_err(|e| format!("writing the upload: {e}"))??;
    Ok(file)
}

/// Swaps the version the last upload replaced back in. Answers the audit log's
/// description and the outcome.
pub(crate) async fn rollback(
    host: &Host,
    uploads: &Uploads,
    tenant: &str,
    name: &str,
) -> (String, Result<(), String>) {
    let Some(previous) = uploads.pop(tenant, name) else {
        return (
            format!("{tenant}/{name}"),
            Err("no earlier version was kept for this connector".to_string()),
        );
    };
    let running = host
        .connector_health()
        .into_iter()
        .find(|c| c.tenant == tenant && c.connector == name)
        .map(|c| c.plugin.to_string())
        .unwrap_or_default();
    let target = format!("{tenant}/{name}: {running} → {}", previous.plugin);
    match host.reload_connector_spec(previous.spec.clone()).await {
        Ok(report) if report.swapped => (target, Ok(())),
        Ok(report) => {
            let reason = report
                .error
                .unwrap_or_else(|| "the earlier version was not swapped in".to_string());
            uploads.push(tenant, name, previous);
            (target, Err(reason))
        }
        Err(e) => {
            uploads.push(tenant, name, previous);
            (target, Err(e.to_string()))
        }
    }
}

/// The upload form, below the connectors' table.
pub(crate) fn render_form(
    html: &mut String,
    lang: Lang,
    csrf: &str,
    connectors: &[(String, String)],
) {
    let t = lang.texts();
    let mut options = String::new();
    for (tenant, name) in connectors {
        let _ = write!(
            options,
            "<option value=\"{tenant}/{name}\">{tenant}/{name}</option>",
            tenant = escape(tenant),
            name = escape(name),
        );
    }
    let _ = writeln!(
        html,
        "<section id=\"upload\">\n<h2>{title}</h2>\n<p class=\"note\">{note}</p>\n\
         <form class=\"stacked\" method=\"post\" action=\"upload\" enctype=\"multipart/form-data\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <label for=\"upload-connector\">{connector}</label>\n\
         <select id=\"upload-connector\" name=\"connector\">{options}</select>\n\
         <label for=\"upload-file\">{file}</label>\n\
         <input id=\"upload-file\" name=\"plugin\" type=\"file\" accept=\".wasm,application/wasm\" required>\n\
         <button id=\"upload-button\" type=\"submit\">{button}</button>\n</form>\n</section>",
        title = escape(t.upload_title),
        note = escape(t.upload_note),
        csrf = escape(csrf),
        connector = escape(t.connector),
        file = escape(t.upload_file),
        button = escape(t.upload_button),
    );
}

/// The inspection of a staged upload, with Confirm and Cancel.
pub(crate) fn render_review(html: &mut String, lang: Lang, csrf: &str, staged: &Staged) {
    let t = lang.texts();
    let i = &staged.inspection;
    let served = if i.supported {
        t.contract_served
    } else {
        t.contract_not_served
    };
    let _ = writeln!(
        html,
        "<section id=\"upload-review\" class=\"result\">\n<h2>{title}</h2>\n\
         <dl class=\"facts\">\n\
         <dt>{file_label}</dt><dd>{file}</dd>\n\
         <dt>{plugin_label}</dt><dd id=\"review-plugin\"><strong>{plugin}</strong> \
         <span class=\"muted\">({running_label} {running})</span></dd>\n\
         <dt>{world_label}</dt><dd>{world}</dd>\n\
         <dt>{contract_label}</dt><dd>{contract} ({served})</dd>\n\
         <dt>{capabilities_label}</dt><dd id=\"review-capabilities\">{capabilities}</dd>\n\
         <dt>{imports_label}</dt><dd><code>{imports}</code></dd>\n\
         <dt>{size_label}</dt><dd>{size} bytes</dd>\n\
         <dt>sha256</dt><dd><code id=\"review-sha256\">{sha}</code></dd>\n</dl>\n\
         <p class=\"note\">{note}</p>\n\
         <form class=\"inline\" method=\"post\" action=\"connectors\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button id=\"confirm-upload\" type=\"submit\" name=\"action\" value=\"confirm\">{confirm}</button> \
         <button id=\"cancel-upload\" type=\"submit\" name=\"action\" value=\"cancel\">{cancel}</button>\
         </form>\n</section>",
        title = escape(&super::html::fill(
            t.review_title,
            &[("connector", &format!("{}/{}", staged.tenant, staged.name))]
        )),
        file_label = escape(t.upload_file),
        file = escape(&staged.filename),
        plugin_label = escape(t.plugin),
        plugin = escape(&i.plugin.to_string()),
        running_label = escape(t.running_now),
        running = escape(&staged.running.to_string()),
        world_label = escape(t.world),
        world = escape(i.world.name()),
        contract_label = escape(t.contract),
        contract = escape(&i.contract.to_string()),
        served = escape(served),
        capabilities_label = escape(t.capabilities),
        capabilities = escape(&i.capabilities.join(", ")),
        imports_label = escape(t.imports),
        imports = escape(&i.imports.join(", ")),
        size_label = escape(t.size),
        size = i.size,
        sha = escape(&i.sha256),
        note = escape(t.review_note),
        csrf = escape(csrf),
        confirm = escape(t.confirm_swap),
        cancel = escape(t.cancel),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multipart_form_gives_its_fields_and_file() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"plugin\"; filename=\"t.wasm\"\r\n\
Content-Type: application/wasm\r\n\r\n\0asm\r\n\x01\r\n--XyZ--\r\n";
        let parts = parse_multipart("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "csrf");
        assert_eq!(parts[0].data, b"abc");
        assert_eq!(parts[1].filename.as_deref(), Some("t.wasm"));
        assert_eq!(parts[1].data, b"\0asm\r\n\x01");
        assert!(parse_multipart("application/x-www-form-urlencoded", body).is_err());
        assert!(parse_multipart("multipart/form-data; boundary=XyZ", b"--XyZ\r\nnope").is_err());
    }

    #[test]
    fn names_from_a_plugin_cannot_leave_the_uploads_folder() {
        assert_eq!(file_safe("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(file_safe("twitter"), "twitter");
        assert_eq!(file_safe("0.2.0+build/1"), "0.2.0_build_1");
    }
}
