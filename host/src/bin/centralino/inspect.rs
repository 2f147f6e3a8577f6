//! `centralino plugin inspect`.

use std::path::Path;

use centralino::runtime::{CONTRACT_PACKAGE, inspect_file};

pub fn run(file: &Path, json: bool) -> anyhow::Result<()> {
    let info = inspect_file(file)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        let served = if info.supported {
            "served by this host"
        } else {
            "NOT served by this host"
        };
        println!("plugin        {} {}", info.plugin.name, info.plugin.version);
        println!("world         {}", info.world);
        println!(
            "contract      {CONTRACT_PACKAGE}@{} ({served})",
            info.contract
        );
        println!("exports       {}", info.exports.join(", "));
        let capabilities: Vec<String> = info
            .capabilities
            .iter()
            .map(|c| {
                if c == "wasi" {
                    "wasi (locked down: no files, env or sockets)".to_string()
                } else {
                    c.clone()
                }
            })
            .collect();
        println!("capabilities  {}", capabilities.join(", "));
        println!("imports       {}", info.imports.join("\n              "));
        if let Some(window) = &info.reply_window {
            println!("reply window  {}", serde_json::to_string(window)?);
        }
        if let Some(rate_limits) = &info.rate_limits {
            println!("rate limits   {}", serde_json::to_string(rate_limits)?);
        }
        match &info.signature {
            Some(signature) if signature.valid => println!(
                "signed by     \"{}\" ({}), signature valid",
                signature.signer, signature.key
            ),
            Some(signature) => println!(
                "signed by     \"{}\" ({}), signature DOES NOT MATCH the file",
                signature.signer, signature.key
            ),
            None => println!("signed by     nobody (unsigned)"),
        }
        println!("size          {} bytes", info.size);
        println!("sha256        {}", info.sha256);
    }
    // Inspection succeeds for a component of an unserved version so the admin can see it,
    // but the command still reports it as an error.
    info.ensure_loadable(file, None)?;
    if let Some(signature) = info.signature.as_ref().filter(|s| !s.valid) {
        anyhow::bail!(
            "{}: the signature by \"{}\" does not match the file: it was changed after it was \
             signed",
            file.display(),
            signature.signer
        );
    }
    Ok(())
}
