//! `centralino plugin keygen` and `centralino plugin sign`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use centralino::runtime::{SigningKey, generate_key, inspect_file, sign};

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Where to write the private key (created; never overwritten). Keep it secret.
    pub out: PathBuf,
}

#[derive(clap::Args)]
pub struct SignArgs {
    /// The component file (`.wasm`) to sign.
    pub file: PathBuf,
    /// The private key file `centralino plugin keygen` wrote.
    #[arg(long)]
    pub key: PathBuf,
    /// The name shown as the signer (`plugin inspect`, refusals). Trust comes from the
    /// key, not from this name.
    #[arg(long)]
    pub signer: String,
    /// Where to write the signed component. Default: the file itself.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Writes a new key to `out` (owner-only permissions) and prints its public key.
pub fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let key = generate_key().map_err(anyhow::Error::msg)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&args.out).with_context(|| {
        format!(
            "creating {} (an existing key is never overwritten)",
            args.out.display()
        )
    })?;
    writeln!(file, "{key}").with_context(|| format!("writing {}", args.out.display()))?;
    let public = SigningKey::from_file(&args.out).map_err(anyhow::Error::msg)?;
    println!("private key   {} (keep it secret)", args.out.display());
    println!("public key    {}", public.public_key());
    println!(
        "trust it with `trusted_keys = [\"{}\"]` under [host] in centralino.toml",
        public.public_key()
    );
    Ok(())
}

/// Signs a component and prints who signed it.
pub fn run(args: SignArgs) -> anyhow::Result<()> {
    let key = SigningKey::from_file(&args.key).map_err(anyhow::Error::msg)?;
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    // Inspect first: only a component this host could read is worth signing.
    inspect_file(&args.file)?;
    let signed = sign(&bytes, &key, &args.signer)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let out: &Path = args.out.as_deref().unwrap_or(&args.file);
    let partial = out.with_extension("wasm.signing");
    std::fs::write(&partial, &signed).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, out).with_context(|| format!("replacing {}", out.display()))?;
    println!(
        "signed        {} by \"{}\" ({})",
        out.display(),
        args.signer,
        key.public_key()
    );
    Ok(())
}
